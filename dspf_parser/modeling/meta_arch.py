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
from ..ops.decoding import (ASSOCIATIONS, PERSON_SCORES, DecodingSettings, ParsedPeople, ParsingMaps, agree_with_labels,
                             decode_maps, dense_outputs)
from ..ops.matching import matching_loss
from ..ops.matching_targets import MATCHING_PROBLEMS, detected_limb_problems, ground_truth_limb_problems
from ..ops.sides import SideLayout
from .field_head import build_field_head
from .loss_balancing import build_loss_balancer
from .matching_layer import build_matching_layer
from .part_head import build_part_head
from .pose_head import PoseMaps, build_pose_head

__all__ = [
    "DSPFParser", "MAP_NAMES", "crop_maps", "decoding_settings_from_cfg", "head_probabilities", "maps_of_batch",
    "pad_to", "people_to_instances",
]

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
        matching_problems: str = "ground_truth",
        match_radius: Optional[float] = None,
        part_loss_weight: float = 1.0,
        field_loss_weight: float = 1.0,
        association: str = "exact",
        instances_on: bool = True,
        **decoding,
    ):
        """
        Args:
            matching_loss_weight: weight of the matching loss; ``None`` = training stage one
                (no matching loss).
            matching_problems: the candidates of the matching loss's problems, one of
                :data:`MATCHING_PROBLEMS` (``MODEL.DSPF.MATCHING.LOSS_PROBLEMS``).
            match_radius: ``"detected"``: largest candidate-to-joint distance (input px) of a
                match (``MODEL.DSPF.MATCHING.MATCH_RADIUS``); ``None``: ``keypoint_radius``.
            part_loss_weight, field_loss_weight: ``PART_HEAD.LOSS_WEIGHT`` and
                ``FIELD_HEAD.LOSS_WEIGHT``, the factors of the part and DSPF losses.
            limbs, keypoint_radius: the skeleton's limbs and the keypoint disk radius (px).
            association, **decoding: the ``MODEL.DSPF.INFERENCE`` decoding settings, any
                field of :class:`DecodingSettings` but ``limbs``, ``stride``,
                ``keypoint_radius`` and ``solver`` (the model's own; :func:`inference_kwargs`).
            instances_on: decode people (``INFERENCE.INSTANCES_ON``), else only ``sem_seg``
                and ``dspf``.
        """
        super().__init__()
        if association not in ASSOCIATIONS:
            raise ValueError(f"MODEL.DSPF.INFERENCE.ASSOCIATION must be one of {ASSOCIATIONS}, got {association!r}")
        if matching_problems not in MATCHING_PROBLEMS:
            raise ValueError(f"MODEL.DSPF.MATCHING.LOSS_PROBLEMS must be one of {MATCHING_PROBLEMS}, "
                             f"got {matching_problems!r}")
        match_radius = keypoint_radius if match_radius is None else match_radius
        if not match_radius > 0:
            raise ValueError(f"MODEL.DSPF.MATCHING.MATCH_RADIUS must be positive (0: the keypoint radius), "
                             f"got {match_radius!r}")
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
        self.matching_problems, self.match_radius = matching_problems, match_radius
        self.part_loss_weight, self.field_loss_weight = part_loss_weight, field_loss_weight
        self.instances_on = instances_on
        strides = {part_head.output_stride, field_head.output_stride, pose_head.output_stride}
        if len(strides) != 1:
            raise ValueError(f"the heads must share one output stride, got {sorted(strides)}")
        self.output_stride = strides.pop()
        #: The decoding settings of :func:`decode_maps` (``MODEL.DSPF.INFERENCE``).
        self.decoding = DecodingSettings(limbs=self.limbs, stride=self.output_stride, keypoint_radius=keypoint_radius,
                                         association=association, solver=matching_layer, **decoding)
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
            "matching_problems": dspf.MATCHING.LOSS_PROBLEMS,
            "match_radius": dspf.MATCHING.MATCH_RADIUS if dspf.MATCHING.MATCH_RADIUS != 0 else None,
            "part_loss_weight": dspf.PART_HEAD.LOSS_WEIGHT,
            "field_loss_weight": dspf.FIELD_HEAD.LOSS_WEIGHT,
            **inference_kwargs(cfg),
            "instances_on": inference.INSTANCES_ON,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs: List[Dict]) -> ImageList:
        return preprocess_images(batched_inputs, self.pixel_mean, self.pixel_std, self.backbone.size_divisibility)

    def forward(self, batched_inputs: List[Dict]):
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        part_logits = self.part_head(features)
        field = self.field_head(features)
        pose_maps = self.pose_head(features)
        if self.training:
            return self.losses(batched_inputs, images, part_logits, field, pose_maps)
        maps = maps_of_batch(part_logits, field, pose_maps, images.image_sizes, self.output_stride)
        return self.maps_to_results(maps, images.image_sizes, batched_inputs)

    def _targets(self, batched_inputs: List[Dict], key: str, size, value: float) -> torch.Tensor:
        return pad_to([x[key].to(self.device) for x in batched_inputs], size, value)

    def losses(self, batched_inputs, images: ImageList, part_logits, field, pose_maps) -> Dict[str, torch.Tensor]:
        grid = part_logits.shape[-2:]
        t = lambda key, value=0.0, size=grid: self._targets(batched_inputs, key, size, value)  # noqa: E731
        losses = {}
        part = self.part_head.losses(part_logits, t("part_seg", self.ignore_value, images.tensor.shape[-2:]))
        losses.update({k: self.part_loss_weight * v for k, v in part.items()})
        dspf = self.field_head.losses(field, t("dspf"), t("dspf_weight"))
        losses.update({k: self.field_loss_weight * v for k, v in dspf.items()})
        losses.update(
            self.pose_head.losses(
                pose_maps, t("keypoint_heatmaps"), t("keypoint_offsets"),
                t("keypoint_offset_weights"), t("limb_heatmaps"),
            )
        )
        if self.matching_loss_weight is not None:
            losses["loss_matching"] = self.matching_loss_weight * self._matching_loss(
                batched_inputs, images, part_logits, field, pose_maps)
        # Each task loss scaled by its *_LOSS_WEIGHT key, as the loss balancer receives it.
        storage = get_event_storage()
        storage.put_scalars(**{"balancer_input_" + k: v.item() for k, v in losses.items()})
        return self.loss_balancer(losses)

    def _matching_loss(self, batched_inputs: List[Dict], images: ImageList, part_logits: torch.Tensor,
                       field: torch.Tensor, pose_maps: PoseMaps) -> torch.Tensor:
        """Cross-entropy of the matching layer's relaxed assignments (train mode: the unrolled
        solver) on the limb problems of ``self.matching_problems``: the annotated joints
        (:func:`ground_truth_limb_problems`, from the limb logits) or the candidates inference
        detects on the maps of this forward (:func:`detected_limb_problems`, from all the heads'
        outputs ``[N, ..., h, w]``, cropped to each image). A batch without a valid pair gives 0,
        still attached to the graph.
        """
        keypoints = [x["instances"].gt_keypoints.tensor for x in batched_inputs]
        if self.matching_problems == "detected":
            # In float32 under autocast: candidate coordinates in (b)float16 are off by pixels.
            maps = [m.map(lambda t: t.float())
                    for m in maps_of_batch(part_logits, field, pose_maps, images.image_sizes, self.output_stride)]
            scores, valid, target = detected_limb_problems(maps, keypoints, self.decoding, self.match_radius)
        else:
            scores, valid, target = ground_truth_limb_problems(
                pose_maps.limb_logits.sigmoid(), keypoints, self.limbs, self.output_stride
            )
        loss = matching_loss(self.matching_layer(scores, valid), target, valid)
        if not loss.requires_grad:  # no candidate at all: the scores are constant zeros
            loss = loss + pose_maps.limb_logits.sum() * 0.0
        return loss

    def predict_maps(self, batched_inputs: List[Dict]) -> Tuple[List[ParsingMaps], List[Tuple[int, int]]]:
        """The network's maps of every image (cropped to its grid) and the input image sizes."""
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        part_logits = self.part_head(features)
        field = self.field_head(features)
        pose = self.pose_head(features)
        return maps_of_batch(part_logits, field, pose, images.image_sizes, self.output_stride), images.image_sizes

    def maps_to_results(self, maps: Sequence[ParsingMaps], input_sizes: Sequence[Tuple[int, int]],
                        batched_inputs: List[Dict]) -> List[Dict]:
        """Per image: ``sem_seg``, ``dspf`` and ``instances`` at the requested output size
        (``height``/``width`` of the input dict, else the input size), via :func:`decode_maps`."""
        results = []
        for m, (h, w), x in zip(maps, input_sizes, batched_inputs):
            out_size = (x.get("height", h), x.get("width", w))
            probs, dspf = dense_outputs(m, self.output_stride, (h, w), out_size)
            results.append({"sem_seg": probs, "dspf": dspf})
            if self.instances_on:
                people = decode_maps(m, (h, w), out_size, self.decoding)
                results[-1]["instances"] = people_to_instances(people)
                if self.decoding.sides is not None or self.decoding.small_part_fraction > 0:
                    # the category-level map takes the people's sides and absorbed regions
                    results[-1]["sem_seg"] = agree_with_labels(probs, people.part_labels)
        return results


def preprocess_images(batched_inputs: List[Dict], pixel_mean: torch.Tensor, pixel_std: torch.Tensor,
                      size_divisibility: int) -> ImageList:
    """The normalised images ``(image - mean) / std`` of a batch (``image`` ``[3, H_i, W_i]``),
    padded bottom/right with 0 into one ``ImageList`` of ``size_divisibility`` multiples, on the
    device of ``pixel_mean`` ``[3, 1, 1]``; shared by :class:`DSPFParser` and projects that
    reuse its heads (``projects/BottomUpPose``).

    An input padded to at most one backbone cell (e.g. 1x1 or 5x17 with FPN: 32x32) leaves a
    1x1 coarsest feature, on which GroupNorm fails when a group has one channel: the width is
    then padded to two cells (the padding is cropped from every output).
    """
    images = [(x["image"].to(pixel_mean.device) - pixel_mean) / pixel_std for x in batched_inputs]
    images = ImageList.from_tensors(images, size_divisibility)
    cell, tensor = size_divisibility, images.tensor
    if cell > 0 and tensor.shape[-2] <= cell and tensor.shape[-1] <= cell:
        images = ImageList(F.pad(tensor, (0, 2 * cell - tensor.shape[-1]), value=0.0), images.image_sizes)
    return images


def inference_kwargs(cfg) -> Dict:
    """The ``MODEL.DSPF.INFERENCE`` keys as :class:`DecodingSettings` field values."""
    inference = cfg.MODEL.DSPF.INFERENCE
    if inference.PERSON_SCORE not in PERSON_SCORES:
        raise ValueError(f"MODEL.DSPF.INFERENCE.PERSON_SCORE must be one of {PERSON_SCORES}, got {inference.PERSON_SCORE!r}")
    if inference.LIMB_SCORE not in ("template", "mean"):
        raise ValueError(f"MODEL.DSPF.INFERENCE.LIMB_SCORE must be 'template' or 'mean', got {inference.LIMB_SCORE!r}")
    return {
        "keypoint_threshold": inference.KEYPOINT_THRESHOLD,
        "max_candidates": inference.MAX_CANDIDATES,
        "association": inference.ASSOCIATION,
        "min_joints": inference.MIN_JOINTS,
        "duplicate_radius": inference.DUPLICATE_RADIUS,
        "dspf_candidates": inference.DSPF_CANDIDATES,
        "hough_min_vote": inference.HOUGH_MIN_VOTE,
        "limb_template_sigma": (cfg.MODEL.DSPF.POSE_HEAD.LIMB_SIGMA if inference.LIMB_SCORE == "template"
                                else None),
        "limb_prune_below": inference.LIMB_PRUNE_THRESHOLD if inference.LIMB_PRUNE_THRESHOLD > 0 else None,
        "min_limb_score": inference.MIN_LIMB_SCORE,
        "person_score": inference.PERSON_SCORE,
        "min_person_score": inference.MIN_PERSON_SCORE,
        "dspf_grouping": inference.DSPF_GROUPING,
        "dspf_duplicate_radius": inference.DSPF_DUPLICATE_RADIUS,
        "grouping_order": inference.GROUPING_ORDER,
        "grouping_confident_above": inference.GROUPING_CONFIDENT_ABOVE,
        "completeness_power": inference.PERSON_COMPLETENESS_POWER,
        "support_power": inference.PERSON_SUPPORT_POWER,
        "fragment_min_cells": inference.FRAGMENT_MIN_CELLS,
        "fragment_score": inference.FRAGMENT_SCORE,
        "min_person_scale": inference.MIN_PERSON_SCALE,
        "pixel_assignment": inference.PIXEL_ASSIGNMENT,
        "sides": side_layout(cfg.MODEL.DSPF.SCHEMA, cfg.MODEL.DSPF.SIDE_LABELS) if (
            inference.RESOLVE_SIDES or cfg.MODEL.DSPF.SIDE_LABELS == "camera") else None,
        "side_keep_ratio": inference.SIDE_KEEP_RATIO,
        "side_keep_support": inference.SIDE_KEEP_SUPPORT,
        "side_mirror_radius": inference.SIDE_MIRROR_RADIUS,
        "side_labels": cfg.MODEL.DSPF.SIDE_LABELS,
        "small_part_fraction": inference.SMALL_PART_FRACTION,
        "small_part_confidence": inference.SMALL_PART_CONFIDENCE,
        "share_min_limb_score": inference.SHARE_MIN_LIMB_SCORE,
        "completion_threshold": inference.COMPLETION_THRESHOLD,
        "join_fragments": inference.JOIN_FRAGMENTS,
        "part_confidence_power": inference.PART_CONFIDENCE_POWER,
        "orphan_min_cells": inference.ORPHAN_MIN_CELLS,
        "orphan_distance": inference.ORPHAN_DISTANCE,
        "orphan_min_spread": inference.ORPHAN_MIN_SPREAD,
    }


def side_layout(schema_name: str, side_labels: str = "anatomical") -> Optional[SideLayout]:
    """The :class:`SideLayout` of a registered schema (:meth:`SideLayout.of`)."""
    return SideLayout.of(get_schema(schema_name), side_labels)


def decoding_settings_from_cfg(cfg, **overrides) -> DecodingSettings:
    """The :class:`DecodingSettings` a ``DSPFParser`` built from ``cfg`` decodes with (its own
    eval-mode matching layer as the solver), with ``overrides`` of any field; for tools that
    decode maps without the network (the oracle evaluation, benchmarks)."""
    kwargs = {**inference_kwargs(cfg), **overrides}
    kwargs.setdefault("solver", build_matching_layer(cfg).eval())
    return DecodingSettings(
        limbs=get_schema(cfg.MODEL.DSPF.SCHEMA).limbs, stride=cfg.MODEL.DSPF.COMMON_STRIDE,
        keypoint_radius=cfg.MODEL.DSPF.POSE_HEAD.KEYPOINT_RADIUS, **kwargs,
    )


#: The names of the maps :func:`head_probabilities` returns, in its order (the
#: :class:`ParsingMaps` fields but ``part_stride``).
MAP_NAMES = ("part_probs", "dspf", "heatmaps", "offsets", "limb_heatmaps")


def head_probabilities(part_logits: torch.Tensor, field: torch.Tensor,
                       pose: PoseMaps) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The heads' outputs of a batch as the maps :func:`decode_maps` reads, in :data:`MAP_NAMES` order.

    Returns ``part_probs`` ``[N, C, h, w]`` (softmax over the classes), ``dspf`` ``[N, 2, h, w]``
    and ``offsets`` ``[N, K, 2, h, w]`` (input pixels, as the heads give them), ``heatmaps``
    ``[N, K, h, w]`` and ``limb_heatmaps`` ``[N, L, h, w]`` (sigmoids of the logits).
    """
    # The softmax over dim 1 written out: CPU softmax over a non-last dimension is about twice
    # as slow as these element-wise passes (the largest map at inference); in place on its own
    # buffer where no gradient is recorded (two fewer allocations of the largest map).
    shifted = part_logits - part_logits.amax(dim=1, keepdim=True)
    if shifted.requires_grad:
        exp = shifted.exp()
        probs = exp / exp.sum(dim=1, keepdim=True)
    else:
        exp = shifted.exp_()
        probs = exp.div_(exp.sum(dim=1, keepdim=True))
    return probs, field, pose.heatmap_logits.sigmoid(), pose.offsets, pose.limb_logits.sigmoid()


def crop_maps(maps: Sequence[torch.Tensor], index: int, image_size: Tuple[int, int], stride: int) -> ParsingMaps:
    """The :class:`ParsingMaps` of image ``index`` of batched maps ``[N, ..., h, w]`` (in
    :data:`MAP_NAMES` order, as :func:`head_probabilities` returns them), cropped to the image's
    grid ``ceil(H / s) x ceil(W / s)`` for its input size ``(H, W)``."""
    if len(maps) != len(MAP_NAMES):
        raise ValueError(f"expected the {len(MAP_NAMES)} maps {MAP_NAMES}, got {len(maps)} tensors")
    gh, gw = -(-image_size[0] // stride), -(-image_size[1] // stride)
    fields = {name: m[index, ..., :gh, :gw] for name, m in zip(MAP_NAMES, maps)}
    return ParsingMaps(**fields, part_stride=stride)


def maps_of_batch(part_logits: torch.Tensor, field: torch.Tensor, pose: PoseMaps,
                  image_sizes: Sequence[Tuple[int, int]], stride: int) -> List[ParsingMaps]:
    """The :class:`ParsingMaps` of every image of a batch of head outputs ``[N, ..., h, w]``,
    as probabilities (:func:`head_probabilities`), cropped to each image's grid
    ``ceil(H_i / s) x ceil(W_i / s)``."""
    maps = head_probabilities(part_logits, field, pose)
    return [crop_maps(maps, i, size, stride) for i, size in enumerate(image_sizes)]


def people_to_instances(people: ParsedPeople) -> Instances:
    """Detectron2 ``Instances`` of parsed people, at the size of their instance map ``[H', W']``.

    Fields: ``pred_keypoints`` ``[P, K, 3]``, ``scores``, ``pose_scores`` (the skeletons' scores,
    :attr:`ParsedPeople.pose_scores`), ``pred_classes`` (0), ``pred_masks``
    ``[P, H', W']`` bool (the person's pixels of the instance map), ``pred_parts`` ``[P, H', W']``
    uint8 (the argmax part ids on the person's pixels, 0 elsewhere) and ``pred_boxes`` (the
    tight box of the mask, or of the joints for a person without pixels).
    """
    out_h, out_w = people.instance_map.shape
    num = len(people.scores)
    masks = people.instance_map[None] == torch.arange(1, num + 1, device=people.instance_map.device).view(-1, 1, 1)
    keypoints = people.poses
    boxes = torch.zeros((num, 4), device=keypoints.device)
    if num:
        inf = torch.tensor(float("inf"), device=keypoints.device)
        cols = torch.arange(out_w, device=keypoints.device, dtype=torch.float32)
        rows = torch.arange(out_h, device=keypoints.device, dtype=torch.float32)
        has_col, has_row = masks.any(dim=1), masks.any(dim=2)  # [P, W'], [P, H']
        x0 = torch.where(has_col, cols, inf).amin(1)
        x1 = torch.where(has_col, cols, -inf).amax(1) + 1
        y0 = torch.where(has_row, rows, inf).amin(1)
        y1 = torch.where(has_row, rows, -inf).amax(1) + 1
        present = keypoints[..., 2] > 0
        jx0 = torch.where(present, keypoints[..., 0], inf).amin(1)
        jy0 = torch.where(present, keypoints[..., 1], inf).amin(1)
        jx1 = torch.where(present, keypoints[..., 0], -inf).amax(1) + 1
        jy1 = torch.where(present, keypoints[..., 1], -inf).amax(1) + 1
        empty = ~has_col.any(1)
        boxes = torch.stack([torch.where(empty, jx0, x0), torch.where(empty, jy0, y0),
                             torch.where(empty, jx1, x1), torch.where(empty, jy1, y1)], dim=1)
        boxes = torch.where(torch.isfinite(boxes), boxes, torch.zeros_like(boxes))
    part_map = people.part_labels
    instances = Instances((out_h, out_w))
    instances.pred_keypoints = keypoints
    instances.scores = people.scores
    instances.pose_scores = people.pose_scores
    instances.pred_classes = torch.zeros(num, dtype=torch.int64, device=keypoints.device)
    instances.pred_boxes = Boxes(boxes)
    instances.pred_masks = masks
    instances.pred_parts = (part_map[None] * masks).to(torch.uint8)
    return instances
