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
of their cells.
"""
from typing import Dict, List, Optional

import torch
from torch import Tensor

__all__ = ["merge_people_by_dspf"]


def merge_people_by_dspf(
    poses: Tensor,
    person_cells: Tensor,
    dspf: Tensor,
    stride: int,
    radius: float,
    min_boundary: float = 2.0,
    max_conflict: float = 0.05,
    tolerance: Optional[float] = None,
) -> Tensor:
    """Merge the people that the DSPF shows to be one person.

    Each person cell ``q`` (position ``(j s + s // 2, i s + s // 2)``) is labelled with the decoded
    joint nearest to its projection ``q + dspf(q)`` if within ``radius``, and so with that joint's
    person. For people ``X != Y``: ``touch[X, Y]`` counts 4-neighbour cell pairs labelled with
    ``X`` and ``Y``; ``conflict[X, Y]`` counts the cells of ``X`` whose distance to their joint
    exceeds their distance to the nearest joint of ``Y`` by more than ``tolerance``. ``X`` and
    ``Y`` are merged (union-find, most touching first; the counts of a merged person are the
    sums of its members', an upper bound for its conflicts) when ``touch >= min_boundary``,
    ``conflict[X, Y] + conflict[Y, X] <= max_conflict * (cells of X + cells of Y)`` and their
    joint types are disjoint.

    Args:
        poses: ``[P, K, 3]`` ``(x, y, score)`` in input pixels, score 0 for a missing joint.
        person_cells: ``[h, w]`` bool person cells of the stride-``s`` grid.
        dspf: ``[2, h, w]`` DSPF ``(dx, dy)`` in input pixels.
        stride: ``s``.
        radius: largest distance between a projection and the joint it labels (input px).
        min_boundary, max_conflict: the merge criterion above.
        tolerance: slack of a conflict (input px; default ``stride``).

    Returns:
        ``[P', K, 3]`` the merged people (``P' <= P``), in the order of their first member.
    """
    num_people = poses.shape[0]
    if num_people < 2 or not bool(person_cells.any()):
        return poses
    tolerance = float(stride) if tolerance is None else tolerance
    present = poses[..., 2] > 0  # [P, K]
    joint_person, joint_type = present.nonzero(as_tuple=True)  # [J]
    joints = poses[joint_person, joint_type, :2]  # [J, 2]
    h, w = person_cells.shape
    ys = torch.arange(h, device=poses.device, dtype=poses.dtype) * stride + stride // 2
    xs = torch.arange(w, device=poses.device, dtype=poses.dtype) * stride + stride // 2
    pos = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), dim=-1)  # [h, w, 2]
    cells = person_cells.nonzero(as_tuple=True)
    q = pos[cells]  # [Q, 2]
    proj = q + dspf[:, cells[0], cells[1]].t().to(poses.dtype)
    nearest, label = torch.cdist(proj, joints).min(dim=1)  # [Q]
    labelled = nearest <= radius
    q, label = q[labelled], label[labelled]
    owner = joint_person[label]  # [Q'] person of each labelled cell
    # Conflicts: distance of each cell to the nearest joint of every person vs to its own joint.
    to_joint = torch.cdist(q, joints)  # [Q', J]
    to_person = torch.full((q.shape[0], num_people), float("inf"), dtype=poses.dtype, device=poses.device)
    to_person = to_person.scatter_reduce(1, joint_person[None].expand(q.shape[0], -1), to_joint, "amin")
    own = to_joint.gather(1, label[:, None])  # [Q', 1]
    conflicting = (to_person < own - tolerance).to(poses.dtype)  # [Q', P]
    member = torch.nn.functional.one_hot(owner, num_people).to(poses.dtype)  # [Q', P]
    conflict = member.t() @ conflicting  # [P, P]: cells of X closer to a joint of Y
    size = member.sum(dim=0)  # [P] labelled cells per person
    grid_owner = torch.full((h, w), -1, dtype=torch.long, device=poses.device)
    grid_owner[cells[0][labelled], cells[1][labelled]] = owner
    touch = torch.zeros(num_people, num_people, dtype=poses.dtype, device=poses.device)
    for first, second in ((grid_owner[:, :-1], grid_owner[:, 1:]), (grid_owner[:-1], grid_owner[1:])):
        pair = (first >= 0) & (second >= 0) & (first != second)
        a, b = first[pair], second[pair]
        ones = torch.ones_like(a, dtype=touch.dtype)
        touch.index_put_((a, b), ones, accumulate=True)
        touch.index_put_((b, a), ones, accumulate=True)
    pairs = torch.triu(touch >= min_boundary, diagonal=1).nonzero().tolist()
    if not pairs:
        return poses
    pairs.sort(key=lambda ab: -float(touch[ab[0], ab[1]]))
    root = list(range(num_people))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    conflict, size = conflict.tolist(), size.tolist()
    types = [set(present[i].nonzero().flatten().tolist()) for i in range(num_people)]
    members: Dict[int, List[int]] = {i: [i] for i in range(num_people)}
    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra == rb or types[ra] & types[rb]:
            continue
        clash = sum(conflict[x][y] + conflict[y][x] for x in members[ra] for y in members[rb])
        if clash > max_conflict * (sum(size[x] for x in members[ra]) + sum(size[y] for y in members[rb])):
            continue
        keep, gone = min(ra, rb), max(ra, rb)
        root[gone] = keep
        types[keep] |= types[gone]
        members[keep] += members.pop(gone)
    return torch.stack([poses[group].sum(dim=0) for _, group in sorted(members.items())])
