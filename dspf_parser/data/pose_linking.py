"""Geometric linking of pose annotations to per-person part masks (numpy + scipy only).

Benchmarks whose poses and part maps were annotated separately do not list them in the same
order: in LV-MHP-v2, ``pose_annos/<id>.mat``'s ``person_<i>`` is *not* the person of
``parsing_annos/<id>_<NN>_<i+1>.png`` and some persons have no pose (official repository,
issues #40 and #44); the PASCAL-Person-Part joints of Xia et al. come as a separate list as
well. :func:`link_poses` pairs them by how well each pose falls on each person's mask.

Score of person ``p`` (mask ``M_p``) and pose ``q`` (usable joints ``J_q``, person box ``B_q``):

* joint term ``j(p, q)``: the fraction of ``J_q`` lying on ``M_p``; a joint lies on the mask
  when a mask pixel is within ``radius`` pixels (Chebyshev distance) of its rounded position,
  so joints on a limb's edge still count. Usable joints are those with ``v > 0``; occluded
  joints (``v = 1``) are included (they are annotated on their own person's body, which is
  usually but not always visible there);
* box term ``b(p, q)``: the IoU of ``B_q`` with the tight box of ``M_p`` (both XYXY in the
  pixel-edge convention, ``x1 = last column + 1``);
* ``score = (j + b) / 2``; ``score = b`` for a pose without usable joints, ``score = j`` for a
  pose without a valid box (``score = 0`` with neither), ``score = 0`` for an empty mask.

Scores below ``min_score`` are set to 0; the pairing maximises the total score over one-to-one
assignments (``scipy.optimize.linear_sum_assignment``), and pairs of score 0 are dropped. The
result is therefore the optimum over all partial one-to-one pairings made of admissible pairs:
a pose that falls on no mask is left unlinked, and a person may get no pose.
"""
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["DEFAULT_LINK_RADIUS", "DEFAULT_MIN_LINK_SCORE", "link_scores", "link_poses"]

#: Chebyshev distance (pixels) within which a joint counts as lying on a mask.
DEFAULT_LINK_RADIUS = 2
#: Pairs scoring less are never linked.
DEFAULT_MIN_LINK_SCORE = 0.3


def _mask_box(mask: np.ndarray) -> Optional[np.ndarray]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


def _valid_box(box: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(box)) and np.all(box >= 0) and box[2] > box[0] and box[3] > box[1])


def link_scores(masks: Sequence[np.ndarray], joints: np.ndarray, boxes: Optional[np.ndarray] = None,
                radius: int = DEFAULT_LINK_RADIUS) -> np.ndarray:
    """The ``[P, Q]`` score matrix of the module docstring.

    Args:
        masks: ``P`` boolean ``[H, W]`` person masks (all the same size).
        joints: ``[Q, K, 3]`` poses as ``(x, y, v)`` in pixel-index coordinates; ``v > 0``
            marks a usable joint (callers map absent joints, including negative coordinates,
            to ``v = 0``).
        boxes: ``[Q, 4]`` XYXY person boxes (pixel-edge convention), or ``None``; a box with a
            negative, non-finite or empty extent counts as missing.
        radius: see :data:`DEFAULT_LINK_RADIUS`.
    """
    joints = np.asarray(joints, np.float64).reshape(len(joints), -1, 3) if len(joints) else np.zeros((0, 1, 3))
    num_p, num_q = len(masks), len(joints)
    scores = np.zeros((num_p, num_q), np.float64)
    if num_p == 0 or num_q == 0:
        return scores
    h, w = masks[0].shape
    r = int(radius)
    for p, mask in enumerate(masks):
        mask = np.asarray(mask, bool)
        if mask.shape != (h, w):
            raise ValueError(f"mask {p} is {mask.shape}, mask 0 is {(h, w)}")
        mbox = _mask_box(mask)
        if mbox is None:
            continue
        for q in range(num_q):
            usable = joints[q, :, 2] > 0
            j_term = None
            if usable.any():
                hits = 0
                for x, y in joints[q, usable, :2]:
                    c, rr = int(round(x)), int(round(y))
                    if mask[max(rr - r, 0):max(rr + r + 1, 0), max(c - r, 0):max(c + r + 1, 0)].any():
                        hits += 1
                j_term = hits / int(usable.sum())
            b_term = None
            if boxes is not None and _valid_box(np.asarray(boxes[q], np.float64)):
                b_term = _box_iou(np.asarray(boxes[q], np.float64), mbox)
            terms = [t for t in (j_term, b_term) if t is not None]
            scores[p, q] = sum(terms) / len(terms) if terms else 0.0
    return scores


def link_poses(masks: Sequence[np.ndarray], joints: np.ndarray, boxes: Optional[np.ndarray] = None,
               radius: int = DEFAULT_LINK_RADIUS,
               min_score: float = DEFAULT_MIN_LINK_SCORE) -> Tuple[np.ndarray, np.ndarray]:
    """Pair ``P`` person masks with ``Q`` poses (module docstring).

    Args:
        masks, joints, boxes, radius: as in :func:`link_scores`.
        min_score: pairs scoring less are never linked (> 0).

    Returns:
        ``(pose_of_person, scores)``: ``[P]`` int64, the index of the pose linked to each
        person or ``-1``; and the ``[P, Q]`` scores of :func:`link_scores`.
    """
    if not min_score > 0:
        raise ValueError(f"min_score must be > 0, got {min_score}")
    scores = link_scores(masks, joints, boxes, radius)
    pose_of_person = np.full(len(masks), -1, np.int64)
    if scores.size == 0:
        return pose_of_person, scores
    admissible = np.where(scores >= min_score, scores, 0.0)
    rows, cols = linear_sum_assignment(admissible, maximize=True)
    for p, q in zip(rows, cols):
        if admissible[p, q] > 0:
            pose_of_person[p] = q
    return pose_of_person, scores
