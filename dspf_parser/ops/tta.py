"""Test-time augmentation on the maps: horizontal flip and rescaling to a common grid.

Pure torch (no detectron2). The network runs on each augmented input; its maps
(:class:`~dspf_parser.ops.decoding.ParsingMaps`, probabilities) are brought back to the grid of
the plain input (:func:`mirror_maps`, :func:`rescale_maps`), averaged (:func:`merge_maps`), and
the normal decoding (:func:`~dspf_parser.ops.decoding.decode_maps`) runs once on the result.

Flip geometry. Cell ``j`` of the stride-``s`` grid stands for input position ``s j + s // 2``
(:func:`~dspf_parser.ops.targets.grid_coordinates`). A plain mirror ``x -> W - 1 - x`` does not
map these positions onto each other for even ``s`` (cell centres land ``s // 2 - 1/2`` px off the
lattice), so :func:`flip_image` mirrors the image and prepends ``d`` columns
(:func:`flip_shift`) chosen such that ``x -> W - 1 + d - x`` maps cell centres onto cell centres:
cell ``j`` of the flipped input's grid is cell ``J - j`` of the plain one, with
``J = (W - 1 + d - 2 (s // 2)) / s``. The maps of the flipped input are then the mirrored maps
exactly: columns reversed about ``J``, left/right channels swapped, x-components negated.
"""
import math
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from .decoding import ParsingMaps
from .targets import resample_grid

__all__ = ["flip_image", "flip_shift", "limb_flip_permutation", "merge_maps", "mirror_maps", "rescale_maps"]


def limb_flip_permutation(limbs: Sequence[Tuple[int, int]], keypoint_flip: Sequence[int]) -> List[int]:
    """``perm[l]``: the limb a horizontal flip turns limb ``l`` into (its joints mirrored, in
    either order).

    Raises:
        ValueError: if a mirrored limb is not in ``limbs`` (the skeleton is not symmetric).
    """
    index = {}
    for l, (a, b) in enumerate(limbs):
        index[(a, b)] = index[(b, a)] = l
    perm = []
    for a, b in limbs:
        mirrored = (keypoint_flip[a], keypoint_flip[b])
        if mirrored not in index:
            raise ValueError(f"the mirror {mirrored} of limb {(a, b)} is not a limb of the skeleton")
        perm.append(index[mirrored])
    return perm


def flip_shift(width: int, stride: int) -> int:
    """Columns ``d`` in ``[0, s)`` that :func:`flip_image` prepends to the mirrored ``W``-wide
    image so that cell centres map onto cell centres: ``W - 1 + d - 2 (s // 2) = 0 (mod s)``."""
    return (2 * (stride // 2) + 1 - width) % stride


def flip_image(image: Tensor, stride: int, fill: Tensor) -> Tensor:
    """The mirrored image ``[C, H, W]`` with :func:`flip_shift` columns of ``fill`` ``[C]`` (e.g.
    the pixel mean, which normalises to detectron2's padding value 0) prepended: ``[C, H, W + d]``."""
    d = flip_shift(image.shape[-1], stride)
    pad = fill.to(image.dtype).view(-1, 1, 1).expand(image.shape[0], image.shape[1], d)
    return torch.cat([pad, image.flip(-1)], dim=-1)


def _mirror_columns(t: Tensor, image_width: int, head_stride: int, stride: int, out_width: int) -> Tensor:
    """Columns of ``t`` ``[..., h, w]`` (stride-``stride`` grid) mirrored about the flip axis of
    the head stride (module doc), onto the grid of an ``out_width``-wide input (indices clamped
    at the border)."""
    total = image_width - 1 + flip_shift(image_width, head_stride) - 2 * (stride // 2)
    if total % stride:
        raise ValueError(f"a stride-{stride} grid does not share the flip axis of the stride-{head_stride} "
                         f"grid (width {image_width})")
    cols = (total // stride - torch.arange(math.ceil(out_width / stride), device=t.device)).clamp(0, t.shape[-1] - 1)
    return t[..., cols]


def mirror_maps(
    maps: ParsingMaps, image_width: int, stride: int, out_width: int,
    part_flip: Sequence[int], keypoint_flip: Sequence[int], limb_flip: Sequence[int],
) -> ParsingMaps:
    """Maps of a ``W``-wide input expressed on the grid of its :func:`flip_image` (or back: the
    mirror is an involution), for an ``out_width``-wide target input (``W + d`` or ``W``).

    Left/right part, joint and limb channels are swapped by the permutations, the x-components of
    the keypoint offsets and of the DSPF negated.

    Args:
        maps: on the stride-``s`` grid (part probabilities on ``maps.part_stride``'s grid).
        image_width: ``W`` of the plain (un-mirrored) input: it fixes the mirror axis.
        stride: the heads' stride ``s``.
        out_width: width of the input whose grid the result is on.
        part_flip, keypoint_flip, limb_flip: channel permutations (``HumanSchema.part_flip``,
            ``keypoint_flip``, :func:`limb_flip_permutation`).
    """
    def cols(t: Tensor, s: int = stride) -> Tensor:
        return _mirror_columns(t, image_width, stride, s, out_width)

    sign = maps.dspf.new_tensor([-1.0, 1.0]).view(2, 1, 1)
    return ParsingMaps(
        part_probs=cols(maps.part_probs[list(part_flip)], maps.part_stride),
        dspf=cols(maps.dspf) * sign,
        heatmaps=cols(maps.heatmaps[list(keypoint_flip)]),
        offsets=cols(maps.offsets[list(keypoint_flip)]) * sign,
        limb_heatmaps=cols(maps.limb_heatmaps[list(limb_flip)]),
        part_stride=maps.part_stride,
    )


def rescale_maps(
    maps: ParsingMaps, stride: int, from_input_size: Tuple[int, int], to_input_size: Tuple[int, int]
) -> ParsingMaps:
    """Maps of an ``H x W`` input on the grid of an ``H2 x W2`` input of the same field of view
    (:func:`~dspf_parser.ops.targets.resample_grid`); offsets and DSPF are rescaled to the
    ``H2 x W2`` input's pixels."""
    (height, width), (to_h, to_w) = from_input_size, to_input_size
    scale = maps.dspf.new_tensor([to_w / width, to_h / height]).view(2, 1, 1)

    def grid(t: Tensor, s: int = stride) -> Tensor:
        return resample_grid(t, s, from_input_size, to_input_size)

    return ParsingMaps(
        part_probs=grid(maps.part_probs, maps.part_stride), dspf=grid(maps.dspf) * scale,
        heatmaps=grid(maps.heatmaps), offsets=grid(maps.offsets) * scale,
        limb_heatmaps=grid(maps.limb_heatmaps), part_stride=maps.part_stride,
    )


def merge_maps(maps: Sequence[ParsingMaps]) -> ParsingMaps:
    """The mean of maps on one grid (probabilities and vectors alike)."""
    if not maps:
        raise ValueError("merge_maps needs at least one set of maps")
    strides = {m.part_stride for m in maps}
    if len(strides) != 1:
        raise ValueError(f"maps on different part grids: strides {sorted(strides)}")
    first = maps[0]
    return first.map(lambda t: t) if len(maps) == 1 else ParsingMaps(
        **{name: torch.stack([getattr(m, name) for m in maps]).mean(0)
           for name in ("part_probs", "dspf", "heatmaps", "offsets", "limb_heatmaps")},
        part_stride=first.part_stride,
    )
