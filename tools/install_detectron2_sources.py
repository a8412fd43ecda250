"""Install detectron2's Python sources from the ``pb1-detectron2`` source distribution.

Usage: ``python tools/install_detectron2_sources.py pb1-detectron2-0.6.tar.gz``

The distribution carries upstream detectron2 0.6 without its C++/CUDA sources, so its own
``setup.py`` cannot build. This script stages the pure-Python packages exactly as upstream's
``setup.py`` lays them out (``detectron2`` with its model-zoo configs, plus the projects that
upstream installs as ``detectron2.projects.*``), adds ``tools/detectron2_c_placeholder.py`` as
``detectron2/_C.py``, and pip-installs the result as the distribution ``detectron2==0.6``.
Dependencies are installed by ``requirements.txt``, not here.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

PROJECTS = {
    "point_rend": "projects/PointRend/point_rend",
    "deeplab": "projects/DeepLab/deeplab",
    "panoptic_deeplab": "projects/Panoptic-DeepLab/panoptic_deeplab",
}

SETUP_PY = """
from setuptools import find_packages, setup
setup(
    name="detectron2",
    version="0.6",
    description="detectron2 0.6 Python sources (no native extension), from pb1-detectron2",
    packages=find_packages(include=["detectron2", "detectron2.*"]),
    package_data={"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]},
    python_requires=">=3.7",
)
"""


def main(sdist: str) -> None:
    if not os.path.isfile(sdist):
        sys.exit(f"install_detectron2_sources: {sdist}: no such file")
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as work:
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        roots = [d for d in os.listdir(work) if os.path.isdir(os.path.join(work, d))]
        if len(roots) != 1 or not os.path.isdir(os.path.join(work, roots[0], "detectron2")):
            sys.exit(f"install_detectron2_sources: {sdist}: no detectron2/ package inside")
        src = os.path.join(work, roots[0])
        stage = os.path.join(work, "stage")
        shutil.copytree(os.path.join(src, "detectron2"), os.path.join(stage, "detectron2"))
        if not os.path.isdir(os.path.join(stage, "detectron2", "model_zoo", "configs")):
            sys.exit(f"install_detectron2_sources: {sdist}: model-zoo configs missing")
        for name, rel in PROJECTS.items():
            target = os.path.join(stage, "detectron2", "projects", name)
            if os.path.isdir(os.path.join(src, rel)) and not os.path.isdir(target):
                shutil.copytree(os.path.join(src, rel), target)
        native = [f for f in os.listdir(os.path.join(stage, "detectron2")) if f.startswith("_C")]
        if native:
            sys.exit(f"install_detectron2_sources: {sdist} already has {native}; install it normally")
        shutil.copy(
            os.path.join(here, "detectron2_c_placeholder.py"),
            os.path.join(stage, "detectron2", "_C.py"),
        )
        with open(os.path.join(stage, "setup.py"), "w") as f:
            f.write(SETUP_PY)
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", stage]
        )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
