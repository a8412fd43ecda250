"""The DSPF parser meta-architecture: backbone + part, projection-field and pose heads."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.modeling.backbone import Backbone
from detectron2.structures import Boxes, ImageList, Instances
from detectron2.utils.events import get_event_storage
from torch import nn

from ..data.categories import get_schema
from ..ops.decoding import ASSOCIATIONS, ParsedPeople, parse_people
from ..ops.matching import matching_loss
from ..ops.matching_targets import ground_truth_limb_problems
from .field_head import build_field_head
from .loss_balancing import build_loss_balancer
from .matching_layer import build_matching_layer
from .part_head import build_part_head
from .pose_head import PoseMaps, build_pose_head

__all__ = ["DSPFParser", "pad_to"]

# Task losses produced by the heads, in the order of the uncertainty log-variances.
TASK_LOSSES = (
    "loss_part", "loss_dspf", "loss_keypoint_heatmap", "loss_keypoint_offset", "loss_limb_heatmap", "loss_matching",
)


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
    (``h, w`` = ``ceil(H / s), ceil(W / s)`` at the heads' stride ``s``), and ``instances``
    with ``gt_keypoints`` (for the matching loss of training stage two). Returns a loss dict.

    Inference returns, per image, at the requested output size (``height``/``width`` of the
    input dict, else the input size):

    * ``sem_seg`` ``[C, height, width]``: part probabilities;
    * ``dspf`` ``[2, height, width]``: offsets in output-image pixels;
    * ``instances`` (unless ``MODEL.DSPF.INFERENCE.INSTANCES_ON`` is off): one entry per person
      with ``pred_keypoints`` ``[P, K, 3]`` (x, y, score), ``scores`` ``[P]``, ``pred_boxes``,
      ``pred_classes`` (0), ``pred_masks`` ``[P, height, width]`` bool and ``pred_parts``
      ``[P, height, width]`` uint8 (the person's part ids, 0 elsewhere).
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        part_head: nn.Module,
        field_head: nn.Module,
        pose_head: nn.Module,
        matching_layer: nn.Module,
        loss_balancer: nn.Module,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        limbs: Sequence[Tuple[int, int]],
        keypoint_radius: float,
        ignore_value: int = 255,
        matching_loss_weight: Optional[float] = None,
        keypoint_threshold: float = 0.3,
        max_candidates: int = 30,
        association: str = "matching",
        min_joints: int = 3,
        instances_on: bool = True,
    ):
        """
        Args:
            matching_loss_weight: weight of the matching loss; ``None`` = training stage one
                (no matching loss).
            limbs, keypoint_radius: the skeleton's limbs and the keypoint disk radius (px).
            keypoint_threshold, max_candidates, association, min_joints, instances_on: the
                ``MODEL.DSPF.INFERENCE`` decoding settings.
        """
        super().__init__()
        if association not in ASSOCIATIONS:
            raise ValueError(f"MODEL.DSPF.INFERENCE.ASSOCIATION must be one of {ASSOCIATIONS}, got {association!r}")
        self.backbone = backbone
        self.part_head = part_head
        self.field_head = field_head
        self.pose_head = pose_head
        self.matching_layer = matching_layer
        self.loss_balancer = loss_balancer
        self.ignore_value = ignore_value
        self.limbs = [tuple(l) for l in limbs]
        self.keypoint_radius = keypoint_radius
        self.matching_loss_weight = matching_loss_weight
        self.keypoint_threshold = keypoint_threshold
        self.max_candidates = max_candidates
        self.association = association
        self.min_joints = min_joints
        self.instances_on = instances_on
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
        dspf, inference = cfg.MODEL.DSPF, cfg.MODEL.DSPF.INFERENCE
        return {
            "backbone": backbone,
            "part_head": part_head,
            "field_head": build_field_head(cfg, shape),
            "pose_head": build_pose_head(cfg, shape),
            "matching_layer": build_matching_layer(cfg),
            "loss_balancer": build_loss_balancer(dspf.LOSS_BALANCING, TASK_LOSSES),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "limbs": get_schema(dspf.SCHEMA).limbs,
            "keypoint_radius": dspf.POSE_HEAD.KEYPOINT_RADIUS,
            "ignore_value": dspf.PART_HEAD.IGNORE_VALUE,
            "matching_loss_weight": dspf.MATCHING.LOSS_WEIGHT if dspf.MATCHING.LOSS_ON else None,
            "keypoint_threshold": inference.KEYPOINT_THRESHOLD,
            "max_candidates": inference.MAX_CANDIDATES,
            "association": inference.ASSOCIATION,
            "min_joints": inference.MIN_JOINTS,
            "instances_on": inference.INSTANCES_ON,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(images, self.backbone.size_divisibility)
        # An input padded to at most one backbone cell (e.g. 1x1 or 5x17 with FPN: 32x32) leaves
        # a 1x1 coarsest feature, on which GroupNorm fails when a group has one channel. Pad
        # the width to two cells then (the padding is cropped from every output).
        cell = self.backbone.size_divisibility
        tensor = images.tensor
        if cell > 0 and tensor.shape[-2] <= cell and tensor.shape[-1] <= cell:
            tensor = F.pad(tensor, (0, 2 * cell - tensor.shape[-1]), value=0.0)
            images = ImageList(tensor, images.image_sizes)
        return images

    def forward(self, batched_inputs: List[Dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        part_logits = self.part_head(features)
        field = self.field_head(features)
        pose_maps = self.pose_head(features)
        if self.training:
            return self.losses(batched_inputs, images, part_logits, field, pose_maps)
        return self.postprocess(batched_inputs, images, part_logits, field, pose_maps)

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
        if self.matching_loss_weight is not None:
            losses["loss_matching"] = self.matching_loss_weight * self._matching_loss(batched_inputs, pose_maps)
        storage = get_event_storage()
        storage.put_scalars(**{"unweighted_" + k: v.item() for k, v in losses.items()})
        return self.loss_balancer(losses)

    def _matching_loss(self, batched_inputs: List[Dict], pose_maps: PoseMaps) -> torch.Tensor:
        """Cross-entropy of the matching layer's assignments on the annotated joints."""
        keypoints = [x["instances"].gt_keypoints.tensor for x in batched_inputs]
        scores, valid, target = ground_truth_limb_problems(
            pose_maps.limb_logits.sigmoid(), keypoints, self.limbs, self.output_stride
        )
        return matching_loss(self.matching_layer(scores, valid), target, valid)

    def decode(self, part_logits: torch.Tensor, field: torch.Tensor, pose_maps: PoseMaps, index: int,
               grid_size: Tuple[int, int], timer=None) -> ParsedPeople:
        """Parse the people of image ``index`` of a batch from its maps (cropped to ``grid_size``)."""
        gh, gw = grid_size
        crop = (slice(None), slice(0, gh), slice(0, gw))
        return parse_people(
            pose_maps.heatmap_logits[index][crop].sigmoid(),
            pose_maps.offsets[index][(slice(None),) + crop],
            pose_maps.limb_logits[index][crop].sigmoid(),
            field[index][crop],
            part_logits[index][crop].argmax(0) > 0,
            self.limbs,
            self.output_stride,
            self.keypoint_radius,
            keypoint_threshold=self.keypoint_threshold,
            max_candidates=self.max_candidates,
            association=self.association,
            solver=self.matching_layer,
            min_joints=self.min_joints,
            timer=timer,
        )

    def postprocess(self, batched_inputs, images: ImageList, part_logits, field, pose_maps: PoseMaps) -> List[Dict]:
        stride = self.output_stride
        results = []
        for i, (x, (h, w)) in enumerate(zip(batched_inputs, images.image_sizes)):
            out_h, out_w = x.get("height", h), x.get("width", w)
            gh, gw = -(-h // stride), -(-w // stride)
            logits = part_logits[i : i + 1, :, :gh, :gw]
            probs = F.interpolate(logits, size=(out_h, out_w), mode="bilinear", align_corners=False).softmax(1)
            f = F.interpolate(field[i : i + 1, :, :gh, :gw], size=(out_h, out_w), mode="bilinear", align_corners=False)
            f = f * torch.tensor([out_w / w, out_h / h], device=f.device).view(1, 2, 1, 1)
            result = {"sem_seg": probs[0], "dspf": f[0]}
            if self.instances_on:
                people = self.decode(part_logits, field, pose_maps, i, (gh, gw))
                result["instances"] = people_to_instances(people, probs[0].argmax(0), (h, w), stride)
            results.append(result)
        return results


def people_to_instances(
    people: ParsedPeople, part_map: torch.Tensor, input_size: Tuple[int, int], stride: int
) -> Instances:
    """Detectron2 ``Instances`` of the parsed people at the size of ``part_map`` ``[H', W']``.

    ``people`` is in the network's input frame of size ``input_size`` (its instance map on the
    stride-``stride`` grid); joints are rescaled in pixel-index coordinates and the instance map
    is upsampled by nearest neighbour, then restricted to ``part_map > 0``.
    """
    (h, w), (out_h, out_w) = input_size, part_map.shape
    grid = people.instance_map.repeat_interleave(stride, 0).repeat_interleave(stride, 1)[:h, :w]
    grid = F.interpolate(grid[None, None].float(), size=(out_h, out_w), mode="nearest")[0, 0].long()
    grid = torch.where(part_map > 0, grid, torch.zeros_like(grid))
    num = len(people.scores)
    masks = grid[None] == torch.arange(1, num + 1, device=grid.device).view(-1, 1, 1)
    keypoints = people.poses.clone()
    scale = torch.tensor([out_w / w, out_h / h], device=keypoints.device)
    present = keypoints[..., 2:] > 0
    keypoints[..., :2] = torch.where(present, (keypoints[..., :2] + 0.5) * scale - 0.5, keypoints[..., :2])
    boxes = torch.zeros((num, 4), device=keypoints.device)
    for p in range(num):
        ys, xs = torch.nonzero(masks[p], as_tuple=True)
        if len(xs) == 0:
            joints = keypoints[p][keypoints[p, :, 2] > 0]
            xs, ys = joints[:, 0], joints[:, 1]
        if len(xs):
            boxes[p] = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
    instances = Instances((out_h, out_w))
    instances.pred_keypoints = keypoints
    instances.scores = people.scores
    instances.pred_classes = torch.zeros(num, dtype=torch.int64, device=keypoints.device)
    instances.pred_boxes = Boxes(boxes)
    instances.pred_masks = masks
    instances.pred_parts = (part_map[None] * masks).to(torch.uint8)
    return instances
