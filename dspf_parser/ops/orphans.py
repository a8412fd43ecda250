"""People that no decoded skeleton explains: regions of person cells whose DSPF points away from
every joint of the person Eq. 17 gave them to (not in the paper).

Eq. 17 gives every person pixel to some decoded person, so a person whose skeleton was not
decoded (cut by the image border with one or two joints inside, occluded down to a sliver, or
without any annotated joint) has its pixels handed to a neighbour, which costs both of them part
IoU. Such pixels betray themselves: their DSPF projections ``q + f(q)`` land on *their own*
person's joints, far from every joint of the person that took them. A cell is *unexplained* when
its projection lies farther than ``far`` from each present joint of its owner (a cell that nobody
took is not: without any decoded person there is nobody to contrast with, and an image whose
decoding found no one gets no one). The 4-connected regions of unexplained cells become people of their own (without a
skeleton) when they are

* large enough: at least ``min_cells`` cells, and
* spread: the mean distance of their projections from the projections' mean is at least
  ``min_spread``. A whole person's cells project onto several joints; the cells of a hand whose
  wrist was missed project onto that one point (a hole in a decoded person, not a person).

A region whose projections land, for the most part, on the joints of a fragment that the
decoding dropped (a skeleton of one or two joints that too few cells projected onto to stand as
a person, :attr:`~dspf_parser.ops.decoding.DecodingSettings.fragment_min_cells`) is that
fragment's person: it takes the fragment's skeleton (:func:`adopt_skeletons`).

Pure tensor code (and ``scipy.ndimage.label`` on the host for the regions), no detectron2.
"""
from typing import Tuple

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from .dspf_grouping import pairs_within

__all__ = ["adopt_skeletons", "unexplained_regions"]

_FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def unexplained_regions(
    person_cells: Tensor,
    projections: Tensor,
    owners: Tensor,
    poses: Tensor,
    far: float,
    min_cells: int,
    min_spread: float,
) -> Tuple[Tensor, int]:
    """Regions of person cells that no decoded person explains, as new people.

    Args:
        person_cells: ``[h, w]`` bool, the cells of the person pixels.
        projections: ``[2, h, w]`` ``(x, y)`` the DSPF projection ``q + f(q)`` of every cell, in
            the frame of ``poses``.
        owners: ``[h, w]`` long, the person (``1..P``) each cell was given to, 0 for none
            (such a cell is never unexplained).
        poses: ``[P, K, 3]`` ``(x, y, score)``, score 0 for a missing joint.
        far: a cell is unexplained when its projection is farther than this from every present
            joint of its owner (same units as ``poses``).
        min_cells: least cells of a kept region.
        min_spread: least mean distance of a kept region's projections from their mean.

    Returns:
        ``[h, w]`` long region of every cell (0: none, ``1..R`` the kept regions, largest
        first; ties: the region met first in row-major order) and ``R``.
    """
    h, w = person_cells.shape
    device = person_cells.device
    cells = person_cells.reshape(-1).nonzero().squeeze(1)  # [n]
    region = torch.zeros(h * w, dtype=torch.long, device=device)
    if cells.numel() == 0:
        return region.view(h, w), 0
    points = projections.reshape(2, -1).index_select(1, cells).t()  # [n, 2]
    owner = owners.reshape(-1).index_select(0, cells)
    # Squared distance to the owner's nearest present joint (missing joints: infinitely far);
    # a cell nobody took (owner 0) is never unexplained.
    if poses.shape[0] == 0:
        return region.view(h, w), 0
    # Planar [n, K] differences (a reduction over a last dimension of 2 is slow on the CPU).
    present = poses[..., 2] > 0
    infinity = torch.full_like(poses[..., 0], float("inf"))
    take = (owner - 1).clamp_min(0)
    dx = torch.where(present, poses[..., 0], infinity).index_select(0, take) - points[:, :1]  # [n, K]
    dy = torch.where(present, poses[..., 1], infinity).index_select(0, take) - points[:, 1:]
    gap2 = torch.where(owner > 0, (dx * dx + dy * dy).amin(dim=1), torch.zeros((), dtype=points.dtype))
    lost = torch.zeros(h * w, dtype=torch.bool, device=device)
    lost[cells] = gap2 > far * far
    if not bool(lost.any()):
        return region.view(h, w), 0
    labelled, count = ndimage.label(lost.view(h, w).cpu().numpy(), structure=_FOUR_CONNECTED)
    component = torch.from_numpy(labelled.reshape(-1)).to(device).index_select(0, cells)  # [n], 0: explained
    size = torch.bincount(component, minlength=count + 1).to(points.dtype)
    mean = torch.zeros(count + 1, 2, dtype=points.dtype, device=device).index_add_(0, component, points)
    mean = mean / size.clamp_min(1)[:, None]
    offset = points - mean.index_select(0, component)
    spread = torch.zeros(count + 1, dtype=points.dtype, device=device).index_add_(
        0, component, torch.sqrt(offset[:, 0] * offset[:, 0] + offset[:, 1] * offset[:, 1])) / size.clamp_min(1)
    keep = (size >= min_cells) & (spread >= min_spread)
    keep[0] = False
    kept = keep.nonzero().squeeze(1)
    if kept.numel() == 0:
        return region.view(h, w), 0
    kept = kept[torch.argsort(-size.index_select(0, kept), stable=True)]
    new_id = torch.zeros(count + 1, dtype=torch.long, device=device)
    new_id[kept] = torch.arange(1, kept.numel() + 1, device=device)
    region[cells] = new_id.index_select(0, component)
    return region.view(h, w), int(kept.numel())


def adopt_skeletons(region: Tensor, count: int, projections: Tensor, fragments: Tensor, radius: float) -> Tensor:
    """The dropped fragment whose skeleton each region of :func:`unexplained_regions` takes.

    A region's cell votes for every fragment with a present joint within ``radius`` of the
    cell's projection. A region adopts the fragment with the most votes when they are at least
    half of its cells (ties: the fragment listed first); a fragment wanted by several regions
    goes to the one that gives it the most votes (ties: the lower region), the others adopt
    nothing.

    Args:
        region: ``[h, w]`` long, ``0`` or the region ``1..R`` of every cell.
        count: ``R``.
        projections: ``[2, h, w]`` ``(x, y)`` the DSPF projection of every cell (frame of
            ``fragments``).
        fragments: ``[F, K, 3]`` ``(x, y, score)`` the dropped skeletons, score 0 for a missing joint.
        radius: largest distance between a projection and the joint it votes for.

    Returns:
        ``[R]`` long, the fragment each region adopts, ``-1`` for none.
    """
    device = region.device
    adopted = torch.full((count,), -1, dtype=torch.long, device=device)
    if count == 0 or fragments.shape[0] == 0:
        return adopted
    num_fragments = fragments.shape[0]
    cells = (region.reshape(-1) > 0).nonzero().squeeze(1)
    owner = region.reshape(-1).index_select(0, cells) - 1  # [n] region of each cell, 0-based
    points = projections.reshape(2, -1).index_select(1, cells).t()  # [n, 2]
    present = fragments[..., 2] > 0
    fragment_of = present.nonzero(as_tuple=True)[0]  # [J] fragment of every present joint
    # The (cell, fragment) pairs with a joint within the radius, each once (a bucket grid: no
    # [cells x fragments x joints] table, which grew with a trained model's many fragments).
    point, joint, _ = pairs_within(points, fragments[present][:, :2].contiguous(), radius)
    voted = torch.unique(point * num_fragments + fragment_of.index_select(0, joint))
    votes = torch.zeros(count * num_fragments, dtype=torch.long, device=device).index_add_(
        0, owner.index_select(0, voted // num_fragments) * num_fragments + voted % num_fragments,
        torch.ones_like(voted)).view(count, num_fragments)
    size = torch.bincount(owner, minlength=count)
    best_votes, best = votes.max(dim=1)  # first of the most voted (ties: lower fragment)
    wants = (best_votes > 0) & (2 * best_votes >= size)
    # Each fragment once: to the region with its most votes (ties: lower region).
    claim = torch.where(wants, best_votes, torch.full_like(best_votes, -1))
    top = torch.full((num_fragments,), -1, dtype=torch.long, device=device).scatter_reduce(
        0, best, claim, reduce="amax")
    winner = wants & (claim == top.index_select(0, best))
    first = torch.full((num_fragments,), count, dtype=torch.long, device=device).scatter_reduce(
        0, best, torch.where(winner, torch.arange(count, device=device), torch.full_like(best, count)), reduce="amin")
    winner = winner & (first.index_select(0, best) == torch.arange(count, device=device))
    return torch.where(winner, best, adopted)
