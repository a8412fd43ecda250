"""DensePose-COCO used for part parsing: reader for ``DatasetCatalog``.

Registered names (``dspf_parser.data.datasets.builtin``), under ``$DETECTRON2_DATASETS/coco``
(``DETECTRON2_DATASETS`` defaults to ``datasets``; resolved when the dataset is loaded)::

    densepose_coco_parsing_train   annotations/densepose_coco_2014_train.json    images in train2014/
    densepose_coco_parsing_val     annotations/densepose_coco_2014_minival.json  images in val2014/

The json files are the official DensePose-COCO annotations, read with ``pycocotools``. For
every person annotation with ``dp_masks``:

* part map: ``dp_masks`` holds 14 entries, one per coarse part (ids 1..14 of
  :data:`~dspf_parser.data.categories.DENSEPOSE_SCHEMA`), each a COCO RLE of a 256x256 grid
  spanning the person box, or an empty value when the part is absent. They are composed into one
  256x256 map (a later part id overwrites an earlier one) and pasted into the box exactly as the
  DensePose-COCO notebook (``GetDensePoseMask`` + ``cv2.resize``) does: the box ``[x, y, w, h]``
  is truncated to integers (``x1, y1 = int(x), int(y)``, ``x2 = x1 + int(w)``,
  ``y2 = y1 + int(h)``), ``x2``/``y2`` are clipped to the image, and the 256x256 map is resized
  to ``(x2 - x1) x (y2 - y1)`` with nearest-neighbour interpolation and written at ``[y1:y2,
  x1:x2]``. The result is stored per part as ``parsing_rles`` (COCO RLEs at image size, see
  :mod:`dspf_parser.data.annotations`); nothing is written to disk;
* keypoints: the annotation's 17 COCO keypoints (COCO order, ``v`` = 0/1/2, pixel-index
  coordinates as in COCO), all zeros when the annotation has none;
* bbox: the COCO box as XYXY ``[x, y, x + w, y + h]``.

Choices:

* A person annotation **without** ``dp_masks`` (or whose pasted map is empty) is not a person of
  the record: it has no part labels. Its COCO ``segmentation`` (polygons or RLE, crowd regions
  included) goes into the record's ``ignore_rles`` so a consumer can ignore those pixels
  (:func:`dspf_parser.data.annotations.load_human_annotations` returns them as
  ``ignore_mask``; the part map itself keeps them as background). For the instance metrics such
  people are simply absent from the ground truth.
* An image with no person carrying ``dp_masks`` is left out (it has no part supervision).
* Person ids are 1-based in annotation order (the order of ``pycocotools``' ``imgToAnns``);
  ``coco_ann_id`` keeps the json id. ``image_id`` is the file name without extension (a string,
  as for the other readers); ``coco_image_id`` keeps the json id.
"""
import contextlib
import io
import os
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..categories import DENSEPOSE_SCHEMA
from ..paths import datasets_root
from .registration import register_parsing_datasets

__all__ = [
    "DENSEPOSE_SPLITS",
    "densepose_coco_root",
    "densepose_part_map",
    "paste_densepose_parts",
    "load_densepose_coco_json",
    "load_densepose_coco",
    "register_densepose_coco",
]

#: registered name -> (image folder, json file), relative to ``$DETECTRON2_DATASETS/coco``
DENSEPOSE_SPLITS: Dict[str, tuple] = {
    "densepose_coco_parsing_train": ("train2014", "annotations/densepose_coco_2014_train.json"),
    "densepose_coco_parsing_val": ("val2014", "annotations/densepose_coco_2014_minival.json"),
}
NUM_DP_PARTS = 14
DP_GRID = 256


def densepose_coco_root() -> str:
    """``$DETECTRON2_DATASETS/coco`` (``DETECTRON2_DATASETS`` defaulting to ``datasets``)."""
    return os.path.join(datasets_root(), "coco")


def densepose_part_map(dp_masks: Sequence) -> np.ndarray:
    """The 256x256 uint8 part map of ``dp_masks`` (``GetDensePoseMask`` of the DensePose notebook):
    entry ``i - 1``, when non-empty, is decoded and its pixels set to part ``i``."""
    from pycocotools import mask as mask_util

    if len(dp_masks) != NUM_DP_PARTS:
        raise ValueError(f"dp_masks has {len(dp_masks)} entries, expected {NUM_DP_PARTS}")
    out = np.zeros((DP_GRID, DP_GRID), np.uint8)
    for i in range(1, NUM_DP_PARTS + 1):
        rle = dp_masks[i - 1]
        if not rle:
            continue
        m = mask_util.decode(rle)
        if m.shape[:2] != (DP_GRID, DP_GRID):
            raise ValueError(f"dp_masks[{i - 1}] is {m.shape[1]}x{m.shape[0]}, expected {DP_GRID}x{DP_GRID}")
        out[m > 0] = i
    return out


def paste_densepose_parts(dp_masks: Sequence, bbox: Sequence[float], height: int, width: int) -> np.ndarray:
    """``[H, W]`` uint8 part map of one person: the 256x256 map pasted into its box
    (``bbox`` COCO ``[x, y, w, h]``), as the DensePose-COCO notebook does (module docstring)."""
    out = np.zeros((height, width), np.uint8)
    bx = np.array(bbox, dtype=np.float64).astype(int)
    x1, y1 = max(int(bx[0]), 0), max(int(bx[1]), 0)
    x2 = min(int(bx[0] + bx[2]), width)
    y2 = min(int(bx[1] + bx[3]), height)
    if x2 <= x1 or y2 <= y1:
        return out
    grid = densepose_part_map(dp_masks)
    out[y1:y2, x1:x2] = cv2.resize(grid, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    return out


def _encode_parts(parts: np.ndarray) -> Dict[int, Dict]:
    from pycocotools import mask as mask_util

    ids = [int(i) for i in np.flatnonzero(np.bincount(parts.ravel(), minlength=1)) if i > 0]
    if not ids:
        return {}
    # [n, W, H] C-contiguous, transposed: the [H, W, n] Fortran-ordered array encode() wants, no copy.
    transposed = np.ascontiguousarray(parts.T)
    stack = np.stack([transposed == i for i in ids], axis=0).view(np.uint8).transpose(2, 1, 0)
    rles = mask_util.encode(stack)
    return {i: {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")}
            for i, r in zip(ids, rles)}


def _segmentation_rle(coco, ann: Dict) -> Optional[Dict]:
    if not ann.get("segmentation"):
        return None
    rle = coco.annToRLE(ann)
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def load_densepose_coco_json(json_file: str, image_root: str) -> List[Dict]:
    """Read a DensePose-COCO json into the project's dataset dicts (module docstring).

    Raises:
        FileNotFoundError: the json, the image folder or an image it lists is missing.
        ValueError: the json is not a DensePose-COCO annotation file, or a person has malformed
            ``dp_masks`` / keypoints (the message names the json, the image and the annotation).
    """
    from pycocotools.coco import COCO

    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"DensePose-COCO annotation file not found: {json_file}")
    if not os.path.isdir(image_root):
        raise FileNotFoundError(f"DensePose-COCO image folder not found: {image_root} "
                                f"(expected the COCO 2014 images the json {json_file} refers to)")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(json_file)
    except Exception as e:
        raise ValueError(f"cannot read {json_file} as a COCO json: {type(e).__name__}: {e}") from e
    k = DENSEPOSE_SCHEMA.num_keypoints
    records = []
    for img_id in sorted(coco.imgs):
        img = coco.imgs[img_id]
        h, w = int(img["height"]), int(img["width"])
        annos, ignore = [], []
        for ann in coco.imgToAnns.get(img_id, []):
            where = f"{json_file}: image {img.get('file_name')} annotation {ann.get('id')}"
            parts = None
            if ann.get("dp_masks") and not ann.get("iscrowd", 0):
                try:
                    parts = paste_densepose_parts(ann["dp_masks"], ann["bbox"], h, w)
                except Exception as e:
                    raise ValueError(f"{where}: bad dp_masks ({e})") from e
                if not parts.any():
                    parts = None
            if parts is None:
                rle = _segmentation_rle(coco, ann)
                if rle is not None:
                    ignore.append(rle)
                continue
            kp = ann.get("keypoints") or [0.0] * (3 * k)
            if len(kp) != 3 * k:
                raise ValueError(f"{where}: {len(kp)} keypoint values, expected {k} x 3")
            x, y, bw, bh = (float(v) for v in ann["bbox"])
            annos.append({
                "person_id": len(annos) + 1,
                "coco_ann_id": ann.get("id"),
                "parsing_rles": _encode_parts(parts),
                "keypoints": [float(v) for v in kp],
                "bbox": [x, y, x + bw, y + bh],
            })
        if not annos:
            continue
        file_name = os.path.join(image_root, img["file_name"])
        if not os.path.isfile(file_name):
            raise FileNotFoundError(f"image listed in {json_file} not found: {file_name}")
        record = {"file_name": file_name, "image_id": os.path.splitext(os.path.basename(img["file_name"]))[0],
                  "coco_image_id": img_id, "height": h, "width": w, "annotations": annos}
        if ignore:
            record["ignore_rles"] = ignore
        records.append(record)
    return records


def load_densepose_coco(name: str, root: Optional[str] = None) -> List[Dict]:
    """Load the registered split ``name`` of :data:`DENSEPOSE_SPLITS` from ``root``
    (default :func:`densepose_coco_root`)."""
    root = densepose_coco_root() if root is None else root
    image_dir, json_rel = DENSEPOSE_SPLITS[name]
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"DensePose-COCO root not found: {root} (expected the COCO folder holding {json_rel} and "
            f"{image_dir}/; set DETECTRON2_DATASETS to the folder holding coco/)")
    return load_densepose_coco_json(os.path.join(root, json_rel), os.path.join(root, image_dir))


def register_densepose_coco() -> None:
    """Register :data:`DENSEPOSE_SPLITS` with the DensePose schema's metadata."""
    register_parsing_datasets({n: (lambda n=n: load_densepose_coco(n)) for n in DENSEPOSE_SPLITS}, DENSEPOSE_SCHEMA)
