"""``BottomUpPoseNet``: backbone + dspf-parser's pose head + its matching layer, nothing else."""
from typing import Dict, List

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import ImageList, Instances
from torch import nn

from dspf_parser.data.categories import get_schema
from dspf_parser.modeling import build_matching_layer, build_pose_head
from dspf_parser.modeling.meta_arch import pad_to
from dspf_parser.ops.decoding import parse_people

__all__ = ["BottomUpPoseNet"]


@META_ARCH_REGISTRY.register()
class BottomUpPoseNet(nn.Module):
    """Multi-person pose only: keypoint/limb maps, Hough voting, LP matching, grouping.

    Training input: dicts from ``dspf_parser.DSPFDatasetMapper`` (it builds the pose targets
    too). Inference output per image: ``instances`` with ``pred_keypoints`` ``[P, K, 3]`` and
    ``scores`` ``[P]`` in input-image pixels.
    """

    @configurable
    def __init__(self, *, backbone, pose_head, matching_layer, limbs, keypoint_radius, pixel_mean, pixel_std):
        super().__init__()
        self.backbone, self.pose_head, self.matching_layer = backbone, pose_head, matching_layer
        self.limbs, self.keypoint_radius = list(limbs), keypoint_radius
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "pose_head": build_pose_head(cfg, backbone.output_shape()),
            "matching_layer": build_matching_layer(cfg),
            "limbs": get_schema(cfg.MODEL.DSPF.SCHEMA).limbs,
            "keypoint_radius": cfg.MODEL.DSPF.POSE_HEAD.KEYPOINT_RADIUS,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    def forward(self, batched_inputs: List[Dict]):
        images = [(x["image"].to(self.pixel_mean.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(images, self.backbone.size_divisibility)
        maps = self.pose_head(self.backbone(images.tensor))
        stride = self.pose_head.output_stride
        if self.training:
            grid = maps.heatmap_logits.shape[-2:]
            t = lambda key: pad_to([x[key].to(self.pixel_mean.device) for x in batched_inputs], grid, 0.0)  # noqa: E731
            return self.pose_head.losses(maps, t("keypoint_heatmaps"), t("keypoint_offsets"),
                                         t("keypoint_offset_weights"), t("limb_heatmaps"))
        results = []
        for i, (h, w) in enumerate(images.image_sizes):
            gh, gw = -(-h // stride), -(-w // stride)
            people = parse_people(
                maps.heatmap_logits[i, :, :gh, :gw].sigmoid(), maps.offsets[i, :, :, :gh, :gw],
                maps.limb_logits[i, :, :gh, :gw].sigmoid(), maps.offsets.new_zeros(2, gh, gw),
                torch.zeros(gh, gw, dtype=torch.bool, device=maps.offsets.device),
                self.limbs, stride, self.keypoint_radius, solver=self.matching_layer,
            )
            inst = Instances((h, w))
            inst.pred_keypoints, inst.scores = people.poses, people.scores
            results.append({"instances": inst})
        return results
