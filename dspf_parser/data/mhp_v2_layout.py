"""Reader and writer of the LV-MHP-v2 on-disk layout (numpy, cv2, PIL, scipy; no detectron2).

The conventions are those of the real release (``../shared/design/datasets.md``; official
repository's v2 evaluation code, annotation tools and issues #13, #40, #44, #45). Layout
(``root`` is the folder holding ``list/`` and the split folders)::

    root/list/<split>.txt                         one image id per line (no extension)
    root/<split>/images/<id>.jpg
    root/<split>/parsing_annos/<id>_<NN>_<KK>.png   one per person, KK = 01..NN (1-based),
                                                  NN = number of persons; both ZERO-PADDED
                                                  to two digits ("96_03_01.png")
    root/<split>/pose_annos/<id>.mat
    root/<split>/.complete                        synthetic data only: parameters (JSON,
                                                  :mod:`dspf_parser.data.synthetic_cache`)

Parsing PNGs are 3-channel 8-bit images of the image size with the MHPv2 part id (0..58) in the
R channel (G = B = 0; the official code reads ``[:, :, 0]`` of the RGB array) on that person's
pixels and 0 elsewhere; single-channel PNGs are read too
(:func:`dspf_parser.data.annotations.read_label_png`, the one reader of label PNGs). Unpadded
names (``96_3_1.png``) do not occur in the release and are an error.

Pose ``.mat`` (one per image, read with ``scipy.io.loadmat``):

* variables ``person_<i>`` with a 0-based ``i``; ``__header__`` etc. are ignored, any other
  variable is an error. ``person_<i>`` is NOT the person of ``<id>_<NN>_<i+1>.png``: the pose
  persons are in another order, and some persons have no pose (an image may have none at all).
  Poses are linked to the part maps geometrically (:func:`dspf_parser.data.pose_linking.link_poses`:
  an optimal one-to-one assignment on how well each pose's joints and box fall on each person's
  mask); a person without a linked pose keeps its part labels and gets no joints (so no DSPF
  target); a pose linked to no person is dropped (counted in the log);
* each ``person_<i>`` is a ``20 x 3`` numeric array: rows ``0..15`` the 16 joints in MPII order
  (:data:`MHP_V2_SCHEMA.keypoint_names`) as ``(x, y, flag)``, 0-based pixel-index coordinates,
  flag ``0`` visible, ``1`` occluded, ``2`` out of image (written with ``x = y = -1``); a joint
  with a negative coordinate is absent whatever its flag (the release has flag-0 joints with
  negative coordinates); rows ``16, 17`` the face box corners (ignored); rows ``18, 19`` the
  person box, top-left and bottom-right **inclusive** pixels (used for the linking only).

Record schema returned by :func:`load_mhp_v2_split` (detectron2 dataset dicts)::

    {"file_name": str, "image_id": str, "height": int, "width": int,
     "annotations": [{"person_id": int (KK, 1-based), "parsing_file": str,
                      "keypoints": [x0, y0, v0, ..., x15, y15, v15] (floats),
                      "bbox": [x0, y0, x1, y1], "bbox_mode": BoxMode.XYXY_ABS (int 0),
                      "category_id": 0, "iscrowd": 0, "pose_link_score": float}, ...]}

with COCO visibility ``v`` (2 visible, 1 occluded, 0 absent with ``x = y = 0``; all zero for a
person without a linked pose, ``pose_link_score`` then 0), keypoints in pixel-index
coordinates, and ``bbox`` the tight box of the person's part-map pixels, XYXY in the pixel-edge
convention (``x1 = last column + 1``), as :class:`dspf_parser.data.synthetic.SyntheticSample.boxes`.
Annotations are sorted by ``person_id``.
"""
from __future__ import annotations

import os
import re
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

import logging
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import scipy.io
from PIL import Image

from .annotations import read_label_png
from .pose_linking import link_poses
from .synthetic import FACE, SyntheticSample

__all__ = [
    "PARSING_NAME_RE",
    "parsing_file_name",
    "default_pose_order",
    "write_mhp_v2_sample",
    "load_mhp_v2_split",
    "read_person_maps",
]

NUM_JOINTS = 16
MAT_ROWS = 20
#: ``<id>_<NN>_<KK>.png`` (two-digit zero-padded counts); the id may contain underscores.
PARSING_NAME_RE = re.compile(r"^(?P<name>.+)_(?P<num>\d{2,})_(?P<idx>\d{2,})\.png$")
#: Detectron2's ``BoxMode.XYXY_ABS`` (its value; this module does not import detectron2).
XYXY_ABS = 0
logger = logging.getLogger(__name__)
_PERSON_KEY_RE = re.compile(r"^person_(\d+)$")
_MAT_FLAG_FROM_V = {2: 0.0, 1: 1.0}  # COCO v -> MHP flag (v = 0 -> flag 2 with x = y = -1)
_V_FROM_MAT_FLAG = {0: 2.0, 1: 1.0}


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


def parsing_file_name(image_name: str, num_persons: int, person_id: int) -> str:
    """The release's part-map name ``<id>_<NN>_<KK>.png`` (``%02d`` counts, ``KK`` 1-based)."""
    return f"{image_name}_{num_persons:02d}_{person_id:02d}.png"


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


def default_pose_order(image_name: str, num_persons: int) -> List[int]:
    """The synthetic writer's pose order: a permutation of ``1..num_persons`` seeded by the
    image name (``person_<i>`` holds the pose of part map ``KK = order[i]``), so that, as in the
    release, the pose order is not the part-map order."""
    rng = np.random.default_rng(zlib.crc32(image_name.encode()))
    return [int(k) + 1 for k in rng.permutation(num_persons)]


def write_mhp_v2_sample(root: str, split: str, image_name: str, sample: SyntheticSample,
                        pose_order: Optional[Sequence[int]] = None) -> Dict[str, object]:
    """Write one sample in the MHPv2 layout of the release (image, part PNGs, pose .mat).

    Part maps go to ``parsing_file_name(image_name, N, k)`` as 3-channel PNGs with the part id
    in R (G = B = 0); the poses to ``person_0 .. person_<M-1>`` in ``pose_order`` (1-based
    person ids, default :func:`default_pose_order`; a subset leaves those persons without a
    pose). The caller appends ``image_name`` to ``root/list/<split>.txt``. Returns the written
    paths ``{"image": str, "parsing": [str, ...], "pose": str}``.
    """
    _check_name(image_name)
    d = _split_dirs(root, split)
    for key in ("images", "parsing", "pose"):
        os.makedirs(d[key], exist_ok=True)
    num = sample.num_people
    if num < 1:
        raise ValueError(f"{image_name}: a sample needs at least one person")
    if num > 99:
        raise ValueError(f"{image_name}: {num} persons; the two-digit file names allow at most 99")
    order = default_pose_order(image_name, num) if pose_order is None else [int(k) for k in pose_order]
    if len(set(order)) != len(order) or not all(1 <= k <= num for k in order):
        raise ValueError(f"{image_name}: pose_order {order} is not a set of person ids 1..{num}")
    image_path = os.path.join(d["images"], f"{image_name}.jpg")
    _imwrite(image_path, sample.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    parsing = []
    for pid in range(1, num + 1):
        path = os.path.join(d["parsing"], parsing_file_name(image_name, num, pid))
        bgr = np.zeros(sample.part_map.shape + (3,), np.uint8)
        bgr[..., 2] = sample.person_part_map(pid)  # cv2 writes BGR: channel 2 is R
        _imwrite(path, bgr)
        parsing.append(path)
    mat = {f"person_{i}": _person_mat_array(sample, pid) for i, pid in enumerate(order)}
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
            if m is None or entry.name != parsing_file_name(m.group("name"), int(m.group("num")), int(m.group("idx"))):
                raise ValueError(
                    f"parsing file name does not match <image>_<NN>_<KK>.png with two-digit "
                    f"zero-padded counts (the LV-MHP-v2 release, e.g. 96_03_01.png): {entry.path}")
            out.setdefault(m.group("name"), []).append(
                (int(m.group("num")), int(m.group("idx")), entry.name))
    return out


def _read_pose(path: str) -> List[Tuple[str, np.ndarray]]:
    """``[(person_<i>, 20x3 array), ...]`` of a pose ``.mat`` in increasing ``i`` (any number,
    none included)."""
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
    return [(f"person_{i}", persons[i]) for i in sorted(persons)]


def _keypoints_from_mat(arr: np.ndarray, path: str, person_key: str) -> List[float]:
    kps: List[float] = []
    for j in range(NUM_JOINTS):
        x, y, flag = (float(t) for t in arr[j])
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"{path}: {person_key} joint {j} has non-finite coordinates ({x}, {y})")
        if flag == 2 or x < 0 or y < 0:  # absent (flag 2, or flag 0/1 with a negative coordinate)
            kps += [0.0, 0.0, 0.0]
        elif flag in _V_FROM_MAT_FLAG:
            kps += [x, y, _V_FROM_MAT_FLAG[int(flag)]]
        else:
            raise ValueError(f"{path}: {person_key} joint {j} has visibility flag {flag}, "
                             f"expected 0 (visible), 1 (occluded) or 2 (absent)")
    return kps


def _mat_person_box(arr: np.ndarray) -> np.ndarray:
    """Rows 18/19 (inclusive corners) as a pixel-edge XYXY box (NaN when absent/invalid)."""
    x0, y0, x1, y1 = float(arr[18, 0]), float(arr[18, 1]), float(arr[19, 0]) + 1.0, float(arr[19, 1]) + 1.0
    if min(x0, y0) < 0 or not (x1 > x0 and y1 > y0):
        return np.full(4, np.nan)
    return np.array([x0, y0, x1, y1])


def _mask_box(mask: np.ndarray) -> List[float]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _load_image_record(d: Dict[str, str], name: str, files: Optional[List[Tuple[int, int, str]]]) -> Tuple[dict, int]:
    """One image's record (module docstring) and the number of its poses linked to nobody."""
    image_path = os.path.join(d["images"], f"{name}.jpg")
    if not os.path.isfile(image_path):
        raise FileNotFoundError(f"image listed in {d['list']} not found: {image_path}")
    try:
        with Image.open(image_path) as im:
            width, height = im.size
    except Exception as e:
        raise ValueError(f"cannot read image header of {image_path}: {e}") from e
    if not files:
        raise ValueError(f"no parsing annotations for image {name!r}: expected "
                         f"{os.path.join(d['parsing'], name)}_<NN>_<KK>.png")
    nums = {n for n, _, _ in files}
    idxs = sorted(k for _, k, _ in files)
    if len(nums) != 1 or idxs != list(range(1, next(iter(nums)) + 1)):
        raise ValueError(
            f"inconsistent parsing files for image {name!r} in {d['parsing']}: "
            f"{sorted(f for _, _, f in files)} (expected {parsing_file_name(name, 2, 1)} .. "
            f"{parsing_file_name(name, 2, 2)} for 2 persons)")
    num = nums.pop()
    pose_path = os.path.join(d["pose"], f"{name}.mat")
    poses = _read_pose(pose_path)
    masks = []
    for pid in range(1, num + 1):
        path = os.path.join(d["parsing"], parsing_file_name(name, num, pid))
        labels = read_label_png(path)
        if labels.shape != (height, width):
            raise ValueError(f"{path}: part map is {labels.shape[1]}x{labels.shape[0]} but its image "
                             f"{image_path} is {width}x{height}")
        masks.append(labels > 0)
    joints = np.asarray([_keypoints_from_mat(arr, pose_path, key) for key, arr in poses],
                        np.float64).reshape(len(poses), NUM_JOINTS, 3)
    boxes = np.asarray([_mat_person_box(arr) for _, arr in poses], np.float64).reshape(len(poses), 4)
    pose_of_person, scores = link_poses(masks, joints, boxes)
    anns = []
    for pid in range(1, num + 1):
        q = int(pose_of_person[pid - 1])
        kps = joints[q].reshape(-1).tolist() if q >= 0 else [0.0] * (3 * NUM_JOINTS)
        anns.append({
            "person_id": pid,
            "parsing_file": os.path.join(d["parsing"], parsing_file_name(name, num, pid)),
            "keypoints": kps,
            "bbox": _mask_box(masks[pid - 1]),
            "bbox_mode": XYXY_ABS,
            "category_id": 0,
            "iscrowd": 0,
            "pose_link_score": float(scores[pid - 1, q]) if q >= 0 else 0.0,
        })
    record = {"file_name": image_path, "image_id": name, "height": int(height), "width": int(width),
              "annotations": anns}
    return record, len(poses) - int((pose_of_person >= 0).sum())


def load_mhp_v2_split(root: str, split: str, num_workers: int = 4) -> List[dict]:
    """Read ``root/<split>`` (the LV-MHP-v2 layout of the release) into detectron2 dataset dicts
    (module docstring), linking poses to part maps geometrically.

    Every part PNG is read once here (the linking needs the masks), by ``num_workers`` threads.
    A summary of persons without a pose and of poses linked to nobody is logged.

    Raises:
        FileNotFoundError: missing list file, listed image, parsing folder or pose .mat.
        ValueError: malformed (e.g. unpadded) parsing file names, inconsistent person files,
            part maps of the wrong size, bad .mat content, unreadable image headers. Every
            message names the offending path.
    """
    d = _split_dirs(root, split)
    names = _read_list(d["list"])
    by_name = _scan_parsing(d["parsing"])
    work = lambda name: _load_image_record(d, name, by_name.get(name))  # noqa: E731
    if num_workers > 1 and len(names) > 1:
        with ThreadPoolExecutor(num_workers) as pool:
            results = list(pool.map(work, names))
    else:
        results = [work(n) for n in names]
    records = [r for r, _ in results]
    unlinked_poses = sum(u for _, u in results)
    no_pose = sum(1 for r in records for a in r["annotations"] if a["pose_link_score"] == 0.0)
    if unlinked_poses or no_pose:
        logger.info("%s/%s: %d of %d persons have no linked pose; %d poses were linked to no person",
                    root, split, no_pose, sum(len(r["annotations"]) for r in records), unlinked_poses)
    return records


def read_person_maps(record: dict) -> Tuple[np.ndarray, np.ndarray]:
    """Compose ``(part_map uint8, instance_map int32)`` of a record from its per-person PNGs
    (read by :func:`dspf_parser.data.annotations.read_label_png`).

    Where person PNGs overlap (possible in real data) the later person wins.
    """
    h, w = record["height"], record["width"]
    part_map = np.zeros((h, w), np.uint8)
    instance_map = np.zeros((h, w), np.int32)
    for ann in record["annotations"]:
        path = ann["parsing_file"]
        lab = read_label_png(path)
        if lab.shape != (h, w):
            raise ValueError(f"{path}: size {lab.shape} differs from the image size {(h, w)}")
        m = lab > 0
        part_map[m] = lab[m]
        instance_map[m] = ann["person_id"]
    return part_map, instance_map
