"""Evaluate a folder of instance-level parsing results against a benchmark's ground truth.

Command line (``python -m dspf_parser.evaluation.evaluate_folder``)::

    # MHPv2 (or any folder in the LV-MHP-v2 layout): AP^p_50, AP^p_vol, PCP_50, mIoU
    python -m dspf_parser.evaluation.evaluate_folder mhp --gt datasets/LV-MHP-v2 --split val --pred out/submission
    # PASCAL-Person-Part / CIHP-style (PGN): AP^r_50/60/70, AP^r_vol, mIoU
    python -m dspf_parser.evaluation.evaluate_folder pascal --gt datasets/pascal-person-part/Testing --pred out/pgn

Both print a table (percent) and, with ``--json FILE``, write the numbers as JSON. The metrics
are those of :mod:`dspf_parser.evaluation.instance_metrics` (the official scripts' rules,
documented there).

**mhp**: ``--gt`` is an LV-MHP-v2 root (``list/<split>.txt``, ``<split>/parsing_annos``,
``<split>/pose_annos``, ``<split>/images``); ``--pred`` a folder in one of these forms, tried in
this order:

1. ``results.json`` as written by :class:`dspf_parser.utils.mhp_submission.MHPSubmissionWriter`
   (per-person PNGs ``parsing/<image>_<k>.png``, scores and joints; ``global_seg/<image>.png``
   is used for mIoU when present). The joints give the pose OKS mAP as well.
2. ``results.txt``, one line per image ``<image> <k> <score_k> <k> <score_k> ...`` (the
   official LV-MHP-v2 submission file), with person ``k``'s part PNG at
   ``parsing/<image>_<k>.png`` or ``<image>_<k>.png`` (single-channel, the image size, part ids
   on the person, 0 elsewhere), or else rebuilt as the official ``eval_submission.py`` does
   from ``global_seg/<image>.png`` and ``global_tag/<image>.png``
   (``(global_tag == k) * global_seg``).
3. A folder without either file and without any PNG is an empty submission (every metric 0).
   PNGs without a scores file are an error.

``--official`` follows the official kit where it differs from the defaults above (tied scores,
``global_tag`` persons without a ``global_seg`` pixel, folders holding several forms; listed in
:func:`evaluate_records`). The ground truth is the released layout (zero-padded part-map names,
part ids in R); ground-truth values outside the part range (e.g. 255) are ignored, as the
official ``fast_hist`` does.

mIoU uses ``global_seg/<image>.png`` when present, else the persons' part maps painted from the
lowest to the highest score.

**pascal**: ``--gt`` is either a split folder of the instance-level PASCAL-Person-Part layout
(``Category_ids/``, ``Human_ids/``, ``Images/``; see
:mod:`dspf_parser.data.datasets.pascal_person_part`, ``--label-order`` as there), whose regions
are the (person, part) pairs, or a folder of PGN ground-truth pairs ``<image>.png`` (value =
region id) + ``<image>.txt`` (one line per region: ``region_id class_id [person_id]``), e.g.
CIHP's ``Instance_ids``. ``--pred`` holds per image ``<image>.png`` (value = region id, 0 =
nothing) + ``<image>.txt`` (line ``i`` = region ``i``: ``class_id score``), directly or in an
``instance_parsing/`` subfolder (the CIHP challenge layout); ``global_parsing/<image>.png``
(category-level part ids), when present, is used for mIoU, else the regions painted from the
lowest to the highest score.

Common rules (documented choices):

* The image list is the ground truth's. An image without prediction files counts all its ground
  truth as missed and is all background for mIoU. (PGN's ``test_inst_part_ap.py`` takes its
  image list from the *prediction* folder, so images without predictions are left out there;
  ours is the stricter, benchmark-safe choice.) Predicted images unknown to the ground truth are
  reported on stderr and ignored.
* mIoU: confusion matrix over all pixels of all images, background included; ground-truth
  pixels marked as ignore (unlabelled people, ``ignore_rles``) are left out.
* PNG label maps are read with PIL (palette PNGs give their indices).
"""
import argparse
import json
import os
import sys
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..data.annotations import load_human_annotations, load_ignore_mask, load_person_parts, read_label_png
from ..data.categories import MHP_V2_SCHEMA, PASCAL_PERSON_PART_SCHEMA, HumanSchema
from ..data.datasets.pascal_person_part import DEFAULT_LABEL_ORDER, LABEL_ORDERS
from .instance_metrics import PART_IOU_THRESHOLDS, ap_region, oks_map, person_level_from_summaries, summarize_persons
from .metrics import confusion_matrix, iou_from_confusion

__all__ = [
    "evaluate_mhp",
    "evaluate_pascal",
    "read_mhp_predictions",
    "format_table",
    "main",
]

IGNORE = 255


def _warn(message: str) -> None:
    print(f"evaluate_folder: warning: {message}", file=sys.stderr)


def _read_map(path: str, shape: Tuple[int, int], what: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    arr = read_label_png(path)
    if arr.shape != tuple(shape):
        raise ValueError(f"{path}: {what} is {arr.shape[1]}x{arr.shape[0]} but the ground truth is "
                         f"{shape[1]}x{shape[0]}")
    return arr


def _miou_block(conf: np.ndarray) -> Dict[str, float]:
    scores = iou_from_confusion(conf)
    return {"mIoU": 100.0 * scores["mIoU"], "pixel_accuracy": 100.0 * scores["pixel_accuracy"]}


# ----------------------------------------------------------------------------------------------
# MHPv2
# ----------------------------------------------------------------------------------------------
class _Person:
    """A predicted person whose part map is read when needed."""

    def __init__(self, load: Callable[[Tuple[int, int]], np.ndarray], score: float,
                 keypoints: Optional[np.ndarray] = None,
                 in_tag: Optional[Callable[[Tuple[int, int]], bool]] = None):
        # in_tag: whether the person has a pixel in global_tag (persons rebuilt from it only).
        self.load, self.score, self.keypoints, self.in_tag = load, float(score), keypoints, in_tag


def _png_loader(path: str, what: str) -> Callable[[Tuple[int, int]], np.ndarray]:
    return lambda shape: _read_map(path, shape, what)


def _tag_loader(seg_path: str, tag_path: str, k: int) -> Callable[[Tuple[int, int]], np.ndarray]:
    def load(shape):
        seg = _read_map(seg_path, shape, "global_seg map")
        tag = _read_map(tag_path, shape, "global_tag map")
        return np.where(tag == k, seg, 0)
    return load


def _in_tag(tag_path: str, k: int) -> Callable[[Tuple[int, int]], bool]:
    return lambda shape: bool((_read_map(tag_path, shape, "global_tag map") == k).any())


def read_mhp_predictions(folder: str, official: bool = False) -> Tuple[Dict[str, Dict], bool]:
    """Index an MHPv2 prediction folder (module docstring) without reading its PNGs.

    ``official=True`` reads it as the official ``eval_submission.py`` does: ``results.txt``
    even when a ``results.json`` is there, and each person from ``global_seg`` + ``global_tag``
    even when per-person PNGs are there too (they are used only for an image without both
    global maps, where the official script would fail).

    Returns ``({image_id: {"persons": [_Person], "global_seg": path or None}}, has_keypoints)``;
    ``has_keypoints`` is True for a ``results.json`` whose people all carry joints.
    """
    from ..utils import mhp_submission as sub

    if not os.path.isdir(folder):
        raise FileNotFoundError(f"prediction folder not found: {folder}")
    json_path = os.path.join(folder, sub.JSON_NAME)
    txt_path = os.path.join(folder, sub.TXT_NAME)
    seg_dir = os.path.join(folder, sub.GLOBAL_SEG_DIR)
    tag_dir = os.path.join(folder, sub.GLOBAL_TAG_DIR)

    def global_seg(image_id: str) -> Optional[str]:
        p = os.path.join(seg_dir, f"{image_id}.png")
        return p if os.path.isfile(p) else None

    out: Dict[str, Dict] = {}
    if os.path.isfile(json_path) and not (official and os.path.isfile(txt_path)):
        with open(json_path) as f:
            doc = json.load(f)
        if doc.get("format") != sub.FORMAT or doc.get("version") != sub.VERSION:
            raise ValueError(f"{json_path}: format {doc.get('format')!r} version {doc.get('version')!r}, "
                             f"expected {sub.FORMAT!r} version {sub.VERSION}")
        for image in doc["images"]:
            persons = []
            for p in image["persons"]:
                png = os.path.join(folder, p["parsing"])
                kp = np.asarray(p.get("keypoints", []), np.float32).reshape(-1, 3)
                persons.append(_Person(_png_loader(png, f"part map of person {p['person_id']}"), p["score"], kp))
            out[image["image_id"]] = {"persons": persons, "global_seg": global_seg(image["image_id"])}
        # Pose is scored only when every person carries joints.
        return out, all(p.keypoints.size > 0 for e in out.values() for p in e["persons"])
    if os.path.isfile(txt_path):
        with open(txt_path) as f:
            lines = [line.split() for line in f if line.strip()]
        for n, fields in enumerate(lines, start=1):
            image_id, rest = fields[0], fields[1:]
            if len(rest) % 2:
                raise ValueError(f"{txt_path}:{n}: expected '<image> <k> <score> <k> <score> ...'")
            if image_id in out:
                raise ValueError(f"{txt_path}:{n}: image {image_id!r} listed twice")
            persons = []
            for k_str, s_str in zip(rest[::2], rest[1::2]):
                try:
                    k, score = int(k_str), float(s_str)
                except ValueError:
                    raise ValueError(f"{txt_path}:{n}: bad person id / score {k_str!r} {s_str!r}") from None
                candidates = [os.path.join(folder, "parsing", f"{image_id}_{k}.png"),
                              os.path.join(folder, f"{image_id}_{k}.png")]
                found = next((c for c in candidates if os.path.isfile(c)), None)
                seg, tag = os.path.join(seg_dir, f"{image_id}.png"), os.path.join(tag_dir, f"{image_id}.png")
                has_global = os.path.isfile(seg) and os.path.isfile(tag)
                if found is not None and not (official and has_global):
                    persons.append(_Person(_png_loader(found, f"part map of person {k}"), score))
                elif has_global:
                    persons.append(_Person(_tag_loader(seg, tag, k), score, in_tag=_in_tag(tag, k)))
                else:
                    raise FileNotFoundError(f"{txt_path}:{n}: no part map for person {k} of {image_id!r}: "
                                            f"expected {candidates[0]}, {candidates[1]} or {seg} + {tag}")
            out[image_id] = {"persons": persons, "global_seg": global_seg(image_id)}
        return out, False
    for _, _, files in os.walk(folder):
        if any(f.lower().endswith(".png") for f in files):
            raise FileNotFoundError(f"{folder} holds PNGs but no scores file: expected {json_path} or {txt_path}")
    return out, False


def evaluate_mhp(gt_root: str, pred_folder: str, split: str = "val",
                 schema: HumanSchema = MHP_V2_SCHEMA, official: bool = False) -> Dict[str, float]:
    """AP^p_50, AP^p_vol, PCP_50 and mIoU (percent) of ``pred_folder`` on ``gt_root``/``split``.

    ``official=True`` follows the official kit where it differs from this project's defaults
    (:func:`evaluate_records`).

    Pose OKS mAP (``pose_AP``, ``pose_AP50``, ``pose_AP75``) is added when the predictions carry
    joints (``results.json``). Also returns the counts ``images``, ``gt_persons``,
    ``pred_persons``.
    """
    from ..data.datasets.mhp_v2 import load_mhp_v2

    records = load_mhp_v2(split, root=gt_root)
    if not records:
        raise ValueError(f"{gt_root}: split {split!r} has no image")
    return evaluate_records(records, pred_folder, schema, official)


def evaluate_densepose(gt_json: str, image_root: str, pred_folder: str) -> Dict[str, float]:
    """The :func:`evaluate_mhp` metrics of an MHPv2-format ``pred_folder`` against the part maps
    of a DensePose-COCO json (``dp_masks`` pasted into the person boxes, as the reader does)."""
    from ..data.categories import DENSEPOSE_SCHEMA
    from ..data.datasets.densepose_coco import load_densepose_coco_json

    records = load_densepose_coco_json(gt_json, image_root)
    if not records:
        raise ValueError(f"{gt_json}: no image with a DensePose person")
    return evaluate_records(records, pred_folder, DENSEPOSE_SCHEMA)


def evaluate_records(records: List[Dict], pred_folder: str, schema: HumanSchema,
                     official: bool = False) -> Dict[str, float]:
    """The :func:`evaluate_mhp` metrics of ``pred_folder`` on dataset dicts of any reader.

    Where the official LV-MHP-v2 kit (``eval_submission.py`` + ``eval_mhp.py``) and this
    project differ, the default is the project's and ``official=True`` gives the kit's:

    * tied scores: a stable sort (input order kept) / the kit's ``np.argsort(-confidence)``
      (numpy's unstable default sort; the kit's Python 2 dict order of images is not
      reproducible either, images are taken in the ground truth's order here);
    * a ``global_tag`` person with no non-background pixel in ``global_seg``: dropped like any
      empty prediction / kept and scored (an empty part map, normally a false positive), as
      the kit keeps every tag id with a pixel;
    * a folder with both per-person PNGs and ``global_*`` maps (and/or both ``results.json``
      and ``results.txt``): the per-person PNGs (``results.json``) / ``results.txt`` with the
      global maps, the only files the kit reads (:func:`read_mhp_predictions`).
    """
    preds, has_kp = read_mhp_predictions(pred_folder, official)
    known = {r["image_id"] for r in records}
    unknown = sorted(set(preds) - known)
    if unknown:
        _warn(f"{len(unknown)} predicted image(s) not in the ground truth, ignored: {unknown[:5]}")
    c, k = schema.num_parts, schema.num_keypoints
    conf = np.zeros((c, c), np.int64)
    poses: List = []
    counts = {"gt": 0, "pred": 0}

    def images() -> Iterator:
        nonlocal conf
        for r in records:
            shape = (r["height"], r["width"])
            # Ground-truth values outside the part range (e.g. 255) are kept in the person maps,
            # where the per-person IoU ignores them (the official fast_hist keeps 0 <= gt < C
            # only), and are ignored by the mIoU.
            gt_parts = [load_person_parts(a, shape[0], shape[1], c, image=r["file_name"], out_of_range="keep")
                        for a in r["annotations"]]
            target = np.zeros(shape, np.uint8)
            instance_map = np.zeros(shape, np.int32)
            for p_idx, m in enumerate(gt_parts):
                target[m > 0], instance_map[m > 0] = m[m > 0], p_idx + 1
            target[target >= c] = IGNORE
            ignore_mask = load_ignore_mask(r)
            if ignore_mask is not None:
                target[ignore_mask & (instance_map == 0)] = IGNORE
            entry = preds.get(r["image_id"], {"persons": [], "global_seg": None})
            persons = entry["persons"]
            maps = [p.load(shape) for p in persons]
            for m, p in zip(maps, persons):
                if m.size and int(m.max()) >= c:
                    raise ValueError(f"image {r['image_id']}: predicted part id {int(m.max())} >= {c} "
                                     f"(person with score {p.score})")
            scores = [p.score for p in persons]
            if entry["global_seg"] is not None:
                category = _read_map(entry["global_seg"], shape, "global_seg map")
            else:
                category = np.zeros(shape, np.uint8)
                for i in np.argsort(scores, kind="stable"):
                    category[maps[i] > 0] = maps[i][maps[i] > 0]
            conf += confusion_matrix(target, category, c, IGNORE)
            if has_kp:
                areas = np.array([max(a["bbox"][2] - a["bbox"][0], 0) * max(a["bbox"][3] - a["bbox"][1], 0)
                                  for a in r["annotations"]], np.float64)
                kps = [p.keypoints for p in persons]
                pk = np.stack(kps) if kps and all(x.shape == (k, 3) for x in kps) else np.zeros((0, k, 3))
                if len(pk) != len(persons):
                    raise ValueError(f"image {r['image_id']}: predicted joints are not {k} x 3 per person")
                gt_kps = np.zeros((len(r["annotations"]), k, 3), np.float32)
                for p_idx, a in enumerate(r["annotations"]):
                    kp = np.asarray(a["keypoints"], np.float32)
                    if kp.size != k * 3:
                        raise ValueError(f"{r['file_name']}: person {p_idx} has {kp.size} keypoint values, "
                                         f"expected {k} x 3")
                    gt_kps[p_idx] = kp.reshape(k, 3)
                poses.append((gt_kps, areas, pk, np.asarray(scores, np.float64)))
            counts["gt"] += sum(1 for m in gt_parts if m.any())
            counts["pred"] += len(persons)
            keep_empty = [official and p.in_tag is not None and p.in_tag(shape) for p in persons]
            yield summarize_persons(gt_parts, maps, scores, c, True, keep_empty=keep_empty)

    aps, pcps = person_level_from_summaries(list(images()), PART_IOU_THRESHOLDS,
                                            sort="official" if official else "stable")
    i50 = [i for i, t in enumerate(PART_IOU_THRESHOLDS) if np.isclose(t, 0.5)][0]
    res = {"images": len(records), "gt_persons": counts["gt"], "pred_persons": counts["pred"]}
    res.update(_miou_block(conf))
    res.update({"AP_p_50": 100.0 * float(aps[i50]), "AP_p_vol": 100.0 * float(np.mean(aps)),
                "PCP_50": 100.0 * float(pcps[i50])})
    if has_kp:
        pose = oks_map(poses, schema.oks_sigmas)
        res.update({"pose_AP": 100.0 * pose["AP"], "pose_AP50": 100.0 * pose["AP50"],
                    "pose_AP75": 100.0 * pose["AP75"]})
    return res


# ----------------------------------------------------------------------------------------------
# PASCAL-Person-Part / PGN-style AP^r
# ----------------------------------------------------------------------------------------------
def _read_region_txt(path: str, min_fields: int, what: str) -> List[List[str]]:
    with open(path) as f:
        rows = [line.split() for line in f]
    for n, row in enumerate(rows, start=1):
        if row and len(row) < min_fields:
            raise ValueError(f"{path}:{n}: expected {what}")
    return rows


def _regions_from_id_map(id_map: np.ndarray, classes: Dict[int, int]) -> List[Tuple[int, np.ndarray]]:
    """``(class, mask)`` per region id of ``classes`` present in ``id_map``."""
    present = set(int(v) for v in np.unique(id_map)) - {0}
    return [(cls, id_map == rid) for rid, cls in sorted(classes.items()) if rid in present]


def _pgn_gt_images(gt_dir: str, num_classes: int) -> List[Tuple[str, Callable]]:
    ids = sorted(os.path.splitext(n)[0] for n in os.listdir(gt_dir)
                 if n.endswith(".txt") and os.path.isfile(os.path.join(gt_dir, os.path.splitext(n)[0] + ".png")))
    if not ids:
        raise FileNotFoundError(f"{gt_dir}: no ground truth found (expected Category_ids/ and Human_ids/ of a "
                                f"PASCAL-Person-Part split, or <image>.png + <image>.txt pairs)")

    def loader(image_id: str):
        def load():
            png, txt = os.path.join(gt_dir, f"{image_id}.png"), os.path.join(gt_dir, f"{image_id}.txt")
            id_map = read_label_png(png)
            classes = {}
            for n, row in enumerate(_read_region_txt(txt, 2, "'region_id class_id [person_id]'"), start=1):
                if not row:
                    continue
                rid, cls = int(row[0]), int(row[1])
                if not 1 <= cls < num_classes:
                    raise ValueError(f"{txt}:{n}: class {cls} outside [1, {num_classes})")
                classes[rid] = cls
            regions = _regions_from_id_map(id_map, classes)
            category = np.zeros(id_map.shape, np.uint8)
            for cls, mask in regions:
                category[mask] = cls
            return regions, category
        return load
    return [(i, loader(i)) for i in ids]


def _split_gt_images(split_dir: str, label_order: str) -> List[Tuple[str, Callable]]:
    from ..data.datasets.pascal_person_part import load_pascal_person_part_split

    # The split's list: <split>/<list> or, in the instance-level copy, ../tools/<list>.
    names = {"Training": ("train_id.txt",), "Testing": ("test_id.txt",)}.get(
        os.path.basename(os.path.normpath(split_dir)), ("test_id.txt", "train_id.txt", "val_id.txt"))
    tools = os.path.join(os.path.dirname(os.path.normpath(split_dir)), "tools")
    lists = [n for n in names if os.path.isfile(os.path.join(split_dir, n)) or os.path.isfile(os.path.join(tools, n))]
    records = load_pascal_person_part_split(split_dir, lists[0] if lists else "", label_order, read_joints=False)
    c, k = PASCAL_PERSON_PART_SCHEMA.num_parts, PASCAL_PERSON_PART_SCHEMA.num_keypoints

    def loader(r):
        def load():
            h, w = r["height"], r["width"]
            regions = []
            for a in r["annotations"]:
                parts = load_person_parts(a, h, w, c, image=r["file_name"])
                regions += [(int(cls), parts == cls) for cls in np.unique(parts) if cls > 0]
            gt = load_human_annotations(r, c, k)
            category = gt.part_map.copy()
            if gt.ignore_mask is not None:
                category[gt.ignore_mask & (gt.instance_map == 0)] = IGNORE
            return regions, category
        return load
    return [(r["image_id"], loader(r)) for r in records]


def evaluate_pascal(gt: str, pred: str, num_classes: int = PASCAL_PERSON_PART_SCHEMA.num_parts,
                    one_to_one: bool = False, label_order: str = DEFAULT_LABEL_ORDER) -> Dict[str, float]:
    """AP^r_50/60/70, AP^r_vol and mIoU (percent) of the PGN-style folder ``pred`` on ``gt``
    (module docstring). ``one_to_one`` selects the stricter matching of :func:`ap_region`."""
    if not os.path.isdir(gt):
        raise FileNotFoundError(f"ground-truth folder not found: {gt}")
    if not os.path.isdir(pred):
        raise FileNotFoundError(f"prediction folder not found: {pred}")
    if os.path.isdir(os.path.join(gt, "Category_ids")) and os.path.isdir(os.path.join(gt, "Human_ids")):
        gt_images = _split_gt_images(gt, label_order)
    else:
        gt_images = _pgn_gt_images(gt, num_classes)
    inst_dir = os.path.join(pred, "instance_parsing")
    inst_dir = inst_dir if os.path.isdir(inst_dir) else pred
    glob_dir = os.path.join(pred, "global_parsing")
    glob_dir = glob_dir if os.path.isdir(glob_dir) else None
    known = {i for i, _ in gt_images}
    pred_ids = {os.path.splitext(n)[0] for n in os.listdir(inst_dir) if n.endswith(".txt")}
    unknown = sorted(pred_ids - known)
    if unknown:
        _warn(f"{len(unknown)} predicted image(s) not in the ground truth, ignored: {unknown[:5]}")
    conf = np.zeros((num_classes, num_classes), np.int64)
    counts = {"gt": 0, "pred": 0}

    def images() -> Iterator:
        nonlocal conf
        for image_id, load in gt_images:
            gt_regions, category_gt = load()
            shape = category_gt.shape
            png, txt = os.path.join(inst_dir, f"{image_id}.png"), os.path.join(inst_dir, f"{image_id}.txt")
            pred_regions = []
            if os.path.isfile(png) or os.path.isfile(txt):
                id_map = _read_map(png, shape, "predicted region map")
                classes, scores = {}, {}
                for n, row in enumerate(_read_region_txt(txt, 2, "'class_id score'"), start=1):
                    if not row:
                        continue
                    cls, score = int(row[0]), float(row[1])
                    if not 1 <= cls < num_classes:
                        raise ValueError(f"{txt}:{n}: class {cls} outside [1, {num_classes})")
                    classes[n], scores[n] = cls, score
                present = set(int(v) for v in np.unique(id_map)) - {0}
                pred_regions = [(cls, id_map == rid, scores[rid]) for rid, cls in sorted(classes.items())
                                if rid in present]
            gpng = os.path.join(glob_dir, f"{image_id}.png") if glob_dir else None
            if gpng is not None and os.path.isfile(gpng):
                category = _read_map(gpng, shape, "global parsing map")
            else:
                category = np.zeros(shape, np.uint8)
                for cls, mask, _ in sorted(pred_regions, key=lambda t: t[2]):
                    category[mask] = cls
            conf += confusion_matrix(category_gt, category, num_classes, IGNORE)
            counts["gt"] += len(gt_regions)
            counts["pred"] += len(pred_regions)
            yield gt_regions, pred_regions

    ap = ap_region(images(), num_classes, PART_IOU_THRESHOLDS, one_to_one=one_to_one)
    res = {"images": len(gt_images), "gt_regions": counts["gt"], "pred_regions": counts["pred"]}
    res.update(_miou_block(conf))
    for key in ("AP_r_50", "AP_r_60", "AP_r_70", "AP_r_vol"):
        res[key] = 100.0 * float(ap[key])
    return res


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
_LABELS = {
    "mIoU": "mIoU", "pixel_accuracy": "pixel accuracy", "AP_p_50": "AP^p_50", "AP_p_vol": "AP^p_vol",
    "PCP_50": "PCP_50", "AP_r_50": "AP^r_50", "AP_r_60": "AP^r_60", "AP_r_70": "AP^r_70",
    "AP_r_vol": "AP^r_vol", "pose_AP": "pose AP (OKS)", "pose_AP50": "pose AP50", "pose_AP75": "pose AP75",
}


def format_table(results: Dict[str, float], title: str = "") -> str:
    """The results as an aligned two-column text table (metrics in percent, then counts)."""
    rows = [(_LABELS[k], f"{v:.2f}") for k, v in results.items() if k in _LABELS]
    rows += [(k, str(v)) for k, v in results.items() if k not in _LABELS]
    width = max(len(r[0]) for r in rows + [("metric", "")])
    lines = [title] if title else []
    lines += [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dspf_parser.evaluation.evaluate_folder",
                                description="Evaluate a folder of instance-level human parsing results.")
    sub = p.add_subparsers(dest="benchmark", required=True)
    m = sub.add_parser("mhp", help="MHPv2 submission folder: AP^p_50, AP^p_vol, PCP_50, mIoU")
    m.add_argument("--gt", required=True, help="LV-MHP-v2 root (holding list/ and the split folder)")
    m.add_argument("--split", default="val", help="split of --gt (default: val)")
    m.add_argument("--pred", required=True, help="prediction folder (results.json or results.txt + PNGs)")
    m.add_argument("--official", action="store_true",
                   help="follow the official kit where it differs (ties, empty global_tag persons, which files "
                        "are read; see evaluate_records)")
    m.add_argument("--json", help="also write the results to this JSON file")
    d = sub.add_parser("densepose", help="MHPv2-format folder on DensePose-COCO: AP^p_50, AP^p_vol, PCP_50, mIoU")
    d.add_argument("--gt", required=True, help="DensePose-COCO json (e.g. densepose_coco_2014_minival.json)")
    d.add_argument("--images", required=True, help="folder of the json's images (e.g. coco/val2014)")
    d.add_argument("--pred", required=True, help="prediction folder (results.json or results.txt + PNGs)")
    d.add_argument("--json", help="also write the results to this JSON file")
    q = sub.add_parser("pascal", help="PGN-style instance-part folder: AP^r_50/60/70, AP^r_vol, mIoU")
    q.add_argument("--gt", required=True,
                   help="PASCAL-Person-Part split folder (Category_ids/, Human_ids/) or <image>.png + .txt pairs")
    q.add_argument("--pred", required=True, help="prediction folder (<image>.png + <image>.txt, or instance_parsing/)")
    q.add_argument("--num-classes", type=int, default=PASCAL_PERSON_PART_SCHEMA.num_parts,
                   help="part classes including background (default: 7, PASCAL-Person-Part)")
    q.add_argument("--one-to-one", action="store_true",
                   help="count each ground-truth region at most once (stricter than PGN's script)")
    q.add_argument("--label-order", default=DEFAULT_LABEL_ORDER, choices=sorted(LABEL_ORDERS),
                   help="part id order of a split folder --gt (see dspf_parser.data.datasets.pascal_person_part)")
    q.add_argument("--json", help="also write the results to this JSON file")
    return p


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Run the command line; returns the results dict it printed."""
    args = _parser().parse_args(argv)
    if args.benchmark == "mhp":
        res = evaluate_mhp(args.gt, args.pred, args.split, official=args.official)
        title = f"MHPv2 {args.split}: {args.pred}"
    elif args.benchmark == "densepose":
        res = evaluate_densepose(args.gt, args.images, args.pred)
        title = f"DensePose-COCO {os.path.basename(args.gt)}: {args.pred}"
    else:
        res = evaluate_pascal(args.gt, args.pred, args.num_classes, args.one_to_one, args.label_order)
        title = f"PGN-style AP^r: {args.pred}"
    print(format_table(res, title))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return res


if __name__ == "__main__":
    main()
