"""Placeholder for ``detectron2._C`` in a detectron2 installed without its native extension.

``tools/setup_env.sh`` installs this file as ``detectron2/_C.py`` *inside* a detectron2 copy
built from the registry's Python-only source distribution, and only there: a detectron2 built
from source keeps its real ``_C`` extension. Because it is part of the installed detectron2
package, it works whatever the import order.

It answers the version queries that ``detectron2.engine.default_setup`` and
``detectron2.utils.collect_env`` make; every native operator (deformable convolution, rotated
box IoU, the C++ COCO evaluation, ...) raises an ``ImportError`` that says what is missing.
"""
import torch

DSPF_PLACEHOLDER = True


def get_compiler_version() -> str:
    return "none (detectron2 installed without its native extension)"


def get_cuda_version() -> str:
    return "none (detectron2 installed without its native extension)"


def has_cuda() -> bool:
    return False


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise ImportError(
        f"detectron2._C.{name} is unavailable: this detectron2 was installed from Python "
        "sources without its native extension (see the dspf-parser README). Build detectron2 "
        f"from source to use native operators (torch {torch.__version__})."
    )
