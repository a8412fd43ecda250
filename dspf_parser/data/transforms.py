"""Augmentations of the paper (flip, scale 0.5-2, rotation +-10 degrees, colour jitter, crop)."""
import inspect
from typing import List, Tuple

from detectron2.data import transforms as T

__all__ = ["build_augmentations", "count_horizontal_flips", "fixed_size_crop"]


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
    """Detectron2 augmentations for training (``INPUT.DSPF.*``) or testing (``INPUT.*_TEST``)."""
    if not is_train:
        if cfg.INPUT.MIN_SIZE_TEST > 0:
            return [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)]
        return []
    aug = cfg.INPUT.DSPF
    crop_h, crop_w = aug.CROP_SIZE
    min_scale, max_scale = aug.SCALE_RANGE
    augs: List[T.Augmentation] = [T.ResizeScale(min_scale, max_scale, crop_h, crop_w)]
    if aug.ROTATION > 0:
        augs.append(T.RandomRotation([-aug.ROTATION, aug.ROTATION], expand=False, sample_style="range"))
    augs.append(fixed_size_crop((crop_h, crop_w), pad_value=0.0, seg_pad_value=0))
    if aug.FLIP_PROB > 0:
        augs.append(T.RandomFlip(prob=aug.FLIP_PROB, horizontal=True, vertical=False))
    if aug.COLOR_JITTER > 0:
        lo, hi = 1.0 - aug.COLOR_JITTER, 1.0 + aug.COLOR_JITTER
        augs += [T.RandomBrightness(lo, hi), T.RandomContrast(lo, hi), T.RandomSaturation(lo, hi)]
    return augs


def count_horizontal_flips(transforms: T.TransformList) -> int:
    """Number of horizontal flips in ``transforms`` (odd = the image is mirrored)."""
    return sum(isinstance(t, T.HFlipTransform) for t in transforms.transforms)
