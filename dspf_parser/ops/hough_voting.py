"""Hough voting and keypoint detection (paper section 3.3, "Keypoint Detection", Eq. 8).

Every cell of the per-joint-type confidence map votes its confidence at the position its
offset vector points to; the votes are bilinearly splatted onto the output grid, so the local
maxima of the resulting Hough score map are sharp keypoint hypotheses [PersonLab].

Grid convention: maps live on an output grid of stride ``s``; cell ``[i, j]`` represents the
input position ``x = j * s + s // 2``, ``y = i * s + s // 2``. Offsets are in input pixels,
returned keypoint coordinates ``(x, y)`` are input pixel-index coordinates.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["hough_voting", "detect_keypoints"]


def hough_voting(
    heatmaps: Tensor, offsets: Tensor, stride: int, radius: Optional[float] = None,
    min_vote: Optional[float] = None,
) -> Tensor:
    """Aggregate confidence maps and offset fields into Hough score maps (Eq. 8).

    Cell ``[i, j]`` of joint type ``k`` casts the vote ``heatmaps[n, k, i, j]`` at the grid
    position

        u = j + dx / s,    v = i + dy / s,    (dx, dy) = offsets[n, k, :, i, j],

    which is bilinearly splatted onto the four cells around ``(u, v)``: with
    ``u0 = floor(u)``, ``v0 = floor(v)``, ``a = u - u0``, ``b = v - v0`` the cells
    ``(u0, v0), (u0 + 1, v0), (u0, v0 + 1), (u0 + 1, v0 + 1)`` receive the fractions
    ``(1-a)(1-b), a(1-b), (1-a)b, ab``. A fraction landing on a cell outside the grid is
    dropped (the other fractions of the same vote are kept). So

        hough[n, k, y, x] = Z * sum_{i, j} heatmaps[n, k, i, j] * B(u_ij - x) * B(v_ij - y),

    with ``B(t) = max(0, 1 - |t|)`` and ``Z`` the normalisation below.

    Normalisation: with ``radius=None`` the votes are summed raw (``Z = 1``). With the
    confidence-disk radius ``R`` (input pixels) given, ``Z = 1 / (pi * (R / s) ** 2)``, the
    inverse of the disk area in cells, so that a keypoint whose disk is predicted perfectly
    (confidence 1, exact offsets) scores about 1 (as in PersonLab's ``1 / (pi R^2)``).

    Sparse voting (``min_vote``): only the cells whose confidence exceeds ``min_vote`` vote,
    gathered first (one host sync, their count), so the cost follows the cells near joints
    instead of the whole ``K x h x w`` grid; the kept votes are splatted in the same order with
    the same arithmetic, so ``min_vote = 0`` gives the dense result exactly for non-negative
    confidences (a zero vote adds nothing), and a small ``min_vote`` drops only faint votes.

    Args:
        heatmaps: ``[N, K, h, w]`` per-joint-type confidences (probabilities).
        offsets: ``[N, K, 2, h, w]`` offsets ``(dx, dy)`` in input pixels.
        stride: output stride ``s`` of the grid.
        radius: optional confidence-disk radius ``R`` in input pixels (see Normalisation).
        min_vote: if given, the cells at or below this confidence cast no vote (see Sparse).

    Returns:
        ``[N, K, h, w]`` Hough score maps, differentiable w.r.t. ``heatmaps`` and ``offsets``
        (the splat weights are piecewise linear in the offsets).
    """
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmaps must be [N, K, h, w], got {tuple(heatmaps.shape)}")
    n, k, h, w = heatmaps.shape
    if tuple(offsets.shape) != (n, k, 2, h, w):
        raise ValueError(f"offsets must be {(n, k, 2, h, w)}, got {tuple(offsets.shape)}")

    pw, ph = w + 3, h + 3
    # Flat index of corner (u0, v0), computed in floating point (exact below 2^24 in float32;
    # much faster than int64 arithmetic on CPU).
    exact = torch.float32 if n * k * ph * pw < 2 ** 24 else torch.float64
    cols = torch.arange(w, device=heatmaps.device, dtype=offsets.dtype)
    rows = torch.arange(h, device=heatmaps.device, dtype=offsets.dtype)
    plane = torch.arange(n * k, device=heatmaps.device, dtype=exact).view(n, k, 1, 1) * (ph * pw) + (pw + 1)
    dx, dy = offsets[:, :, 0], offsets[:, :, 1]
    if min_vote is not None:  # the voting cells only, flat
        cell = (heatmaps > min_vote).reshape(-1).nonzero().squeeze(1)
        heatmaps = heatmaps.reshape(-1).index_select(0, cell)
        which, pixel = cell.div(h * w, rounding_mode="floor"), cell.remainder(h * w)  # plane, pixel
        # Its dx and dy sit at (2 p) h w + q and (2 p + 1) h w + q of the offsets (read in place:
        # flattening their strided planes copies them); its column, row and plane from the
        # indices (integers, exact in these dtypes; expanding the grids copies them).
        at_dx = which * (2 * h * w) + pixel
        flat = offsets.reshape(-1)
        dx, dy = flat.index_select(0, at_dx), flat.index_select(0, at_dx + h * w)
        cols = pixel.remainder(w).to(offsets.dtype)
        rows = pixel.div(w, rounding_mode="floor").to(offsets.dtype)
        plane = which.to(exact) * (ph * pw) + (pw + 1)
    else:
        rows = rows[:, None]
    # Positions clamped to [-1, w] x [-1, h]: a vote with no corner inside the grid then lands
    # entirely in a padding of one cell before and two after each axis, cropped at the end (a
    # vote partly outside keeps its inside fractions).
    u = (dx / stride + cols).clamp_(-1, w)
    v = (dy / stride + rows).clamp_(-1, h)
    u0 = torch.floor(u)
    v0 = torch.floor(v)
    a = (u - u0).to(heatmaps.dtype)
    lower = heatmaps * (v - v0).to(heatmaps.dtype)  # the two corners of row v0 + 1
    upper = heatmaps - lower  # row v0
    upper_right, lower_right = a * upper, a * lower
    base = (v0.to(exact) * pw + u0.to(exact) + plane).long().flatten()
    # One index_add per corner (no concatenated copies).
    padded = heatmaps.new_zeros(n * k * ph * pw)
    padded.index_add_(0, base, (upper - upper_right).flatten())
    padded.index_add_(0, base + 1, upper_right.flatten())
    padded.index_add_(0, base + pw, (lower - lower_right).flatten())
    padded.index_add_(0, base + pw + 1, lower_right.flatten())
    hough = padded.view(n, k, ph, pw)[:, :, 1:-2, 1:-2]
    if radius is None:
        return hough.contiguous()
    return hough / (math.pi * (radius / stride) ** 2)


def detect_keypoints(
    hough: Tensor,
    stride: int,
    threshold: float,
    nms_kernel: int = 3,
    max_per_type: int = 30,
    refine: bool = True,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Keypoint candidates as the local maxima of the Hough score maps, scored by vote mass.

    A cell is a peak of type ``k`` if it is positive and equals the maximum of its
    ``nms_kernel x nms_kernel`` neighbourhood (max-pool NMS; equal neighbours on a plateau are
    all kept). Its score is the vote mass of its 3x3 neighbourhood,

        score = sum_{di, dj in {-1, 0, 1}} hough[k, i + di, j + dj],

    which, unlike the peak value, does not depend on where the keypoint falls inside the cell
    (a bilinearly splatted vote always lands within the 3x3 window of its largest share):
    with the normalised voting of :func:`hough_voting` a perfectly predicted keypoint scores
    about 1. Peaks with ``score > threshold`` are kept, per type the ``max_per_type`` best,
    sorted by decreasing score and padded to ``Nmax`` = the largest per-type count (``0`` when
    nothing is detected).

    Location: the peak cell ``[i, j]`` gives ``(x, y) = (j * s + s // 2, i * s + s // 2)``.
    With ``refine=True`` the cell is replaced by the vote centroid of its 3x3 neighbourhood,
    ``(j, i) + sum hough[k, i + di, j + dj] * (dj, di) / score``, before mapping to input
    pixels; since votes are bilinearly splatted, this recovers a sub-cell keypoint exactly
    when all its votes point to the same position and no other keypoint of the type votes
    within the window.

    Args:
        hough: ``[K, h, w]`` Hough score maps of one image.
        stride: output stride ``s`` of the grid.
        threshold: minimal score (strict).
        nms_kernel: odd max-pool window for NMS, in cells.
        max_per_type: maximal number of candidates per joint type.
        refine: sub-cell refinement by the 3x3 vote centroid.

    Returns:
        ``coords`` ``[K, Nmax, 2]`` candidate ``(x, y)`` in input pixels (0 where padded),
        ``scores`` ``[K, Nmax]`` 3x3 vote mass (0 where padded),
        ``valid`` ``[K, Nmax]`` bool, ``True`` for real candidates (a prefix of each row).
    """
    if hough.dim() != 3:
        raise ValueError(f"hough must be [K, h, w], got {tuple(hough.shape)}")
    if nms_kernel % 2 != 1:
        raise ValueError(f"nms_kernel must be odd, got {nms_kernel}")
    k, h, w = hough.shape
    # Sparse: only the positive cells can be peaks, so the NMS and the 3x3 moments are read at
    # them only, from the zero-padded maps (a padded cell is never positive and a zero
    # neighbour never beats a positive cell, so this is max-pool NMS with -inf padding).
    r = max(nms_kernel // 2, 1)
    ph, pw = h + 2 * r, w + 2 * r
    padded = F.pad(hough, (r, r, r, r)).reshape(-1)  # [K * ph * pw]
    cell = (padded > 0).nonzero().squeeze(1)  # flat padded indices, ascending
    value = padded.index_select(0, cell)
    peak = torch.ones_like(cell, dtype=torch.bool)
    half = nms_kernel // 2
    for di in range(-half, half + 1):
        for dj in range(-half, half + 1):
            if di or dj:
                peak &= padded.index_select(0, cell + (di * pw + dj)) <= value
    cell = cell[peak]

    def window_sums(along_rows: bool) -> Tuple[Tensor, Tensor, Tensor]:
        """Sums of the 3 cells of each column (``along_rows``: of each row) of the 3x3 windows
        of ``cell``, for the column (row) offsets -1, 0, 1."""
        def at(d: int, e: int) -> Tensor:
            return padded.index_select(0, cell + ((e * pw + d) if along_rows else (d * pw + e)))
        return tuple((at(-1, e) + at(0, e)) + at(1, e) for e in (-1, 0, 1))

    left, middle, right = window_sums(along_rows=False)  # column sums
    mass = (left + middle) + right  # 3x3 vote mass
    moment_x = right - left  # 3x3 moment along x, kept with the mass for the refinement
    keep = mass > threshold
    cell, mass, moment_x = cell[keep], mass[keep], moment_x[keep]
    # The best max_per_type peaks of each type by decreasing mass (ties: lower flat index
    # first), packed as [K, Nmax].
    kind = torch.div(cell, ph * pw, rounding_mode="floor")
    order = torch.argsort(-mass, stable=True)
    order = order[torch.argsort(kind[order], stable=True)]
    cell, mass, moment_x, kind = cell[order], mass[order], moment_x[order], kind[order]
    counts = torch.bincount(kind, minlength=k)
    rank = torch.arange(cell.numel(), device=hough.device) - (counts.cumsum(0) - counts)[kind]
    keep = rank < max_per_type
    cell, mass, moment_x, kind, rank = cell[keep], mass[keep], moment_x[keep], kind[keep], rank[keep]
    num = min(int(counts.max()), max_per_type) if cell.numel() else 0
    place = kind * num + rank
    scores = hough.new_zeros(k * num).index_copy_(0, place, mass).view(k, num)
    valid = torch.zeros(k * num, dtype=torch.bool, device=hough.device).index_fill_(0, place, True).view(k, num)

    within = cell - kind * (ph * pw)
    cell_x = (within % pw - r).to(hough.dtype)
    cell_y = (torch.div(within, pw, rounding_mode="floor") - r).to(hough.dtype)
    if refine:
        top, _, bottom = window_sums(along_rows=True)
        positive = mass.clamp_min(torch.finfo(hough.dtype).tiny)
        cell_x = cell_x + moment_x / positive
        cell_y = cell_y + (bottom - top) / positive
    coords = hough.new_zeros(k * num, 2)
    coords.index_copy_(0, place, torch.stack([cell_x, cell_y], dim=-1) * stride + stride // 2)
    return coords.view(k, num, 2), scores, valid
