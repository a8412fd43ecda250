"""The DSPF parser meta-architecture: backbone + part, projection-field and pose heads."""
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.modeling.backbone import Backbone
from detectron2.structures import ImageList
from detectron2.utils.events import get_event_storage
from torch import nn

from .field_head import build_field_head
from .loss_balancing import build_loss_balancer
from .part_head import build_part_head
from .pose_head import build_pose_head

__all__ = ["DSPFParser", "pad_to"]

# Task losses produced by the heads, in the order of the uncertainty log-variances.
TASK_LOSSES = ("loss_part", "loss_dspf", "loss_keypoint_heatmap", "loss_keypoint_offset", "loss_limb_heatmap")


def pad_to(tensors: Sequence[torch.Tensor], size: Sequence[int], value: float) -> torch.Tensor:
    """Stack tensors ``[..., h_i, w_i]`` into ``[N, ..., H, W]``, padding bottom/right with ``value``."""
    out = tensors[0].new_full((len(tensors),) + tuple(tensors[0].shape[:-2]) + tuple(size), value)
    for i, t in enumerate(tensors):
        out[i, ..., : t.shape[-2], : t.shape[-1]] = t
    return out


@META_ARCH_REGISTRY.register()
class DSPFParser(nn.Module):
    """Bottom-up instance-aware human part parser (one network, three heads).

    Training input (one dict per image, as made by :class:`DSPFDatasetMapper`): ``image``
    ``[3, H, W]`` and the targets ``part_seg`` ``[H, W]``, ``dspf`` ``[2, h, w]``,
    ``dspf_weight`` ``[h, w]``, ``keypoint_heatmaps`` ``[K, h, w]``, ``keypoint_offsets``
    ``[K, 2, h, w]``, ``keypoint_offset_weights`` ``[K, h, w]``, ``limb_heatmaps`` ``[L, h, w]``
    (``h, w`` = ``ceil(H / s), ceil(W / s)`` at the heads' stride ``s``). Returns a loss dict.

    Inference returns, per image, ``sem_seg`` ``[C, height, width]`` (part probabilities) and
    ``dspf`` ``[2, height, width]`` (offsets in output-image pixels), at the requested output
    size (``height``/``width`` of the input dict, else the input size).
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        part_head: nn.Module,
        field_head: nn.Module,
        pose_head: nn.Module,
        loss_balancer: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        ignore_value: int = 255,
    ):
        super().__init__()
        self.backbone = backbone
        self.part_head = part_head
        self.field_head = field_head
        self.pose_head = pose_head
        self.loss_balancer = loss_balancer
        self.ignore_value = ignore_value
        strides = {part_head.output_stride, field_head.output_stride, pose_head.output_stride}
        if len(strides) != 1:
            raise ValueError(f"the heads must share one output stride, got {sorted(strides)}")
        self.output_stride = strides.pop()
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        shape = backbone.output_shape()
        part_head = build_part_head(cfg, shape)
        if part_head.output_stride != cfg.MODEL.DSPF.COMMON_STRIDE:
            raise ValueError(
                f"MODEL.DSPF.COMMON_STRIDE={cfg.MODEL.DSPF.COMMON_STRIDE} but the heads' finest "
                f"input feature has stride {part_head.output_stride}"
            )
        return {
            "backbone": backbone,
            "part_head": part_head,
            "field_head": build_field_head(cfg, shape),
            "pose_head": build_pose_head(cfg, shape),
            "loss_balancer": build_loss_balancer(cfg.MODEL.DSPF.LOSS_BALANCING, TASK_LOSSES),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "ignore_value": cfg.MODEL.DSPF.PART_HEAD.IGNORE_VALUE,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        return ImageList.from_tensors(images, self.backbone.size_divisibility)

    def forward(self, batched_inputs: List[Dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        part_logits = self.part_head(features)
        field = self.field_head(features)
        pose_maps = self.pose_head(features)
        if self.training:
            return self.losses(batched_inputs, images, part_logits, field, pose_maps)
        return self.postprocess(batched_inputs, images, part_logits, field)

    def _targets(self, batched_inputs: List[Dict], key: str, size, value: float) -> torch.Tensor:
        return pad_to([x[key].to(self.device) for x in batched_inputs], size, value)

    def losses(self, batched_inputs, images: ImageList, part_logits, field, pose_maps) -> Dict[str, torch.Tensor]:
        grid = part_logits.shape[-2:]
        t = lambda key, value=0.0, size=grid: self._targets(batched_inputs, key, size, value)  # noqa: E731
        losses = {}
        losses.update(self.part_head.losses(part_logits, t("part_seg", self.ignore_value, images.tensor.shape[-2:])))
        losses.update(self.field_head.losses(field, t("dspf"), t("dspf_weight")))
        losses.update(
            self.pose_head.losses(
                pose_maps, t("keypoint_heatmaps"), t("keypoint_offsets"),
                t("keypoint_offset_weights"), t("limb_heatmaps"),
            )
        )
        storage = get_event_storage()
        storage.put_scalars(**{"unweighted_" + k[len("loss_"):]: v.item() for k, v in losses.items()})
        return self.loss_balancer(losses)

    def postprocess(self, batched_inputs, images: ImageList, part_logits, field) -> List[Dict]:
        stride = self.output_stride
        results = []
        for i, (x, (h, w)) in enumerate(zip(batched_inputs, images.image_sizes)):
            out_h, out_w = x.get("height", h), x.get("width", w)
            gh, gw = -(-h // stride), -(-w // stride)
            logits = part_logits[i : i + 1, :, :gh, :gw]
            probs = F.interpolate(logits, size=(out_h, out_w), mode="bilinear", align_corners=False).softmax(1)
            f = F.interpolate(field[i : i + 1, :, :gh, :gw], size=(out_h, out_w), mode="bilinear", align_corners=False)
            f = f * torch.tensor([out_w / w, out_h / h], device=f.device).view(1, 2, 1, 1)
            results.append({"sem_seg": probs[0], "dspf": f[0]})
        return results
