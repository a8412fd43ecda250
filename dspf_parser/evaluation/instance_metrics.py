"""Instance-level human parsing metrics, pure numpy: AP^p / PCP, AP^r and keypoint OKS mAP.

No detectron2 or torch: every function takes plain numpy arrays, so the evaluator (or a script)
can call them on whatever it decoded. Each metric reproduces the benchmark's official script;
where we deviate or had to choose, it is listed here.

AP^p and PCP (MHP, DensePose parsing): ``eval_seg_ap`` of the official MHP-v2 script
(``Evaluation/Multi-Human-Parsing/v2/eval_mhp.py`` in ZhaoJ9014/Multi-Human-Parsing, read and
followed line by line):

* The person IoU is ``np.nanmean`` of ``cal_one_mean_iou``: a confusion matrix of the two
  full-image maps over *all* classes, **background (0) included**, classes absent from both
  (``0/0``) skipped. The official score therefore counts background as one more class, which
  every published MHP / CIHP AP^p number also does (Parsing R-CNN's reimplementation too).
  ``include_background=True`` (the default) reproduces that.
  ``include_background=False`` gives the literal wording of ``datasets.md`` ("mean part IoU over
  the parts present in either", background left out); use it only for diagnostics.
* Ground-truth pixels whose label is outside ``[0, num_classes)`` (e.g. 255) are left out of
  the confusion matrix, as ``fast_hist`` does. Predicted labels must lie in that range.
* A ground-truth person counts (``npos``) when it has a non-zero pixel (``get_gt``). A
  predicted person with no non-zero pixel is dropped, as ``eval_submission.py`` drops it when it
  turns a submission into per-person masks.
* Predictions of all images are sorted by descending score (a stable sort: the official
  ``np.argsort(-confidence)`` gives the same order for small inputs and no guaranteed order for
  ties otherwise, so tied predictions keep their input order here). Each prediction looks
  for its best ground-truth person among **all** the persons in its image (the first one wins a
  tie). It is a TP when that IoU is **strictly greater** than the threshold and that person is
  not matched yet. Otherwise it is a FP: a prediction whose best person is already taken does
  *not* fall back to its second-best person.
* AP is VOC 2010+ ``voc_ap``: the area under the monotone precision envelope.
* PCP comes from the same pass at the same threshold: for each matched ground-truth person,
  the number of part classes whose IoU is **strictly greater** than the threshold, divided by
  the number of part classes the person has. Unmatched ground-truth persons count 0; the mean
  is over ``npos``. PCP_50 is this at threshold 0.5.

AP^r (PASCAL-Person-Part, CIHP): ``compute_class_ap`` of PGN's
``evaluation/test_inst_part_ap.py`` (Engineering-Course/CIHP_PGN, read and followed):

* For each part class ``1..num_classes-1``, every predicted region of that class is compared
  with the ground-truth regions of the same class in its image. It is a TP at threshold ``t``
  when its best IoU is **strictly greater** than ``t``. Ground-truth regions are **never marked as
  taken**, so duplicates are not penalised. Recall can then exceed 1 and, through
  ``voc_ap``, so can a class AP; that is reproduced as is. ``one_to_one=True`` gives the
  stricter VOC-style variant instead, the same rule as AP^p above: best region among all,
  FP when it is already taken.
* Scores of all images are sorted with ``np.argsort(scores)[::-1]``, reproduced with a stable
  sort. Tied regions are therefore taken in *reverse* input order.
* Regions with an empty mask are dropped: the official script reads regions from an id map,
  where an empty region cannot appear.
* Precision is ``tp / max(tp + fp, eps)`` and AP is ``voc_ap``. One deviation: a class without
  ground-truth regions gets AP NaN and the per-threshold AP is the NaN-mean over classes, as
  ``datasets.md`` says. The script gives such a class 0 (no predictions) or NaN (some
  predictions) and takes a plain mean. This only differs when a class is missing from the whole
  split.

Keypoint mAP: computed by pycocotools' ``COCOeval(iouType="keypoints")`` on in-memory COCO
objects, so it *is* the official COCO computation: OKS thresholds .50:.05:.95, greedy matching by
descending score with each ground truth matched at most once, 101-point interpolated precision,
area range "all", ``maxDets`` 20 by default (COCO's keypoint default). Unlabelled joints
(``v == 0``) are left out of the OKS. A ground-truth person without a labelled joint is removed.
Merely flagging it as ignored would let COCO's box fallback absorb detections, and there is
no person box here.

When there is no ground truth at all, an AP is undefined and is returned as NaN. When there is
ground truth but no prediction, every AP and PCP is 0.
"""
import contextlib
import io
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = [
    "PART_IOU_THRESHOLDS",
    "part_iou_matrix",
    "ap_part",
    "pcp",
    "ap_region",
    "oks_map",
    "PersonSummary",
    "summarize_persons",
    "person_level_from_summaries",
    "RegionSummary",
    "summarize_regions",
    "ap_region_from_summaries",
]

#: IoU thresholds of AP^p_vol and AP^r_vol.
PART_IOU_THRESHOLDS: Tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

#: One image for AP^p / PCP: ground-truth person maps, predicted person maps, predicted scores.
PersonImage = Tuple[Sequence[np.ndarray], Sequence[np.ndarray], Sequence[float]]
#: One image for AP^r: ground-truth ``(class_id, mask)``, predicted ``(class_id, mask, score)``.
RegionImage = Tuple[Sequence[Tuple[int, np.ndarray]], Sequence[Tuple[int, np.ndarray, float]]]
#: One image for keypoint mAP: gt keypoints ``[G, K, 3]``, gt areas ``[G]``,
#: predicted keypoints ``[D, K, 3]`` (x, y, score), predicted scores ``[D]``.
KeypointImage = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC 2010+ AP (``voc_ap`` with ``use_07_metric=False``): area under the precision envelope."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def _ap_from_flags(tp: np.ndarray, npos: int) -> float:
    """VOC AP of TP flags already in score order, with ``npos`` ground truths (NaN if none)."""
    if npos == 0:
        return float("nan")
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1.0 - tp)
    return _voc_ap(ctp / float(npos), ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps))


def _named(per_threshold: Mapping[float, float], prefix: str, names: Sequence[float]) -> Dict[str, float]:
    """``{prefix_50: AP at 0.5, ...}`` for each of ``names`` found among the thresholds."""
    out = {}
    for name in names:
        for t, v in per_threshold.items():
            if np.isclose(t, name):
                out[f"{prefix}_{round(name * 100)}"] = v
    return out


def _check_integer_map(a: np.ndarray, what: str) -> None:
    if a.dtype.kind not in "biu":
        raise ValueError(f"{what} must be an integer label map, got dtype {a.dtype}")


def _person_class_ious(
    gt_parts: Sequence[np.ndarray], pred_parts: Sequence[np.ndarray], num_classes: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class IoU ``[G, D, C]`` (NaN where a class is in neither map) and GT part presence ``[G, C]``.

    Equal to the official ``cal_one_mean_iou(pred_d, gt_g, C)`` for every pair, computed with
    per-person class counts. Only ground-truth foreground pixels are gathered from the
    predictions, so the cost is ``O(D * sum of GT person areas + D * H * W)``, not
    ``O(G * D * H * W)``. Background counts follow from the totals.
    """
    c = num_classes
    n_gt, n_pred = len(gt_parts), len(pred_parts)
    ious = np.full((n_gt, n_pred, c), np.nan)
    present = np.zeros((n_gt, c), dtype=bool)
    maps = [np.asarray(m) for m in (*gt_parts, *pred_parts)]
    if len({m.shape for m in maps}) > 1:
        raise ValueError(f"person maps differ in shape: {sorted({m.shape for m in maps})}")
    for i, m in enumerate(maps):
        _check_integer_map(m, "ground-truth person map" if i < n_gt else "predicted person map")
    if n_gt == 0:
        return ious, present
    pred = np.stack([m.ravel() for m in maps[n_gt:]]) if n_pred else np.zeros((0, maps[0].size), np.uint8)
    if pred.size and (pred.min() < 0 or pred.max() >= c):
        raise ValueError(f"predicted part label outside [0, {c})")
    pred_area = np.stack([np.bincount(p, minlength=c) for p in pred]) if n_pred else np.zeros((0, c), np.int64)
    rows = np.arange(n_pred)
    for g, gt_map in enumerate(maps[:n_gt]):
        gt = gt_map.ravel().astype(np.int64)
        valid = (gt >= 0) & (gt < c)
        gt_count = np.bincount(gt[valid], minlength=c)
        present[g, 1:] = gt_count[1:] > 0
        if n_pred == 0:
            continue
        area = pred_area
        if not valid.all():
            ignored = pred[:, ~valid].astype(np.int64)
            in_ignored = np.bincount((rows[:, None] * c + ignored).ravel(), minlength=n_pred * c)
            area = pred_area - in_ignored.reshape(n_pred, c)
        fg = np.flatnonzero(valid & (gt > 0))
        labels = gt[fg]
        at = pred[:, fg]
        d_idx, k_idx = np.nonzero(at == labels)
        inter = np.bincount(d_idx * c + labels[k_idx], minlength=n_pred * c).reshape(n_pred, c).astype(np.float64)
        # Background intersection: GT background minus pixels the prediction claims there.
        inter[:, 0] = gt_count[0] - (area[:, 1:].sum(1) - np.count_nonzero(at, axis=1))
        union = gt_count[None, :] + area - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            ious[g] = np.where(union > 0, inter / union, np.nan)
    return ious, present


def _mean_iou(ious: np.ndarray, include_background: bool) -> np.ndarray:
    """NaN-mean over the class axis, 0 where no class is present in either map."""
    sel = ious if include_background else ious[..., 1:]
    count = np.sum(~np.isnan(sel), axis=-1)
    return np.where(count > 0, np.nansum(sel, axis=-1) / np.maximum(count, 1), 0.0)


def part_iou_matrix(
    gt_parts: List[np.ndarray], pred_parts: List[np.ndarray], num_classes: int, include_background: bool = True
) -> np.ndarray:
    """Person-level mean part IoU ``[G, D]`` between ground-truth person g and prediction d.

    Each person is an ``[H, W]`` integer map, with part ids where the person is and 0 elsewhere.
    The mean is taken over the classes present in either of the two maps. It includes background,
    as the official MHP script does, unless ``include_background`` is False (see the module
    docstring). A pair where no class is present in either map gets 0.
    """
    ious, _ = _person_class_ious(gt_parts, pred_parts, num_classes)
    return _mean_iou(ious, include_background)


@dataclass
class PersonSummary:
    """What AP^p and PCP need of one image, without its maps (``D`` kept predictions).

    Attributes:
        scores: ``[D]`` predicted person scores.
        best_iou: ``[D]`` mean part IoU with the best ground-truth person (``-inf`` if none).
        best_gt: ``[D]`` index of that person in the image (``-1`` if none).
        part_hits_iou: ``[D, C - 1]`` per-part-class IoU with that person (NaN where absent).
        best_num_parts: ``[D]`` number of part classes of that person.
        num_gt: ground-truth persons of the image.
    """

    scores: np.ndarray
    best_iou: np.ndarray
    best_gt: np.ndarray
    part_hits_iou: np.ndarray
    best_num_parts: np.ndarray
    num_gt: int


def summarize_persons(
    gt_parts: Sequence[np.ndarray],
    pred_parts: Sequence[np.ndarray],
    pred_scores: Sequence[float],
    num_classes: int,
    include_background: bool = True,
    keep_empty: Optional[Sequence[bool]] = None,
) -> PersonSummary:
    """The :class:`PersonSummary` of one image (maps as for :func:`ap_part`).

    ``keep_empty[i]`` keeps prediction ``i`` even when its map has no non-zero pixel (default:
    dropped). The official ``eval_submission.py`` keeps a ``global_tag`` person whose pixels are
    all background in ``global_seg``: ``keep_empty`` reproduces that.
    """
    if len(pred_parts) != len(pred_scores):
        raise ValueError(f"{len(pred_parts)} predicted persons but {len(pred_scores)} scores")
    gts = [np.asarray(m) for m in gt_parts if np.any(np.asarray(m) > 0)]
    keep = [i for i, m in enumerate(pred_parts)
            if np.any(np.asarray(m) > 0) or (keep_empty is not None and keep_empty[i])]
    ious, present = _person_class_ious(gts, [pred_parts[i] for i in keep], num_classes)
    miou = _mean_iou(ious, include_background)
    d = len(keep)
    scores = np.asarray([float(pred_scores[i]) for i in keep], dtype=np.float64)
    if not gts:
        return PersonSummary(scores, np.full(d, -np.inf), np.full(d, -1, np.int64),
                             np.full((d, num_classes - 1), np.nan), np.zeros(d, np.int64), 0)
    best = np.argmax(miou, axis=0) if d else np.zeros(0, np.int64)
    cols = np.arange(d)
    return PersonSummary(
        scores,
        miou[best, cols].astype(np.float64),
        best.astype(np.int64),
        ious[best, cols, 1:],
        present.sum(1)[best].astype(np.int64),
        len(gts),
    )


def person_level_from_summaries(
    summaries: Sequence[PersonSummary], thresholds: Sequence[float], sort: str = "stable"
) -> Tuple[np.ndarray, np.ndarray]:
    """AP^p and PCP ``[T]`` per threshold: the official ``eval_seg_ap`` loop, vectorised per threshold.

    ``sort``: ``"stable"`` (tied scores keep their input order, the default) or ``"official"``
    (``np.argsort(-scores)`` with numpy's default, unstable sort, as the official script; the
    order of tied predictions then depends on numpy's introsort and on the input order).
    """
    if sort not in ("stable", "official"):
        raise ValueError(f"sort must be 'stable' or 'official', got {sort!r}")
    thr = np.asarray(thresholds, dtype=np.float64)
    scores, ovmax, gt_index, pcp_frac = [], [], [], []
    npos = 0
    for sm in summaries:
        scores.append(sm.scores)
        ovmax.append(sm.best_iou)
        gt_index.append(np.where(sm.best_gt >= 0, sm.best_gt + npos, -1))
        with np.errstate(invalid="ignore"):
            hits = (sm.part_hits_iou[:, None, :] > thr[None, :, None]).sum(2)  # [D, T]
        frac = np.where(sm.best_num_parts[:, None] > 0, hits / np.maximum(sm.best_num_parts[:, None], 1), 0.0)
        pcp_frac.append(frac.reshape(-1, len(thr)))
        npos += sm.num_gt
    if npos == 0:
        return np.full(len(thr), np.nan), np.full(len(thr), np.nan)
    all_scores = np.concatenate(scores) if scores else np.zeros(0)
    order = np.argsort(-all_scores, kind="stable") if sort == "stable" else np.argsort(-all_scores)
    ov = np.concatenate(ovmax)[order] if ovmax else np.zeros(0)
    gid = np.concatenate(gt_index)[order] if gt_index else np.zeros(0, np.int64)
    frac = np.concatenate(pcp_frac)[order] if pcp_frac else np.zeros((0, len(thr)))
    aps, pcps = np.zeros(len(thr)), np.zeros(len(thr))
    for k, t in enumerate(thr):
        cand = np.flatnonzero(ov > t)
        _, first = np.unique(gid[cand], return_index=True)
        hit = cand[first]  # the highest-scored prediction for each GT person above threshold
        tp = np.zeros(len(order))
        tp[hit] = 1.0
        aps[k] = _ap_from_flags(tp, npos)
        pcps[k] = frac[hit, k].sum() / npos
    return aps, pcps


def _person_level(
    images: Sequence[PersonImage], num_classes: int, thresholds: Sequence[float], include_background: bool
) -> Tuple[np.ndarray, np.ndarray]:
    return person_level_from_summaries(
        [summarize_persons(g, p, s, num_classes, include_background) for g, p, s in images], thresholds
    )


def ap_part(
    images: Sequence[PersonImage],
    num_classes: int,
    thresholds: Sequence[float] = PART_IOU_THRESHOLDS,
    include_background: bool = True,
) -> Dict[str, object]:
    """Person-level part AP (AP^p) over a split, as the official MHP ``eval_seg_ap``.

    ``images``: per image ``(gt_parts, pred_parts, pred_scores)``. ``gt_parts`` and
    ``pred_parts`` are lists of ``[H, W]`` integer maps, one per person, with part ids on the
    person and 0 elsewhere. ``pred_scores`` holds one score per predicted person.

    Returns ``{"AP_p_50": AP at 0.5, "AP_p_vol": mean AP over the thresholds, "per_threshold":
    {t: AP}}``. ``AP_p_50`` is present only when 0.5 is one of the thresholds. APs are NaN when
    there is no ground-truth person. Matching rules are in the module docstring.
    """
    aps, _ = _person_level(images, num_classes, thresholds, include_background)
    per = {float(t): float(a) for t, a in zip(thresholds, aps)}
    return {**_named(per, "AP_p", (0.5,)), "AP_p_vol": float(np.mean(aps)), "per_threshold": per}


def pcp(
    images: Sequence[PersonImage], num_classes: int, threshold: float = 0.5, include_background: bool = True
) -> float:
    """PCP at ``threshold`` (PCP_50 by default), from the same pass as ``ap_part`` at that threshold.

    Each ground-truth person scores the fraction of its part classes whose IoU with its matched
    prediction is strictly greater than ``threshold``. A person with no matched prediction
    scores 0. The result is the mean over ground-truth persons, NaN if there are none. ``images``
    is as for ``ap_part``.
    """
    return float(_person_level(images, num_classes, (threshold,), include_background)[1][0])


def _stack_masks(masks: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([np.asarray(m, dtype=bool).ravel() for m in masks]).astype(np.float64)


@dataclass
class RegionSummary:
    """What AP^r needs of one image: per part class ``c``, the scores of its predicted regions,
    their best IoU with a ground-truth region of class ``c`` (``-inf`` if none) and that
    region's index in the image (``-1``), and ``num_gt[c]`` ground-truth regions."""

    scores: Dict[int, np.ndarray]
    best_iou: Dict[int, np.ndarray]
    best_gt: Dict[int, np.ndarray]
    num_gt: np.ndarray


def summarize_regions(
    gt_regions: Sequence[Tuple[int, np.ndarray]],
    pred_regions: Sequence[Tuple[int, np.ndarray, float]],
    num_classes: int,
) -> RegionSummary:
    """The :class:`RegionSummary` of one image (regions as for :func:`ap_region`)."""
    shapes = {np.shape(r[1]) for r in (*gt_regions, *pred_regions)}
    if len(shapes) > 1:
        raise ValueError(f"region masks of one image differ in shape: {sorted(shapes)}")
    for r in (*gt_regions, *pred_regions):
        if not 1 <= int(r[0]) < num_classes:
            raise ValueError(f"region class {r[0]} outside [1, {num_classes})")
    out = RegionSummary({}, {}, {}, np.zeros(num_classes, dtype=np.int64))
    for c in range(1, num_classes):
        gts = [m for k, m in gt_regions if int(k) == c and np.any(m)]
        preds = [(m, s) for k, m, s in pred_regions if int(k) == c and np.any(m)]
        out.num_gt[c] = len(gts)
        if not preds:
            continue
        if gts:
            p, g = _stack_masks([m for m, _ in preds]), _stack_masks(gts)
            inter = p @ g.T
            iou = inter / (p.sum(1)[:, None] + g.sum(1)[None, :] - inter)
            j = np.argmax(iou, axis=1)
            out.best_iou[c], out.best_gt[c] = iou[np.arange(len(preds)), j], j.astype(np.int64)
        else:
            out.best_iou[c], out.best_gt[c] = np.full(len(preds), -np.inf), np.full(len(preds), -1, np.int64)
        out.scores[c] = np.asarray([float(s) for _, s in preds], dtype=np.float64)
    return out


def ap_region_from_summaries(
    summaries: Sequence[RegionSummary],
    num_classes: int,
    thresholds: Sequence[float] = PART_IOU_THRESHOLDS,
    one_to_one: bool = False,
) -> Dict[str, object]:
    """AP^r from per-image :class:`RegionSummary` objects (same result as :func:`ap_region`)."""
    thr = np.asarray(thresholds, dtype=np.float64)
    n_gt = np.zeros(num_classes, dtype=np.int64)
    scores: List[List[np.ndarray]] = [[] for _ in range(num_classes)]
    best: List[List[np.ndarray]] = [[] for _ in range(num_classes)]
    best_gid: List[List[np.ndarray]] = [[] for _ in range(num_classes)]
    for sm in summaries:
        for c in sm.scores:
            scores[c].append(sm.scores[c])
            best[c].append(sm.best_iou[c])
            best_gid[c].append(np.where(sm.best_gt[c] >= 0, sm.best_gt[c] + n_gt[c], -1))
        n_gt += sm.num_gt
    per_class: Dict[int, np.ndarray] = {}
    for c in range(1, num_classes):
        sc = np.concatenate(scores[c]) if scores[c] else np.zeros(0)
        order = np.argsort(sc, kind="stable")[::-1]
        ov = (np.concatenate(best[c]) if best[c] else np.zeros(0))[order]
        gid = (np.concatenate(best_gid[c]) if best_gid[c] else np.zeros(0, np.int64))[order]
        aps = np.zeros(len(thr))
        for k, t in enumerate(thr):
            hit = ov > t
            if one_to_one:
                cand = np.flatnonzero(hit)
                _, first = np.unique(gid[cand], return_index=True)
                hit = np.zeros(len(order), dtype=bool)
                hit[cand[first]] = True
            aps[k] = _ap_from_flags(hit.astype(np.float64), int(n_gt[c]))
        per_class[c] = aps
    table = np.stack(list(per_class.values())) if per_class else np.full((1, len(thr)), np.nan)
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(table)
        mean = np.where(valid.any(0), np.nansum(table, 0) / np.maximum(valid.sum(0), 1), np.nan)
    per = {float(t): float(a) for t, a in zip(thresholds, mean)}
    return {
        **_named(per, "AP_r", (0.5, 0.6, 0.7)),
        "AP_r_vol": float(np.mean(mean)),
        "per_threshold": per,
        "per_class": per_class,
    }


def ap_region(
    images: Sequence[RegionImage],
    num_classes: int,
    thresholds: Sequence[float] = PART_IOU_THRESHOLDS,
    one_to_one: bool = False,
) -> Dict[str, object]:
    """Region-level part AP (AP^r), as PGN's ``test_inst_part_ap.py`` (see the module docstring).

    ``images``: per image ``(gt_regions, pred_regions)``. ``gt_regions`` is a list of
    ``(class_id, mask)`` and ``pred_regions`` a list of ``(class_id, mask, score)``. Each mask is
    a binary ``[H, W]`` map of one person's part, and class ids are in ``[1, num_classes)``.
    By default a ground-truth region may be hit by any number of predictions, as in the
    official script. ``one_to_one=True`` gives the stricter VOC-style matching.

    Returns ``{"AP_r_50", "AP_r_60", "AP_r_70"`` (each only when that threshold is used),
    ``"AP_r_vol"`` (mean over thresholds), ``"per_threshold": {t: NaN-mean AP over classes}``,
    ``"per_class": {class_id: [T] APs}}``. A class with no ground-truth region gets NaN.
    For large splits, summarise each image with :func:`summarize_regions` as it comes and call
    :func:`ap_region_from_summaries`: the masks need not be kept.
    """
    return ap_region_from_summaries(
        [summarize_regions(g, p, num_classes) for g, p in images], num_classes, thresholds, one_to_one
    )


def oks_map(images: Sequence[KeypointImage], sigmas: Sequence[float], max_dets: int = 20) -> Dict[str, object]:
    """COCO keypoint mAP with per-joint ``sigmas``, computed by pycocotools' ``COCOeval``.

    ``images``: per image ``(gt_keypoints [G, K, 3] (x, y, v), gt_areas [G],
    pred_keypoints [D, K, 3] (x, y, score), pred_scores [D])``. Only x and y of the predicted
    joints are used. ``max_dets`` is the number of top-scored detections kept per image.

    Returns ``{"AP": mean over OKS .50:.05:.95, "AP50", "AP75", "per_threshold": {t: AP}}``.
    Everything is 0 when there is ground truth but no prediction, and NaN when no ground-truth
    person has a labelled joint.
    """
    sig = np.asarray(sigmas, dtype=np.float64)
    k = len(sig)
    gt_anns: List[dict] = []
    dt_anns: List[dict] = []
    for img_id, (gk, ga, pk, ps) in enumerate(images, start=1):
        gk = np.asarray(gk, dtype=np.float64).reshape(-1, k, 3)
        pk = np.asarray(pk, dtype=np.float64).reshape(-1, k, 3)
        ga, ps = np.asarray(ga, dtype=np.float64).ravel(), np.asarray(ps, dtype=np.float64).ravel()
        if len(ga) != len(gk) or len(ps) != len(pk):
            raise ValueError("keypoint arrays and their areas / scores differ in length")
        for joints, area in zip(gk, ga):
            labelled = joints[joints[:, 2] > 0]
            if len(labelled) == 0:
                continue
            x0, y0 = labelled[:, :2].min(0)
            x1, y1 = labelled[:, :2].max(0)
            gt_anns.append({
                "id": len(gt_anns) + 1, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                "keypoints": joints.ravel().tolist(), "num_keypoints": len(labelled),
                "area": float(area), "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
            })
        for joints, score in zip(pk, ps):
            dt_anns.append({"image_id": img_id, "category_id": 1, "keypoints": joints.ravel().tolist(),
                            "score": float(score)})
    thresholds = np.linspace(0.5, 0.95, 10)
    if not gt_anns or not dt_anns:
        ap = np.full(len(thresholds), np.nan if not gt_anns else 0.0)
    else:
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = {"images": [{"id": i} for i in range(1, len(images) + 1)],
                               "annotations": gt_anns, "categories": [{"id": 1, "name": "person"}]}
            coco_gt.createIndex()
            ev = COCOeval(coco_gt, coco_gt.loadRes(dt_anns), iouType="keypoints")
            ev.params.kpt_oks_sigmas = sig
            ev.params.maxDets = [max_dets]
            ev.evaluate()
            ev.accumulate()
        thresholds = ev.params.iouThrs
        prec = ev.eval["precision"][:, :, 0, 0, -1]  # [T, R]: category 0, area "all", last maxDets
        ap = np.array([row[row > -1].mean() if np.any(row > -1) else np.nan for row in prec])
    per = {float(round(t, 2)): float(a) for t, a in zip(thresholds, ap)}
    return {"AP": float(np.mean(ap)), "AP50": per[0.5], "AP75": per[0.75], "per_threshold": per}
