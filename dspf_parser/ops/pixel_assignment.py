"""Instance-aware parsing by projecting person pixels onto people's joints (paper Eq. 17).

Every person pixel (from the category-level parsing) follows its DSPF vector to the point where
its nearest joint should be, and is given to the person whose joints explain that point best.

Grid convention: maps live on an output grid of stride ``s``; cell ``[i, j]`` represents the
input position ``q = (j * s + s // 2, i * s + s // 2)``. DSPF vectors and joint coordinates
are in input pixels.
"""
import math

from typing import Tuple

import torch
from torch import Tensor

__all__ = ["joint_boxes", "person_scales", "assign_pixels", "assign_projections", "square_tiles"]


def joint_boxes(xy: Tensor, mask: Tensor) -> Tensor:
    """Tight boxes ``[P, 4]`` ``(x0, y0, x1, y1)`` of the joints ``xy`` ``[P, K, 2]`` selected by
    ``mask`` ``[P, K]`` (bool); ``(inf, inf, -inf, -inf)`` for a person with none."""
    inside = mask[..., None]
    return torch.cat([torch.where(inside, xy, torch.full_like(xy, math.inf)).amin(dim=1),
                      torch.where(inside, xy, torch.full_like(xy, -math.inf)).amax(dim=1)], dim=1)


def person_scales(poses: Tensor, min_scale: float = 1.0) -> Tensor:
    """Scale of each person: the square root of the area of its joints' tight box.

    With the present joints (score > 0) spanning ``[x_min, x_max] x [y_min, y_max]`` in pixel
    index coordinates, the box covers ``(x_max - x_min + 1) * (y_max - y_min + 1)`` pixels, so
    ``scale_p = sqrt((x_max - x_min + 1) * (y_max - y_min + 1)) >= 1``: degenerate boxes (one
    joint, or collinear joints) are guarded by the one-pixel extent, and every scale is at
    least ``min_scale`` (a fragment of one or two joints has no extent: without a floor, Eq. 17
    gives it only the pixels projecting exactly onto its joints). A person without joints gets
    scale ``max(1, min_scale)``.

    Args:
        poses: ``[P, K, 3]`` rows ``(x, y, score)``.

    Returns:
        ``[P]`` scales in input pixels.
    """
    present = poses[..., 2] > 0  # [P, K]
    box = joint_boxes(poses[..., :2], present)
    extent = torch.where(present.any(dim=1, keepdim=True), box[:, 2:] - box[:, :2], torch.zeros_like(box[:, :2]))
    return torch.sqrt((extent[:, 0] + 1) * (extent[:, 1] + 1)).clamp_min(min_scale)


def assign_pixels(
    person_mask: Tensor,
    dspf: Tensor,
    poses: Tensor,
    person_scores: Tensor,
    stride: int,
    tile: int = 16,
    budget: int = 1 << 22,
    min_scale: float = 1.0,
) -> Tensor:
    """Assign every person pixel to a person instance (Eq. 17).

    For a person pixel at ``q`` (input pixels, see the grid convention) with DSPF vector
    ``d = dspf[:, i, j]``, person ``p`` with score ``S_p`` and scale ``scale_p``
    (:func:`person_scales`, at least ``min_scale``) and its present joints ``j`` (score ``s_j > 0``, position
    ``x_j``):

        cost_p(q) = min_{j in J_p} ||q + d - x_j||_2 / (s_j * S_p * scale_p),
        instance(q) = 1 + argmin_p cost_p(q).

    People without present joints or with ``S_p <= 0`` have infinite cost; a pixel whose costs
    are all infinite (e.g. ``P = 0``), and every non-person pixel, gets 0 (background).
    Exact ties go to the lower person index.

    Exact, with cost bounded independently of the number of people: the pixels are cut into
    ``tile x tile`` tiles; for each tile, the box holding its pixels' projected points
    ``q + d`` gives every joint a lower bound (nearest box point) and an upper bound (farthest
    box corner) of its cost over the tile, and only the joints whose lower bound does not exceed
    the smallest upper bound are evaluated for the tile's pixels (the projections of a tile
    gather at a few joints, so a few joints per tile). The ``[pixels, candidate joints]``
    costs are computed in chunks of at most ``budget`` entries.

    Args:
        person_mask: ``[h, w]`` bool, person pixels (foreground of the part parsing).
        dspf: ``[2, h, w]`` DSPF ``(dx, dy)`` in input pixels.
        poses: ``[P, K, 3]`` rows ``(x, y, score)``, score 0 for a missing joint.
        person_scores: ``[P]`` person scores ``S_p``.
        stride: output stride ``s`` of the grid.
        tile: tile side in grid cells.
        budget: most cost entries computed at once.
        min_scale: floor of the person scales (:func:`person_scales`), px.

    Returns:
        ``[h, w]`` long instance map: 0 background, ``1..P`` the index into ``poses`` plus 1.
    """
    if person_mask.dim() != 2 or tuple(dspf.shape) != (2, *person_mask.shape):
        raise ValueError(
            f"person_mask must be [h, w] and dspf [2, h, w], got {tuple(person_mask.shape)} "
            f"and {tuple(dspf.shape)}"
        )
    if poses.dim() != 3 or poses.shape[-1] != 3 or tuple(person_scores.shape) != poses.shape[:1]:
        raise ValueError(
            f"poses must be [P, K, 3] and person_scores [P], got {tuple(poses.shape)} and "
            f"{tuple(person_scores.shape)}"
        )
    h, w = person_mask.shape
    device, dtype = dspf.device, dspf.dtype
    instance = torch.zeros(h * w, dtype=torch.long, device=device)
    pixels = person_mask.reshape(-1).nonzero().squeeze(1)  # [Npix]
    ys = torch.arange(h, device=device, dtype=dtype) * stride + stride // 2
    xs = torch.arange(w, device=device, dtype=dtype) * stride + stride // 2
    rows, cols = pixels // w, pixels % w
    targets = torch.stack([xs[cols] + dspf[0].reshape(-1)[pixels], ys[rows] + dspf[1].reshape(-1)[pixels]], dim=1)
    tiles, num_tiles = square_tiles(rows, cols, (h, w), tile)
    instance[pixels] = assign_projections(targets, tiles, num_tiles, poses, person_scores, budget,
                                          min_scale)
    return instance.view(h, w)


def square_tiles(rows: Tensor, cols: Tensor, size: Tuple[int, int], tile: int) -> Tuple[Tensor, int]:
    """The ``tile x tile`` square (row-major index) holding each pixel ``(rows, cols)`` ``[N]`` of an
    ``(h, w)`` image, and the number of squares: the tiling :func:`assign_projections` prunes by."""
    tiles_x = -(-size[1] // tile)
    return (rows // tile) * tiles_x + cols // tile, -(-size[0] // tile) * tiles_x


def assign_projections(
    targets: Tensor,
    tiles: Tensor,
    num_tiles: int,
    poses: Tensor,
    person_scores: Tensor,
    budget: int = 1 << 22,
    min_scale: float = 1.0,
    return_joints: bool = False,
):
    """Eq. 17 for a list of person pixels given by their projected points: the engine of
    :func:`assign_pixels`, for callers that have the points already (``decode_maps`` samples
    the DSPF at the person pixels of the output image only).

    Args:
        targets: ``[N, 2]`` projected points ``q + d`` of the pixels (the frame of ``poses``).
        tiles: ``[N]`` long tile index (``< num_tiles``) of every pixel: pixels of one tile are
            close together (e.g. ``tile x tile`` squares), which makes the pruning effective;
            any grouping gives the same exact result.
        num_tiles: number of tiles.
        poses, person_scores, budget, min_scale: as in :func:`assign_pixels`.
        return_joints: also return the joint types.

    Returns:
        ``[N]`` long: ``1 + `` the index of each pixel's person, 0 where every cost is infinite;
        with ``return_joints`` also ``[N]`` long: the type of the joint whose cost is the
        pixel's minimum (0 where the person is 0).
    """
    device, dtype = targets.device, targets.dtype
    num_people, num_types = poses.shape[:2]
    owner = torch.zeros(targets.shape[0], dtype=torch.long, device=device)
    joint = torch.zeros_like(owner)

    def result():
        return (owner, joint) if return_joints else owner

    if num_people == 0 or num_types == 0 or targets.shape[0] == 0:
        return result()
    px, py = targets[:, 0], targets[:, 1]
    inf = torch.tensor(math.inf, device=device, dtype=dtype)
    box = torch.stack([
        inf.expand(num_tiles).scatter_reduce(0, tiles, px, "amin"),
        inf.expand(num_tiles).scatter_reduce(0, tiles, py, "amin"),
        (-inf).expand(num_tiles).scatter_reduce(0, tiles, px, "amax"),
        (-inf).expand(num_tiles).scatter_reduce(0, tiles, py, "amax"),
    ], dim=1)  # [T, 4] (x0, y0, x1, y1); empty tiles hold (inf, inf, -inf, -inf)
    used = torch.isfinite(box[:, 0])

    # Squared costs (same argmin): ||t - x_j||^2 * inv_weight_j^2, infinite for unusable joints.
    weight = (poses[..., 2] * (person_scores * person_scales(poses, min_scale))[:, None]).to(dtype)
    usable = ((poses[..., 2] > 0) & (person_scores > 0)[:, None]).reshape(-1)  # [P*K]
    inv_weight2 = torch.where(usable, weight.reshape(-1).clamp_min(1e-12) ** -2, torch.zeros((), dtype=dtype))
    jx, jy = poses[..., 0].reshape(-1).to(dtype), poses[..., 1].reshape(-1).to(dtype)  # [P*K]
    if not bool(usable.any()):
        return result()
    # Bounds of the costs over each used tile's box [x0, x1] x [y0, y1], first per person (its
    # usable joints' box and smallest weight: near^2 and far^2 box-to-box distances times it),
    # then per joint of the persons left. A pixel's best joint survives both: its cost is at
    # most every upper bound.
    tile_ids = used.nonzero().squeeze(1)  # [T']
    tile_box = box[tile_ids]  # [T', 4]
    xy = torch.stack([jx, jy], dim=1).view(num_people, num_types, 2)
    person_box = joint_boxes(xy, usable.view(num_people, num_types))
    least = torch.where(usable, inv_weight2, inf).view(num_people, num_types).amin(dim=1)  # [P], inf: no joint
    near, far = _box_distances2(tile_box[:, None], person_box[None])  # [T', P]
    alive = torch.isfinite(least)
    lower = torch.where(alive, near * least, inf)
    upper = torch.where(alive, far * least, inf)
    tile_of, person_of = (lower <= upper.amin(dim=1, keepdim=True)).nonzero(as_tuple=True)  # [E], tile-major
    joints = person_of[:, None] * num_types + torch.arange(num_types, device=device)  # [E, K] flat joints

    def at_joints(values: Tensor) -> Tensor:  # values [P*K, ...] of the joints [E, K]: 1-D gathers
        return values.index_select(0, joints.reshape(-1)).view(*joints.shape, *values.shape[1:])

    near, far = _box_distances2(tile_box.index_select(0, tile_of)[:, None], at_joints(torch.stack([jx, jy, jx, jy], dim=1)))
    usable_at, weight_at = at_joints(usable), at_joints(inv_weight2)
    lower = torch.where(usable_at, near * weight_at, inf)  # [E, K]
    upper = torch.where(usable_at, far * weight_at, inf)
    best = torch.full((tile_ids.numel(),), math.inf, dtype=dtype, device=device)
    best = best.scatter_reduce(0, tile_of, upper.amin(dim=1), "amin")
    pair, member = (lower <= best[tile_of][:, None]).nonzero(as_tuple=True)  # joints ascending per tile
    row, flat_joint = tile_of[pair], joints[pair, member]
    if row.numel() == 0:
        return result()
    counts = torch.bincount(row, minlength=tile_ids.numel())
    num_cand = int(counts.max())
    slot = torch.arange(row.numel(), device=device) - (counts.cumsum(0) - counts)[row]
    cand = torch.full((num_tiles, num_cand), -1, dtype=torch.long, device=device)  # [T, C] flat joints
    cand[tile_ids[row], slot] = flat_joint
    cand_ok = cand >= 0
    cand = cand.clamp_min(0)
    far_away = torch.full((), math.inf, dtype=dtype, device=device)  # padded slots cost inf
    flat_cand = cand.view(-1)
    cand_x = torch.where(cand_ok, jx.index_select(0, flat_cand).view_as(cand), far_away)
    cand_y = torch.where(cand_ok, jy.index_select(0, flat_cand).view_as(cand), far_away)
    cand_w = torch.where(cand_ok, inv_weight2.index_select(0, flat_cand).view_as(cand),
                         torch.ones((), dtype=dtype, device=device))

    chunk = max(1, budget // num_cand)
    for start in range(0, targets.shape[0], chunk):
        sl = slice(start, start + chunk)
        tile = tiles[sl]
        # index_select: CPU advanced indexing is several times slower for these row gathers.
        cost = ((px[sl, None] - cand_x.index_select(0, tile)) ** 2
                + (py[sl, None] - cand_y.index_select(0, tile)) ** 2) * cand_w.index_select(0, tile)  # [c, C]
        best, which = cost.min(dim=1)  # ties: the first, i.e. the lower person
        flat = cand.view(-1).index_select(0, tile * num_cand + which)
        found = torch.isfinite(best)
        owner[sl] = torch.where(found, flat // num_types + 1, torch.zeros_like(flat))
        joint[sl] = torch.where(found, flat % num_types, torch.zeros_like(flat))
    return result()


def _box_distances2(boxes: Tensor, others: Tensor) -> Tuple[Tensor, Tensor]:
    """Squared smallest and largest distances between the points of axis-aligned boxes
    ``(x0, y0, x1, y1)`` (broadcastable ``[..., 4]``; a point is a box with ``x0 = x1``)."""
    dx = (boxes[..., 0] - others[..., 2]).clamp_min(0) + (others[..., 0] - boxes[..., 2]).clamp_min(0)
    dy = (boxes[..., 1] - others[..., 3]).clamp_min(0) + (others[..., 1] - boxes[..., 3]).clamp_min(0)
    wide = torch.maximum(boxes[..., 2] - others[..., 0], others[..., 2] - boxes[..., 0])
    tall = torch.maximum(boxes[..., 3] - others[..., 1], others[..., 3] - boxes[..., 1])
    return dx ** 2 + dy ** 2, wide ** 2 + tall ** 2
