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
    chunk_size: int = 16384,
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

    The ``[C, P, K]`` cost tensor (squared, which has the same argmin) is computed for chunks
    of ``C <= chunk_size`` person pixels to bound memory.

    Args:
        person_mask: ``[h, w]`` bool, person pixels (foreground of the part parsing).
        dspf: ``[2, h, w]`` DSPF ``(dx, dy)`` in input pixels.
        poses: ``[P, K, 3]`` rows ``(x, y, score)``, score 0 for a missing joint.
        person_scores: ``[P]`` person scores ``S_p``.
        stride: output stride ``s`` of the grid.
        chunk_size: person pixels per chunk.

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
    instance = torch.zeros(h * w, dtype=torch.long, device=person_mask.device)
    pixels = person_mask.reshape(-1).nonzero().squeeze(1)  # [Npix] flat indices
    if poses.shape[0] == 0 or poses.shape[1] == 0 or pixels.numel() == 0:
        return instance.view(h, w)

    dtype = dspf.dtype
    num_people, num_types = poses.shape[:2]
    joints = poses[..., :2].to(dtype).reshape(-1, 2)  # [P * K, 2]
    weight = (poses[..., 2] * (person_scores * person_scales(poses))[:, None]).to(dtype)
    usable = ((poses[..., 2] > 0) & (person_scores > 0)[:, None]).reshape(-1)  # [P * K]
    # Squared costs: dist^2 / weight^2 (same argmin); unusable joints cost +inf.
    inv_weight2 = torch.where(usable, weight.reshape(-1).clamp_min(1e-12) ** -2, 0.0)
    penalty = torch.where(usable, 0.0, math.inf).to(dtype)
    flow = dspf.reshape(2, -1)
    for chunk in pixels.split(chunk_size):
        rows = torch.div(chunk, w, rounding_mode="floor")
        cols = chunk % w
        target_x = (cols * stride + stride // 2).to(dtype) + flow[0, chunk]  # [C]
        target_y = (rows * stride + stride // 2).to(dtype) + flow[1, chunk]  # [C]
        dist2 = (target_x[:, None] - joints[:, 0]) ** 2 + (target_y[:, None] - joints[:, 1]) ** 2
        cost = (dist2 * inv_weight2 + penalty).view(-1, num_people, num_types)  # [C, P, K]
        best, person = cost.amin(dim=2).min(dim=1)  # [C]
        instance[chunk] = torch.where(torch.isfinite(best), person + 1, torch.zeros_like(person))
    return instance.view(h, w)
