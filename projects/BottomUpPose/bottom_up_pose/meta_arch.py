"""``BottomUpPoseNet``: backbone + dspf-parser's pose head + its matching layer, nothing else."""
import dataclasses
from typing import Dict, List

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import Instances
from torch import nn

from dspf_parser.modeling import build_matching_layer, build_pose_head
from dspf_parser.modeling.meta_arch import decoding_settings_from_cfg, maps_of_batch, pad_to, preprocess_images
from dspf_parser.ops.decoding import decode_maps

__all__ = ["BottomUpPoseNet"]


@META_ARCH_REGISTRY.register()
class BottomUpPoseNet(nn.Module):
    """Multi-person pose only: keypoint/limb maps, Hough voting, LP matching, grouping.

    Training input: dicts from ``dspf_parser.DSPFDatasetMapper`` (it builds the pose targets
    too). Inference output per image: ``instances`` with ``pred_keypoints`` ``[P, K, 3]`` and
    ``scores`` ``[P]`` in the pixels of the requested output size (``height``/``width``).
    Decoding is dspf-parser's own seam (:func:`decode_maps`) on maps without parts or DSPF.
    """

    @configurable
    def __init__(self, *, backbone, pose_head, matching_layer, decoding, pixel_mean, pixel_std):
        super().__init__()
        self.backbone, self.pose_head, self.matching_layer = backbone, pose_head, matching_layer
        self.decoding = dataclasses.replace(decoding, solver=matching_layer, dspf_candidates=False)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "pose_head": build_pose_head(cfg, backbone.output_shape()),
            "matching_layer": build_matching_layer(cfg),
            "decoding": decoding_settings_from_cfg(cfg),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    def forward(self, batched_inputs: List[Dict]):
        images = preprocess_images(batched_inputs, self.pixel_mean, self.pixel_std, self.backbone.size_divisibility)
        maps = self.pose_head(self.backbone(images.tensor))
        stride = self.pose_head.output_stride
        if self.training:
            grid = maps.heatmap_logits.shape[-2:]
            t = lambda key: pad_to([x[key].to(self.pixel_mean.device) for x in batched_inputs], grid, 0.0)  # noqa: E731
            return self.pose_head.losses(maps, t("keypoint_heatmaps"), t("keypoint_offsets"),
                                         t("keypoint_offset_weights"), t("limb_heatmaps"))
        # dspf-parser's maps with a one-class part map (no person pixels: no pixel assignment)
        # and a zero DSPF, cropped and turned into probabilities by its own maps_of_batch.
        n, _, gh, gw = maps.heatmap_logits.shape
        no_parts = maps.heatmap_logits.new_zeros(n, 1, gh, gw)
        parsed = maps_of_batch(no_parts, no_parts.new_zeros(n, 2, gh, gw), maps, images.image_sizes, stride)
        results = []
        for pose_only, (h, w), x in zip(parsed, images.image_sizes, batched_inputs):
            out_size = (x.get("height", h), x.get("width", w))
            people = decode_maps(pose_only, (h, w), out_size, self.decoding)
            inst = Instances(out_size)
            inst.pred_keypoints, inst.scores = people.poses, people.scores
            results.append({"instances": inst})
        return results
