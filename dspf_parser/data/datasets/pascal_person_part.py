"""PASCAL-Person-Part (instance-level release) reader for ``DatasetCatalog``.

Registered names (``dspf_parser.data.datasets.builtin``): ``pascal_person_part_train`` and
``pascal_person_part_test``, read from ``$DETECTRON2_DATASETS/pascal-person-part``
(``DETECTRON2_DATASETS`` defaults to ``datasets``; resolved when the dataset is loaded).

Supported layout: the CIHP-style folders in which the instance-level PASCAL-Person-Part is
distributed (the layout of PGN's CIHP release, also read by Parsing R-CNN / M2FP)::

    pascal-person-part/
      Training/                         Testing/ for pascal_person_part_test
        train_id.txt                    image ids, one per line (test_id.txt in Testing/);
                                        optional: without it every Images/*.jpg is used, sorted
        Images/<id>.jpg
        Category_ids/<id>.png           part id per pixel (0 background, 1..6), 8-bit
        Human_ids/<id>.png              person id per pixel (0 nobody, 1..P), 8-bit
        Instance_ids/<id>.png, .txt     optional, not read here (the PGN-style AP^r ground
                                        truth; ``python -m dspf_parser.evaluation.evaluate_folder
                                        pascal`` reads it)
        Joints/<id>.json                optional, this project's joints format (below)

A value of 255 in ``Category_ids`` (a void/boundary label in some copies) is treated like an
unlabelled pixel.

Conversion to the dict schema (no file is written): each person id ``p > 0`` of
``Human_ids`` becomes a person with ``parsing_rles`` = the RLEs of ``Category_ids == k`` inside
``Human_ids == p`` for every part ``k`` (full-image masks) and ``bbox`` = the tight box of its
``Human_ids`` pixels (XYXY, pixel-edge convention). Pixels that carry a part label but no person,
and people with no part pixel, go into the record's ``ignore_rles`` (see
:mod:`dspf_parser.data.annotations`); such people are not persons of the record.

Part ids: the schema (:data:`~dspf_parser.data.categories.PASCAL_PERSON_PART_SCHEMA`) uses
the order of the original release (Chen et al. 2014): 1 Head, 2 Torso, 3 Upper-arms,
4 Lower-arms, 5 Upper-legs, 6 Lower-legs. Some redistributed copies (Parsing R-CNN's
conversion script names them 1 Lower-arm, 2 Head, 3 Upper-leg, 4 Torso, 5 Lower-leg,
6 Upper-arm) may use another order; this could not be checked against the files. Pass
``label_order="parsing_rcnn"`` (or set ``DSPF_PASCAL_LABEL_ORDER=parsing_rcnn`` before
loading the registered datasets) to read such a copy; ``"standard"`` (the default) reads ids as they
are. Check a few images visually before training.

Joints (optional, this project's choice, since the file format of the instance-level joints
could not be verified): ``Joints/<id>.json`` holds ``{"<person id>": [[x, y, v] x 14], ...}``
(or a flat list of 42 numbers per person) in the joint order of the schema (LSP order:
R-ankle, R-knee, R-hip, L-hip, L-knee, L-ankle, R-wrist, R-elbow, R-shoulder, L-shoulder,
L-elbow, L-wrist, Neck, Head-top), pixel-index coordinates, COCO visibility (0 not labelled,
1 occluded, 2 visible). Person ids are those of ``Human_ids``. People without an entry, and all
people of an image without a file, get all-zero (unlabelled) joints.
"""
import json
import os
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

from ..annotations import read_label_png
from ..categories import PASCAL_PERSON_PART_SCHEMA
from ..paths import datasets_root
from .registration import register_parsing_datasets

__all__ = [
    "PASCAL_PERSON_PART_SPLITS",
    "LABEL_ORDERS",
    "pascal_person_part_root",
    "load_pascal_person_part_split",
    "load_pascal_person_part",
    "register_pascal_person_part",
]

#: registered name -> (split folder, list file name)
PASCAL_PERSON_PART_SPLITS: Dict[str, tuple] = {
    "pascal_person_part_train": ("Training", "train_id.txt"),
    "pascal_person_part_test": ("Testing", "test_id.txt"),
}
PASCAL_DIRNAME = "pascal-person-part"
VOID = 255
#: on-disk part id -> schema part id (index = on-disk id)
LABEL_ORDERS: Dict[str, tuple] = {
    "standard": (0, 1, 2, 3, 4, 5, 6),
    # 1 Lower-arm, 2 Head, 3 Upper-leg, 4 Torso, 5 Lower-leg, 6 Upper-arm
    "parsing_rcnn": (0, 4, 1, 5, 2, 6, 3),
}


def pascal_person_part_root() -> str:
    """``$DETECTRON2_DATASETS/pascal-person-part`` (``DETECTRON2_DATASETS`` defaulting to ``datasets``)."""
    return os.path.join(datasets_root(), PASCAL_DIRNAME)


def _encode(mask: np.ndarray) -> Dict:
    from pycocotools import mask as mask_util

    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")}


def _image_ids(split_dir: str, list_name: str) -> List[str]:
    list_path = os.path.join(split_dir, list_name)
    if os.path.isfile(list_path):
        with open(list_path) as f:
            ids = [line.strip() for line in f if line.strip()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{list_path}: an image id is listed twice")
        return ids
    images = os.path.join(split_dir, "Images")
    return sorted(os.path.splitext(n)[0] for n in os.listdir(images) if n.lower().endswith(".jpg"))


def _read_joints(path: str, person_ids: List[int]) -> Dict[int, List[float]]:
    k = PASCAL_PERSON_PART_SCHEMA.num_keypoints
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object {{person id: joints}}, got {type(data).__name__}")
    out = {}
    for key, joints in data.items():
        try:
            pid = int(key)
        except ValueError:
            raise ValueError(f"{path}: key {key!r} is not a person id") from None
        if pid not in person_ids:
            raise ValueError(f"{path}: joints of person {pid}, which has no pixel in Human_ids "
                             f"(persons: {person_ids})")
        arr = np.asarray(joints, dtype=np.float64).reshape(-1)
        if arr.size != 3 * k:
            raise ValueError(f"{path}: person {pid} has {arr.size} joint values, expected {k} x 3")
        arr = arr.reshape(k, 3)
        if not np.all(np.isin(arr[:, 2], (0, 1, 2))):
            raise ValueError(f"{path}: person {pid} has a visibility outside 0/1/2")
        arr[arr[:, 2] == 0] = 0.0
        out[pid] = arr.reshape(-1).tolist()
    return out


def load_pascal_person_part_split(split_dir: str, list_name: str, label_order: str = "standard") -> List[Dict]:
    """Read one split folder (``Training`` or ``Testing``, module docstring) into dataset dicts.

    Raises:
        FileNotFoundError: a folder or a listed image / label PNG is missing (the message names it).
        ValueError: size mismatch between an image and its PNGs, part ids outside 0..6 (255
            allowed), malformed joints files, unknown ``label_order``.
    """
    if label_order not in LABEL_ORDERS:
        raise ValueError(f"unknown label_order {label_order!r}; known: {sorted(LABEL_ORDERS)}")
    lut = np.full(256, VOID, np.uint8)
    lut[: len(LABEL_ORDERS[label_order])] = LABEL_ORDERS[label_order]
    num_parts = PASCAL_PERSON_PART_SCHEMA.num_parts
    k = PASCAL_PERSON_PART_SCHEMA.num_keypoints
    for sub in ("Images", "Category_ids", "Human_ids"):
        path = os.path.join(split_dir, sub)
        if not os.path.isdir(path):
            ext = "jpg" if sub == "Images" else "png"
            raise FileNotFoundError(f"PASCAL-Person-Part folder not found: {path} (expected {sub}/<id>.{ext} per "
                                    f"image; layout in dspf_parser/data/datasets/pascal_person_part.py)")
    records = []
    for image_id in _image_ids(split_dir, list_name):
        file_name = os.path.join(split_dir, "Images", f"{image_id}.jpg")
        if not os.path.isfile(file_name):
            raise FileNotFoundError(f"image not found: {file_name}")
        with Image.open(file_name) as im:
            width, height = im.size
        paths = {sub: os.path.join(split_dir, sub, f"{image_id}.png") for sub in ("Category_ids", "Human_ids")}
        maps = {}
        for sub, path in paths.items():
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{sub} annotation not found: {path}")
            maps[sub] = read_label_png(path)
            if maps[sub].shape != (height, width):
                raise ValueError(f"{path}: {maps[sub].shape[1]}x{maps[sub].shape[0]} but the image "
                                 f"{file_name} is {width}x{height}")
        raw = maps["Category_ids"]
        if raw.size and int(raw.max()) > 255:
            raise ValueError(f"{paths['Category_ids']}: part id {int(raw.max())} out of range")
        bad = (raw > num_parts - 1) & (raw != VOID)
        if bad.any():
            raise ValueError(f"{paths['Category_ids']}: part id {int(raw[bad].max())} out of range "
                             f"(0..{num_parts - 1}, or {VOID} for void)")
        cat = lut[raw.astype(np.int64)]
        labelled = (cat > 0) & (cat != VOID)
        human = maps["Human_ids"].astype(np.int64)
        person_ids = [int(p) for p in np.unique(human) if p > 0]
        joints = _read_joints(os.path.join(split_dir, "Joints", f"{image_id}.json"), person_ids)
        annos, ignore = [], np.zeros((height, width), bool)
        ignore |= labelled & (human == 0)
        for pid in person_ids:
            mine = human == pid
            parts = np.where(mine & labelled, cat, 0)
            if not parts.any():
                ignore |= mine
                continue
            ys, xs = np.nonzero(mine)
            annos.append({
                "person_id": pid,
                "parsing_rles": {int(c): _encode(parts == c) for c in np.unique(parts) if c > 0},
                "keypoints": joints.get(pid, [0.0] * (3 * k)),
                "bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)],
            })
        record = {"file_name": file_name, "image_id": image_id, "height": int(height), "width": int(width),
                  "annotations": annos}
        if ignore.any():
            record["ignore_rles"] = [_encode(ignore)]
        records.append(record)
    return records


def load_pascal_person_part(name: str, root: Optional[str] = None, label_order: Optional[str] = None) -> List[Dict]:
    """Load the registered split ``name`` of :data:`PASCAL_PERSON_PART_SPLITS` from ``root``
    (default :func:`pascal_person_part_root`); ``label_order`` defaults to
    ``$DSPF_PASCAL_LABEL_ORDER`` or ``"standard"``."""
    root = pascal_person_part_root() if root is None else root
    split_dir, list_name = PASCAL_PERSON_PART_SPLITS[name]
    if label_order is None:
        label_order = os.environ.get("DSPF_PASCAL_LABEL_ORDER", "standard")
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"PASCAL-Person-Part root not found: {root} (expected {split_dir}/Images, {split_dir}/Category_ids, "
            f"{split_dir}/Human_ids of the instance-level release; set DETECTRON2_DATASETS to the folder "
            f"holding {PASCAL_DIRNAME})")
    return load_pascal_person_part_split(os.path.join(root, split_dir), list_name, label_order)


def register_pascal_person_part() -> None:
    """Register :data:`PASCAL_PERSON_PART_SPLITS` with the PASCAL-Person-Part schema's metadata."""
    register_parsing_datasets(
        {n: (lambda n=n: load_pascal_person_part(n)) for n in PASCAL_PERSON_PART_SPLITS}, PASCAL_PERSON_PART_SCHEMA
    )
