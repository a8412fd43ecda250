"""Reader and writer of the LV-MHP-v2 on-disk layout (numpy, cv2, scipy.io; no detectron2).

Layout (``root`` is the folder holding ``list/`` and the split folders)::

    root/list/<split>.txt                       one image name per line (no extension)
    root/<split>/images/<name>.jpg
    root/<split>/parsing_annos/<name>_<N>_<k>.png   one per person, k = 1..N (1-based),
                                                N = number of persons in the image
    root/<split>/pose_annos/<name>.mat
    root/<split>/.complete                      synthetic data only: generation parameters (JSON)

Parsing PNGs are single-channel 8-bit images of the image size whose values are the MHPv2 part
ids (0..58) on that person's pixels and 0 elsewhere. (The reader of pixel data,
:func:`read_person_maps`, also accepts 3-channel PNGs whose channels are equal, or whose label
sits in a single non-zero channel.)

Pose ``.mat`` structure (as in the official LV-MHP-v2 release: one MATLAB struct per image read
with ``scipy.io.loadmat``; this is the structure written here and the one the reader accepts):

* one variable per person, named ``person_<i>`` with a **0-based** ``i`` (``person_0`` ...
  ``person_<N-1>``); ``person_<i>`` belongs to the parsing PNG ``<name>_<N>_<i+1>.png`` and to
  the record's ``person_id = i + 1``. Variables whose names start with ``__`` (``__header__``,
  ``__version__``, ``__globals__``) are ignored; any other variable is an error;
* each ``person_<i>`` is a ``20 x 3`` numeric array (float32 when written here), rows:

  - ``0..15``: the 16 joints in MPII order (:data:`MHP_V2_SCHEMA.keypoint_names`) as
    ``(x, y, flag)``; ``x, y`` in 0-based pixel-index coordinates (centre of pixel
    ``[row, col]`` is ``(col, row)``); ``flag``: ``0`` = visible, ``1`` = labelled but occluded,
    ``2`` = not labelled / outside the image, written with ``x = y = -1``. (The flag values
    follow the official files, where labelled joints carry 0 and missing ones ``(-1, -1, 2)``.)
  - ``16, 17``: face box, top-left and bottom-right **inclusive** pixel ``(x, y, 0)``; both rows
    ``(-1, -1, 2)`` when no face pixel of the person is visible (ignored by the reader);
  - ``18, 19``: person box, top-left and bottom-right **inclusive** pixel ``(x, y, 0)``.

Record schema returned by :func:`load_mhp_v2_split` (plain dicts, Detectron2 style)::

    {"file_name": str, "image_id": str, "height": int, "width": int,
     "annotations": [{"person_id": int (1-based), "parsing_file": str,
                      "keypoints": [x0, y0, v0, ..., x15, y15, v15] (floats),
                      "bbox": [x0, y0, x1, y1]} ...]}

with COCO visibility ``v`` (2 visible, 1 occluded, 0 not labelled, then ``x = y = 0``),
keypoints in pixel-index coordinates, and ``bbox`` XYXY absolute in the pixel-edge convention
(``x1 = last column + 1``, i.e. the .mat bottom-right pixel + 1), the same as
:class:`dspf_parser.data.synthetic.SyntheticSample.boxes`. Annotations are sorted by
``person_id``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import zlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import scipy.io
from PIL import Image

from .paths import datasets_root
from .synthetic import DEFAULT_HEIGHT_RANGE, FACE, SYNTHETIC_VERSION, SyntheticSample, generate_synthetic_image

__all__ = [
    "PARSING_NAME_RE",
    "write_mhp_v2_sample",
    "write_synthetic_split",
    "load_mhp_v2_split",
    "read_person_maps",
    "default_synthetic_root",
    "ensure_synthetic_split",
    "synthetic_image_seed",
    "synthetic_split_params",
    "read_complete_marker",
]

NUM_JOINTS = 16
MAT_ROWS = 20
#: ``<name>_<numPersons>_<personIdx>.png``; the name itself may contain underscores.
PARSING_NAME_RE = re.compile(r"^(?P<name>.+)_(?P<num>\d+)_(?P<idx>\d+)\.png$")
_PERSON_KEY_RE = re.compile(r"^person_(\d+)$")
_MAT_FLAG_FROM_V = {2: 0.0, 1: 1.0}  # COCO v -> MHP flag (v = 0 -> flag 2 with x = y = -1)
_V_FROM_MAT_FLAG = {0: 2.0, 1: 1.0}
MARKER = ".complete"


def _split_dirs(root: str, split: str) -> Dict[str, str]:
    base = os.path.join(root, split)
    return {
        "base": base,
        "images": os.path.join(base, "images"),
        "parsing": os.path.join(base, "parsing_annos"),
        "pose": os.path.join(base, "pose_annos"),
        "list": os.path.join(root, "list", f"{split}.txt"),
    }


def _check_name(image_name: str) -> None:
    if not image_name or image_name != image_name.strip() or any(c in image_name for c in "/\\\n\r\t "):
        raise ValueError(f"invalid image name {image_name!r} (no whitespace or path separators)")


def _inclusive_box(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _person_mat_array(sample: SyntheticSample, person_id: int) -> np.ndarray:
    arr = np.zeros((MAT_ROWS, 3), np.float32)
    for j in range(NUM_JOINTS):
        x, y, v = (float(t) for t in sample.keypoints[person_id - 1, j])
        if v > 0:
            arr[j] = (x, y, _MAT_FLAG_FROM_V[int(v)])
        else:
            arr[j] = (-1.0, -1.0, 2.0)
    mine = sample.instance_map == person_id
    face = _inclusive_box(mine & (sample.part_map == FACE))
    if face is None:
        arr[16] = arr[17] = (-1.0, -1.0, 2.0)
    else:
        arr[16] = (face[0], face[1], 0.0)
        arr[17] = (face[2], face[3], 0.0)
    x0, y0, x1, y1 = (float(t) for t in sample.boxes[person_id - 1])
    arr[18] = (x0, y0, 0.0)
    arr[19] = (x1 - 1.0, y1 - 1.0, 0.0)
    return arr


def _imwrite(path: str, array: np.ndarray, params: Sequence[int] = ()) -> None:
    if not cv2.imwrite(path, array, list(params)):
        raise OSError(f"could not write {path}")


def write_mhp_v2_sample(root: str, split: str, image_name: str, sample: SyntheticSample) -> Dict[str, object]:
    """Write one sample in the MHPv2 layout (image, per-person part PNGs, pose .mat).

    The caller appends ``image_name`` to ``root/list/<split>.txt``. Returns the written paths
    ``{"image": str, "parsing": [str, ...], "pose": str}``.
    """
    _check_name(image_name)
    d = _split_dirs(root, split)
    for key in ("images", "parsing", "pose"):
        os.makedirs(d[key], exist_ok=True)
    num = sample.num_people
    if num < 1:
        raise ValueError(f"{image_name}: a sample needs at least one person")
    image_path = os.path.join(d["images"], f"{image_name}.jpg")
    _imwrite(image_path, sample.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    parsing = []
    mat = {}
    for pid in range(1, num + 1):
        path = os.path.join(d["parsing"], f"{image_name}_{num}_{pid}.png")
        _imwrite(path, sample.person_part_map(pid))
        parsing.append(path)
        mat[f"person_{pid - 1}"] = _person_mat_array(sample, pid)
    pose_path = os.path.join(d["pose"], f"{image_name}.mat")
    scipy.io.savemat(pose_path, mat)
    return {"image": image_path, "parsing": parsing, "pose": pose_path}


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
def _read_list(path: str) -> List[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split list file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: split list is not UTF-8 text ({e})") from e
    names = [n for n in names if n]
    seen = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{path}: image {n!r} is listed twice")
        seen.add(n)
    return names


def _scan_parsing(parsing_dir: str) -> Dict[str, List[Tuple[int, int, str]]]:
    """``name -> [(num, idx, filename), ...]`` for every PNG in ``parsing_dir``."""
    if not os.path.isdir(parsing_dir):
        raise FileNotFoundError(f"parsing annotation folder not found: {parsing_dir}")
    out: Dict[str, List[Tuple[int, int, str]]] = {}
    with os.scandir(parsing_dir) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            m = PARSING_NAME_RE.match(entry.name)
            if m is None:
                raise ValueError(
                    f"parsing file name does not match <image>_<numPersons>_<personIdx>.png: "
                    f"{entry.path}")
            out.setdefault(m.group("name"), []).append(
                (int(m.group("num")), int(m.group("idx")), entry.name))
    return out


def _read_pose(path: str, num_persons: int) -> List[np.ndarray]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pose annotation not found: {path}")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"cannot read pose annotation {path}: {type(e).__name__}: {e}") from e
    persons: Dict[int, np.ndarray] = {}
    for key, value in mat.items():
        if key.startswith("__"):
            continue
        m = _PERSON_KEY_RE.match(key)
        if m is None:
            raise ValueError(f"{path}: unexpected variable {key!r} (expected person_<i> keys)")
        arr = np.asarray(value)
        if arr.shape != (MAT_ROWS, 3) or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{path}: {key} has shape {arr.shape} and dtype {arr.dtype}, "
                             f"expected a numeric {MAT_ROWS}x3 array")
        persons[int(m.group(1))] = arr.astype(np.float64)
    if sorted(persons) != list(range(num_persons)):
        raise ValueError(f"{path}: has person keys {sorted('person_%d' % i for i in persons)}, "
                         f"expected person_0..person_{num_persons - 1} ({num_persons} persons "
                         f"in parsing_annos)")
    return [persons[i] for i in range(num_persons)]


def _keypoints_from_mat(arr: np.ndarray, path: str, person_key: str) -> List[float]:
    kps: List[float] = []
    for j in range(NUM_JOINTS):
        x, y, flag = (float(t) for t in arr[j])
        if flag == 2 or (x < 0 and y < 0):
            kps += [0.0, 0.0, 0.0]
        elif flag in _V_FROM_MAT_FLAG:
            kps += [x, y, _V_FROM_MAT_FLAG[int(flag)]]
        else:
            raise ValueError(f"{path}: {person_key} joint {j} has visibility flag {flag}, "
                             f"expected 0 (visible), 1 (occluded) or 2 (absent)")
    return kps


def load_mhp_v2_split(root: str, split: str) -> List[dict]:
    """Read ``root/<split>`` (MHPv2 layout) into Detectron2-style dicts (module docstring).

    Raises:
        FileNotFoundError: missing list file, listed image, parsing folder or pose .mat.
        ValueError: malformed parsing file names, inconsistent person files, bad .mat content,
            unreadable image headers. Every message names the offending path.
    """
    d = _split_dirs(root, split)
    names = _read_list(d["list"])
    by_name = _scan_parsing(d["parsing"])
    records = []
    for name in names:
        image_path = os.path.join(d["images"], f"{name}.jpg")
        if not os.path.isfile(image_path):
            raise FileNotFoundError(f"image listed in {d['list']} not found: {image_path}")
        try:
            with Image.open(image_path) as im:
                width, height = im.size
        except Exception as e:
            raise ValueError(f"cannot read image header of {image_path}: {e}") from e
        files = by_name.get(name)
        if not files:
            raise ValueError(f"no parsing annotations for image {name!r}: expected "
                             f"{os.path.join(d['parsing'], name)}_<N>_<k>.png")
        nums = {n for n, _, _ in files}
        idxs = sorted(k for _, k, _ in files)
        if len(nums) != 1 or idxs != list(range(1, nums.copy().pop() + 1)):
            raise ValueError(
                f"inconsistent parsing files for image {name!r} in {d['parsing']}: "
                f"{sorted(f for _, _, f in files)} (expected {name}_N_1.png .. {name}_N_N.png)")
        num = nums.pop()
        pose_path = os.path.join(d["pose"], f"{name}.mat")
        persons = _read_pose(pose_path, num)
        anns = []
        for pid in range(1, num + 1):
            arr = persons[pid - 1]
            key = f"person_{pid - 1}"
            x0, y0 = float(arr[18, 0]), float(arr[18, 1])
            x1, y1 = float(arr[19, 0]) + 1.0, float(arr[19, 1]) + 1.0
            if not (x1 > x0 and y1 > y0):
                raise ValueError(f"{pose_path}: {key} has an empty person box "
                                 f"{arr[18, :2].tolist()} - {arr[19, :2].tolist()}")
            anns.append({
                "person_id": pid,
                "parsing_file": os.path.join(d["parsing"], f"{name}_{num}_{pid}.png"),
                "keypoints": _keypoints_from_mat(arr, pose_path, key),
                "bbox": [x0, y0, x1, y1],
            })
        records.append({"file_name": image_path, "image_id": name, "height": int(height),
                        "width": int(width), "annotations": anns})
    return records


def _label_channel(img: np.ndarray, path: str) -> np.ndarray:
    if img.ndim == 2:
        return img
    if img.ndim == 3:
        chans = [img[..., c] for c in range(img.shape[2])]
        if all(np.array_equal(chans[0], c) for c in chans[1:]):
            return chans[0]
        nonzero = [c for c in chans if c.any()]
        if len(nonzero) == 1:
            return nonzero[0]
    raise ValueError(f"{path}: cannot tell which channel holds the part labels (shape {img.shape})")


def read_person_maps(record: dict) -> Tuple[np.ndarray, np.ndarray]:
    """Compose ``(part_map uint8, instance_map int32)`` of a record from its per-person PNGs.

    Where person PNGs overlap (possible in real data) the later person wins.
    """
    h, w = record["height"], record["width"]
    part_map = np.zeros((h, w), np.uint8)
    instance_map = np.zeros((h, w), np.int32)
    for ann in record["annotations"]:
        path = ann["parsing_file"]
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FileNotFoundError(f"cannot read parsing file {path}")
        lab = _label_channel(img, path)
        if lab.shape != (h, w):
            raise ValueError(f"{path}: size {lab.shape} differs from the image size {(h, w)}")
        m = lab > 0
        part_map[m] = lab[m]
        instance_map[m] = ann["person_id"]
    return part_map, instance_map


# ----------------------------------------------------------------------------------------------
# Synthetic splits
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
