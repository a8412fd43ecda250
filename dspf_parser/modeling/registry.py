"""Registries of dspf-parser's heads, so other projects can swap or reuse one by name.

Each registered object is a ``torch.nn.Module`` class built as ``cls(cfg, input_shape)`` where
``input_shape`` is the backbone's ``Dict[str, ShapeSpec]``.
"""
from detectron2.utils.registry import Registry

__all__ = ["PART_HEAD_REGISTRY", "FIELD_HEAD_REGISTRY", "POSE_HEAD_REGISTRY", "MATCHING_REGISTRY"]

PART_HEAD_REGISTRY = Registry("DSPF_PART_HEAD")
PART_HEAD_REGISTRY.__doc__ = "Category-level part segmentation heads (cfg.MODEL.DSPF.PART_HEAD.NAME)."

FIELD_HEAD_REGISTRY = Registry("DSPF_FIELD_HEAD")
FIELD_HEAD_REGISTRY.__doc__ = "Dense-to-Sparse Projection Field heads (cfg.MODEL.DSPF.FIELD_HEAD.NAME)."

POSE_HEAD_REGISTRY = Registry("DSPF_POSE_HEAD")
POSE_HEAD_REGISTRY.__doc__ = "Bottom-up pose heads (cfg.MODEL.DSPF.POSE_HEAD.NAME)."

MATCHING_REGISTRY = Registry("DSPF_MATCHING")
MATCHING_REGISTRY.__doc__ = """Joint association layers (cfg.MODEL.DSPF.MATCHING.NAME).

Built as ``cls(cfg)``; ``forward(scores [B, N, M], valid [B, N, M]) -> X [B, N, M]`` relaxed
assignments (differentiable)."""
