"""Instance metrics (AP^p, PCP, AP^r, OKS mAP) against hand-computed cases and brute force."""
import numpy as np
import pytest

from dspf_parser.evaluation.instance_metrics import (
    PART_IOU_THRESHOLDS,
    ap_part,
    ap_region,
    oks_map,
    part_iou_matrix,
    pcp,
)

# A 1 x 20 image, pixel columns 0..19:
#   GT person A: parts 1 on 0-3, 2 on 4-7     GT person B: parts 1 on 10-13, 3 on 14-17
#   GT person C: part 4 on 18-19              pixels 8-9 are nobody's.
W = 20


def person(*spans):
    """A [1, W] person map from (label, start, stop) spans."""
    m = np.zeros((1, W), np.uint8)
    for label, start, stop in spans:
        m[0, start:stop] = label
    return m


A = person((1, 0, 4), (2, 4, 8))
B = person((1, 10, 14), (3, 14, 18))
C = person((4, 18, 20))
B_SWAPPED = person((3, 10, 14), (1, 14, 18))  # B's pixels with its two parts swapped
A_HALF = person((1, 0, 4), (2, 4, 6))  # A's part 1, half of its part 2
NUM_CLASSES = 5


def official_mean_iou(pred, gt, n, include_background=True):
    """The official MHP ``cal_one_mean_iou`` + ``np.nanmean``, written out with a pixel loop."""
    hist = np.zeros((n, n))
    for g, p in zip(gt.ravel(), pred.ravel()):
        if 0 <= g < n:
            hist[g, p] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    iu = iu if include_background else iu[1:]
    return float(np.nanmean(iu)) if np.any(~np.isnan(iu)) else 0.0


def voc_ap_loop(rec, prec):
    """``voc_ap`` (use_07_metric=False) as written in the official scripts."""
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def official_eval_seg_ap(images, nb_class, ovthresh):
    """Port of MHP-v2 ``eval_seg_ap`` (+ ``get_gt``): returns (AP, PCP)."""
    confidence, image_ids, ptr = [], [], []
    for i, (_, preds, scores) in enumerate(images):
        for idx in range(len(preds)):
            image_ids.append(i), confidence.append(scores[idx]), ptr.append(idx)
    order = np.argsort(-np.array(confidence))
    recs = [[g for g in gts if np.sum(g > 0) > 0] for gts, _, _ in images]
    dets = [[False] * len(r) for r in recs]
    npos = sum(len(r) for r in recs)
    tp, fp, pcp_list = np.zeros(len(order)), np.zeros(len(order)), []
    for d, k in enumerate(order):
        gts, pred = recs[image_ids[k]], images[image_ids[k]][1][ptr[k]]
        ovmax, jmax = -np.inf, -1
        for i, mask_gt in enumerate(gts):
            hist = np.zeros((nb_class, nb_class))
            np.add.at(hist, (mask_gt.ravel(), pred.ravel()), 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                seg_iou = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
            if np.nanmean(seg_iou) > ovmax:
                ovmax, seg_iou_max, jmax, mask_gt_u = np.nanmean(seg_iou), seg_iou, i, np.unique(mask_gt)
        if ovmax > ovthresh and not dets[image_ids[k]][jmax]:
            tp[d] = 1.0
            dets[image_ids[k]][jmax] = True
            pcp_d = len(mask_gt_u[np.logical_and(mask_gt_u > 0, mask_gt_u < nb_class)])
            pcp_list.append(float(np.sum(seg_iou_max[1:] > ovthresh)) / pcp_d)
        else:
            fp[d] = 1.0
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    pcp_list.extend([0.0] * (npos - len(pcp_list)))
    return voc_ap_loop(tp / npos, tp / (tp + fp)), np.mean(pcp_list)


def official_class_ap(images, class_id, thresholds):
    """Port of PGN ``compute_class_ap`` on (gt_regions, pred_regions) images."""
    gt_num, scores = 0, []
    tp = [[] for _ in thresholds]
    for gt_regions, pred_regions in images:
        gts = [m for c, m in gt_regions if c == class_id and m.any()]
        preds = [(m, s) for c, m, s in pred_regions if c == class_id and m.any()]
        gt_num += len(gts)
        scores += [s for _, s in preds]
        for m, _ in preds:
            best = max((np.sum(m & g) / np.sum(m | g) for g in gts), default=-1.0)
            for k, t in enumerate(thresholds):
                tp[k].append(1.0 if best > t else 0.0)
    ind = np.argsort(scores)[::-1]
    out = []
    for k in range(len(thresholds)):
        m_tp = np.cumsum(np.array(tp[k])[ind])
        m_fp = np.cumsum(1.0 - np.array(tp[k])[ind])
        out.append(voc_ap_loop(m_tp / float(gt_num), m_tp / np.maximum(m_fp + m_tp, np.finfo(np.float64).eps)))
    return np.array(out)


def random_scene(rng, n_images=4, h=6, w=10, n=NUM_CLASSES):
    """Random persons (rectangles of random parts) and noisy copies of them as predictions."""
    images = []
    for _ in range(n_images):
        gts = []
        for _ in range(rng.integers(0, 4)):
            m = np.zeros((h, w), np.uint8)
            y, x = rng.integers(0, h - 2), rng.integers(0, w - 3)
            m[y:y + 3, x:x + 4] = rng.integers(1, n, (3, 4))
            gts.append(m)
        preds = []
        for g in gts + gts[:1]:
            p = g.copy()
            flip = (rng.random((h, w)) < 0.3) & (g > 0)
            p[flip] = rng.integers(0, n, flip.sum())
            if p.any():
                preds.append(p)
        images.append((gts, preds, rng.random(len(preds)).tolist()))
    return images


def regions(*persons):
    """Per-part binary regions of person maps: [(class_id, mask)]."""
    return [(int(c), p == c) for p in persons for c in np.unique(p) if c > 0]


# ------------------------------------------------------------------ part_iou_matrix


@pytest.mark.parametrize("include_background", [True, False])
def test_part_iou_matrix_matches_brute_force(include_background):
    rng = np.random.default_rng(0)
    for _ in range(10):
        h, w, n = rng.integers(3, 9), rng.integers(3, 9), 5

        def random_person():
            m = rng.integers(0, n, (h, w)).astype(np.uint8)
            m[rng.random((h, w)) < 0.5] = 0
            return m

        gts = [random_person() for _ in range(rng.integers(0, 4))]
        for g in gts:
            g[rng.random((h, w)) < 0.1] = 255  # ignored GT pixels, as in fast_hist
        preds = [random_person() for _ in range(rng.integers(0, 4))] + [np.zeros((h, w), np.uint8)]
        got = part_iou_matrix(gts, preds, n, include_background)
        ref = np.array([[official_mean_iou(p, g, n, include_background) for p in preds] for g in gts])
        assert got.shape == (len(gts), len(preds))
        np.testing.assert_allclose(got, ref.reshape(got.shape), rtol=0, atol=1e-12)


def test_part_iou_matrix_hand_computed():
    # A_HALF vs A, background included: bg 12 px GT (8-19) vs 14 px pred (6-19) -> 12/14;
    # part 1: 4/4; part 2: 2/4 -> (6/7 + 1 + 1/2) / 3 = 11/14. Without background: 3/4.
    assert part_iou_matrix([A], [A_HALF], NUM_CLASSES)[0, 0] == pytest.approx(11 / 14)
    assert part_iou_matrix([A], [A_HALF], NUM_CLASSES, include_background=False)[0, 0] == pytest.approx(0.75)
    # Swapped parts on the right pixels: background 1, both parts 0 -> 1/3; parts only -> 0.
    assert part_iou_matrix([B], [B_SWAPPED], NUM_CLASSES)[0, 0] == pytest.approx(1 / 3)
    assert part_iou_matrix([B], [B_SWAPPED], NUM_CLASSES, include_background=False)[0, 0] == 0.0


def test_part_iou_matrix_errors():
    with pytest.raises(ValueError):
        part_iou_matrix([A], [np.zeros((2, 3), np.uint8)], NUM_CLASSES)
    with pytest.raises(ValueError):
        part_iou_matrix([A], [person((7, 0, 2))], NUM_CLASSES)


# ------------------------------------------------------------------ AP^p and PCP


def test_perfect_person_predictions():
    images = [([A, B, C], [C, A, B], [0.7, 0.9, 0.8])]
    res = ap_part(images, NUM_CLASSES)
    assert res["AP_p_50"] == 1.0 and res["AP_p_vol"] == 1.0
    assert set(res["per_threshold"]) == set(PART_IOU_THRESHOLDS)
    assert pcp(images, NUM_CLASSES) == 1.0
    # Empty GT / predicted persons are dropped, an image without persons is harmless.
    empty = np.zeros((1, W), np.uint8)
    images = [([A, empty, B, C], [C, A, empty, B], [0.7, 0.9, 0.95, 0.8]), ([], [], [])]
    assert ap_part(images, NUM_CLASSES)["AP_p_vol"] == 1.0 and pcp(images, NUM_CLASSES) == 1.0


def test_swapped_instances_and_missing_person():
    # Prediction 0 (score .9) lies on B with B's parts swapped, prediction 1 (score .8) on A with
    # half of A's part 2; C is missed. npos = 3.
    # Background included (official):
    #   pred 0: vs A: bg 4/20 = .2, three 0-parts -> .05; vs B: (1 + 0 + 0)/3 = 1/3;
    #           vs C: bg 10/20, three 0-parts -> .125. Best: B, 1/3.
    #   pred 1: vs A: 11/14 ~ .786 (see above); vs B .075; vs C .15. Best: A.
    # t in .1-.3: both TP: rec 1/3, 2/3, prec 1, 1 -> AP 2/3.
    # t in .4-.7: FP then TP: rec 0, 1/3, prec 0, 1/2 -> AP 1/6.  t in .8, .9: AP 0.
    images = [([A, B, C], [B_SWAPPED, A_HALF], [0.9, 0.8])]
    res = ap_part(images, NUM_CLASSES)
    expected = [2 / 3] * 3 + [1 / 6] * 4 + [0.0] * 2
    np.testing.assert_allclose(list(res["per_threshold"].values()), expected, atol=1e-12)
    assert res["AP_p_50"] == pytest.approx(1 / 6)
    assert res["AP_p_vol"] == pytest.approx(8 / 27)
    # PCP_50: A matched by pred 1: part 1 IoU 1 > .5, part 2 IoU .5 is not (strict) -> 1/2;
    # B and C unmatched -> 0. Mean over 3 GT persons: 1/6.
    assert pcp(images, NUM_CLASSES) == pytest.approx(1 / 6)
    # At .3, both of A's parts count (1, .5 > .3) and B is matched, but neither of its swapped
    # parts counts: (1 + 0 + 0) / 3.
    assert pcp(images, NUM_CLASSES, threshold=0.3) == pytest.approx(1 / 3)
    # Parts only: pred 0 scores 0 everywhere (best: A, first of the ties), pred 1 .75 on A.
    # t <= .7: FP then TP -> 1/6; t in .8, .9 -> 0; vol = 7 * (1/6) / 9 = 7/54.
    res = ap_part(images, NUM_CLASSES, include_background=False)
    assert res["AP_p_50"] == pytest.approx(1 / 6) and res["AP_p_vol"] == pytest.approx(7 / 54)


def test_person_ap_and_pcp_match_the_official_loop_on_random_scenes():
    rng = np.random.default_rng(1)
    for _ in range(8):
        images = random_scene(rng)
        if not any(images[i][0] for i in range(len(images))):
            continue
        res = ap_part(images, NUM_CLASSES)
        for t in PART_IOU_THRESHOLDS:
            ref_ap, ref_pcp = official_eval_seg_ap(images, NUM_CLASSES, t)
            assert res["per_threshold"][t] == pytest.approx(ref_ap, abs=1e-12)
            assert pcp(images, NUM_CLASSES, threshold=t) == pytest.approx(ref_pcp, abs=1e-12)


def test_taken_ground_truth_is_a_false_positive_without_fallback():
    # Two copies of A: the second's best GT (A) is taken, so it is a FP even though its IoU with
    # B (bg 4/20 over four classes = .05) exceeds the .01 threshold (official eval_seg_ap).
    # tp 1, 0 over npos 2: rec .5, .5, prec 1, .5 -> AP .5.
    res = ap_part([([A, B], [A, A], [0.9, 0.8])], NUM_CLASSES, thresholds=(0.01,))
    assert res["per_threshold"][0.01] == pytest.approx(0.5) and "AP_p_50" not in res


def test_person_ties_keep_input_order_and_image_without_gt():
    # Equal scores keep the input order (official np.argsort(-confidence) on a small input): the
    # FP (a person on C's pixels, GT is A only) listed first -> tp 0, 1 -> AP 1/2; second -> AP 1.
    assert ap_part([([A], [C, A], [0.5, 0.5])], NUM_CLASSES)["AP_p_50"] == pytest.approx(0.5)
    assert ap_part([([A], [A, C], [0.5, 0.5])], NUM_CLASSES)["AP_p_50"] == pytest.approx(1.0)
    # A prediction on an image with no GT person is a FP: ranked first (.95), then two TPs:
    # rec 0, .5, 1, prec 0, .5, 2/3 -> envelope 2/3 -> AP 2/3.
    images = [([], [A], [0.95]), ([A, B], [A, B], [0.9, 0.8])]
    assert ap_part(images, NUM_CLASSES)["AP_p_vol"] == pytest.approx(2 / 3)


def test_empty_person_predictions_give_zero():
    images = [([A, B], [], []), ([C], [np.zeros((1, W), np.uint8)], [0.9])]
    res = ap_part(images, NUM_CLASSES)
    assert res["AP_p_50"] == 0.0 and res["AP_p_vol"] == 0.0
    assert all(v == 0.0 for v in res["per_threshold"].values())
    assert pcp(images, NUM_CLASSES) == 0.0
    # No ground truth at all: undefined -> NaN, not a crash.
    assert np.isnan(ap_part([([], [A], [0.9])], NUM_CLASSES)["AP_p_vol"])


# ------------------------------------------------------------------ AP^r


def test_perfect_regions():
    gt = regions(A, B, C)
    res = ap_region([(gt, [(c, m, 0.9) for c, m in gt])], NUM_CLASSES)
    assert res["AP_r_50"] == res["AP_r_60"] == res["AP_r_70"] == res["AP_r_vol"] == 1.0
    assert set(res["per_class"]) == {1, 2, 3, 4}


def test_region_ap_swapped_and_missing():
    # Predicted regions: B_SWAPPED's (class 3 on 10-13, class 1 on 14-17, score .9) and A_HALF's
    # (class 1 on 0-3, class 2 on 4-5, score .8). GT regions: class 1 on 0-3 and 10-13, class 2
    # on 4-7, class 3 on 14-17, class 4 on 18-19 (C, missed).
    #   class 1: FP (14-17 overlaps nothing) then TP (IoU 1), npos 2 -> AP .5 * .5 = .25 at all t.
    #   class 2: IoU 2/4 = .5 -> TP iff .5 > t: AP 1 for t <= .4, 0 for t >= .5.
    #   class 3: IoU 0 -> AP 0.  class 4: no prediction -> AP 0.
    # mean: t <= .4: (.25 + 1) / 4 = .3125; t >= .5: .25 / 4 = .0625.
    preds = [(c, m, 0.9) for c, m in regions(B_SWAPPED)] + [(c, m, 0.8) for c, m in regions(A_HALF)]
    res = ap_region([(regions(A, B, C), preds)], NUM_CLASSES)
    expected = [0.3125] * 4 + [0.0625] * 5
    np.testing.assert_allclose(list(res["per_threshold"].values()), expected, atol=1e-12)
    assert res["AP_r_50"] == res["AP_r_60"] == res["AP_r_70"] == pytest.approx(0.0625)
    assert res["AP_r_vol"] == pytest.approx((4 * 0.3125 + 5 * 0.0625) / 9)
    np.testing.assert_allclose(res["per_class"][1], 0.25)


def test_region_ap_matches_the_official_loop_on_random_scenes():
    rng = np.random.default_rng(2)
    for _ in range(6):
        scene = random_scene(rng)
        images = [(regions(*gts), [(c, m, float(s)) for p, s in zip(preds, scores) for c, m in regions(p)])
                  for gts, preds, scores in scene]
        res = ap_region(images, NUM_CLASSES)
        for c in range(1, NUM_CLASSES):
            if any(k == c for gt, _ in images for k, _ in gt):
                np.testing.assert_allclose(res["per_class"][c], official_class_ap(images, c, PART_IOU_THRESHOLDS),
                                           atol=1e-12)
            else:
                assert np.isnan(res["per_class"][c]).all()


def test_region_duplicates_default_vs_one_to_one():
    # Class 1 GT: A's part (0-3) and B's part (10-13). Predictions: A's part twice (.9, .8).
    gt = [(1, A == 1), (1, B == 1)]
    preds = [(1, A == 1, 0.9), (1, A == 1, 0.8)]
    # Default (PGN): GT never taken -> tp 1, 1: rec .5, 1, prec 1, 1 -> AP 1 although B is missed.
    assert ap_region([(gt, preds)], NUM_CLASSES)["AP_r_vol"] == pytest.approx(1.0)
    # One-to-one: tp 1, 0: rec .5, .5, prec 1, .5 -> AP .5.
    assert ap_region([(gt, preds)], NUM_CLASSES, one_to_one=True)["AP_r_vol"] == pytest.approx(0.5)
    # PGN quirk reproduced: one GT region and two duplicates -> recall 1, 2 -> AP 2.
    assert ap_region([(gt[:1], preds)], NUM_CLASSES)["AP_r_50"] == pytest.approx(2.0)
    assert ap_region([(gt[:1], preds)], NUM_CLASSES, one_to_one=True)["AP_r_50"] == pytest.approx(1.0)


def test_region_ties_reverse_input_order():
    # np.argsort(scores)[::-1]: among equal scores the later region comes first.
    gt = [(1, A == 1)]
    tp, fp = (1, A == 1, 0.5), (1, B == 1, 0.5)
    assert ap_region([(gt, [tp, fp])], NUM_CLASSES)["AP_r_50"] == pytest.approx(0.5)
    assert ap_region([(gt, [fp, tp])], NUM_CLASSES)["AP_r_50"] == pytest.approx(1.0)


def test_region_empty_predictions_and_images():
    empty_mask = np.zeros((1, W), bool)
    images = [(regions(A, B), []), ([], []), ([(1, empty_mask)], [(2, empty_mask, 0.9)])]
    res = ap_region(images, NUM_CLASSES)
    assert res["AP_r_50"] == 0.0 and res["AP_r_vol"] == 0.0
    assert np.isnan(res["per_class"][4]).all()  # no GT region of class 4 -> NaN, left out
    # Predictions on an image without GT are FPs: class 1 FP (.9) then TP -> AP .5.
    images = [([], [(1, A == 1, 0.9)]), ([(1, A == 1)], [(1, A == 1, 0.8)])]
    assert ap_region(images, NUM_CLASSES)["AP_r_vol"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        ap_region([([(0, A == 1)], [])], NUM_CLASSES)


# ------------------------------------------------------------------ OKS mAP

SIGMAS = [0.1, 0.1, 0.1]


def keypoints(*xyv):
    return np.array([xyv], dtype=np.float64).reshape(1, -1, 3)


GT_KP = keypoints(10, 10, 2, 20, 20, 1, 5, 5, 0)  # third joint unlabelled


def test_oks_perfect():
    res = oks_map([(GT_KP, [100.0], GT_KP, [0.9])], SIGMAS)
    assert [res["AP"], res["AP50"], res["AP75"]] == pytest.approx([1.0, 1.0, 1.0])


def test_oks_hand_computed():
    # area 100, sigma .1: exp(-d^2 / (2 * 100 * (2 * .1)^2)) = exp(-d^2 / 8).
    # Joint 1 exact (1), joint 2 off by 3 px (exp(-9/8) = .3247), joint 3 unlabelled (ignored):
    # OKS = (1 + .3247) / 2 = .6623 -> matched at .50, .55, .60, .65 -> AP 4/10.
    pred = keypoints(10, 10, 1, 23, 20, 1, 90, 90, 1)
    oks = (1 + np.exp(-9 / 8)) / 2
    assert 0.65 < oks < 0.7
    # A second GT person with no labelled joint is ignored (no FN).
    gt = np.concatenate([GT_KP, keypoints(50, 50, 0, 60, 60, 0, 70, 70, 0)])
    res = oks_map([(gt, [100.0, 100.0], pred, [0.9])], SIGMAS)
    assert res["AP"] == pytest.approx(0.4)
    assert res["AP50"] == pytest.approx(1.0) and res["AP75"] == 0.0
    # A higher-scored FP on an image without GT: rec 0, 1 / prec 0, .5 -> 101-pt AP .5 everywhere.
    images = [(np.zeros((0, 3, 3)), [], GT_KP, [0.95]), (GT_KP, [100.0], GT_KP, [0.5])]
    res = oks_map(images, SIGMAS)
    assert res["AP"] == pytest.approx(0.5) and res["AP50"] == pytest.approx(0.5)
    # Each GT is matched once: a duplicate is a FP (rec 1, 1 / prec 1, .5 -> AP 1 at all t).
    # Ranked before the TP it costs precision: prec 0, .5 -> AP .5.
    far = keypoints(200, 200, 1, 300, 300, 1, 0, 0, 1)
    assert oks_map([(GT_KP, [100.0], np.concatenate([GT_KP, GT_KP]), [0.9, 0.8])], SIGMAS)["AP"] == pytest.approx(1.0)
    assert oks_map([(GT_KP, [100.0], np.concatenate([far, GT_KP]), [0.9, 0.8])], SIGMAS)["AP"] == pytest.approx(0.5)


def test_oks_empty():
    res = oks_map([(GT_KP, [100.0], np.zeros((0, 3, 3)), [])], SIGMAS)
    assert res["AP"] == res["AP50"] == res["AP75"] == 0.0
    assert np.isnan(oks_map([(np.zeros((0, 3, 3)), [], GT_KP, [0.9])], SIGMAS)["AP"])
