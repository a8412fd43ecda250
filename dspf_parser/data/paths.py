"""Where datasets live on disk (pure Python)."""
import os

__all__ = ["datasets_root"]


def datasets_root() -> str:
    """``$DETECTRON2_DATASETS``, defaulting to ``datasets`` as detectron2's builtin datasets do."""
    return os.environ.get("DETECTRON2_DATASETS", "datasets")
