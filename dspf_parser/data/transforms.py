"""Augmentations of the paper (flip, scale 0.5-2, rotation +-10 degrees, colour jitter, crop)."""
import inspect
from typing import List, Tuple

import numpy as np
from detectron2.data import transforms as T

__all__ = ["RandomScaleFactor", "RandomSaturationOf", "build_augmentations", "count_horizontal_flips", "fixed_size_crop"]


class RandomScaleFactor(T.Augmentation):
    """Rescale the image by a factor ``s`` drawn uniformly from ``[min_scale, max_scale]``
    (the paper's "scaling in range of [0.5, 2]"): an ``H x W`` image becomes
    ``round(s H) x round(s W)``, whatever its size. (detectron2's ``ResizeScale`` instead fits the
    image into a ``s * target`` box, so its factor depends on the image size.)
    """

    def __init__(self, min_scale: float, max_scale: float):
        super().__init__()
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"INPUT.DSPF.SCALE_RANGE must be 0 < min <= max, got ({min_scale}, {max_scale})")
        self.min_scale, self.max_scale = min_scale, max_scale

    def get_transform(self, image: np.ndarray) -> T.Transform:
        h, w = image.shape[:2]
        s = float(np.random.uniform(self.min_scale, self.max_scale))
        return T.ResizeTransform(h, w, max(1, int(round(s * h))), max(1, int(round(s * w))))


class RandomSaturationOf(T.Augmentation):
    """Saturation jitter for an image in channel order ``image_format`` ("BGR" or "RGB"):
    ``image * a + gray * (1 - a)`` with ``a ~ U[low, high]`` and the luma weights
    (0.299 R + 0.587 G + 0.114 B) applied to the right channels (detectron2's
    ``RandomSaturation`` assumes RGB)."""

    def __init__(self, low: float, high: float, image_format: str):
        super().__init__()
        if image_format not in ("BGR", "RGB"):
            raise ValueError(f"saturation jitter needs INPUT.FORMAT BGR or RGB, got {image_format!r}")
        self.low, self.high = low, high
        self.weights = np.array([0.114, 0.587, 0.299] if image_format == "BGR" else [0.299, 0.587, 0.114])

    def get_transform(self, image: np.ndarray) -> T.Transform:
        a = np.random.uniform(self.low, self.high)
        gray = image.dot(self.weights)[:, :, None]
        return T.BlendTransform(src_image=gray, src_weight=1 - a, dst_weight=a)


def fixed_size_crop(crop_size: Tuple[int, int], pad_value: float = 0.0, seg_pad_value: int = 0) -> T.FixedSizeCrop:
    """``T.FixedSizeCrop(crop_size, pad=True)`` with both padding values given explicitly.

    detectron2's default segmentation padding changed between versions: 0.6 pads every
    segmentation with 0 (its ``FixedSizeCrop`` has no ``seg_pad_value``), main (since PR #4203)
    pads with ``seg_pad_value=255``. The mapper pads the part map, the instance map and its
    "scored" mask with the same value and turns unscored pixels into the ignore value itself,
    so the instance map must be padded with 0 (no person) on every version; this passes
    ``seg_pad_value`` where the argument exists and otherwise checks that the version's fixed
    behaviour (0) is the one asked for.

    Args:
        crop_size: output ``(height, width)``.
        pad_value: padding of the image.
        seg_pad_value: padding of every segmentation (``apply_segmentation``).

    Raises:
        ValueError: ``seg_pad_value != 0`` on a detectron2 whose ``FixedSizeCrop`` cannot take it.
    """
    crop_size = (int(crop_size[0]), int(crop_size[1]))
    if "seg_pad_value" in inspect.signature(T.FixedSizeCrop.__init__).parameters:
        return T.FixedSizeCrop(crop_size, pad=True, pad_value=pad_value, seg_pad_value=seg_pad_value)
    if seg_pad_value != 0:
        raise ValueError(f"this detectron2's FixedSizeCrop always pads segmentations with 0, "
                         f"seg_pad_value={seg_pad_value} is not possible")
    return T.FixedSizeCrop(crop_size, pad=True, pad_value=pad_value)


def build_augmentations(cfg, is_train: bool) -> List[T.Augmentation]:
    """Detectron2 augmentations for training (``INPUT.DSPF.*``) or testing (``INPUT.*_TEST``).

    Training sees the test-time size times a factor ``s`` from ``INPUT.DSPF.SCALE_RANGE``: the
    image is first resized as at test time (``ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST)``
    when ``MIN_SIZE_TEST > 0``, else kept), rescaled by ``s`` (:class:`RandomScaleFactor`),
    rotated, then cropped / padded to ``CROP_SIZE``, flipped and colour-jittered.
    """
    if not is_train:
        if cfg.INPUT.MIN_SIZE_TEST > 0:
            return [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)]
        return []
    aug = cfg.INPUT.DSPF
    crop_h, crop_w = aug.CROP_SIZE
    min_scale, max_scale = aug.SCALE_RANGE
    augs: List[T.Augmentation] = []
    if cfg.INPUT.MIN_SIZE_TEST > 0:  # scale factors relative to the test-time size
        augs.append(T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST))
    augs.append(RandomScaleFactor(min_scale, max_scale))
    if aug.ROTATION > 0:
        augs.append(T.RandomRotation([-aug.ROTATION, aug.ROTATION], expand=False, sample_style="range"))
    augs.append(fixed_size_crop((crop_h, crop_w), pad_value=0.0, seg_pad_value=0))
    if aug.FLIP_PROB > 0:
        augs.append(T.RandomFlip(prob=aug.FLIP_PROB, horizontal=True, vertical=False))
    if aug.COLOR_JITTER > 0:
        lo, hi = 1.0 - aug.COLOR_JITTER, 1.0 + aug.COLOR_JITTER
        augs += [T.RandomBrightness(lo, hi), T.RandomContrast(lo, hi), RandomSaturationOf(lo, hi, cfg.INPUT.FORMAT)]
    return augs


def count_horizontal_flips(transforms: T.TransformList) -> int:
    """Number of horizontal flips in ``transforms`` (odd = the image is mirrored)."""
    return sum(isinstance(t, T.HFlipTransform) for t in transforms.transforms)
