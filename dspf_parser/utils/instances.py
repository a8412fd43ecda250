"""Reading fields of detectron2 ``Instances`` (or plain objects with the same attributes) as numpy."""
from typing import Any, Optional

import numpy as np

__all__ = ["instance_field", "to_numpy"]


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
