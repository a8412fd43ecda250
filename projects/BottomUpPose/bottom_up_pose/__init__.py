"""A bottom-up multi-person pose estimator built from dspf-parser's registered components.

It shows how another detectron2 project reuses dspf-parser: ``add_dspf_config`` for the keys,
``POSE_HEAD_REGISTRY`` for the pose head and ``MATCHING_REGISTRY`` for the differentiable
matching layer, with dspf-parser's mapper and decoding ops.
"""
from .meta_arch import BottomUpPoseNet

__all__ = ["BottomUpPoseNet"]
