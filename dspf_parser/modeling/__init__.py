from .field_head import FIELD_MODES, ProjectionFieldHead, build_field_head
from .loss_balancing import FixedLossBalancer, UncertaintyLossBalancer, build_loss_balancer
from .matching_layer import LPMatchingLayer, build_matching_layer
from .meta_arch import DSPFParser
from .part_head import PartSegmentationHead, build_part_head
from .pose_head import PoseHead, PoseMaps, build_pose_head
from .registry import FIELD_HEAD_REGISTRY, MATCHING_REGISTRY, PART_HEAD_REGISTRY, POSE_HEAD_REGISTRY

__all__ = [
    "DSPFParser", "FIELD_HEAD_REGISTRY", "FIELD_MODES", "FixedLossBalancer", "LPMatchingLayer",
    "MATCHING_REGISTRY", "PART_HEAD_REGISTRY",
    "POSE_HEAD_REGISTRY", "PartSegmentationHead", "PoseHead", "PoseMaps", "ProjectionFieldHead",
    "UncertaintyLossBalancer", "build_field_head", "build_loss_balancer", "build_part_head",
    "build_matching_layer", "build_pose_head",
]
