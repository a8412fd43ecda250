"""Bottom-up pose head: keypoint heatmaps, keypoint offsets and limb heatmaps (paper Sec. 3.3)."""
from dataclasses import dataclass
from typing import Dict

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec
from torch import nn

from ..data.categories import get_schema
from .decoder import PyramidDecoder
from .registry import POSE_HEAD_REGISTRY

__all__ = ["PoseHead", "PoseMaps", "build_pose_head"]


@dataclass
class PoseMaps:
    """Raw outputs of a pose head on the output grid (``h = H / s``, ``w = W / s``).

    Attributes:
        heatmap_logits: ``[N, K, h, w]`` keypoint disk logits.
        offsets: ``[N, K, 2, h, w]`` (dx, dy) to the closest joint of each type, input pixels.
        limb_logits: ``[N, L, h, w]`` limb heatmap logits.
    """

    heatmap_logits: torch.Tensor
    offsets: torch.Tensor
    limb_logits: torch.Tensor


@POSE_HEAD_REGISTRY.register()
class PoseHead(nn.Module):
    """A small decoder to a high-resolution pose feature, then 1x1 predictors of the maps.

    Losses: binary cross-entropy on the keypoint and limb heatmaps (limb targets are soft
    Gaussians), L1 on the offsets inside the keypoint disks (measured in output-grid pixels).
    """

    @configurable
    def __init__(
        self,
        input_shape: Dict[str, ShapeSpec],
        *,
        in_features,
        conv_dims: int,
        norm: str,
        num_keypoints: int,
        num_limbs: int,
        heatmap_loss_weight: float = 1.0,
        offset_loss_weight: float = 1.0,
        limb_loss_weight: float = 1.0,
    ):
        super().__init__()
        self.decoder = PyramidDecoder(input_shape, in_features, conv_dims, norm)
        self.output_stride = self.decoder.output_stride
        self.num_keypoints = num_keypoints
        self.heatmap = Conv2d(conv_dims, num_keypoints, 1)
        self.offset = Conv2d(conv_dims, 2 * num_keypoints, 1)
        self.limb = Conv2d(conv_dims, num_limbs, 1)
        for layer in (self.heatmap, self.offset, self.limb):
            nn.init.normal_(layer.weight, 0, 0.001)
            nn.init.constant_(layer.bias, 0)
        # Start from the foreground prior of sparse maps (focal-loss style bias).
        nn.init.constant_(self.heatmap.bias, -4.0)
        nn.init.constant_(self.limb.bias, -4.0)
        self.weights = {
            "loss_keypoint_heatmap": heatmap_loss_weight,
            "loss_keypoint_offset": offset_loss_weight,
            "loss_limb_heatmap": limb_loss_weight,
        }

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        head = cfg.MODEL.DSPF.POSE_HEAD
        schema = get_schema(cfg.MODEL.DSPF.SCHEMA)
        return {
            "input_shape": input_shape,
            "in_features": head.IN_FEATURES,
            "conv_dims": head.CONVS_DIM,
            "norm": cfg.MODEL.DSPF.NORM,
            "num_keypoints": schema.num_keypoints,
            "num_limbs": schema.num_limbs,
            "heatmap_loss_weight": head.HEATMAP_LOSS_WEIGHT,
            "offset_loss_weight": head.OFFSET_LOSS_WEIGHT,
            "limb_loss_weight": head.LIMB_LOSS_WEIGHT,
        }

    def forward(self, features: Dict[str, torch.Tensor]) -> PoseMaps:
        y = self.decoder(features)
        n, _, h, w = y.shape
        offsets = self.offset(y).view(n, self.num_keypoints, 2, h, w) * self.output_stride
        return PoseMaps(self.heatmap(y), offsets, self.limb(y))

    def losses(
        self,
        maps: PoseMaps,
        heatmaps: torch.Tensor,
        offsets: torch.Tensor,
        offset_weights: torch.Tensor,
        limb_heatmaps: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        """Per-task losses (unweighted by the balancer; scaled by the *_LOSS_WEIGHT keys).

        Args:
            heatmaps: ``[N, K, h, w]`` 0/1 disk targets. offsets: ``[N, K, 2, h, w]`` input px.
            offset_weights: ``[N, K, h, w]``. limb_heatmaps: ``[N, L, h, w]`` in [0, 1].
        """
        heat = F.binary_cross_entropy_with_logits(maps.heatmap_logits, heatmaps)
        limb = F.binary_cross_entropy_with_logits(maps.limb_logits, limb_heatmaps)
        l1 = (maps.offsets - offsets).abs().sum(dim=2) * offset_weights / self.output_stride
        offset = l1.sum() / offset_weights.sum().clamp(min=1.0)
        losses = {"loss_keypoint_heatmap": heat, "loss_keypoint_offset": offset, "loss_limb_heatmap": limb}
        return {k: v * self.weights[k] for k, v in losses.items()}


def build_pose_head(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build the pose head named by ``cfg.MODEL.DSPF.POSE_HEAD.NAME``."""
    return POSE_HEAD_REGISTRY.get(cfg.MODEL.DSPF.POSE_HEAD.NAME)(cfg, input_shape)
