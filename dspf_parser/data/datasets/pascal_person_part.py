"""PASCAL-Person-Part (instance-level release) reader for ``DatasetCatalog``.

Registered names (``dspf_parser.data.datasets.builtin``): ``pascal_person_part_train`` and
``pascal_person_part_test``, read from ``$DETECTRON2_DATASETS/pascal-person-part``
(``DETECTRON2_DATASETS`` defaults to ``datasets``; resolved when the dataset is loaded).

Supported copy: the instance-level folder copy most instance parsers use (the one Parsing
R-CNN's conversion script and M2FP-style registrations read; no single official package
exists)::

    pascal-person-part/
      tools/train_id.txt, tools/test_id.txt   image ids, one per line (where that copy keeps
                                              them; <split>/<list> is read first if present,
                                              and without either every Images/*.jpg is used)
      Training/                               Testing/ for pascal_person_part_test
        Images/<id>.jpg
        Category_ids/<id>.png                 part id per pixel, 8-bit (order below), 255 void
        Human_ids/<id>.png                    person id per pixel (0 nobody, 1..P), 8-bit
        Instance_ids/<id>.png, .txt           optional, not read here (the PGN-style AP^r
                                              ground truth read by ``evaluate_folder pascal``)
      pose_annotations/<id>.mat               the joints of Xia et al. (CVPR 2017), below;
                                              <split>/pose_annotations/ is read first if present

Part ids (:data:`LABEL_ORDERS`): that copy numbers the parts 1 Lower-arm, 2 Head, 3 Upper-leg,
4 Torso, 5 Lower-leg, 6 Upper-arm (``label_order="instance_level"``, the default); the schema
(:data:`~dspf_parser.data.categories.PASCAL_PERSON_PART_SCHEMA`) uses the numbering of the
semantic release (DeepLab's ``pascal_person_part_gt``: 1 Head, 2 Torso, 3 Upper-arms,
4 Lower-arms, 5 Upper-legs, 6 Lower-legs), which ``label_order="semantic"`` reads as it is
(``$DSPF_PASCAL_LABEL_ORDER`` selects the order of the registered datasets). A value of 255
(void) is treated like an unlabelled pixel.

Conversion to the dict schema (no file is written): each person id ``p > 0`` of
``Human_ids`` becomes a person with ``parsing_rles`` = the RLEs of ``Category_ids == k`` inside
``Human_ids == p`` for every part ``k`` (full-image masks) and ``bbox`` = the tight box of its
``Human_ids`` pixels (XYXY, pixel-edge convention). Pixels that carry a part label but no person,
and people with no part pixel, go into the record's ``ignore_rles`` (see
:mod:`dspf_parser.data.annotations`); such people are not persons of the record.

Joints (Xia et al.; these facts are likely, not certain: draw a few images with
``datasets/prepare_pascal_person_part.py --preview`` before relying on them):
``pose_annotations/<id>.mat`` holds ``joints``, per pose person ``14 x [x, y, v]`` (a
``[P, 14, 3]`` array, one ``[14, 3]`` array, or a cell array of them), and optionally ``boxes``
(``[P, 4]`` XYXY). Coordinates are taken as 0-based pixel-index coordinates.
:data:`XIA_JOINT_ORDER` is the one table of the file's joint order (file joint ``i`` -> schema
joint name) and :data:`XIA_VISIBILITY` of its visibility (1 visible, 2 occluded; any other
value, or a negative coordinate, is absent). The pose persons are not in ``Human_ids`` order:
they are linked to the persons geometrically (:func:`dspf_parser.data.pose_linking.link_poses`,
as for MHPv2); a person without a linked pose gets all-zero joints (no DSPF target). A missing
or unreadable joints file (or joints folder) is an error naming it; with
``missing_joints="skip"`` (``$DSPF_PASCAL_MISSING_JOINTS=skip``) it is logged, counted, and
that image's persons get no joints.
"""
import logging
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import scipy.io
from PIL import Image

from ..annotations import read_label_png
from ..categories import PASCAL_PERSON_PART_SCHEMA
from ..paths import datasets_root
from ..pose_linking import link_poses
from .registration import register_parsing_datasets

__all__ = [
    "PASCAL_PERSON_PART_SPLITS",
    "LABEL_ORDERS",
    "DEFAULT_LABEL_ORDER",
    "XIA_JOINT_ORDER",
    "XIA_VISIBILITY",
    "read_xia_joints",
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
    # the instance-level folder copy: 1 Lower-arm, 2 Head, 3 Upper-leg, 4 Torso, 5 Lower-leg, 6 Upper-arm
    "instance_level": (0, 4, 1, 5, 2, 6, 3),
    # the semantic release (= the schema): 1 Head, 2 Torso, 3 Upper-arms, 4 Lower-arms, 5 Upper-legs, 6 Lower-legs
    "semantic": (0, 1, 2, 3, 4, 5, 6),
}
DEFAULT_LABEL_ORDER = "instance_level"

#: File joint ``i`` of a Xia et al. joints file -> schema joint name. Their order: head, neck,
#: then one side's shoulder, elbow, wrist, hip, knee, ankle, then the other side's (the first
#: side taken as the person's right).
XIA_JOINT_ORDER: Tuple[str, ...] = (
    "Head-top", "Neck",
    "Right-shoulder", "Right-elbow", "Right-wrist", "Right-hip", "Right-knee", "Right-ankle",
    "Left-shoulder", "Left-elbow", "Left-wrist", "Left-hip", "Left-knee", "Left-ankle",
)
#: The file's visibility value -> COCO visibility (2 visible, 1 occluded); others: absent (0).
XIA_VISIBILITY: Dict[int, float] = {1: 2.0, 2: 1.0}
POSE_DIRNAME = "pose_annotations"
MISSING_JOINTS_POLICIES = ("error", "skip")
logger = logging.getLogger(__name__)


def pascal_person_part_root() -> str:
    """``$DETECTRON2_DATASETS/pascal-person-part`` (``DETECTRON2_DATASETS`` defaulting to ``datasets``)."""
    return os.path.join(datasets_root(), PASCAL_DIRNAME)


def _encode(mask: np.ndarray) -> Dict:
    from pycocotools import mask as mask_util

    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")}


def _image_ids(split_dir: str, list_name: str) -> List[str]:
    candidates = [os.path.join(split_dir, list_name), os.path.join(os.path.dirname(split_dir), "tools", list_name)]
    list_path = next((c for c in candidates if list_name and os.path.isfile(c)), None)
    if list_path is not None:
        with open(list_path) as f:
            ids = [line.strip() for line in f if line.strip()]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{list_path}: an image id is listed twice")
        return ids
    images = os.path.join(split_dir, "Images")
    return sorted(os.path.splitext(n)[0] for n in os.listdir(images) if n.lower().endswith(".jpg"))


def _pose_dir(split_dir: str) -> Optional[str]:
    for d in (os.path.join(split_dir, POSE_DIRNAME), os.path.join(os.path.dirname(split_dir), POSE_DIRNAME)):
        if os.path.isdir(d):
            return d
    return None


def read_xia_joints(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """The pose persons of a Xia et al. joints ``.mat`` in the schema's joint order.

    Returns:
        ``(joints [Q, 14, 3], boxes [Q, 4])``: COCO-visibility joints (:data:`XIA_JOINT_ORDER`,
        :data:`XIA_VISIBILITY`; absent joints ``(0, 0, 0)``) and XYXY boxes (NaN when the file
        has none).

    Raises:
        ValueError: unreadable file, no ``joints``, or ``joints`` / ``boxes`` of the wrong
            shape (the message names the file).
    """
    k = PASCAL_PERSON_PART_SCHEMA.num_keypoints
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"cannot read joints file {path}: {type(e).__name__}: {e}") from e
    if "joints" not in mat:
        raise ValueError(f"{path}: no 'joints' variable (has {sorted(n for n in mat if not n.startswith('__'))})")
    raw = np.asarray(mat["joints"])
    try:
        if raw.dtype == object:
            people = [np.asarray(x, np.float64).reshape(k, 3) for x in raw.ravel()]
        else:
            people = list(raw.astype(np.float64).reshape(-1, k, 3)) if raw.size else []
    except ValueError:
        raise ValueError(f"{path}: 'joints' of shape {raw.shape} is not {k} x [x, y, v] per person") from None
    order = [PASCAL_PERSON_PART_SCHEMA.keypoint_names.index(n) for n in XIA_JOINT_ORDER]
    joints = np.zeros((len(people), k, 3))
    for q, person in enumerate(people):
        for i, (x, y, v) in enumerate(person):
            vis = XIA_VISIBILITY.get(int(v), 0.0) if np.isfinite(v) else 0.0
            if vis > 0 and np.isfinite(x) and np.isfinite(y) and x >= 0 and y >= 0:
                joints[q, order[i]] = (x, y, vis)
    boxes = np.full((len(people), 4), np.nan)
    b = np.asarray(mat.get("boxes", np.zeros(0)))
    if b.size:
        if b.size != 4 * len(people):
            raise ValueError(f"{path}: 'boxes' of shape {b.shape} for {len(people)} pose persons")
        boxes = b.astype(np.float64).reshape(len(people), 4)
    return joints, boxes


def load_pascal_person_part_split(split_dir: str, list_name: str, label_order: str = DEFAULT_LABEL_ORDER,
                                  missing_joints: str = "error", read_joints: bool = True) -> List[Dict]:
    """Read one split folder (``Training`` or ``Testing``, module docstring) into dataset dicts.

    ``read_joints=False`` gives every person all-zero joints without looking for joints files
    (for part-only uses such as ``evaluate_folder pascal``).

    Raises:
        FileNotFoundError: a folder or a listed image / label PNG is missing, or (with
            ``missing_joints="error"``) the joints folder or a joints file (names the path).
        ValueError: size mismatch between an image and its PNGs, part ids outside 0..6 (255
            allowed), an unreadable or malformed joints file (unless skipped), unknown
            ``label_order`` / ``missing_joints``.
    """
    if label_order not in LABEL_ORDERS:
        raise ValueError(f"unknown label_order {label_order!r}; known: {sorted(LABEL_ORDERS)}")
    if missing_joints not in MISSING_JOINTS_POLICIES:
        raise ValueError(f"missing_joints must be one of {MISSING_JOINTS_POLICIES}, got {missing_joints!r}")
    pose_dir = _pose_dir(split_dir)
    if pose_dir is None and missing_joints == "error" and read_joints:
        raise FileNotFoundError(
            f"PASCAL-Person-Part joints folder not found: {os.path.join(split_dir, POSE_DIRNAME)} or "
            f"{os.path.join(os.path.dirname(split_dir), POSE_DIRNAME)} (the Xia et al. <id>.mat files; "
            f"missing_joints='skip' / DSPF_PASCAL_MISSING_JOINTS=skip reads the split without joints)")
    skipped = []
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
        masks = [human == pid for pid in person_ids]
        joints_path = os.path.join(pose_dir or os.path.join(split_dir, POSE_DIRNAME), f"{image_id}.mat")
        try:
            if not read_joints:
                raise LookupError
            if not os.path.isfile(joints_path):
                raise FileNotFoundError(f"PASCAL-Person-Part joints file not found: {joints_path}")
            joints, boxes = read_xia_joints(joints_path)
        except LookupError:
            joints, boxes = np.zeros((0, k, 3)), np.zeros((0, 4))
        except (FileNotFoundError, ValueError) as e:
            if missing_joints == "error":
                raise
            skipped.append(joints_path)
            logger.warning("%s; its persons get no joints (missing_joints='skip')", e)
            joints, boxes = np.zeros((0, k, 3)), np.zeros((0, 4))
        pose_of_person, _ = link_poses(masks, joints, boxes)
        annos, ignore = [], np.zeros((height, width), bool)
        ignore |= labelled & (human == 0)
        for n, (pid, mine) in enumerate(zip(person_ids, masks)):
            parts = np.where(mine & labelled, cat, 0)
            if not parts.any():
                ignore |= mine
                continue
            ys, xs = np.nonzero(mine)
            q = int(pose_of_person[n])
            annos.append({
                "person_id": pid,
                "parsing_rles": {int(c): _encode(parts == c) for c in np.unique(parts) if c > 0},
                "keypoints": joints[q].reshape(-1).tolist() if q >= 0 else [0.0] * (3 * k),
                "bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)],
            })
        record = {"file_name": file_name, "image_id": image_id, "height": int(height), "width": int(width),
                  "annotations": annos}
        if ignore.any():
            record["ignore_rles"] = [_encode(ignore)]
        records.append(record)
    if skipped:
        logger.warning("%s: %d of %d images read without joints (missing or unreadable joints files, "
                       "missing_joints='skip')", split_dir, len(skipped), len(records))
    return records


def load_pascal_person_part(name: str, root: Optional[str] = None, label_order: Optional[str] = None,
                            missing_joints: Optional[str] = None) -> List[Dict]:
    """Load the registered split ``name`` of :data:`PASCAL_PERSON_PART_SPLITS` from ``root``
    (default :func:`pascal_person_part_root`); ``label_order`` defaults to
    ``$DSPF_PASCAL_LABEL_ORDER`` or :data:`DEFAULT_LABEL_ORDER`, ``missing_joints`` to
    ``$DSPF_PASCAL_MISSING_JOINTS`` or ``"error"``."""
    root = pascal_person_part_root() if root is None else root
    split_dir, list_name = PASCAL_PERSON_PART_SPLITS[name]
    if label_order is None:
        label_order = os.environ.get("DSPF_PASCAL_LABEL_ORDER", DEFAULT_LABEL_ORDER)
    if missing_joints is None:
        missing_joints = os.environ.get("DSPF_PASCAL_MISSING_JOINTS", "error")
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"PASCAL-Person-Part root not found: {root} (expected {split_dir}/Images, {split_dir}/Category_ids, "
            f"{split_dir}/Human_ids of the instance-level release; set DETECTRON2_DATASETS to the folder "
            f"holding {PASCAL_DIRNAME})")
    return load_pascal_person_part_split(os.path.join(root, split_dir), list_name, label_order, missing_joints)


def register_pascal_person_part() -> None:
    """Register :data:`PASCAL_PERSON_PART_SPLITS` with the PASCAL-Person-Part schema's metadata."""
    register_parsing_datasets(
        {n: (lambda n=n: load_pascal_person_part(n)) for n in PASCAL_PERSON_PART_SPLITS}, PASCAL_PERSON_PART_SCHEMA
    )
