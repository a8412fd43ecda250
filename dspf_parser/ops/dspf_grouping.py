"""Joining the fragments of one person with the Dense-to-Sparse Projection Field (paper Sec. 3.2).

Pure torch (no detectron2). Limb association cannot link two parts of one person when the
joints between them are missing: an arm and a leg whose shoulder and hip are outside the image,
a wrist whose elbow is, or a limb the matching lost. The DSPF can: every person cell ``q``
points to the nearest joint of *its own* person, so

* the cells of one person's fragments touch (4-neighbours labelled with joints of both), and
* each cell is at least as close to the joint it points to as to *any* joint of its person:
  a cell of fragment ``X`` that lies clearly closer to a joint of ``Y`` (by more than
  ``tolerance``) is a *conflict*: evidence that ``X`` and ``Y`` are different people.

Two people standing one in front of the other touch as well, but the front person's cells near
the other's joints conflict (they point to their own, farther joints), so
:func:`merge_people_by_dspf` merges touching people only while the conflicts stay a small share
of their cells, and two people with a joint of the same type only when those joints are two
peaks of one joint (within ``duplicate_radius``).
"""
import math
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from .pixel_assignment import joint_boxes

__all__ = ["dspf_support", "merge_people_by_dspf", "nearest_within", "pairs_within"]


def merge_people_by_dspf(
    poses: Tensor,
    person_cells: Tensor,
    dspf: Tensor,
    stride: int,
    radius: float,
    min_boundary: float = 1.0,
    max_conflict: float = 0.02,
    tolerance: Optional[float] = None,
    duplicate_radius: float = 0.0,
    small_cells: float = 5.0,
    return_support: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Merge the people that the DSPF shows to be one person.

    Each person cell ``q`` (position ``(j s + s // 2, i s + s // 2)``) is labelled with the decoded
    joint nearest to its projection ``q + dspf(q)`` if within ``radius``, and so with that joint's
    person. For people ``X != Y``: ``touch[X, Y]`` counts 4-neighbour cell pairs labelled with
    ``X`` and ``Y``; ``conflict[X, Y]`` counts the cells of ``X`` whose distance to their joint
    exceeds their distance to the nearest joint of ``Y`` by more than ``tolerance``. ``X`` and
    ``Y`` are merged (union-find, the pairs in decreasing order of ``touch[X, Y] / min(cells of
    X, cells of Y, small_cells)``: most touching first, except that a fragment of fewer than
    ``small_cells`` labelled cells goes first to the neighbour it touches most for its size; the
    counts of a merged person are the sums of its members', an upper bound for its conflicts)
    when ``touch >= min_boundary``,
    ``conflict[X, Y] + conflict[Y, X] <= max_conflict * (cells of X + cells of Y)`` and their
    joint types are disjoint, or every type they share has its two joints within
    ``duplicate_radius`` of each other: a second peak of a joint the other already has (a
    trained model's maps often hold one a few pixels off, and the pixels projecting onto it
    would otherwise make a partial person). The merged person keeps, for a shared type, the
    joint of the member with more labelled cells.

    Args:
        poses: ``[P, K, 3]`` ``(x, y, score)`` in input pixels, score 0 for a missing joint.
        person_cells: ``[h, w]`` bool person cells of the stride-``s`` grid.
        dspf: ``[2, h, w]`` DSPF ``(dx, dy)`` in input pixels.
        stride: ``s``.
        radius: largest distance between a projection and the joint it labels (input px).
        min_boundary, max_conflict: the merge criterion above.
        tolerance: slack of a conflict (input px; default ``stride``).
        duplicate_radius: largest distance between two joints of one type that still lets
            their people merge (input px; 0: people sharing a joint type never merge).
        small_cells: fragments with fewer labelled cells merge in order of their contact per
            cell (above). 5 against plain contact order: oracle exact val AP^p_50 / AP^p_vol /
            pose AP 94.0 / 90.0 / 93.5 -> 95.0 / 91.1 / 94.5 (a person cut by the image border,
            whose head and arm fragments had joined a neighbour before its wrist fragment could
            stop them); crowd split and ``--degrade 1`` unchanged; cached val maps of three
            recipe models unchanged within 0.1 (10: one model's pose AP -0.2; 20: another's
            AP^p_50 -1.3).
        return_support: also return the merged people's labelled cells: the sums of their
            members' (:func:`dspf_support` of the result when no shared joint was dropped).

    Returns:
        ``[P', K, 3]`` the merged people (``P' <= P``), in the order of their first member, and
        with ``return_support`` their labelled cells ``[P']``.
    """
    num_people = poses.shape[0]
    tolerance = float(stride) if tolerance is None else tolerance
    present = poses[..., 2] > 0  # [P, K]
    rows, cols, q, label, joint_person, joints = _label_cells(poses, person_cells, dspf, stride, radius)
    owner = joint_person[label]  # [Q'] person of each labelled cell
    counts = torch.bincount(owner, minlength=num_people).to(poses.dtype)  # labelled cells per person

    def result(merged: Tensor, groups: Optional[List[List[int]]] = None):
        if not return_support:
            return merged
        return merged, counts if groups is None else torch.stack([counts[g].sum() for g in groups])

    if num_people < 2 or owner.numel() == 0:
        return result(poses)
    size = counts.tolist()
    h, w = person_cells.shape
    grid_owner = torch.full((h, w), -1, dtype=torch.long, device=poses.device)
    grid_owner[rows, cols] = owner
    touch = torch.zeros(num_people, num_people, dtype=poses.dtype, device=poses.device)
    for first, second in ((grid_owner[:, :-1], grid_owner[:, 1:]), (grid_owner[:-1], grid_owner[1:])):
        pair = (first >= 0) & (second >= 0) & (first != second)
        a, b = first[pair], second[pair]
        ones = torch.ones_like(a, dtype=touch.dtype)
        touch.index_put_((a, b), ones, accumulate=True)
        touch.index_put_((b, a), ones, accumulate=True)
    pairs = torch.triu(touch >= min_boundary, diagonal=1).nonzero().tolist()
    if not pairs:
        return result(poses)
    contact = touch.tolist()
    pairs.sort(key=lambda ab: -contact[ab[0]][ab[1]] / max(1.0, min(size[ab[0]], size[ab[1]], small_cells)))
    # Conflicts (cells of X clearly closer to a joint of Y than to their own), needed only
    # between people that may end up in one group: those of one connected component of the
    # touching pairs.
    component = list(range(num_people))
    for a, b in pairs:
        component[_find(component, a)] = _find(component, b)
    comp = torch.tensor([_find(component, i) for i in range(num_people)], device=poses.device)
    cell, other = ((comp[owner][:, None] == comp[None, :])
                   & (owner[:, None] != torch.arange(num_people, device=poses.device))).nonzero(as_tuple=True)
    to_own = q - joints.index_select(0, label)
    own = torch.sqrt(to_own[:, 0] * to_own[:, 0] + to_own[:, 1] * to_own[:, 1])  # [Q'] distance of each cell to its own joint
    # A cell can clash with Y only if Y's joint box lies nearer than ``own - tolerance`` (the box
    # is no farther than any of its joints; a relative margin keeps every pair whose exact test
    # could pass): the [pairs x K] distances are computed for those pairs only, as before.
    reach = own - tolerance
    box = joint_boxes(poses[..., :2], present).index_select(0, other)  # [E, 4]
    at = q.index_select(0, cell)  # [E, 2]
    gap = (box[:, :2] - at).clamp_min(0) + (at - box[:, 2:]).clamp_min(0)
    limit = reach.index_select(0, cell)
    maybe = ((limit > 0) & ((gap * gap).sum(dim=1) < limit * limit * (1 + 1e-4) + 1e-6)).nonzero().squeeze(1)
    cell, other = cell.index_select(0, maybe), other.index_select(0, maybe)
    to_other = (q[cell, None, :] - poses[other, :, :2]).norm(dim=-1)  # [E', K]
    to_other = torch.where(present[other], to_other, torch.full_like(to_other, float("inf"))).amin(dim=1)
    clashes = to_other < own[cell] - tolerance
    conflict = torch.zeros(num_people, num_people, dtype=poses.dtype, device=poses.device)
    conflict.index_put_((owner[cell[clashes]], other[clashes]), torch.ones_like(to_other[clashes]), accumulate=True)
    conflict = conflict.tolist()
    xy = poses[..., :2].tolist()
    # Per group (at its root): the person that gives each of its joint types its joint.
    source: List[Dict[int, int]] = [{} for _ in range(num_people)]
    for i, t in present.nonzero().tolist():
        source[i][t] = i
    members: Dict[int, List[int]] = {i: [i] for i in range(num_people)}
    cells_of = list(size)  # labelled cells of each group (at its root)
    root = list(range(num_people))  # union-find of the merged groups
    for a, b in pairs:
        ra, rb = _find(root, a), _find(root, b)
        if ra == rb:
            continue
        src_a, src_b = source[ra], source[rb]
        if any(math.dist(xy[src_a[t]][t], xy[src_b[t]][t]) > duplicate_radius for t in src_a.keys() & src_b.keys()):
            continue
        clash = sum(conflict[x][y] + conflict[y][x] for x in members[ra] for y in members[rb])
        if clash > max_conflict * (cells_of[ra] + cells_of[rb]):
            continue
        keep, gone = min(ra, rb), max(ra, rb)
        major, minor = (ra, rb) if cells_of[ra] >= cells_of[rb] else (rb, ra)
        source[keep] = {**source[minor], **source[major]}
        root[gone] = keep
        cells_of[keep] += cells_of[gone]
        members[keep] += members.pop(gone)
    groups = sorted(members)
    entries = [(row, t, i) for row, g in enumerate(groups) for t, i in source[g].items()]
    person = torch.full((len(groups), poses.shape[1]), num_people, dtype=torch.long)
    if entries:
        row, joint_type, index = torch.tensor(entries).unbind(1)
        person[row, joint_type] = index
    padded = torch.cat([poses, poses.new_zeros(1, *poses.shape[1:])])  # row P: no joint
    merged = padded.gather(0, person.to(poses.device)[..., None].expand(-1, -1, poses.shape[2]))
    return result(merged, [members[g] for g in groups])


def dspf_support(poses: Tensor, person_cells: Tensor, dspf: Tensor, stride: int, radius: float) -> Tensor:
    """``[P]`` the number of person cells (``[h, w]`` bool, position ``(j s + s // 2, i s + s // 2)``)
    whose DSPF projection ``q + dspf(q)`` lies within ``radius`` of its nearest decoded joint and
    that joint is one of the person's (``poses`` ``[P, K, 3]``, input pixels): the cells that the
    DSPF gives to the person (the labelling of :func:`merge_people_by_dspf`)."""
    label, joint_person = _label_cells(poses, person_cells, dspf, stride, radius)[3:5]
    return torch.bincount(joint_person[label], minlength=poses.shape[0]).to(poses.dtype)


def _find(parent: List[int], i: int) -> int:
    """Root of ``i`` in the union-find forest ``parent`` (with path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def nearest_within(points: Tensor, sites: Tensor, radius: float) -> Tuple[Tensor, Tensor]:
    """The nearest site within ``radius`` of every point, from :func:`pairs_within` (no ``[Q, J]``
    table).

    Args:
        points: ``[Q, 2]``. sites: ``[J, 2]``. radius: the largest distance (same units, > 0).

    Returns:
        ``distance`` ``[Q]`` (``inf`` where no site is within ``radius``) and ``index`` ``[Q]`` of
        that site (-1 where none; ties to the lower index).
    """
    num = points.shape[0]
    distance = points.new_full((num,), math.inf)
    index = torch.full((num,), -1, dtype=torch.long, device=points.device)
    if num == 0 or sites.shape[0] == 0:
        return distance, index
    point, site, dist2 = pairs_within(points, sites, radius)
    best = distance.scatter_reduce(0, point, dist2, "amin")  # inf where no pair
    first = torch.full_like(index, sites.shape[0]).scatter_reduce(
        0, point, torch.where(dist2 == best.index_select(0, point), site, sites.shape[0]), "amin")
    found = torch.isfinite(best)
    return best.sqrt(), torch.where(found, first, index)


def pairs_within(points: Tensor, sites: Tensor, radius: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Every (point, site) pair closer than ``radius`` (squared distance ``<= radius ** 2``), by a
    bucket grid: the sites are hashed into square buckets of side ``radius``; a site within
    ``radius`` of a point lies in the point's bucket or one of its 8 neighbours, so each point is
    compared with the sites of those 9 buckets only (listed without padding). The work is the
    number of such (point, site) pairs, not ``Q * J`` (which grows with the number of people).

    Args:
        points: ``[Q, 2]``. sites: ``[J, 2]``. radius: the largest distance (same units, > 0).

    Returns:
        ``point`` ``[E]`` and ``site`` ``[E]`` indices of the pairs (by point, then by bucket) and
        their squared distances ``[E]``. One host sync (the number of candidate pairs).
    """
    side = float(radius)
    if not side > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    num, device = points.shape[0], points.device
    if num == 0 or sites.shape[0] == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty, points.new_zeros(0)
    origin = sites.amin(dim=0) - side  # every site in bucket column/row >= 1
    site_bucket = ((sites - origin) / side).floor().long()  # [J, 2]
    width, height = (site_bucket.amax(dim=0) + 2).tolist()  # one empty bucket beyond the last
    flat = site_bucket[:, 1] * width + site_bucket[:, 0]
    order = torch.argsort(flat, stable=True)  # the sites of each bucket, by increasing index
    counts = torch.bincount(flat, minlength=width * height)
    start = torch.cumsum(counts, 0) - counts
    # A point more than one bucket outside the grid has no site within radius: clamping its
    # bucket only adds farther sites, which the distance test drops.
    bucket = ((points - origin) / side).floor().long()
    bx = bucket[:, 0].clamp(0, width - 1)
    by = bucket[:, 1].clamp(0, height - 1)
    step = torch.tensor([-1, 0, 1], device=device)
    nx = bx[:, None, None] + step[None, None, :]  # [Q, 1, 3]
    ny = by[:, None, None] + step[None, :, None]  # [Q, 3, 1]
    real = (nx >= 0) & (nx < width) & (ny >= 0) & (ny < height)  # [Q, 3, 3]: neighbours inside the grid
    neighbour = torch.where(real, ny * width + nx, 0).reshape(-1)  # [Q * 9]
    many = counts.index_select(0, neighbour) * real.reshape(-1)  # sites in each (point, bucket)
    # Every (point, site) pair of the 9 buckets, without padding (one host sync, the total).
    source = torch.repeat_interleave(torch.arange(num * 9, device=device), many)
    rank = torch.arange(source.numel(), device=device) - (torch.cumsum(many, 0) - many).index_select(0, source)
    site = order.index_select(0, start.index_select(0, neighbour.index_select(0, source)) + rank)
    point = source // 9
    dx = points[:, 0].index_select(0, point) - sites[:, 0].index_select(0, site)
    dy = points[:, 1].index_select(0, point) - sites[:, 1].index_select(0, site)
    dist2 = dx * dx + dy * dy
    near = (dist2 <= side * side).nonzero().squeeze(1)
    return point.index_select(0, near), site.index_select(0, near), dist2.index_select(0, near)


def _label_cells(poses: Tensor, person_cells: Tensor, dspf: Tensor, stride: int,
                 radius: float) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The person cells whose projection ``q + dspf(q)`` lies within ``radius`` of its nearest
    joint of ``poses``: their ``rows``, ``cols``, positions ``q`` ``[Q', 2]`` and nearest joint
    ``label`` ``[Q']`` (index into the present joints of ``poses`` in row-major order; ties to the
    first, :func:`nearest_within`), and the person ``[J]`` and position ``[J, 2]`` of every
    present joint."""
    present = poses[..., 2] > 0
    joint_person, joint_type = present.nonzero(as_tuple=True)  # [J]
    joints = poses[joint_person, joint_type, :2]
    w = person_cells.shape[1]
    cells = person_cells.reshape(-1).nonzero().squeeze(1)  # flat gathers (CPU advanced indexing is slower)
    q = torch.stack([cells % w, cells // w], dim=1).to(poses.dtype) * stride + stride // 2  # [Q, 2]
    proj = q + dspf.reshape(2, -1).index_select(1, cells).t().to(poses.dtype)
    _, label = nearest_within(proj, joints, radius)
    labelled = (label >= 0).nonzero().squeeze(1)
    cells = cells.index_select(0, labelled)
    return cells // w, cells % w, q.index_select(0, labelled), label.index_select(0, labelled), joint_person, joints
