"""Train/test mapper: reads an image and its people and builds every target of the network."""
import copy
import logging
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Boxes, Instances, Keypoints
from detectron2.utils.file_io import PathManager
from PIL import Image, ImageOps

from ..config import check_train_input_keys
from ..ops.sides import SIDE_LABELS, SideLayout, person_facing
from ..ops.targets import dspf_targets, keypoint_targets, limb_targets
from .annotations import load_human_annotations
from .categories import HumanSchema, get_schema
from .transforms import build_augmentations, count_horizontal_flips

__all__ = [
    "BAD_SAMPLE_POLICIES", "BadSampleError", "MissingSampleFileError", "DSPFDatasetMapper",
    "read_image_checked", "transform_keypoints",
]

logger = logging.getLogger(__name__)

# Values of the mapper's "scored" mask (neither is a fill value of any augmentation).
_SCORED, _UNSCORED = 1, 2

#: Values of ``DATALOADER.BAD_SAMPLES``.
BAD_SAMPLE_POLICIES = ("error", "skip")


class BadSampleError(ValueError):
    """A dataset sample that cannot be used: a missing, corrupt or truncated image, an image or
    part map whose size disagrees with the dataset dict, part ids out of range, ...

    The message names the offending file and the problem; ``file_name`` is that file (or the
    sample's image when the problem is not tied to one file). A ``ValueError``, so callers that
    caught the previous ``ValueError`` s keep working; takes one message argument, so it
    survives being re-raised from a ``DataLoader`` worker.
    """

    def __init__(self, message: str, file_name: Optional[str] = None):
        super().__init__(message)
        self.file_name = file_name


class MissingSampleFileError(BadSampleError, FileNotFoundError):
    """A :class:`BadSampleError` for a file that does not exist (also a ``FileNotFoundError``)."""


# PIL modes of 16/32-bit integer grey images (16-bit grey PNGs open as "I"). Converting them
# to "RGB" directly clips every value above 255 instead of rescaling, so they are rescaled to
# 8 bits first (assuming the 16-bit range).
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _exif_transpose(image: Image.Image) -> Image.Image:
    apply = getattr(utils, "_apply_exif_orientation", None)  # detectron2's Pillow workaround
    return apply(image) if apply is not None else ImageOps.exif_transpose(image)


def read_image_checked(file_name: str, image_format: Optional[str]) -> np.ndarray:
    """``detectron2.data.detection_utils.read_image`` with errors that name the file.

    The image is fully decoded here (a truncated file fails now, not later), EXIF orientation
    is applied, any PIL mode (grey ``L``/``1``, ``P``, ``RGBA``/``LA`` (alpha dropped), ``CMYK``,
    16-bit grey) is converted to ``image_format`` (``BGR``, ``RGB``, ``L``, ...).

    Raises:
        MissingSampleFileError: the file does not exist.
        BadSampleError: it is not a readable image (corrupt, truncated, unknown format, too
            large for PIL's decompression-bomb limit, ...).
    """
    try:
        with PathManager.open(file_name, "rb") as f:
            image = Image.open(f)
            image = _exif_transpose(image)
            if image.mode in _WIDE_GRAY_MODES:
                wide = np.asarray(image).astype(np.float64)
                image = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
            array = utils.convert_PIL_to_numpy(image, image_format)
    except FileNotFoundError as e:
        raise MissingSampleFileError(f"{file_name}: image file not found", file_name) from e
    except Exception as e:  # PIL, zlib, struct, ... raise many types for corrupt files
        raise BadSampleError(
            f"{file_name}: not a readable image (corrupt, truncated or unsupported: "
            f"{type(e).__name__}: {e})", file_name) from e
    if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
        raise BadSampleError(f"{file_name}: decoded to an array of shape {array.shape}", file_name)
    return array


def _check_image_size(dataset_dict: Dict, image: np.ndarray) -> None:
    """``detectron2``'s ``check_image_size`` with a :class:`BadSampleError` naming the file."""
    file_name = dataset_dict.get("file_name")
    try:
        utils.check_image_size(dataset_dict, image)
    except utils.SizeMismatchError as e:
        h, w = image.shape[:2]
        exp_h, exp_w = dataset_dict["height"], dataset_dict["width"]
        hint = " (width and height swapped: EXIF orientation?)" if (h, w) == (exp_w, exp_h) else ""
        raise BadSampleError(
            f"{file_name}: image is {w}x{h} (WxH) but the dataset dict says "
            f"{exp_w}x{exp_h}{hint}", file_name) from e


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

    * ``part_seg`` ``[H, W]`` long, part ids, ``ignore_value`` outside the (padded/rotated) image
      and on unlabelled people (the dict's ``ignore_rles``);
    * ``instance_seg`` ``[H, W]`` long, person index + 1;
    * ``dspf`` ``[2, h, w]`` / ``dspf_weight`` ``[h, w]``: offset from each person pixel to the
      nearest visible joint of the same person (input pixels) and its validity;
    * ``keypoint_heatmaps`` ``[K, h, w]``, ``keypoint_offsets`` ``[K, 2, h, w]``,
      ``keypoint_offset_weights`` ``[K, h, w]``: disk targets of radius ``keypoint_radius``;
    * ``limb_heatmaps`` ``[L, h, w]``: elliptical Gaussians of minor std ``limb_sigma``;
    * ``instances``: ``gt_keypoints`` (``[P, K, 3]``) and ``gt_boxes`` (tight boxes of the
      visible pixels, or of the visible joints for people with no pixel left).

    ``h, w = ceil(H / stride), ceil(W / stride)``. Horizontal flips swap left/right part labels
    and joint types via the schema; with ``side_labels="camera"`` (``MODEL.DSPF.SIDE_LABELS``) so do
    the people facing away (their part labels, keypoint types and hence limbs). Test mode returns
    only the (resized) ``image`` with the dict's metadata.

    Bad samples (``DATALOADER.BAD_SAMPLES``): every problem of a sample's files (missing,
    corrupt or truncated image, image size different from the dict's ``height``/``width``,
    unreadable part PNG, part map of the wrong size, part ids out of range, bad RLEs, keypoints
    of the wrong length) raises a :class:`BadSampleError` naming the file and the problem
    (:class:`MissingSampleFileError`, also a ``FileNotFoundError``, for a missing file). With
    ``bad_samples="skip"`` the *training* mapper instead logs a warning naming the file, counts
    it in :attr:`num_skipped` (process-local: each ``DataLoader`` worker has its own copy; a
    summary is logged every :attr:`SKIP_LOG_PERIOD` skips) and returns ``None``, on which
    :class:`dspf_parser.data.build.SkippingMapDataset` maps another, randomly drawn sample. The test mapper always
    raises (skipping would silently change the evaluated set). Not errors: joints outside the
    image (they become invisible), people without visible joints (no DSPF weight), images
    without people (all-background targets).
    """

    #: A summary of the skipped samples is logged every this many skips.
    SKIP_LOG_PERIOD = 100

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
        bad_samples: str = "error",
        side_labels: str = "anatomical",
    ):
        if bad_samples not in BAD_SAMPLE_POLICIES:
            raise ValueError(f"DATALOADER.BAD_SAMPLES must be one of {BAD_SAMPLE_POLICIES}, got {bad_samples!r}")
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.schema = schema
        self.stride = stride
        self.keypoint_radius = keypoint_radius
        self.limb_sigma = limb_sigma
        self.ignore_value = ignore_value
        self._part_flip_lut = np.asarray(schema.part_flip, dtype=np.uint8)
        if side_labels not in SIDE_LABELS:
            raise ValueError(f"MODEL.DSPF.SIDE_LABELS must be one of {SIDE_LABELS}, got {side_labels!r}")
        #: With ``side_labels="camera"``, the layout that finds the people facing away.
        self.side_layout = SideLayout.of(schema, side_labels) if side_labels == "camera" else None
        self.bad_samples = bad_samples
        #: Samples skipped by this mapper in this process (``bad_samples="skip"``).
        self.num_skipped = 0
        self._num_calls = 0

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        if is_train:
            check_train_input_keys(cfg)
        return {
            "is_train": is_train,
            "augmentations": build_augmentations(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
            "schema": get_schema(cfg.MODEL.DSPF.SCHEMA),
            "stride": cfg.MODEL.DSPF.COMMON_STRIDE,
            "keypoint_radius": cfg.MODEL.DSPF.POSE_HEAD.KEYPOINT_RADIUS,
            "limb_sigma": cfg.MODEL.DSPF.POSE_HEAD.LIMB_SIGMA,
            "ignore_value": cfg.MODEL.DSPF.PART_HEAD.IGNORE_VALUE,
            "bad_samples": cfg.DATALOADER.BAD_SAMPLES,
            "side_labels": cfg.MODEL.DSPF.SIDE_LABELS,
        }

    def __call__(self, dataset_dict: Dict) -> Optional[Dict]:
        self._num_calls += 1
        try:
            return self._map(dataset_dict)
        except BadSampleError as e:
            if not self.is_train or self.bad_samples == "error":
                raise
            self._skip(dataset_dict, e)
            return None

    def _skip(self, dataset_dict: Dict, error: BadSampleError) -> None:
        self.num_skipped += 1
        logger.warning("Skipping bad sample %s (DATALOADER.BAD_SAMPLES=skip): %s",
                       error.file_name or dataset_dict.get("file_name"), error)
        if self.num_skipped % self.SKIP_LOG_PERIOD == 0:
            logger.warning("%d bad samples skipped so far in this process (%d samples mapped)",
                           self.num_skipped, self._num_calls)

    def _load_annotations(self, dataset_dict: Dict):
        image = dataset_dict.get("file_name")
        try:
            return load_human_annotations(dataset_dict, self.schema.num_parts, self.schema.num_keypoints)
        except BadSampleError:
            raise
        except (ValueError, OSError) as e:
            # The readers' messages name the offending part PNG; remember which one it is.
            culprit = next((a["parsing_file"] for a in dataset_dict.get("annotations", [])
                            if isinstance(a, dict) and a.get("parsing_file") and str(a["parsing_file"]) in str(e)),
                           image)
            kind = MissingSampleFileError if isinstance(e, FileNotFoundError) else BadSampleError
            raise kind(f"{e} [sample {image}]", culprit) from e

    def _map(self, dataset_dict: Dict) -> Dict:
        dataset_dict = copy.deepcopy(dataset_dict)
        image = read_image_checked(dataset_dict["file_name"], self.image_format)
        _check_image_size(dataset_dict, image)
        if not self.is_train:
            dataset_dict.pop("annotations", None)
            aug_input = T.AugInput(image)
            self.augmentations(aug_input)
            dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
            return dataset_dict

        gt = self._load_annotations(dataset_dict)
        aug_input = T.AugInput(image, sem_seg=gt.part_map)
        transforms = self.augmentations(aug_input)
        image, part_map = aug_input.image, aug_input.sem_seg
        h, w = image.shape[:2]
        instance_map = transforms.apply_segmentation(gt.instance_map)
        # Pixels whose part label is trusted: inside the (rotated, padded) image and not on an
        # unlabelled person (the dict's ignore_rles). Marked SCORED (1) against UNSCORED (2), so
        # whatever value an augmentation fills new pixels with (0 for rotations and for
        # detectron2 0.6's padding, 255 for main's FixedSizeCrop default) reads as unscored
        # and the padded part and instance values are never used.
        scored = np.full_like(gt.part_map, _SCORED)
        if gt.ignore_mask is not None:
            scored[gt.ignore_mask & (gt.instance_map == 0)] = _UNSCORED
        scored = transforms.apply_segmentation(scored) == _SCORED
        part_map = np.where(scored, part_map, 0)
        if count_horizontal_flips(transforms) % 2 == 1:
            part_map = self._part_flip_lut[part_map]
        part_map = np.where(scored, part_map, self.ignore_value).astype(np.int64)
        instance_map = np.where(scored, instance_map, 0).astype(np.int64)
        keypoints = transform_keypoints(gt.keypoints, transforms, (h, w), list(self.schema.keypoint_flip))
        if self.side_layout is not None:
            part_map, keypoints = self._camera_sides(gt, part_map, instance_map, keypoints)

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

    def _camera_sides(self, gt, part_map: np.ndarray, instance_map: np.ndarray,
                      keypoints: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``MODEL.DSPF.SIDE_LABELS camera``: the people facing away (by the face and hair pixels
        of their annotation, :func:`person_facing` as the decoding judges them) exchange left
        and right in ``part_map`` ``[H, W]`` and ``keypoints`` ``[P, K, 3]`` (after the
        augmentation; facing is unchanged by it)."""
        layout = self.side_layout
        num_people = keypoints.shape[0]
        facing = person_facing(torch.from_numpy(gt.part_map.astype(np.int64).ravel()),
                               torch.from_numpy(gt.instance_map.astype(np.int64).ravel()), None, num_people, layout)
        away = np.concatenate([[False], (facing < 0).numpy()])  # by instance id
        flip = away[instance_map] & (part_map != self.ignore_value)
        part_map = np.where(flip, np.asarray(layout.part_mate)[np.where(flip, part_map, 0)], part_map)
        keypoints = np.where(away[1:, None, None], keypoints[:, list(layout.keypoint_mate)], keypoints)
        return part_map, keypoints

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
