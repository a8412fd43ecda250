"""Category-level part segmentation head (paper Sec. 3.1)."""
from typing import Dict

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, DepthwiseSeparableConv2d, ShapeSpec
from torch import nn

from ..data.categories import get_schema
from .decoder import PyramidDecoder
from .registry import PART_HEAD_REGISTRY

__all__ = ["PartSegmentationHead", "build_part_head"]


@PART_HEAD_REGISTRY.register()
class PartSegmentationHead(nn.Module):
    """DeepLabv3+-style decoder over the FPN predicting part-class logits.

    ``forward`` returns logits ``[N, C, H / s, W / s]`` (``C`` part classes with background,
    ``s`` = the finest input stride), optionally through one 5x5 depthwise-separable head
    convolution of ``head_channels`` between the decoder and the predictor (Panoptic-DeepLab's
    semantic head); ``losses`` upsamples them to the padded image size and
    applies cross-entropy against ``[N, H, W]`` targets (``ignore_value`` ignored), averaged
    over the hardest ``loss_top_k`` share of the labelled pixels of the batch (1: all of them;
    Panoptic-DeepLab's semantic loss uses 0.2).
    """

    @configurable
    def __init__(
        self,
        input_shape: Dict[str, ShapeSpec],
        *,
        in_features,
        conv_dims: int,
        num_classes: int,
        norm: str,
        aspp_dilations,
        head_channels: int = 0,
        ignore_value: int = 255,
        loss_top_k: float = 1.0,
    ):
        super().__init__()
        if head_channels < 0:
            raise ValueError(f"MODEL.DSPF.PART_HEAD.HEAD_CHANNELS must be >= 0, got {head_channels}")
        self.decoder = PyramidDecoder(input_shape, in_features, conv_dims, norm, aspp_dilations)
        self.head = (
            DepthwiseSeparableConv2d(conv_dims, head_channels, kernel_size=5, padding=2, norm1=norm,
                                     activation1=F.relu, norm2=norm, activation2=F.relu)
            if head_channels else nn.Identity()
        )
        self.predictor = Conv2d(head_channels or conv_dims, num_classes, kernel_size=1)
        nn.init.normal_(self.predictor.weight, 0, 0.001)
        nn.init.constant_(self.predictor.bias, 0)
        self.ignore_value = ignore_value
        if not 0.0 < loss_top_k <= 1.0:
            raise ValueError(f"MODEL.DSPF.PART_HEAD.LOSS_TOP_K must be in (0, 1], got {loss_top_k}")
        self.loss_top_k = loss_top_k
        self.output_stride = self.decoder.output_stride

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        head = cfg.MODEL.DSPF.PART_HEAD
        return {
            "input_shape": input_shape,
            "in_features": head.IN_FEATURES,
            "conv_dims": head.CONVS_DIM,
            "num_classes": get_schema(cfg.MODEL.DSPF.SCHEMA).num_parts,
            "norm": cfg.MODEL.DSPF.NORM,
            "aspp_dilations": head.ASPP_DILATIONS,
            "head_channels": head.HEAD_CHANNELS,
            "ignore_value": head.IGNORE_VALUE,
            "loss_top_k": head.LOSS_TOP_K,
        }

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        return self.predictor(self.head(self.decoder(features)))

    def losses(self, logits: torch.Tensor, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Cross-entropy of ``logits`` ``[N, C, h, w]`` upsampled to ``targets`` ``[N, H, W]``,
        the mean over the hardest ``loss_top_k`` share of the labelled pixels."""
        logits = F.interpolate(logits, size=targets.shape[-2:], mode="bilinear", align_corners=False)
        labelled = targets != self.ignore_value
        if not labelled.any():
            return {"loss_part": logits.sum() * 0.0}
        if self.loss_top_k >= 1.0:
            return {"loss_part": F.cross_entropy(logits, targets, ignore_index=self.ignore_value)}
        per_pixel = F.cross_entropy(logits, targets, ignore_index=self.ignore_value, reduction="none")[labelled]
        k = max(1, int(round(self.loss_top_k * per_pixel.numel())))
        return {"loss_part": per_pixel.topk(k, sorted=False).values.mean()}


def build_part_head(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build the part head named by ``cfg.MODEL.DSPF.PART_HEAD.NAME``."""
    return PART_HEAD_REGISTRY.get(cfg.MODEL.DSPF.PART_HEAD.NAME)(cfg, input_shape)
