"""Train/test mapper: reads an image and its people and builds every target of the network."""
import copy
from typing import Dict, List, Optional

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Boxes, Instances, Keypoints

from ..ops.targets import dspf_targets, keypoint_targets, limb_targets
from .annotations import load_human_annotations
from .categories import HumanSchema, get_schema
from .transforms import build_augmentations, count_horizontal_flips

__all__ = ["DSPFDatasetMapper", "transform_keypoints"]


def transform_keypoints(
    keypoints: np.ndarray, transforms: T.TransformList, image_size, keypoint_flip: Optional[List[int]]
) -> np.ndarray:
    """Apply ``transforms`` to joints ``[P, K, 3]`` (pixel-index coordinates).

    Detectron2 transforms work in continuous coordinates (pixel ``i`` spans ``[i, i + 1)``), so
    ``+0.5`` / ``-0.5`` convert around them. A mirrored result swaps left/right joint types by
    ``keypoint_flip``. Joints that end up outside ``image_size`` (H, W) or were unlabelled get
    ``(0, 0, 0)``.
    """
    out = keypoints.copy()
    if out.size == 0:
        return out
    xy = transforms.apply_coords(out[..., :2].reshape(-1, 2) + 0.5) - 0.5
    out[..., :2] = xy.reshape(out.shape[:-1] + (2,))
    if count_horizontal_flips(transforms) % 2 == 1:
        if keypoint_flip is None:
            raise ValueError("a horizontal flip needs the schema's keypoint flip permutation")
        out = out[:, keypoint_flip]
    h, w = image_size
    inside = (out[..., 0] >= 0) & (out[..., 0] <= w - 1) & (out[..., 1] >= 0) & (out[..., 1] <= h - 1)
    out[~(inside & (out[..., 2] > 0))] = 0.0
    return out


class DSPFDatasetMapper:
    """Maps a dataset dict (schema in :mod:`dspf_parser.data.annotations`) to model inputs.

    Training output adds to ``image`` ``[3, H, W]`` (uint8, ``INPUT.FORMAT`` channel order):

    * ``part_seg`` ``[H, W]`` long, part ids, ``ignore_value`` outside the (padded/rotated) image;
    * ``instance_seg`` ``[H, W]`` long, person index + 1;
    * ``dspf`` ``[2, h, w]`` / ``dspf_weight`` ``[h, w]``: offset from each person pixel to the
      nearest visible joint of the same person (input pixels) and its validity;
    * ``keypoint_heatmaps`` ``[K, h, w]``, ``keypoint_offsets`` ``[K, 2, h, w]``,
      ``keypoint_offset_weights`` ``[K, h, w]``: disk targets of radius ``keypoint_radius``;
    * ``limb_heatmaps`` ``[L, h, w]``: elliptical Gaussians of minor std ``limb_sigma``;
    * ``instances``: ``gt_keypoints`` (``[P, K, 3]``) and ``gt_boxes`` (tight boxes of the
      visible pixels, or of the visible joints for people with no pixel left).

    ``h, w = ceil(H / stride), ceil(W / stride)``. Horizontal flips swap left/right part labels
    and joint types via the schema. Test mode returns only the (resized) ``image`` with the dict's
    metadata.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: List[T.Augmentation],
        image_format: str,
        schema: HumanSchema,
        stride: int,
        keypoint_radius: float,
        limb_sigma: float,
        ignore_value: int = 255,
    ):
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.schema = schema
        self.stride = stride
        self.keypoint_radius = keypoint_radius
        self.limb_sigma = limb_sigma
        self.ignore_value = ignore_value
        self._part_flip_lut = np.asarray(schema.part_flip, dtype=np.uint8)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        return {
            "is_train": is_train,
            "augmentations": build_augmentations(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
            "schema": get_schema(cfg.MODEL.DSPF.SCHEMA),
            "stride": cfg.MODEL.DSPF.COMMON_STRIDE,
            "keypoint_radius": cfg.MODEL.DSPF.POSE_HEAD.KEYPOINT_RADIUS,
            "limb_sigma": cfg.MODEL.DSPF.POSE_HEAD.LIMB_SIGMA,
            "ignore_value": cfg.MODEL.DSPF.PART_HEAD.IGNORE_VALUE,
        }

    def __call__(self, dataset_dict: Dict) -> Dict:
        dataset_dict = copy.deepcopy(dataset_dict)
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)
        if not self.is_train:
            dataset_dict.pop("annotations", None)
            aug_input = T.AugInput(image)
            self.augmentations(aug_input)
            dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
            return dataset_dict

        gt = load_human_annotations(dataset_dict, self.schema.num_parts, self.schema.num_keypoints)
        aug_input = T.AugInput(image, sem_seg=gt.part_map)
        transforms = self.augmentations(aug_input)
        image, part_map = aug_input.image, aug_input.sem_seg
        h, w = image.shape[:2]
        instance_map = transforms.apply_segmentation(gt.instance_map)
        inside = transforms.apply_segmentation(np.ones_like(gt.part_map))
        if count_horizontal_flips(transforms) % 2 == 1:
            part_map = self._part_flip_lut[part_map]
        part_map = np.where(inside > 0, part_map, self.ignore_value).astype(np.int64)
        instance_map = np.where(inside > 0, instance_map, 0).astype(np.int64)
        keypoints = transform_keypoints(gt.keypoints, transforms, (h, w), list(self.schema.keypoint_flip))

        kp = torch.from_numpy(keypoints)
        inst = torch.from_numpy(instance_map)
        dspf, dspf_weight = dspf_targets(inst, kp, self.stride)
        heat, offsets, offset_weights = keypoint_targets(kp, (h, w), self.stride, self.keypoint_radius)
        limbs = limb_targets(kp, list(self.schema.limbs), (h, w), self.stride, self.limb_sigma)

        dataset_dict.pop("annotations", None)
        dataset_dict.update(
            image=torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))),
            part_seg=torch.from_numpy(part_map),
            instance_seg=inst,
            dspf=dspf,
            dspf_weight=dspf_weight,
            keypoint_heatmaps=heat,
            keypoint_offsets=offsets,
            keypoint_offset_weights=offset_weights,
            limb_heatmaps=limbs,
            instances=self._instances(inst, kp, (h, w)),
        )
        return dataset_dict

    @staticmethod
    def _instances(instance_map: torch.Tensor, keypoints: torch.Tensor, image_size) -> Instances:
        """People as detectron2 ``Instances`` with ``gt_keypoints`` and ``gt_boxes``."""
        boxes = torch.zeros((len(keypoints), 4))
        for p in range(len(keypoints)):
            ys, xs = torch.nonzero(instance_map == p + 1, as_tuple=True)
            if len(xs) == 0:
                visible = keypoints[p, :, 2] > 0
                xs, ys = keypoints[p, visible, 0], keypoints[p, visible, 1]
            if len(xs):
                boxes[p] = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
        instances = Instances(image_size)
        instances.gt_boxes = Boxes(boxes)
        instances.gt_keypoints = Keypoints(keypoints)
        instances.gt_classes = torch.zeros(len(keypoints), dtype=torch.int64)
        return instances
