"""Test-time augmentation for :class:`DSPFParser`: flip and multi-scale, merged on the maps.

The counterpart of detectron2's ``GeneralizedRCNNWithTTA``, configured by the same keys:
``TEST.AUG.ENABLED`` (used by ``train_net.py``), ``TEST.AUG.MIN_SIZES`` (shortest edges of the
original image, each capped by ``TEST.AUG.MAX_SIZE``) and ``TEST.AUG.FLIP``.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from detectron2.data.transforms import ResizeShortestEdge
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..data.categories import get_schema
from ..ops.decoding import ParsingMaps
from ..ops.tta import flip_image, limb_flip_permutation, merge_maps, mirror_maps, rescale_maps
from .meta_arch import DSPFParser

__all__ = ["DSPFParserWithTTA"]


class DSPFParserWithTTA(nn.Module):
    """Runs the network on every scale of ``TEST.AUG.MIN_SIZES`` (and its mirror image with
    ``TEST.AUG.FLIP``), brings each set of maps back onto the grid of the model's plain test
    input (:func:`~dspf_parser.ops.tta.mirror_maps`, :func:`~dspf_parser.ops.tta.rescale_maps`),
    averages them, and decodes the merged maps once through the model's own
    :meth:`DSPFParser.maps_to_results` (the inference seam). Outputs have the format and size
    of the plain model's.
    """

    def __init__(self, cfg, model: nn.Module):
        super().__init__()
        if isinstance(model, DistributedDataParallel):
            model = model.module
        if not isinstance(model, DSPFParser):
            raise TypeError(f"DSPFParserWithTTA wraps a DSPFParser, got {type(model).__name__}")
        self.model = model
        self.min_sizes: Tuple[int, ...] = tuple(cfg.TEST.AUG.MIN_SIZES)
        self.max_size: int = cfg.TEST.AUG.MAX_SIZE
        self.flip: bool = cfg.TEST.AUG.FLIP
        schema = get_schema(cfg.MODEL.DSPF.SCHEMA)
        self.part_flip, self.keypoint_flip = list(schema.part_flip), list(schema.keypoint_flip)
        self.limb_flip = limb_flip_permutation(model.limbs, schema.keypoint_flip)

    def _sizes(self, x: Dict) -> List[Tuple[int, int]]:
        """Input sizes of the scales: the shortest edge of the original image set to each of
        ``MIN_SIZES`` (the plain input's size if there is none)."""
        h, w = x["image"].shape[-2:]
        orig_h, orig_w = x.get("height", h), x.get("width", w)
        if not self.min_sizes:
            return [(h, w)]
        return [ResizeShortestEdge.get_output_shape(orig_h, orig_w, size, self.max_size) for size in self.min_sizes]

    @torch.no_grad()
    def merged_maps(self, x: Dict) -> Tuple[ParsingMaps, Tuple[int, int]]:
        """The averaged maps of one input dict, on the grid of its plain ``image`` ``[3, H, W]``,
        and ``(H, W)``."""
        image = x["image"].to(self.model.device).float()
        base = tuple(image.shape[-2:])
        stride, fill = self.model.output_stride, self.model.pixel_mean.view(-1)
        maps = []
        for size in self._sizes(x):
            scaled = image if tuple(size) == base else F.interpolate(
                image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
            inputs = [{"image": scaled}]
            if self.flip:
                inputs.append({"image": flip_image(scaled, stride, fill)})
            out, sizes = self.model.predict_maps(inputs)
            if self.flip:
                out[1] = mirror_maps(out[1], size[1], stride, size[1],
                                     self.part_flip, self.keypoint_flip, self.limb_flip)
            maps += [m if tuple(size) == base else rescale_maps(m, stride, tuple(size), base) for m in out]
        return merge_maps(maps), base

    def forward(self, batched_inputs: List[Dict]) -> List[Dict]:
        results = []
        for x in batched_inputs:
            maps, size = self.merged_maps(x)
            results += self.model.maps_to_results([maps], [size], [x])
        return results
