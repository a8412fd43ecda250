"""Limb scoring (paper section 3.3, "Limb Scoring").

Each limb hypothesis (a candidate of joint type ``a`` paired with a candidate of joint type
``b``) is approximated by the elliptical area between its two endpoints; its score is read off
the predicted limb heatmap (trained towards an unnormalised elliptical Gaussian) at a fixed
pattern of points inside that ellipse.

Grid convention: maps live on an output grid of stride ``s``; cell ``[i, j]`` represents the
input position ``x = j * s + s // 2``, ``y = i * s + s // 2``. Candidate coordinates are
input pixel-index coordinates ``(x, y)``.
"""
import math
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["PRUNE_FRACTION", "PRUNE_SAMPLES", "score_limbs"]

#: :func:`score_limbs`'s pruning reads a pair's limb heatmap at ``PRUNE_SAMPLES`` points evenly
#: spread along its axis and needs ``PRUNE_FRACTION`` of them lit (OpenPose's criterion).
PRUNE_SAMPLES = 10
PRUNE_FRACTION = 0.8
#: The axis points read second, on the pairs lit at their midpoint (indices into the
#: ``PRUNE_SAMPLES``, ``t = (i + 1/2) / 10``): away from the midpoint and from the ends (lit by
#: the ends' own limbs); a pair with more dark points among them than the criterion allows in
#: all is rejected before the other points are read.
PRUNE_FIRST = (1, 6, 8)


def _sample_pattern(
    num_samples: int, num_across: int, device: torch.device, dtype: torch.dtype
) -> Tuple[Tensor, Tensor]:
    """Ellipse-normalised sampling pattern shared by all limb hypotheses.

    Along the segment the fractions are ``t_i = (i + 1/2) / num_samples``; across it the
    fractions are ``c_m = (2 m + 1) / num_across - 1`` (``m < num_across``, e.g. ``0`` for
    one row, ``-2/3, 0, 2/3`` for three), scaled by the ellipse half-width at ``t``:
    ``e(t) = sqrt(1 - (2 t - 1) ** 2)``, so every point lies strictly inside the ellipse.

    Returns:
        ``along`` ``[S]`` fractions ``t`` and ``across`` ``[S]`` values ``c * e(t)``, with
        ``S = num_samples * num_across`` (row-major over ``(i, m)``).
    """
    t = (torch.arange(num_samples, device=device, dtype=dtype) + 0.5) / num_samples
    c = (2 * torch.arange(num_across, device=device, dtype=dtype) + 1) / num_across - 1
    half_width = torch.sqrt(1 - (2 * t - 1) ** 2)
    along = t[:, None].expand(num_samples, num_across).reshape(-1)
    across = (c[None, :] * half_width[:, None]).reshape(-1)
    return along, across


def score_limbs(
    limb_heatmaps: Tensor,
    coords: Tensor,
    valid: Tensor,
    limbs: Sequence[Tuple[int, int]],
    stride: int,
    num_samples: int = 10,
    num_across: int = 3,
    ellipse_width: float = 4.0,
    template_sigma: Optional[float] = None,
    prune_below: Optional[float] = None,
) -> Tuple[Tensor, Tensor]:
    """Score every candidate pair of every limb type from the limb heatmaps, all at once.

    For limb ``l = (a, b)``, candidate ``A = coords[a, n]`` and candidate
    ``B = coords[b, m]``, the ellipse has major axis ``AB`` and semi-minor axis
    ``ellipse_width`` (input pixels). With the unit normal ``nrm = (-(B - A)_y, (B - A)_x) /
    |B - A|`` (``0`` if ``A == B``) and the pattern of :func:`_sample_pattern`,

        P_q = A + t_q (B - A) + ellipse_width * c_q e(t_q) * nrm,
        scores[l, n, m] = mean_q  bilinear(limb_heatmaps[l], P_q),

    where bilinear sampling is on the stride-``s`` grid and is 0 outside the map. Without
    ``template_sigma`` the score is the plain mean ``mean_q H_q`` of the ``S = num_samples *
    num_across`` samples ``H_q``, in the range of the heatmap (e.g. ``[0, 1]``).

    With ``template_sigma`` (the ``sigma`` of :func:`~dspf_parser.ops.targets.limb_targets`) the
    samples are compared with the limb target the pair itself would have drawn, ``T_q``
    (:func:`_limb_template`: 1 at the midpoint, ``exp(-1/2)`` at the endpoints):

        scores[l, n, m] = max(0, 1 - mean_q |H_q - T_q| / mean_q T_q).

    The plain mean favours a short pair lying inside a longer limb's ellipse (e.g. a knee and
    someone else's ankle inside the true shin), whose samples all sit near the bright middle;
    the template score penalises that excess as much as a missing limb. On exact maps of
    ``synthetic_humans_val`` it cuts the true pairs that are not their row's or column's best
    from 42 to 16 of 1436 (crowded split: 454 to 147 of 9534).

    Pairs involving a padded candidate get score 0 and ``pair_valid = False``.

    Pruning (``prune_below``, inference): a pair must read ``>= prune_below`` at its midpoint
    and at :data:`PRUNE_FRACTION` of :data:`PRUNE_SAMPLES` points evenly spread along its axis
    (``t = (i + 1/2) / 10``, OpenPose's criterion); only those pairs get the full ``S``-sample
    score (the same formula, read on one mosaic of the limb maps (:class:`_Atlas`) instead of
    each pair's own map: the same values up to float rounding, about 3e-5); the others score
    0. A cascade reads the pairs: every pair at its midpoint, the pairs lit there at the
    :data:`PRUNE_FIRST` axis points, the survivors at the other axis points. A true limb's
    target reads ``exp(-0.405) = 0.67`` or more along its axis, so the full sampling is paid for
    about the true limbs and their near rivals only, not for all ``N^2`` pairs. (The midpoint
    alone passes a pair of two people whose midpoint falls on a third person's limb of the same
    type, as in a row of people: on a 60-person image it kept about 750 of 3600 pairs per limb,
    the next three samples about 100, the axis test 60.) Each stage's survivors are a flat list
    (no per-limb padding); listing them costs one host synchronisation (its length), three in
    all. ``prune_below = 0`` keeps every valid pair.

    Args:
        limb_heatmaps: ``[L, h, w]`` limb confidence maps, one per limb type.
        coords: ``[K, Nmax, 2]`` candidate ``(x, y)`` in input pixels.
        valid: ``[K, Nmax]`` bool, real candidates.
        limbs: ``L`` pairs ``(a, b)`` of joint-type indices.
        stride: output stride ``s`` of the heatmap grid.
        num_samples: sample rows along the segment.
        num_across: sample columns across the segment.
        ellipse_width: semi-minor axis of the limb ellipse, input pixels.
        template_sigma: if given, the template score above, with this limb sigma (input px).
        prune_below: if given, the midpoint pruning above with this threshold (``None``: the
            dense computation of all ``N^2`` pairs, e.g. for training).

    Returns:
        ``scores`` ``[L, Nmax, Nmax]`` (``[l, n, m]``: candidate ``n`` of type ``limbs[l][0]``
        with candidate ``m`` of type ``limbs[l][1]``), differentiable w.r.t.
        ``limb_heatmaps``, and ``pair_valid`` ``[L, Nmax, Nmax]`` bool.
    """
    if limb_heatmaps.dim() != 3 or limb_heatmaps.shape[0] != len(limbs):
        raise ValueError(
            f"limb_heatmaps must be [L={len(limbs)}, h, w], got {tuple(limb_heatmaps.shape)}"
        )
    if coords.dim() != 3 or coords.shape[-1] != 2 or tuple(valid.shape) != coords.shape[:2]:
        raise ValueError(
            f"coords must be [K, Nmax, 2] and valid [K, Nmax], got {tuple(coords.shape)} "
            f"and {tuple(valid.shape)}"
        )
    num_limbs, h, w = limb_heatmaps.shape
    nmax = coords.shape[1]
    device, dtype = limb_heatmaps.device, limb_heatmaps.dtype
    ends = torch.as_tensor(limbs, dtype=torch.long, device=device).reshape(num_limbs, 2)
    pair_valid = valid[ends[:, 0]][:, :, None] & valid[ends[:, 1]][:, None, :]  # [L, N, N]
    if num_limbs == 0 or nmax == 0:
        return limb_heatmaps.new_zeros(num_limbs, nmax, nmax), pair_valid

    # Everything below is planar, ``[..., P]`` with the pairs last (contiguous, vectorised), in
    # grid-cell units ``u = (x - s // 2) / s``.
    cells = (coords.to(dtype) - stride // 2) / stride  # [K, N, 2]
    start, end = cells[ends[:, 0]], cells[ends[:, 1]]  # [L, N, 2]: first / second joints of each limb
    pattern = _sample_pattern(num_samples, num_across, device, dtype)
    if prune_below is None:
        first = start[:, :, None].expand(-1, -1, nmax, -1).reshape(num_limbs, -1, 2)
        second = end[:, None].expand(-1, nmax, -1, -1).reshape(num_limbs, -1, 2)
        scores = _pair_scores(lambda x, y: _sample(limb_heatmaps, x, y), (h, w), _planar(first), _planar(second),
                              pattern, stride, ellipse_width, template_sigma)
        return scores.reshape(num_limbs, nmax, nmax) * pair_valid, pair_valid

    # Pruned, a cascade: every valid pair (all N^2) is read at its midpoint, the pairs lit there
    # at the PRUNE_FIRST axis points, the pairs with few enough dark points among those at the
    # other axis points; the pairs left get the full score. A midpoint is (a + b) / 2 in
    # grid_sample's normalised coordinates too (an affine map), so the first grid is one
    # broadcast. The survivors of each stage are a flat list (one host sync each, for its
    # length), planar ``[1, 1, E]`` (``limbs, samples, pairs``), read on one atlas of the limb
    # maps (:class:`_Atlas`) at their limb's offset; flat gathers (index_select: CPU advanced
    # indexing is several times slower).
    allowed_dark = PRUNE_SAMPLES - round(PRUNE_FRACTION * PRUNE_SAMPLES)
    norm_start, norm_end = _normalised(start, h, w), _normalised(end, h, w)  # [L, N, 2]
    grid = (norm_start[:, :, None] + norm_end[:, None]) * 0.5  # [L, N, N, 2]
    lit = _sample_normalised(limb_heatmaps, grid.view(num_limbs, 1, nmax * nmax, 2))[:, 0] >= prune_below
    pair = (pair_valid.view(num_limbs, -1) & lit).view(-1).nonzero().squeeze(1)  # [E] flat (l, n, m)
    limb = pair // (nmax * nmax)
    first, second = pair // nmax, limb * nmax + pair % nmax  # rows of start / end ([L * N])
    # Candidates lie within half a cell of the grid's cell range; the full score's samples at
    # most ``ellipse_width`` off the axis.
    atlas = _Atlas(limb_heatmaps, 0.5 + ellipse_width / stride)
    columns = [start[..., 0].reshape(-1).index_select(0, first), start[..., 1].reshape(-1).index_select(0, first),
               end[..., 0].reshape(-1).index_select(0, second), end[..., 1].reshape(-1).index_select(0, second),
               atlas.x.index_select(0, limb), atlas.y.index_select(0, limb), pair,
               torch.zeros_like(pair)]  # ax, ay, bx, by, the limb's atlas offset x / y, pair, dark points
    later = [i for i in range(PRUNE_SAMPLES) if i not in PRUNE_FIRST]
    for group in (PRUNE_FIRST, later):
        probes = (torch.tensor(group, device=device, dtype=dtype)[:, None] + 0.5) / PRUNE_SAMPLES  # [S', 1]
        ax, ay, bx, by, ox, oy = columns[:6]
        values = atlas.sample(ax + probes * (bx - ax), ay + probes * (by - ay), ox, oy)  # [S', E]
        columns[7] = columns[7] + (values < prune_below).sum(dim=0)
        kept = (columns[7] <= allowed_dark).nonzero().squeeze(1)
        columns = [column.index_select(0, kept) for column in columns]
    ax, ay, bx, by, ox, oy, pair = (column.view(1, 1, -1) for column in columns[:7])
    full = _pair_scores(lambda x, y: atlas.sample(x, y, ox, oy), (h, w), (ax, ay), (bx, by), pattern, stride,
                        ellipse_width, template_sigma)  # [1, E]
    scores = limb_heatmaps.new_zeros(num_limbs * nmax * nmax).index_copy(0, pair.view(-1), full.view(-1))
    return scores.view(num_limbs, nmax, nmax), pair_valid


class _Atlas:
    """The limb maps ``[L, h, w]`` laid out on one zero-padded mosaic (about square), so that
    points of different limbs are read by one ``grid_sample`` call without padding every limb
    to the same number of points. A point ``(x, y)`` in grid cells of its limb's map is read at
    ``(x + x_l, y + y_l)``. Every map has ``ceil(margin) + 1`` zero rows and columns on each
    side, so a point within ``margin`` cells of the map's cell range (``-margin <= x <= w - 1 +
    margin``) reads what ``grid_sample``'s zero padding of the map alone gives; a point farther
    out is clamped to that range first, where it reads 0 as well (more than a cell outside the
    map). The mosaic's coordinates (a few hundred cells) round to within about 3e-5 of the
    single map's bilinear values.

    Attributes:
        x, y: ``[L]`` offset of each limb's map on the mosaic (grid cells).
    """

    def __init__(self, limb_heatmaps: Tensor, margin: float):
        num_limbs, h, w = limb_heatmaps.shape
        pad = math.ceil(margin) + 1
        cols = max(1, math.ceil(math.sqrt(num_limbs)))
        rows = max(1, math.ceil(num_limbs / cols))
        pitch_h, pitch_w = h + pad, w + pad
        mosaic = limb_heatmaps.new_zeros(rows * pitch_h + pad, cols * pitch_w + pad)
        tiles = mosaic[pad:, pad:].view(rows, pitch_h, cols, pitch_w)[:, :h, :, :w]  # [rows, h, cols, w]
        for row in range(rows):  # the maps row by row (the rows x cols tiles hold L maps or a few more)
            maps = limb_heatmaps[row * cols:(row + 1) * cols]
            tiles[row, :, :maps.shape[0]].copy_(maps.permute(1, 0, 2))
        index = torch.arange(num_limbs, device=limb_heatmaps.device)
        self.x = ((index % cols) * pitch_w + pad).to(limb_heatmaps.dtype)
        self.y = ((index // cols) * pitch_h + pad).to(limb_heatmaps.dtype)
        self.mosaic = mosaic
        self.reach = (float(pad - 1), float(w - 1 + pad - 1), float(h - 1 + pad - 1))  # margin, x and y limits

    def sample(self, x: Tensor, y: Tensor, offset_x: Tensor, offset_y: Tensor) -> Tensor:
        """Bilinear values (0 outside the map) of each point's own limb map at its grid-cell
        position ``(x, y)`` on that map, the map at ``(offset_x, offset_y)`` on the mosaic (all
        broadcast to one shape, which the result has)."""
        height, width = self.mosaic.shape
        margin, right, bottom = self.reach
        x = x.clamp(-margin, right) + offset_x
        y = y.clamp(-margin, bottom) + offset_y
        grid = x.new_empty(1, 1, x.numel(), 2)
        grid[..., 0] = ((2 * x + 1) / width - 1).reshape(1, 1, -1)
        grid[..., 1] = ((2 * y + 1) / height - 1).reshape(1, 1, -1)
        values = F.grid_sample(self.mosaic[None, None], grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        return values.view(x.shape)


def _planar(points: Tensor) -> Tuple[Tensor, Tensor]:
    """``x`` and ``y`` ``[L, 1, P]`` of the points ``[L, P, 2]``."""
    return points[..., 0][:, None], points[..., 1][:, None]


def _normalised(cells: Tensor, h: int, w: int) -> Tensor:
    """``grid_sample``'s normalised coordinates (``align_corners=False``) of the grid-cell
    positions ``cells`` ``[..., 2]`` (``x``, ``y``) on an ``h x w`` grid."""
    size = cells.new_tensor([w, h])
    return (2 * cells + 1) / size - 1


def _sample(limb_heatmaps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Bilinear values (0 outside the map) of ``limb_heatmaps`` ``[L, h, w]`` at the grid-cell
    positions ``(x, y)`` ``[L, S, P]``, one map per limb: ``[L, S, P]``."""
    num_limbs, h, w = limb_heatmaps.shape
    # Grid cells -> grid_sample's normalised coordinates (:func:`_normalised`), written into
    # its interleaved layout (``torch.stack(..., dim=-1)`` is 4x slower on CPU).
    grid = x.new_empty(*x.shape, 2)
    grid[..., 0] = (2 * x + 1) / w - 1
    grid[..., 1] = (2 * y + 1) / h - 1
    return _sample_normalised(limb_heatmaps, grid)


def _sample_normalised(limb_heatmaps: Tensor, grid: Tensor) -> Tensor:
    """Bilinear values (0 outside the map) of ``limb_heatmaps`` ``[L, h, w]`` at the normalised
    positions ``grid`` ``[L, S, P, 2]`` (:func:`_normalised`), one map per limb: ``[L, S, P]``."""
    samples = F.grid_sample(
        limb_heatmaps.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False,
    )  # [L, 1, S, P]
    return samples[:, 0]


def _pair_scores(
    sample: Callable[[Tensor, Tensor], Tensor], grid_size: Tuple[int, int], start: Tuple[Tensor, Tensor],
    end: Tuple[Tensor, Tensor], pattern: Tuple[Tensor, Tensor], stride: int, ellipse_width: float,
    template_sigma: Optional[float],
) -> Tensor:
    """Scores (see :func:`score_limbs`) of the pairs ``start -> end`` (planar, :func:`_planar`:
    ``x``, ``y`` ``[L, 1, P]`` in grid cells) of every limb: ``[L, P]``. ``sample(x, y)`` reads
    the limb maps (``h x w`` = ``grid_size``) bilinearly at ``[L, S, P]`` grid-cell positions of
    each pair's own limb (:func:`_sample`, or :meth:`_Atlas.sample` at the pairs' offsets)."""
    along, across = pattern[0][:, None], pattern[1][:, None]  # [S, 1]
    (ax, ay), (bx, by) = start, end
    dx, dy = bx - ax, by - ay  # [L, 1, P]
    length = torch.sqrt(dx * dx + dy * dy)
    inv = torch.where(length > 0, 1 / length.clamp_min(1e-12), torch.zeros_like(length))
    ux, uy = dx * inv, dy * inv  # unit axis (0 for A == B); the normal is (-uy, ux)
    side = (ellipse_width / stride) * across  # [S, 1], grid cells
    x = ax + along * dx - side * uy  # [L, S, P]
    y = ay + along * dy + side * ux
    samples = sample(x, y)
    if template_sigma is None:
        return samples.mean(dim=1)
    template = _limb_template(ax, ay, bx, by, ux, uy, length, x, y, stride, grid_size, template_sigma)
    error = (samples - template).abs().mean(dim=1) / template.mean(dim=1).clamp_min(1e-12)
    return (1 - error).clamp_min(0)


def _limb_template(ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor, ux: Tensor, uy: Tensor, length: Tensor,
                   x: Tensor, y: Tensor, stride: int, grid_size: Tuple[int, int], sigma: float) -> Tensor:
    """The limb target of the pair ``a -> b`` (``targets.limb_targets``: ``exp(-0.5 ((d.u)^2 /
    max(len / 2, sigma)^2 + (d.n)^2 / sigma^2))``, ``d`` from the midpoint) *as the heatmap
    represents it*: drawn at the cell centres of the stride-``s`` grid ``grid_size = (h, w)`` and
    read at the points ``(x, y)`` ``[L, S, P]`` by the same bilinear sampling as the heatmap (0
    outside the grid), so that an isolated true limb of an exact heatmap matches its template
    exactly. (The analytic Gaussian read at the samples differs from its bilinear reading by
    about 12% of its mean for ``sigma`` of one cell: as much as a wrong pair's mismatch.)
    Planar, grid-cell units: ``a``, ``b``, the unit axis ``u`` and the ``length`` (cells) are
    ``[L, 1, P]``.

    Returns:
        ``[L, S, P]``.
    """
    h, w = grid_size
    # Along / across coordinates of the bottom-left corner cell relative to the midpoint,
    # divided by the axes' scales (``A``, ``C``); a step of one cell in x or y adds the
    # per-pair constants ``(ax, cx)`` or ``(ay, cy)`` to them. The Gaussian of corner ``(i, j)``
    # (``i``, ``j`` in {0, 1}) is then ``exp(-((A + i ax + j ay)^2 + (C + i cx + j cy)^2) / 2) =
    # G Ex^i Ey^j kx^i ky^j kxy^(i j)``, with ``G = exp(-(A^2 + C^2) / 2)``, ``Ex = exp(-(A ax +
    # C cx))``, ``Ey = exp(-(A ay + C cy))`` per sample and ``kx = exp(-(ax^2 + cx^2) / 2)``, ``ky``
    # and ``kxy = exp(-(ax ay + cx cy))`` per pair: three exponentials per sample instead of four.
    inv_major = 1.0 / (length * (stride / 2)).clamp_min(sigma)  # [L, 1, P], 1 / input px
    step_major, step_minor = inv_major * stride, stride / sigma
    col0, row0 = torch.floor(x), torch.floor(y)
    fx, fy = x - col0, y - row0
    ex, ey = col0 - (ax + bx) / 2, row0 - (ay + by) / 2  # cells
    a0 = (ex * ux + ey * uy) * step_major
    c0 = (ey * ux - ex * uy) * step_minor
    ax_, ay_ = ux * step_major, uy * step_major  # [L, 1, P]
    cx_, cy_ = -uy * step_minor, ux * step_minor
    kx = torch.exp(-0.5 * (ax_ * ax_ + cx_ * cx_))
    ky = torch.exp(-0.5 * (ay_ * ay_ + cy_ * cy_))
    kxy = torch.exp(-(ax_ * ay_ + cx_ * cy_))
    gauss = torch.exp(-0.5 * (a0 * a0 + c0 * c0))
    right = ((fx * ((col0 >= -1) & (col0 <= w - 2))) * kx) * torch.exp(-(a0 * ax_ + c0 * cx_))  # [L, S, P]
    left = (1 - fx) * ((col0 >= 0) & (col0 <= w - 1))
    below = ((fy * ((row0 >= -1) & (row0 <= h - 2))) * ky) * torch.exp(-(a0 * ay_ + c0 * cy_))
    above = (1 - fy) * ((row0 >= 0) & (row0 <= h - 1))
    template = gauss * (above * (left + right) + below * (left + right * kxy))
    return template
