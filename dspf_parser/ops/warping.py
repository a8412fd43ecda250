"""Learnable feature warping (paper section 3.2, Eqs. 4-6).

A coarse map (pyramid level ``l + 1``) is upsampled to the fine grid (level ``l``) by bilinear
sampling at positions displaced by a predicted feature flow, instead of plain bilinear
upsampling. The same operator warps features (Eq. 5) and DSPF predictions.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["flow_warp"]


def flow_warp(x: Tensor, flow: Tensor, out_size: Optional[Tuple[int, int]] = None) -> Tensor:
    """Bilinearly sample a coarse map on a fine grid displaced by a flow (Eq. 6).

    Fine pixel ``(j, i)`` (column, row) of an ``H x W`` grid is moved to
    ``(j + dx, i + dy)`` with ``(dx, dy) = flow[:, :, i, j]`` in fine-grid pixel units, then
    mapped to ``x``'s ``h x w`` grid with the ``align_corners=False`` convention

        u = (j + dx + 0.5) * w / W - 0.5,    v = (i + dy + 0.5) * h / H - 0.5,

    and ``y[:, :, i, j]`` is the bilinear interpolation of ``x`` at ``(u, v)`` from its four
    pixel neighbours. Samples outside the map use border padding: ``u`` and ``v`` are clamped to
    ``[0, w - 1]`` and ``[0, h - 1]`` (the gradient w.r.t. the flow is zero where clamped).
    With a zero flow this equals
    ``F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)``.

    Args:
        x: ``[N, C, h, w]`` coarse map.
        flow: ``[N, 2, H, W]`` flow ``(dx, dy)`` on the fine grid, fine-grid pixel units.
        out_size: optional expected fine size ``(H, W)``; checked against ``flow``.

    Returns:
        ``[N, C, H, W]`` warped map, differentiable w.r.t. ``x`` and ``flow``.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be [N, C, h, w], got {tuple(x.shape)}")
    if flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[0] != x.shape[0]:
        raise ValueError(f"flow must be [N, 2, H, W] with N={x.shape[0]}, got {tuple(flow.shape)}")
    height, width = flow.shape[-2:]
    if out_size is not None and tuple(out_size) != (height, width):
        raise ValueError(f"out_size {tuple(out_size)} does not match flow size {(height, width)}")

    # grid_sample (align_corners=False) maps a normalised coordinate g to the pixel
    # ((g + 1) * w - 1) / 2 of x; solving for u above gives g = (2 * (j + dx) + 1) / W - 1,
    # independent of the coarse size.
    cols = torch.arange(width, device=flow.device, dtype=flow.dtype)
    rows = torch.arange(height, device=flow.device, dtype=flow.dtype)
    grid_x = (2.0 * (cols[None, None, :] + flow[:, 0]) + 1.0) / width - 1.0  # [N, H, W]
    grid_y = (2.0 * (rows[None, :, None] + flow[:, 1]) + 1.0) / height - 1.0  # [N, H, W]
    grid = torch.stack([grid_x, grid_y], dim=-1).to(x.dtype)  # [N, H, W, 2]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
