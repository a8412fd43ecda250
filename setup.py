"""dspf-parser: bottom-up instance-aware human part parsing for Detectron2.

Install with ``bash tools/setup_env.sh`` (sets up torch, detectron2 and the rest), or, in an
environment that already has torch and detectron2, ``pip install -e .``.
"""
import os
import re

from setuptools import find_packages, setup


def _version() -> str:
    init = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dspf_parser", "__init__.py")
    with open(init) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(
    name="dspf-parser",
    version=_version(),
    description="Dense-to-Sparse Projection Field human parser (Detectron2 extension)",
    packages=find_packages(include=["dspf_parser", "dspf_parser.*"]),
    python_requires=">=3.9",
    # detectron2 is not on PyPI: tools/setup_env.sh installs it (see README).
    install_requires=[
        "torch>=2.0",
        "torchvision",
        "numpy",
        "scipy",
        "opencv-python-headless",
        "pycocotools",
        "fvcore",
        "tqdm",
    ],
    # tools/export_model.py --format onnx (TorchScript export needs nothing more).
    extras_require={"export": ["onnx", "onnxruntime"]},
)
