"""Reading fields of detectron2 ``Instances`` (or plain objects with the same attributes) as numpy."""
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

__all__ = ["PeopleArrays", "instance_field", "people_arrays", "to_numpy"]


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def instance_field(instances: Any, name: str) -> Optional[np.ndarray]:
    """Field ``name`` of ``instances`` as numpy (``Boxes`` give their ``[N, 4]`` tensor), or
    ``None`` when it is absent."""
    if hasattr(instances, "has"):
        if not instances.has(name):
            return None
        value = instances.get(name)
    else:
        value = getattr(instances, name, None)
        if value is None:
            return None
    if hasattr(value, "tensor"):  # detectron2 Boxes
        value = value.tensor
    return to_numpy(value)


@dataclass
class PeopleArrays:
    """The fields of a parsing output, as numpy; ``None`` for a field the instances lack.

    Attributes:
        num: number of people (0 for an ``Instances`` without fields).
        scores: ``[P]`` float32 (all 1 when the instances carry no scores).
        parts: ``[P, H, W]`` part ids; masks: ``[P, H, W]``; keypoints: ``[P, K, 3]``;
        boxes: ``[P, 4]``.
    """

    num: int
    scores: np.ndarray
    parts: Optional[np.ndarray]
    masks: Optional[np.ndarray]
    keypoints: Optional[np.ndarray]
    boxes: Optional[np.ndarray]


def people_arrays(instances: Any) -> PeopleArrays:
    """The people of ``instances`` (``pred_parts``, ``pred_masks``, ``pred_keypoints``,
    ``pred_boxes``, ``scores``) as :class:`PeopleArrays`."""
    num = 0 if hasattr(instances, "get_fields") and not instances.get_fields() else len(instances)
    scores = instance_field(instances, "scores")
    return PeopleArrays(
        num,
        np.ones(num, np.float32) if scores is None else scores.astype(np.float32),
        instance_field(instances, "pred_parts"),
        instance_field(instances, "pred_masks"),
        instance_field(instances, "pred_keypoints"),
        instance_field(instances, "pred_boxes"),
    )
