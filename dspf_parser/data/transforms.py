"""Augmentations of the paper (flip, scale 0.5-2, rotation +-10 degrees, colour jitter, crop)."""
from typing import List

from detectron2.data import transforms as T

__all__ = ["build_augmentations", "count_horizontal_flips"]


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
    augs.append(T.FixedSizeCrop((crop_h, crop_w), pad=True, pad_value=0))
    if aug.FLIP_PROB > 0:
        augs.append(T.RandomFlip(prob=aug.FLIP_PROB, horizontal=True, vertical=False))
    if aug.COLOR_JITTER > 0:
        lo, hi = 1.0 - aug.COLOR_JITTER, 1.0 + aug.COLOR_JITTER
        augs += [T.RandomBrightness(lo, hi), T.RandomContrast(lo, hi), T.RandomSaturation(lo, hi)]
    return augs


def count_horizontal_flips(transforms: T.TransformList) -> int:
    """Number of horizontal flips in ``transforms`` (odd = the image is mirrored)."""
    return sum(isinstance(t, T.HFlipTransform) for t in transforms.transforms)
