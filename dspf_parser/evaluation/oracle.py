"""Oracle maps: what a perfect network would output for an image, and realistic damage to them.

Pure torch (no detectron2). ``tools/oracle_eval.py`` builds :func:`oracle_maps` from the mapper's
targets of an image (no augmentation), optionally damages them with :func:`degrade_maps`, and
decodes them with the model's own :func:`dspf_parser.ops.decoding.decode_maps`, so the figures
measure the decoding alone. :func:`association_errors` counts, per limb, the true pairs the
decoded people miss and the cross-person pairs they contain.
"""
import math
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.decoding import ParsingMaps
from ..ops.targets import keypoint_targets

__all__ = ["DEGRADE_LEVELS", "DegradeSpec", "oracle_maps", "degrade_maps", "association_errors"]


def oracle_maps(sample: Dict, num_parts: int, ignore_value: int = 255) -> ParsingMaps:
    """The maps of a perfect network for one mapped training sample (``DSPFDatasetMapper``).

    Part probabilities are the one-hot ``part_seg`` at input resolution (``part_stride`` 1;
    ignored pixels count as background); the other maps are the sample's targets.
    """
    part = sample["part_seg"].clone()
    part[part == ignore_value] = 0
    probs = F.one_hot(part.long(), num_parts).permute(2, 0, 1).float()
    return ParsingMaps(
        part_probs=probs, dspf=sample["dspf"].float(), heatmaps=sample["keypoint_heatmaps"].float(),
        offsets=sample["keypoint_offsets"].float(), limb_heatmaps=sample["limb_heatmaps"].float(),
        part_stride=1,
    )


@dataclass(frozen=True)
class DegradeSpec:
    """Damage of one ``--degrade`` level (all distances in input pixels).

    Attributes:
        blur: std of the Gaussian blur of keypoint and limb heatmaps (grid cells).
        gain: heatmaps and limb maps are multiplied by this (weaker peaks).
        map_noise: std of the i.i.d. noise added to the heatmaps and limb maps (then clamped).
        offset_noise: std of the noise of the keypoint offsets.
        dspf_noise: std of the spatially smooth noise of the DSPF (smoothed over 3 cells).
        drop: fraction of the annotated joints removed from the keypoint heatmaps (missed).
        spurious: spurious keypoint blobs per joint type and image.
    """

    blur: float
    gain: float
    map_noise: float
    offset_noise: float
    dspf_noise: float
    drop: float
    spurious: int


#: The documented levels; 1 is the reference damage (a good trained network), reported next to
#: the exact maps (level 0, the default of ``tools/oracle_eval.py --degrade``) in the README.
DEGRADE_LEVELS: Dict[int, DegradeSpec] = {
    0: DegradeSpec(0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0),
    1: DegradeSpec(0.7, 0.8, 0.05, 1.5, 3.0, 0.05, 1),
    2: DegradeSpec(1.0, 0.6, 0.08, 3.0, 6.0, 0.10, 2),
    3: DegradeSpec(1.5, 0.5, 0.12, 4.5, 9.0, 0.20, 3),
}


def _blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``[C, h, w]`` (std ``sigma`` cells, zero padding)."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    y = F.conv2d(x[:, None], k.view(1, 1, 1, -1), padding=(0, r))
    return F.conv2d(y, k.view(1, 1, -1, 1), padding=(r, 0))[:, 0]


def degrade_maps(
    maps: ParsingMaps, keypoints: Tensor, image_size: Tuple[int, int], stride: int, radius: float,
    spec: DegradeSpec, generator: torch.Generator,
) -> ParsingMaps:
    """Realistic damage to exact maps, seeded by ``generator``.

    In order: a fraction ``spec.drop`` of the usable joints is removed from the keypoint
    heatmaps and offsets (rebuilt by :func:`keypoint_targets`); ``spec.spurious`` disks per type
    are added at random cells (pointing at their own centre); heatmaps and limb maps are blurred,
    scaled by ``gain``, noised and clamped to ``[0, 1]``; offsets get i.i.d. noise and the DSPF
    a smooth noise field. Part probabilities are kept.

    Args:
        maps: exact maps (:func:`oracle_maps`). keypoints: ``[P, K, 3]`` the sample's joints.
        image_size: ``(H, W)``. stride, radius: grid stride and keypoint disk radius.
    """
    g = generator
    heat, offsets = maps.heatmaps.clone(), maps.offsets.clone()
    if spec.drop > 0 and keypoints.numel():
        kp = keypoints.clone()
        dropped = torch.rand(kp.shape[:2], generator=g) < spec.drop
        kp[..., 2] = torch.where(dropped, torch.zeros(()), kp[..., 2])
        heat, offsets, _ = keypoint_targets(kp, image_size, stride, radius)
    num_types, h, w = heat.shape
    if spec.spurious > 0:
        fake = torch.rand(spec.spurious, num_types, 3, generator=g)  # one blob per type per row
        fake[..., 0] *= image_size[1] - 1
        fake[..., 1] *= image_size[0] - 1
        fake[..., 2] = 1.0
        fake_heat, fake_off, _ = keypoint_targets(fake, image_size, stride, radius)
        add = fake_heat > heat
        heat = torch.where(add, fake_heat, heat)
        offsets = torch.where(add[:, None], fake_off, offsets)

    def damage(x: Tensor) -> Tensor:
        x = _blur(x, spec.blur) * spec.gain
        if spec.map_noise > 0:
            x = x + spec.map_noise * torch.randn(x.shape, generator=g)
        return x.clamp(0, 1)

    offsets = offsets + spec.offset_noise * torch.randn(offsets.shape, generator=g)
    dspf = maps.dspf
    if spec.dspf_noise > 0:
        noise = _blur(torch.randn(dspf.shape, generator=g), 1.0)
        noise = noise / noise.std().clamp_min(1e-6)
        dspf = dspf + spec.dspf_noise * noise
    return ParsingMaps(maps.part_probs, dspf, damage(heat), offsets, damage(maps.limb_heatmaps), maps.part_stride)


def association_errors(
    pred: Tensor, gt: Tensor, limbs: Sequence[Tuple[int, int]], tolerance: float = 3.0
) -> Tuple[int, int, int]:
    """Limb association errors of decoded people against the annotation of one image.

    Every decoded joint is identified with the ground-truth person whose joint of the same type
    lies within ``tolerance`` px (the nearest; none if farther). Then, over all limbs:

    * ``true_pairs``: ground-truth limbs (both joints usable) whose two joints were both
      identified in decoded people;
    * ``missed``: those of them whose two joints are not in the same decoded person;
    * ``cross``: decoded limbs (both joints present in one decoded person) whose joints are
      identified with two different ground-truth people.

    Args:
        pred: ``[D, K, 3]`` decoded poses ``(x, y, score)``. gt: ``[G, K, 3]`` ``(x, y, v)``.

    Returns:
        ``(true_pairs, missed, cross)``.
    """
    if pred.shape[0] == 0 or gt.shape[0] == 0:
        return 0, 0, 0
    num_types = gt.shape[1]
    d = torch.cdist(pred[..., :2].transpose(0, 1), gt[..., :2].transpose(0, 1).to(pred.dtype))  # [K, D, G]
    usable = (pred[..., 2] > 0).t()[:, :, None] & (gt[..., 2] > 0).t()[:, None, :]
    d = torch.where(usable, d, torch.full_like(d, math.inf))
    best, who = d.min(dim=2)  # [K, D]
    ident = torch.where(best <= tolerance, who, torch.full_like(who, -1))  # [K, D] gt person or -1
    # For each gt person and type: which decoded person holds that joint (-1: none).
    holder = torch.full((num_types, gt.shape[0]), -1, dtype=torch.long)
    for k in range(num_types):
        for dp in range(pred.shape[0]):
            gp = int(ident[k, dp])
            if gp >= 0 and holder[k, gp] < 0:
                holder[k, gp] = dp
    true_pairs = missed = cross = 0
    for a, b in limbs:
        for gp in range(gt.shape[0]):
            if gt[gp, a, 2] > 0 and gt[gp, b, 2] > 0 and holder[a, gp] >= 0 and holder[b, gp] >= 0:
                true_pairs += 1
                missed += int(holder[a, gp] != holder[b, gp])
        for dp in range(pred.shape[0]):
            ia, ib = int(ident[a, dp]), int(ident[b, dp])
            if pred[dp, a, 2] > 0 and pred[dp, b, 2] > 0 and ia >= 0 and ib >= 0 and ia != ib:
                cross += 1
    return true_pairs, missed, cross
