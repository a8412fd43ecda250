"""Instance-aware parsing by projecting person pixels onto people's joints (paper Eq. 17).

Every person pixel (from the category-level parsing) follows its DSPF vector to the point where
its nearest joint should be, and is given to the person whose joints explain that point best.

Grid convention: maps live on an output grid of stride ``s``; cell ``[i, j]`` represents the
input position ``q = (j * s + s // 2, i * s + s // 2)``. DSPF vectors and joint coordinates
are in input pixels.
"""
import math

import torch
from torch import Tensor

__all__ = ["person_scales", "assign_pixels"]


def person_scales(poses: Tensor) -> Tensor:
    """Scale of each person: the square root of the area of its joints' tight box.

    With the present joints (score > 0) spanning ``[x_min, x_max] x [y_min, y_max]`` in pixel
    index coordinates, the box covers ``(x_max - x_min + 1) * (y_max - y_min + 1)`` pixels, so
    ``scale_p = sqrt((x_max - x_min + 1) * (y_max - y_min + 1)) >= 1``: degenerate boxes (one
    joint, or collinear joints) are guarded by the one-pixel extent. A person without joints
    gets scale 1.

    Args:
        poses: ``[P, K, 3]`` rows ``(x, y, score)``.

    Returns:
        ``[P]`` scales in input pixels.
    """
    present = poses[..., 2] > 0  # [P, K]
    xy = poses[..., :2]
    low = torch.where(present[..., None], xy, torch.full_like(xy, math.inf)).amin(dim=1)
    high = torch.where(present[..., None], xy, torch.full_like(xy, -math.inf)).amax(dim=1)
    extent = torch.where(present.any(dim=1, keepdim=True), high - low, torch.zeros_like(low))
    return torch.sqrt((extent[:, 0] + 1) * (extent[:, 1] + 1))


def assign_pixels(
    person_mask: Tensor,
    dspf: Tensor,
    poses: Tensor,
    person_scores: Tensor,
    stride: int,
    tile: int = 16,
    budget: int = 1 << 22,
) -> Tensor:
    """Assign every person pixel to a person instance (Eq. 17).

    For a person pixel at ``q`` (input pixels, see the grid convention) with DSPF vector
    ``d = dspf[:, i, j]``, person ``p`` with score ``S_p`` and scale ``scale_p``
    (:func:`person_scales`) and its present joints ``j`` (score ``s_j > 0``, position
    ``x_j``):

        cost_p(q) = min_{j in J_p} ||q + d - x_j||_2 / (s_j * S_p * scale_p),
        instance(q) = 1 + argmin_p cost_p(q).

    People without present joints or with ``S_p <= 0`` have infinite cost; a pixel whose costs
    are all infinite (e.g. ``P = 0``), and every non-person pixel, gets 0 (background).
    Exact ties go to the lower person index.

    Exact, with cost bounded independently of the number of people: the grid is cut into
    ``tile x tile`` tiles; for each tile, the box holding its pixels' projected points
    ``q + d`` gives every person a lower bound (nearest box point) and an upper bound
    (farthest box corner) of its cost over the tile, and only the people whose lower bound does
    not exceed the smallest upper bound are evaluated for the tile's pixels. The
    ``[pixels, candidates, K]`` costs are computed in chunks of at most ``budget`` entries.

    Args:
        person_mask: ``[h, w]`` bool, person pixels (foreground of the part parsing).
        dspf: ``[2, h, w]`` DSPF ``(dx, dy)`` in input pixels.
        poses: ``[P, K, 3]`` rows ``(x, y, score)``, score 0 for a missing joint.
        person_scores: ``[P]`` person scores ``S_p``.
        stride: output stride ``s`` of the grid.
        tile: tile side in grid cells.
        budget: most cost entries computed at once.

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
    num_people, num_types = poses.shape[:2]
    if num_people == 0 or num_types == 0 or not bool(person_mask.any()):
        return instance.view(h, w)

    # Projected points of every cell, and the tile of every cell.
    ys = torch.arange(h, device=device, dtype=dtype) * stride + stride // 2
    xs = torch.arange(w, device=device, dtype=dtype) * stride + stride // 2
    target = dspf + torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]))  # [2, h, w]
    tiles_y, tiles_x = -(-h // tile), -(-w // tile)
    tile_of = ((torch.arange(h, device=device) // tile)[:, None] * tiles_x
               + (torch.arange(w, device=device) // tile)[None, :]).reshape(-1)
    pixels = person_mask.reshape(-1).nonzero().squeeze(1)  # [Npix]
    px, py = target[0].reshape(-1)[pixels], target[1].reshape(-1)[pixels]
    pixel_tile = tile_of[pixels]
    num_tiles = tiles_y * tiles_x
    inf = torch.tensor(math.inf, device=device, dtype=dtype)
    box = torch.stack([
        inf.expand(num_tiles).scatter_reduce(0, pixel_tile, px, "amin"),
        inf.expand(num_tiles).scatter_reduce(0, pixel_tile, py, "amin"),
        (-inf).expand(num_tiles).scatter_reduce(0, pixel_tile, px, "amax"),
        (-inf).expand(num_tiles).scatter_reduce(0, pixel_tile, py, "amax"),
    ], dim=1)  # [T, 4] (x0, y0, x1, y1); empty tiles hold (inf, inf, -inf, -inf)
    used = torch.isfinite(box[:, 0])
    box = torch.where(used[:, None], box, torch.zeros_like(box))

    joints = poses[..., :2].to(dtype)  # [P, K, 2]
    weight = (poses[..., 2] * (person_scores * person_scales(poses))[:, None]).to(dtype)
    usable = (poses[..., 2] > 0) & (person_scores > 0)[:, None]  # [P, K]
    inv_weight = torch.where(usable, 1.0 / weight.clamp_min(1e-12), torch.zeros_like(weight))
    penalty = torch.where(usable, 0.0, math.inf).to(dtype)  # [P, K]

    # Per tile and person: lower / upper bound of the cost over the tile's box.
    jx, jy = joints[..., 0].reshape(1, -1), joints[..., 1].reshape(1, -1)  # [1, P*K]
    x0, y0, x1, y1 = (box[:, i : i + 1] for i in range(4))  # [T, 1]
    near = torch.hypot((x0 - jx).clamp_min(0) + (jx - x1).clamp_min(0),
                       (y0 - jy).clamp_min(0) + (jy - y1).clamp_min(0))
    far = torch.hypot(torch.maximum(jx - x0, x1 - jx), torch.maximum(jy - y0, y1 - jy))
    scale, pen = inv_weight.reshape(1, -1), penalty.reshape(1, -1)
    lower = (near * scale + pen).view(num_tiles, num_people, num_types).amin(dim=2)  # [T, P]
    upper = (far * scale + pen).view(num_tiles, num_people, num_types).amin(dim=2)
    best_upper = upper.amin(dim=1, keepdim=True)
    candidate = (lower <= best_upper) & torch.isfinite(lower) & used[:, None]  # [T, P]
    num_cand = int(candidate.sum(dim=1).max())
    if num_cand == 0:
        return instance.view(h, w)
    # Candidates of each tile in person order (ties to the lower index), padded with -1.
    key = torch.where(candidate, torch.arange(num_people, device=device).expand(num_tiles, -1), num_people)
    cand = key.sort(dim=1).values[:, :num_cand]  # [T, C]
    cand_ok = cand < num_people
    cand = cand.clamp(max=num_people - 1)

    chunk = max(1, budget // (num_cand * num_types))
    for start in range(0, pixels.numel(), chunk):
        sl = slice(start, start + chunk)
        people = cand[pixel_tile[sl]]  # [c, C]
        jxy = joints[people]  # [c, C, K, 2]
        dist2 = (px[sl, None, None] - jxy[..., 0]) ** 2 + (py[sl, None, None] - jxy[..., 1]) ** 2
        cost = dist2 * inv_weight[people] ** 2 + penalty[people]  # squared costs: same argmin
        cost = torch.where(cand_ok[pixel_tile[sl]], cost.amin(dim=2), inf)  # [c, C]
        best, which = cost.min(dim=1)
        person = people.gather(1, which[:, None])[:, 0]
        instance[pixels[sl]] = torch.where(torch.isfinite(best), person + 1, torch.zeros_like(person))
    return instance.view(h, w)
