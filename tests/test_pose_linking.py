"""Geometric linking of poses to person masks, and the MHPv2 reader on the release's quirks."""
import itertools
import os

import cv2
import numpy as np
import pytest
import scipy.io

from dspf_parser.data.mhp_v2_layout import load_mhp_v2_split, write_mhp_v2_sample
from dspf_parser.data.pose_linking import link_poses, link_scores
from dspf_parser.data.synthetic import SyntheticSample

H, W, K = 40, 60, 16


def _masks():
    """Three people standing side by side (columns 2-14, 22-34, 44-56)."""
    out = []
    for x0 in (2, 22, 44):
        m = np.zeros((H, W), bool)
        m[5:38, x0:x0 + 13] = True
        out.append(m)
    return out


def _pose_on(mask, n=6, flag=2):
    """``n`` joints on the mask's column centre line and the mask's box."""
    ys, xs = np.nonzero(mask)
    kp = np.zeros((K, 3))
    for j, y in enumerate(np.linspace(ys.min() + 1, ys.max() - 1, n)):
        kp[j] = ((xs.min() + xs.max()) / 2, y, flag)
    return kp, np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


def _poses(masks, order):
    kps, boxes = zip(*[_pose_on(masks[p]) for p in order])
    return np.stack(kps), np.stack(boxes)


def test_shuffled_order_is_recovered():
    masks = _masks()
    order = [2, 0, 1]  # pose q belongs to person order[q]
    kps, boxes = _poses(masks, order)
    pose_of_person, scores = link_poses(masks, kps, boxes)
    assert pose_of_person.tolist() == [1, 2, 0]
    # Hand-computed: a pose on its own mask scores 1 (all joints on it, box IoU 1), 0 elsewhere.
    expected = np.zeros((3, 3))
    expected[order, range(3)] = 1.0
    np.testing.assert_allclose(scores, expected)


def test_missing_pose_leaves_that_person_without_one():
    masks = _masks()
    kps, boxes = _poses(masks, [2, 0])
    pose_of_person, _ = link_poses(masks, kps, boxes)
    assert pose_of_person.tolist() == [1, -1, 0]


def test_pose_off_every_mask_is_linked_to_nobody():
    masks = _masks()
    kps, boxes = _poses(masks, [0, 1])
    off = np.zeros((1, K, 3))
    off[0, :4] = [(18, 10, 2), (18, 20, 2), (40, 30, 2), (40, 12, 2)]  # the gaps between people
    kps = np.concatenate([kps, off])
    boxes = np.concatenate([boxes, [[16, 8, 20, 34]]])
    pose_of_person, scores = link_poses(masks, kps, boxes)
    assert pose_of_person.tolist() == [0, 1, -1]
    assert scores[:, 2].max() < 0.3


def test_joint_near_the_edge_counts_within_the_radius():
    m = np.zeros((H, W), bool)
    m[10:20, 10:20] = True
    kp = np.zeros((1, K, 3))
    kp[0, 0] = (21, 15, 2)  # 2 px right of the last column
    kp[0, 1] = (23, 15, 2)  # 4 px right: off
    assert link_scores([m], kp, None, radius=2)[0, 0] == 0.5
    assert link_scores([m], kp, None, radius=4)[0, 0] == 1.0


def test_box_only_and_joints_only_poses():
    masks = _masks()
    _, box = _pose_on(masks[1])
    no_joints = np.zeros((1, K, 3))  # e.g. every joint absent (negative coordinates, flag 0)
    pose_of_person, scores = link_poses(masks, no_joints, box[None])
    assert pose_of_person.tolist() == [-1, 0, -1] and scores[1, 0] == 1.0
    kp, _ = _pose_on(masks[2])
    pose_of_person, _ = link_poses(masks, kp[None], np.full((1, 4), np.nan))
    assert pose_of_person.tolist() == [-1, -1, 0]


@pytest.mark.parametrize("seed", range(12))
def test_assignment_is_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    p, q = int(rng.integers(1, 5)), int(rng.integers(0, 5))
    masks = [np.zeros((H, W), bool) for _ in range(p)]
    for m in masks:
        x0, y0 = rng.integers(0, W - 10), rng.integers(0, H - 10)
        m[y0:y0 + rng.integers(4, 20), x0:x0 + rng.integers(4, 30)] = True
    kps = np.zeros((q, K, 3))
    kps[..., 0] = rng.uniform(-5, W, (q, K))
    kps[..., 1] = rng.uniform(-5, H, (q, K))
    kps[..., 2] = rng.integers(0, 3, (q, K))
    boxes = np.sort(rng.uniform(0, 40, (q, 2, 2)), axis=1).transpose(0, 2, 1).reshape(q, 4)[:, [0, 2, 1, 3]]
    pose_of_person, scores = link_poses(masks, kps, boxes, min_score=0.2)
    value = lambda pairs: sum(scores[a, b] for a, b in pairs if scores[a, b] >= 0.2)  # noqa: E731
    best = 0.0
    for k in range(min(p, q) + 1):  # every partial one-to-one pairing
        for persons in itertools.combinations(range(p), k):
            for poses in itertools.permutations(range(q), k):
                best = max(best, value(zip(persons, poses)))
    got = [(a, int(b)) for a, b in enumerate(pose_of_person) if b >= 0]
    assert all(scores[a, b] >= 0.2 for a, b in got)
    assert len({b for _, b in got}) == len(got)
    assert value(got) == pytest.approx(best, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# The reader on the release's conventions
# ----------------------------------------------------------------------------------------------
def _sample():
    masks = _masks()
    part_map = np.zeros((H, W), np.uint8)
    inst = np.zeros((H, W), np.uint8)
    kps, boxes = [], []
    for p, m in enumerate(masks):
        part_map[m], inst[m] = 12, p + 1
        kp, box = _pose_on(m)
        kps.append(kp)
        boxes.append(box)
    return SyntheticSample(np.full((H, W, 3), 90, np.uint8), part_map, inst, np.float32(kps), np.float32(boxes))


def test_reader_links_release_layout_with_missing_and_negative_joints(tmp_path):
    root = str(tmp_path)
    sample = _sample()
    paths = write_mhp_v2_sample(root, "val", "96", sample, pose_order=[3, 1])  # person 2 has no pose
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "val.txt").write_text("96\n")
    assert [os.path.basename(p) for p in paths["parsing"]] == ["96_03_01.png", "96_03_02.png", "96_03_03.png"]
    png = cv2.imread(paths["parsing"][0], cv2.IMREAD_UNCHANGED)
    assert png.shape == (H, W, 3) and png[..., 2].max() == 12 and not png[..., :2].any()  # id in R
    mat = scipy.io.loadmat(paths["pose"])
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    mat["person_0"][2] = (-3.0, 12.0, 0.0)  # flag 0 with a negative coordinate: absent
    scipy.io.savemat(paths["pose"], mat)
    (rec,) = load_mhp_v2_split(root, "val")
    anns = rec["annotations"]
    assert [a["person_id"] for a in anns] == [1, 2, 3]
    np.testing.assert_array_equal(np.float32(anns[0]["keypoints"]).reshape(K, 3), sample.keypoints[0])
    assert not any(anns[1]["keypoints"]) and anns[1]["pose_link_score"] == 0.0
    kp3 = np.float32(anns[2]["keypoints"]).reshape(K, 3)
    assert kp3[2].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_array_equal(np.delete(kp3, 2, 0), np.delete(sample.keypoints[2], 2, 0))
    assert anns[1]["bbox"] == sample.boxes[1].tolist()  # from the part map, not the pose


def test_reader_accepts_an_image_without_pose_persons(tmp_path):
    paths = write_mhp_v2_sample(str(tmp_path), "val", "7", _sample(), pose_order=[])
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "val.txt").write_text("7\n")
    assert scipy.io.loadmat(paths["pose"]).keys() <= {"__header__", "__version__", "__globals__"}
    (rec,) = load_mhp_v2_split(str(tmp_path), "val")
    assert len(rec["annotations"]) == 3 and not any(any(a["keypoints"]) for a in rec["annotations"])


def test_unpadded_part_map_name_is_an_error_naming_it(tmp_path):
    paths = write_mhp_v2_sample(str(tmp_path), "val", "96", _sample())
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "val.txt").write_text("96\n")
    bad = os.path.join(os.path.dirname(paths["parsing"][0]), "96_3_1.png")
    os.rename(paths["parsing"][0], bad)
    with pytest.raises(ValueError, match=r"zero-padded.*96_3_1\.png"):
        load_mhp_v2_split(str(tmp_path), "val")
