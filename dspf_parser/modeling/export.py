"""Export of the network (backbone + heads) to TorchScript or ONNX, without the decoding.

:class:`DSPFMapsExporter` wraps the modules of a :class:`DSPFParser` into one ``nn.Module``
that maps an image batch to the five maps of :data:`MAP_NAMES`, the probabilities
:func:`maps_of_batch` gives :func:`decode_maps`; :func:`parsing_maps_from_outputs` turns the
exported model's outputs back into the :class:`ParsingMaps` of one image, so the project's
decoding (Hough voting, limb scoring, matching, grouping, pixel assignment: host code with
scipy, not part of any exported graph) runs on them unchanged.
"""
from typing import Sequence, Tuple

import torch
from torch import nn

from ..ops.decoding import ParsingMaps
from .meta_arch import MAP_NAMES, DSPFParser, crop_maps, head_probabilities

__all__ = ["DSPFMapsExporter", "check_export_size", "parsing_maps_from_outputs"]


def check_export_size(height: int, width: int, size_divisibility: int) -> None:
    """Raise a ``ValueError`` unless ``(height, width)`` is an input size the exporter takes:
    both multiples of the backbone's ``size_divisibility`` (no padding happens inside), and not
    both equal to one such cell (the coarsest FPN level would be 1x1, on which GroupNorm fails;
    ``DSPFParser`` pads such inputs, the exported graph does not)."""
    cell = max(int(size_divisibility), 1)
    if height <= 0 or width <= 0 or height % cell or width % cell:
        raise ValueError(
            f"the exported model takes inputs of height and width multiples of the backbone's "
            f"size_divisibility {cell}, got {height}x{width}: pad the image (bottom/right, with "
            f"MODEL.PIXEL_MEAN) as DSPFParser does"
        )
    if cell > 1 and height == cell and width == cell:
        raise ValueError(f"input {height}x{width} is a single backbone cell; use at least {cell}x{2 * cell}")


class DSPFMapsExporter(nn.Module):
    """Backbone + heads of a :class:`DSPFParser` as one module from images to probability maps.

    It holds the model's own backbone, part, field and pose heads (shared, not copied) and a
    copy of its ``pixel_mean`` / ``pixel_std``. ``forward`` runs exactly what
    :meth:`DSPFParser.predict_maps` runs before cropping: normalisation, backbone, heads and
    :func:`head_probabilities`. Put the model in eval mode before tracing (frozen or GroupNorm
    statistics, no training branches).

    Input: ``images`` ``[N, 3, H, W]``, the RAW images as ``DSPFParser`` takes them (the
    ``INPUT.FORMAT`` channel order, e.g. BGR, values 0-255, any real or integer dtype, cast to
    float here); the ``MODEL.PIXEL_MEAN`` / ``MODEL.PIXEL_STD`` normalisation is inside. ``H``
    and ``W`` must be multiples of the backbone's ``size_divisibility`` (32 for ResNet-FPN):
    nothing is padded inside, so for other sizes pad the raw image bottom/right with the pixel
    mean (that is the zero padding of the normalised image ``DSPFParser`` applies) and crop the
    maps with :func:`parsing_maps_from_outputs` to the unpadded size. Checked when run eagerly
    (:func:`check_export_size`), not inside a traced graph.

    Output, with ``h, w = H / s, W / s`` at the heads' stride ``s`` (4), in :data:`MAP_NAMES`
    order: ``part_probs`` ``[N, C, h, w]`` (softmax), ``dspf`` ``[N, 2, h, w]`` (input pixels),
    ``heatmaps`` ``[N, K, h, w]`` (sigmoid), ``offsets`` ``[N, K, 2, h, w]`` (input pixels),
    ``limb_heatmaps`` ``[N, L, h, w]`` (sigmoid).
    """

    def __init__(self, model: DSPFParser):
        super().__init__()
        self.backbone = model.backbone
        self.part_head = model.part_head
        self.field_head = model.field_head
        self.pose_head = model.pose_head
        self.register_buffer("pixel_mean", model.pixel_mean.detach().clone(), False)
        self.register_buffer("pixel_std", model.pixel_std.detach().clone(), False)
        #: Stride ``s`` of the output maps.
        self.output_stride: int = model.output_stride
        #: The input's height and width must be multiples of this.
        self.size_divisibility: int = model.backbone.size_divisibility

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if not (torch.jit.is_tracing() or torch.jit.is_scripting()):
            if images.dim() != 4 or images.shape[1] != 3:
                raise ValueError(f"images must be [N, 3, H, W], got {tuple(images.shape)}")
            check_export_size(images.shape[-2], images.shape[-1], self.size_divisibility)
        x = (images.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std
        features = self.backbone(x)
        return head_probabilities(self.part_head(features), self.field_head(features), self.pose_head(features))


def parsing_maps_from_outputs(outputs: Sequence[torch.Tensor], image_size: Tuple[int, int], stride: int,
                              index: int = 0) -> ParsingMaps:
    """The :class:`ParsingMaps` of one image from the outputs of an exported
    :class:`DSPFMapsExporter` (TorchScript tensors, or ONNX Runtime's numpy arrays).

    Args:
        outputs: the five batched maps ``[N, ..., h, w]`` in :data:`MAP_NAMES` order.
        image_size: ``(H, W)`` of the image before any padding to the export size; the maps
            are cropped to its grid ``ceil(H / s) x ceil(W / s)``. Pass this as ``input_size``
            to :func:`decode_maps`.
        stride: the maps' stride ``s`` (``DSPFMapsExporter.output_stride``, the config's
            ``MODEL.DSPF.COMMON_STRIDE``).
        index: which image of the batch.
    """
    tensors = [o if isinstance(o, torch.Tensor) else torch.from_numpy(o) for o in outputs]
    return crop_maps(tensors, index, image_size, stride)
