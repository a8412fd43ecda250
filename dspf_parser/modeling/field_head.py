"""Multi-step Dense-to-Sparse Projection Field estimation (paper Sec. 3.2, Table 4)."""
from typing import Dict, List

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from fvcore.nn import weight_init
from torch import nn

from ..ops.warping import flow_warp
from .registry import FIELD_HEAD_REGISTRY

__all__ = ["ProjectionFieldHead", "build_field_head", "FIELD_MODES"]

FIELD_MODES = ("direct", "coarse_to_fine", "residual", "residual_warp")


def _conv(in_ch: int, out_ch: int, norm: str) -> Conv2d:
    conv = Conv2d(in_ch, out_ch, 3, padding=1, bias=not norm, norm=get_norm(norm, out_ch), activation=F.relu)
    weight_init.c2_msra_fill(conv)
    return conv


def _field_predictor(in_ch: int) -> Conv2d:
    conv = Conv2d(in_ch, 2, 3, padding=1)
    nn.init.normal_(conv.weight, 0, 0.001)
    nn.init.constant_(conv.bias, 0)
    return conv


@FIELD_HEAD_REGISTRY.register()
class ProjectionFieldHead(nn.Module):
    """Predicts the DSPF: for every person pixel, the offset to the nearest joint of its person.

    Levels are processed coarse to fine. At level ``l`` the field is expressed in that level's
    pixel units, so moving to a level twice as fine upsamples it and multiplies it by 2. Modes
    (``cfg.MODEL.DSPF.FIELD_HEAD.MODE``), the rows of the paper's Table 4:

    * ``direct``: all levels are projected, upsampled to the finest one, summed, and the field
      is regressed there in one step.
    * ``coarse_to_fine``: ``f_L = P_L(h_L)`` at the coarsest level, then per finer level
      ``h_l = B_l([x_l, up(h_{l+1})])`` and a complete field ``f_l = P_l([h_l, 2 up(f_{l+1})])``.
    * ``residual``: ``f_l = 2 up(f_{l+1}) + P_l([h_l, 2 up(f_{l+1})])``.
    * ``residual_warp``: as ``residual``, but ``up`` is learnable warping: a feature flow
      ``w_l = W_l([bilinear_up(h_{l+1}), x_l])`` (pixels of level ``l``) is predicted and both
      ``h_{l+1}`` and ``f_{l+1}`` are bilinearly sampled at the flowed positions
      (:func:`dspf_parser.ops.warping.flow_warp`). ``W_l`` is zero-initialised, so training
      starts from plain bilinear upsampling.

    ``x_l`` is a 1x1 projection of pyramid level ``l`` to ``conv_dims`` channels. Every
    regressor ``P_l`` outputs its value in finest-level pixels, scaled by ``s_min / s_l`` into
    level ``l``'s units, so that a unit step of any regressor moves the final field by the same
    amount: without it the coarsest regressor's gradient is amplified by ``s_L / s_min`` through
    the chain of x2 scalings and early training oscillates.

    ``forward`` returns the field ``[N, 2, H / s, W / s]`` at the finest level, in INPUT pixel
    units (``s`` = finest stride).
    """

    @configurable
    def __init__(self, input_shape: Dict[str, ShapeSpec], *, in_features, conv_dims: int, norm: str, mode: str):
        super().__init__()
        if mode not in FIELD_MODES:
            raise ValueError(f"MODEL.DSPF.FIELD_HEAD.MODE must be one of {FIELD_MODES}, got {mode!r}")
        missing = [f for f in in_features if f not in input_shape]
        if missing:
            raise ValueError(f"features {missing} not produced by the backbone: {sorted(input_shape)}")
        self.mode = mode
        self.in_features: List[str] = sorted(in_features, key=lambda f: -input_shape[f].stride)
        strides = [input_shape[f].stride for f in self.in_features]
        if mode != "direct" and any(a != 2 * b for a, b in zip(strides, strides[1:])):
            raise ValueError(f"coarse-to-fine DSPF needs levels with stride ratio 2, got strides {strides}")
        self.output_stride = strides[-1]
        # Unit conversion from finest-level pixels to each level's pixels (coarse to fine).
        self.unit_scales = [self.output_stride / s for s in strides]
        self.project = nn.ModuleList()
        for f in self.in_features:
            proj = Conv2d(input_shape[f].channels, conv_dims, 1, bias=not norm,
                          norm=get_norm(norm, conv_dims), activation=F.relu)
            weight_init.c2_xavier_fill(proj)
            self.project.append(proj)
        if mode == "direct":
            self.refine = nn.ModuleList([_conv(conv_dims, conv_dims, norm)])
            self.predict = nn.ModuleList([_field_predictor(conv_dims)])
            return
        n = len(self.in_features)
        # Level 0 (coarsest) refines x_L alone; finer levels fuse [x_l, up(h_{l+1})].
        self.refine = nn.ModuleList(
            [_conv(conv_dims, conv_dims, norm)] + [_conv(2 * conv_dims, conv_dims, norm) for _ in range(n - 1)]
        )
        self.predict = nn.ModuleList(
            [_field_predictor(conv_dims)] + [_field_predictor(conv_dims + 2) for _ in range(n - 1)]
        )
        if mode == "residual_warp":
            self.flow = nn.ModuleList()
            for _ in range(n - 1):
                flow = Conv2d(2 * conv_dims, 2, 3, padding=1)
                nn.init.constant_(flow.weight, 0)
                nn.init.constant_(flow.bias, 0)
                self.flow.append(flow)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        head = cfg.MODEL.DSPF.FIELD_HEAD
        return {
            "input_shape": input_shape,
            "in_features": head.IN_FEATURES,
            "conv_dims": head.CONVS_DIM,
            "norm": cfg.MODEL.DSPF.NORM,
            "mode": head.MODE,
        }

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        xs = [proj(features[f]) for proj, f in zip(self.project, self.in_features)]
        if self.mode == "direct":
            size = xs[-1].shape[-2:]
            fused = sum(F.interpolate(x, size=size, mode="bilinear", align_corners=False) for x in xs[:-1]) + xs[-1]
            return self.predict[0](self.refine[0](fused)) * self.output_stride
        h = self.refine[0](xs[0])
        field = self.predict[0](h) * self.unit_scales[0]
        for level in range(1, len(xs)):
            x = xs[level]
            size = x.shape[-2:]
            h_up = F.interpolate(h, size=size, mode="bilinear", align_corners=False)
            if self.mode == "residual_warp":
                feature_flow = self.flow[level - 1](torch.cat([h_up, x], dim=1))
                h_up = flow_warp(h, feature_flow)
                field_up = 2.0 * flow_warp(field, feature_flow)
            else:
                field_up = 2.0 * F.interpolate(field, size=size, mode="bilinear", align_corners=False)
            h = self.refine[level](torch.cat([x, h_up], dim=1))
            step = self.predict[level](torch.cat([h, field_up], dim=1)) * self.unit_scales[level]
            field = step if self.mode == "coarse_to_fine" else field_up + step
        return field * self.output_stride

    def losses(self, field: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> Dict[str, torch.Tensor]:
        """L1 loss on person pixels.

        Args:
            field, target: ``[N, 2, h, w]`` in input pixels. weight: ``[N, h, w]``, 1 on person
            pixels with a usable joint. The loss is measured in output-grid pixels (divided by
            the stride) and averaged over weighted pixels.
        """
        l1 = (field - target).abs().sum(dim=1) * weight / self.output_stride
        return {"loss_dspf": l1.sum() / weight.sum().clamp(min=1.0)}


def build_field_head(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build the DSPF head named by ``cfg.MODEL.DSPF.FIELD_HEAD.NAME``."""
    return FIELD_HEAD_REGISTRY.get(cfg.MODEL.DSPF.FIELD_HEAD.NAME)(cfg, input_shape)
