"""The cached synthetic benchmark: splits generated once into the MHPv2 layout of the release
(:func:`dspf_parser.data.mhp_v2_layout.write_mhp_v2_sample`), a ``.complete`` marker recording
the generation parameters, and a file lock so concurrent callers generate a split once."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import zlib
from typing import Iterator, Optional, Sequence

import numpy as np

from .mhp_v2_layout import write_mhp_v2_sample
from .paths import datasets_root
from .synthetic import DEFAULT_HEIGHT_RANGE, SYNTHETIC_VERSION, generate_synthetic_image

__all__ = [
    "MARKER",
    "default_synthetic_root",
    "ensure_synthetic_split",
    "read_complete_marker",
    "synthetic_image_seed",
    "synthetic_split_params",
    "write_synthetic_split",
]

MARKER = ".complete"


# ----------------------------------------------------------------------------------------------
def synthetic_image_seed(seed: int, split: str, index: int) -> int:
    """Per-image generator seed: differs between splits and images, stable across runs."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(split.encode()), int(index)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> 1)


def synthetic_split_params(split: str, num_images: int, seed: int, image_size: Sequence[int],
                           max_people: int, min_people: int = 1,
                           height_range: Sequence[float] = DEFAULT_HEIGHT_RANGE) -> dict:
    """The parameters stored in (and compared against) a split's ``.complete`` marker."""
    return {
        "generator": "dspf_parser.data.synthetic",
        "generator_version": SYNTHETIC_VERSION,
        "split": split,
        "num_images": int(num_images),
        "seed": int(seed),
        "image_size": [int(image_size[0]), int(image_size[1])],
        "max_people": int(max_people),
        "min_people": int(min_people),
        "height_range": [float(height_range[0]), float(height_range[1])],
    }


def read_complete_marker(root: str, split: str) -> Optional[dict]:
    """Parameters in ``root/<split>/.complete``, or ``None`` if missing or unreadable."""
    path = os.path.join(root, split, MARKER)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _image_name(index: int) -> str:
    return f"{index + 1:06d}"


def write_synthetic_split(root: str, split: str, num_images: int, seed: int,
                          image_size: Sequence[int] = (128, 128), max_people: int = 4,
                          progress: bool = True, min_people: int = 1,
                          height_range: Sequence[float] = DEFAULT_HEIGHT_RANGE) -> str:
    """Generate ``num_images`` synthetic images into ``root`` in the MHPv2 layout.

    The split is built in a temporary folder next to the target and moved into place with
    renames (an existing ``root/<split>`` is replaced); ``root/<split>/.complete`` (the
    parameters as JSON) is written last, atomically, so its presence means the split and its
    list file are complete. Not safe for two concurrent writers of the same split: use
    :func:`ensure_synthetic_split` for that. ``min_people``, ``max_people`` and
    ``height_range`` are passed to :func:`generate_synthetic_image`. Returns ``root``.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be >= 1, got {num_images}")
    params = synthetic_split_params(split, num_images, seed, image_size, max_people, min_people, height_range)
    size = tuple(params["image_size"])
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{split}.tmp-", dir=root)
    try:
        names = []
        iterator = range(num_images)
        if progress:
            from tqdm import tqdm
            iterator = tqdm(iterator, desc=f"synthetic {split}", unit="img")
        for i in iterator:
            sample = generate_synthetic_image(synthetic_image_seed(seed, split, i), size, max_people, min_people,
                                              tuple(params["height_range"]))
            name = _image_name(i)
            write_mhp_v2_sample(tmp, split, name, sample)
            names.append(name)
        os.makedirs(os.path.join(tmp, "list"), exist_ok=True)
        with open(os.path.join(tmp, "list", f"{split}.txt"), "w") as f:
            f.write("".join(n + "\n" for n in names))

        target = os.path.join(root, split)
        old = None
        if os.path.lexists(target):
            old = tempfile.mkdtemp(prefix=f".{split}.old-", dir=root)
            os.rename(target, os.path.join(old, split))
        os.rename(os.path.join(tmp, split), target)
        os.makedirs(os.path.join(root, "list"), exist_ok=True)
        os.replace(os.path.join(tmp, "list", f"{split}.txt"), os.path.join(root, "list", f"{split}.txt"))
        marker_tmp = os.path.join(tmp, MARKER)
        with open(marker_tmp, "w") as f:
            json.dump(params, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(marker_tmp, os.path.join(target, MARKER))
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def default_synthetic_root() -> str:
    """``$DSPF_SYNTHETIC_ROOT``, else ``$DETECTRON2_DATASETS/synthetic_humans`` (default
    ``datasets/synthetic_humans``)."""
    env = os.environ.get("DSPF_SYNTHETIC_ROOT")
    if env:
        return env
    return os.path.join(datasets_root(), "synthetic_humans")


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _is_current(root: str, split: str, params: dict) -> bool:
    return (read_complete_marker(root, split) == params
            and os.path.isfile(os.path.join(root, "list", f"{split}.txt")))


def ensure_synthetic_split(split: str, num_images: int, seed: int,
                           image_size: Sequence[int] = (128, 128), max_people: int = 4,
                           root: Optional[str] = None, progress: bool = True, min_people: int = 1,
                           height_range: Sequence[float] = DEFAULT_HEIGHT_RANGE) -> str:
    """Make sure ``root/<split>`` holds the synthetic split for these parameters.

    Generates it only if the ``.complete`` marker is missing or records other parameters
    (including :data:`SYNTHETIC_VERSION`). Concurrent callers (processes or threads) serialise
    on an ``fcntl`` lock file ``root/.<split>.lock``; the first one generates, the others find
    the marker afterwards and return at once.

    Returns:
        The dataset root (the folder holding ``list/`` and ``<split>/``), i.e. what
        :func:`load_mhp_v2_split` takes together with ``split``.
    """
    root = root if root is not None else default_synthetic_root()
    params = synthetic_split_params(split, num_images, seed, image_size, max_people, min_people, height_range)
    if _is_current(root, split, params):
        return root
    os.makedirs(root, exist_ok=True)
    with _locked(os.path.join(root, f".{split}.lock")):
        if not _is_current(root, split, params):
            write_synthetic_split(root, split, num_images, seed, image_size, max_people,
                                  progress=progress, min_people=min_people, height_range=height_range)
    return root
