"""Tests of the synthetic people generator and the MHPv2-layout writer/reader."""
import concurrent.futures
import os
import shutil

import cv2
import numpy as np
import pytest
import scipy.io
from hypothesis import given, settings
from hypothesis import strategies as st

from dspf_parser.data import synthetic_cache
from dspf_parser.data.categories import MHP_V2_SCHEMA
from dspf_parser.data.mhp_v2_layout import default_pose_order, load_mhp_v2_split, read_person_maps
from dspf_parser.data.synthetic_cache import (
    default_synthetic_root,
    ensure_synthetic_split,
    read_complete_marker,
    synthetic_image_seed,
    write_synthetic_split,
)
from dspf_parser.data.synthetic import (
    JOINT_LIMITS,
    SYNTHETIC_PART_IDS,
    PersonParams,
    generate_synthetic_image,
    person_joints,
    render_people,
    sample_person_params,
)

KP = {n: i for i, n in enumerate(MHP_V2_SCHEMA.keypoint_names)}
PART = {n: i for i, n in enumerate(MHP_V2_SCHEMA.part_classes)}
SIZE = (96, 112)  # non-square on purpose


# ----------------------------------------------------------------------------------------------
# helpers (independent recomputations)
# ----------------------------------------------------------------------------------------------
def tight_box(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def window(arr, x, y, r):
    c, rr = int(round(x)), int(round(y))
    return arr[max(rr - r, 0):rr + r + 1, max(c - r, 0):c + r + 1]


def dist_to_polyline(pts, chain):
    """Distance of each point ``[N, 2]`` (x, y) to the polyline ``chain`` ``[M, 2]``."""
    best = np.full(len(pts), np.inf)
    for a, b in zip(chain[:-1], chain[1:]):
        ab = b - a
        t = np.clip(((pts - a) @ ab) / max(ab @ ab, 1e-9), 0, 1)
        proj = a + t[:, None] * ab
        best = np.minimum(best, np.linalg.norm(pts - proj, axis=1))
    return best


def pixels_of(mask):
    ys, xs = np.nonzero(mask)
    return np.stack([xs, ys], axis=1).astype(np.float64)


def full_mask(params, size):
    """Unoccluded mask of one person rendered alone."""
    return render_people([params], size).instance_map > 0


def check_sample(s, size, max_people):
    h, w = size
    assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8
    assert s.part_map.shape == (h, w) and s.part_map.dtype == np.uint8
    assert s.instance_map.shape == (h, w)
    p = s.num_people
    assert 1 <= p <= max_people
    assert s.keypoints.shape == (p, 16, 3) and s.keypoints.dtype == np.float32
    assert s.boxes.shape == (p, 4) and s.boxes.dtype == np.float32
    assert len(s.people) == p
    # labels
    np.testing.assert_array_equal(s.instance_map > 0, s.part_map > 0)
    assert set(np.unique(s.instance_map).tolist()) == set(range(p + 1))
    assert set(np.unique(s.part_map).tolist()) <= {0, *SYNTHETIC_PART_IDS}
    for pid in range(1, p + 1):
        mine = s.instance_map == pid
        np.testing.assert_array_equal(s.boxes[pid - 1], tight_box(mine))
        kps = s.keypoints[pid - 1]
        for j, (x, y, v) in enumerate(kps):
            assert v in (0.0, 1.0, 2.0)
            inside = 0 <= x <= w - 1 and 0 <= y <= h - 1
            if v == 0:
                assert x == 0 and y == 0
            else:
                assert inside, (pid, j, x, y, v)
            if v == 2:  # on (or within 2 px of) its own person's pixels
                assert window(mine, x, y, 2).any(), (pid, j, x, y)
            if v > 0 and not window(mine, x, y, 1).any():
                assert v == 1, (pid, j)  # nothing of the person there -> occluded
        # v=0 exactly for joints outside the image (recomputed from the pose)
        joints = person_joints(s.people[pid - 1])
        outside = ~((joints[:, 0] >= 0) & (joints[:, 0] <= w - 1)
                    & (joints[:, 1] >= 0) & (joints[:, 1] <= h - 1))
        np.testing.assert_array_equal(kps[:, 2] == 0, outside)
        np.testing.assert_allclose(kps[~outside, :2], joints[~outside], atol=1e-3)


# ----------------------------------------------------------------------------------------------
# generator
# ----------------------------------------------------------------------------------------------
def test_determinism():
    a = generate_synthetic_image(7, SIZE, 4)
    b = generate_synthetic_image(7, SIZE, 4)
    for f in ("image", "part_map", "instance_map", "keypoints", "boxes"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f
    assert a.people == b.people
    c = generate_synthetic_image(8, SIZE, 4)
    assert a.image.tobytes() != c.image.tobytes()


@pytest.mark.parametrize("seed", range(12))
def test_sample_consistency(seed):
    check_sample(generate_synthetic_image(seed, SIZE, 4), SIZE, 4)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(40, 120), w=st.integers(40, 120),
       max_people=st.integers(1, 5))
def test_sample_consistency_property(seed, h, w, max_people):
    check_sample(generate_synthetic_image(seed, (h, w), max_people), (h, w), max_people)


def test_occlusions_and_sides_occur():
    samples = [generate_synthetic_image(s, SIZE, 4) for s in range(30)]
    v = np.concatenate([s.keypoints[..., 2].ravel() for s in samples])
    assert (v == 1).sum() > 10 and (v == 2).sum() > 100 and (v == 0).sum() > 10
    facing = [p.facing_camera for s in samples for p in s.people]
    assert any(facing) and not all(facing)


def test_sampled_pose_within_joint_limits():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = sample_person_params(rng, (128, 128))
        for name, (lo, hi) in JOINT_LIMITS.items():
            vals = getattr(p, name)
            for val in (vals if isinstance(vals, tuple) else (vals,)):
                assert lo <= val <= hi, (name, val)


def _frontal(facing_camera):
    return PersonParams(pelvis=(60.0, 70.0), height=110.0, facing_camera=facing_camera,
                        shoulder_abduction=(70.0, 70.0), elbow_flexion=(-10.0, -10.0),
                        hip_abduction=(15.0, 15.0), near_side="left", sleeve_length=0.0)


@pytest.mark.parametrize("facing_camera", [True, False])
def test_left_right_are_anatomical(facing_camera):
    s = render_people([_frontal(facing_camera)], (128, 128))
    assert s.num_people == 1
    kp = s.keypoints[0]
    assert (kp[:, 2] == 2).all()
    pelvis_x = kp[KP["Pelvis"], 0]
    sign = 1 if facing_camera else -1  # person's left is on screen right when facing us
    assert sign * (kp[KP["Left-shoulder"], 0] - kp[KP["Right-shoulder"], 0]) > 0
    left_chain = kp[[KP["Left-shoulder"], KP["Left-elbow"], KP["Left-wrist"]], :2].astype(float)
    right_chain = kp[[KP["Right-shoulder"], KP["Right-elbow"], KP["Right-wrist"]], :2].astype(float)
    for part, own, other in (("Left-arm", left_chain, right_chain),
                             ("Right-arm", right_chain, left_chain)):
        pts = pixels_of(s.part_map == PART[part])
        assert len(pts) > 50
        d_own, d_other = dist_to_polyline(pts, own), dist_to_polyline(pts, other)
        assert (d_own < d_other).all(), part
        assert d_own.max() < 8
    lx = pixels_of(s.part_map == PART["Left-arm"])[:, 0].mean()
    assert sign * (lx - pelvis_x) > 0
    leg_l = pixels_of(s.part_map == PART["Left-leg"])
    assert sign * (leg_l[:, 0].mean() - pelvis_x) > 0
    hand_l = pixels_of(s.part_map == PART["Left-hand"]).mean(0)
    hand_r = pixels_of(s.part_map == PART["Right-hand"]).mean(0)
    assert (np.linalg.norm(hand_l - kp[KP["Left-wrist"], :2])
            < np.linalg.norm(hand_l - kp[KP["Right-wrist"], :2]))
    assert (np.linalg.norm(hand_r - kp[KP["Right-wrist"], :2])
            < np.linalg.norm(hand_r - kp[KP["Left-wrist"], :2]))
    n_face = (s.part_map == PART["Face"]).sum()
    assert (n_face > 20) if facing_camera else (n_face == 0)
    assert (s.part_map == PART["Hair"]).sum() > 20


def test_front_person_owns_overlap():
    found = occluded_joints = 0
    for seed in range(200):
        s = generate_synthetic_image(seed, SIZE, 4)
        if s.num_people < 2:
            continue
        masks = [full_mask(p, SIZE) for p in s.people]
        for i in range(len(masks)):
            for j in range(i + 1, len(masks)):
                overlap = masks[i] & masks[j]
                if overlap.sum() < 30:
                    continue
                found += 1
                later = np.zeros(SIZE, bool)
                for k in range(j + 1, len(masks)):
                    later |= masks[k]
                ids = s.instance_map[overlap]
                assert (ids != i + 1).all()  # the back person never shows in the overlap
                assert (ids >= j + 1).all()
                assert (s.instance_map[overlap & ~later] == j + 1).all()  # front one owns it
                # the back person's joints deep inside the front one are occluded
                for x, y, v in s.keypoints[i]:
                    if v > 0 and window(masks[j], x, y, 1).all():
                        assert v == 1
                        occluded_joints += 1
        if found >= 3 and occluded_joints >= 1:
            break
    assert found >= 3 and occluded_joints >= 1


def test_render_drops_hidden_people_and_renumbers():
    big = _frontal(True)
    far_away = PersonParams(pelvis=(-500.0, 60.0), height=60.0)
    hidden = PersonParams(pelvis=(60.0, 58.0), height=24.0)
    assert not (full_mask(hidden, (128, 128)) & ~full_mask(big, (128, 128))).any()  # behind `big`
    s = render_people([far_away, hidden, big], (128, 128))
    assert s.num_people == 1 and s.people == (big,)
    assert set(np.unique(s.instance_map).tolist()) == {0, 1}


# ----------------------------------------------------------------------------------------------
# MHPv2 layout
# ----------------------------------------------------------------------------------------------
GEN = dict(num_images=5, seed=3, image_size=(72, 88), max_people=3)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("mhp"))
    write_synthetic_split(root, "train", progress=False, **GEN)
    return root


@pytest.fixture
def copy(dataset, tmp_path):
    root = str(tmp_path / "copy")
    shutil.copytree(dataset, root)
    return root


def test_round_trip(dataset):
    recs = load_mhp_v2_split(dataset, "train")
    assert [r["image_id"] for r in recs] == ["000001", "000002", "000003", "000004", "000005"]
    h, w = GEN["image_size"]
    for i, rec in enumerate(recs):
        s = generate_synthetic_image(synthetic_image_seed(GEN["seed"], "train", i), (h, w),
                                     GEN["max_people"])
        assert set(rec) == {"file_name", "image_id", "height", "width", "annotations"}
        assert (rec["height"], rec["width"]) == (h, w)
        assert os.path.isfile(rec["file_name"])
        img = cv2.imread(rec["file_name"])
        ok, enc = cv2.imencode(".jpg", s.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        np.testing.assert_array_equal(img, cv2.imdecode(enc, cv2.IMREAD_COLOR))  # quality 95
        assert np.abs(img.astype(int) - s.image.astype(int)).mean() < 8
        assert len(rec["annotations"]) == s.num_people
        for pid, ann in enumerate(rec["annotations"], start=1):
            assert set(ann) == {"person_id", "parsing_file", "keypoints", "bbox", "bbox_mode", "category_id",
                                "iscrowd", "pose_link_score"}
            assert ann["person_id"] == pid and (ann["bbox_mode"], ann["category_id"], ann["iscrowd"]) == (0, 0, 0)
            # The release's zero-padded names.
            assert os.path.basename(ann["parsing_file"]) == f"{rec['image_id']}_{s.num_people:02d}_{pid:02d}.png"
            assert len(ann["keypoints"]) == 48
            # The shuffled poses were linked back to their own person.
            np.testing.assert_array_equal(np.float32(ann["keypoints"]).reshape(16, 3), s.keypoints[pid - 1])
            np.testing.assert_array_equal(np.float32(ann["bbox"]), s.boxes[pid - 1])
            png = cv2.imread(ann["parsing_file"], cv2.IMREAD_UNCHANGED)  # BGR
            assert png.shape == (h, w, 3) and not png[..., :2].any()
            np.testing.assert_array_equal(png[..., 2], s.person_part_map(pid))
        part_map, instance_map = read_person_maps(rec)
        np.testing.assert_array_equal(part_map, s.part_map)
        np.testing.assert_array_equal(instance_map, s.instance_map)


def test_mat_structure(dataset):
    recs = load_mhp_v2_split(dataset, "train")
    shuffled = 0
    for rec in recs:
        mat = scipy.io.loadmat(os.path.join(dataset, "train", "pose_annos", f"{rec['image_id']}.mat"))
        keys = sorted(k for k in mat if not k.startswith("__"))
        assert keys == [f"person_{i}" for i in range(len(rec["annotations"]))]
        order = default_pose_order(rec["image_id"], len(rec["annotations"]))
        shuffled += order != sorted(order)
        for i, pid in enumerate(order):
            arr = mat[f"person_{i}"]
            assert arr.shape == (20, 3)
            ann = rec["annotations"][pid - 1]
            kp = np.float32(ann["keypoints"]).reshape(16, 3)
            flag = {2: 0, 1: 1, 0: 2}
            for j in range(16):
                assert arr[j, 2] == flag[int(kp[j, 2])]
                if kp[j, 2] == 0:
                    assert tuple(arr[j, :2]) == (-1, -1)
            x0, y0, x1, y1 = ann["bbox"]
            assert tuple(arr[18, :2]) == (x0, y0) and tuple(arr[19, :2]) == (x1 - 1, y1 - 1)
    assert shuffled, "no image of the fixture has its poses out of part-map order"


def test_complete_marker_caching(tmp_path):
    root = str(tmp_path / "cache")
    params = dict(split="val", num_images=3, seed=1, image_size=(48, 48), max_people=2)
    assert ensure_synthetic_split(root=root, progress=False, **params) == root
    marker = read_complete_marker(root, "val")
    assert marker["num_images"] == 3 and marker["image_size"] == [48, 48]

    def mtimes():
        out = {}
        for dirpath, _, files in os.walk(root):
            for f in files:
                p = os.path.join(dirpath, f)
                out[p] = os.stat(p).st_mtime_ns
        return out

    before = mtimes()
    assert ensure_synthetic_split(root=root, progress=False, **params) == root
    assert mtimes() == before  # nothing rewritten
    assert len(load_mhp_v2_split(root, "val")) == 3
    params["num_images"] = 4  # other parameters -> regenerated
    ensure_synthetic_split(root=root, progress=False, **params)
    assert read_complete_marker(root, "val")["num_images"] == 4
    assert len(load_mhp_v2_split(root, "val")) == 4
    assert not [d for d in os.listdir(root) if ".tmp-" in d or ".old-" in d]


def test_concurrent_ensure_generates_once(tmp_path, monkeypatch):
    root = str(tmp_path / "conc")
    calls = []
    real = synthetic_cache.write_synthetic_split

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(synthetic_cache, "write_synthetic_split", counting)
    params = dict(split="train", num_images=4, seed=0, image_size=(48, 48), max_people=2)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        roots = list(ex.map(lambda _: ensure_synthetic_split(root=root, progress=False, **params), range(3)))
    assert roots == [root] * 3 and len(calls) == 1
    assert len(load_mhp_v2_split(root, "train")) == 4


def test_default_root(monkeypatch):
    monkeypatch.setenv("DSPF_SYNTHETIC_ROOT", "/x/y")
    assert default_synthetic_root() == "/x/y"
    monkeypatch.delenv("DSPF_SYNTHETIC_ROOT")
    monkeypatch.setenv("DETECTRON2_DATASETS", "/d2")
    assert default_synthetic_root() == os.path.join("/d2", "synthetic_humans")
    monkeypatch.delenv("DETECTRON2_DATASETS")
    assert default_synthetic_root() == os.path.join("datasets", "synthetic_humans")


# ----------------------------------------------------------------------------------------------
# clear errors
# ----------------------------------------------------------------------------------------------
def test_error_missing_list(copy):
    path = os.path.join(copy, "list", "val.txt")
    with pytest.raises(FileNotFoundError, match=path):
        load_mhp_v2_split(copy, "val")


def test_error_missing_image(copy):
    path = os.path.join(copy, "train", "images", "000002.jpg")
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=path):
        load_mhp_v2_split(copy, "train")


def test_error_corrupt_mat(copy):
    path = os.path.join(copy, "train", "pose_annos", "000003.mat")
    with open(path, "wb") as f:
        f.write(b"this is not a mat file" * 10)
    with pytest.raises(ValueError, match=path):
        load_mhp_v2_split(copy, "train")


@pytest.mark.parametrize("content,problem", [
    ({"person_0": np.zeros((16, 3), np.float32)}, "shape"),
    ({"people": np.zeros((20, 3), np.float32)}, "unexpected variable"),
    ({"person_0": np.full((20, 3), np.nan, np.float32)}, "non-finite"),
])
def test_error_bad_mat_content(copy, content, problem):
    path = os.path.join(copy, "train", "pose_annos", "000001.mat")
    scipy.io.savemat(path, content)
    with pytest.raises(ValueError, match=problem) as err:
        load_mhp_v2_split(copy, "train")
    assert path in str(err.value)


def test_error_bad_visibility_flag(copy):
    path = os.path.join(copy, "train", "pose_annos", "000001.mat")
    mat = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    mat["person_0"][3, 2] = 5
    scipy.io.savemat(path, mat)
    with pytest.raises(ValueError, match="visibility flag") as err:
        load_mhp_v2_split(copy, "train")
    assert path in str(err.value)


def test_error_missing_mat(copy):
    path = os.path.join(copy, "train", "pose_annos", "000004.mat")
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=path):
        load_mhp_v2_split(copy, "train")


def test_error_bad_parsing_name(copy):
    d = os.path.join(copy, "train", "parsing_annos")
    src = sorted(os.listdir(d))[0]
    bad = os.path.join(d, "000001-person.png")
    os.rename(os.path.join(d, src), bad)
    with pytest.raises(ValueError, match=bad):
        load_mhp_v2_split(copy, "train")


def test_error_missing_person_file(copy):
    d = os.path.join(copy, "train", "parsing_annos")
    rec = load_mhp_v2_split(copy, "train")[0]
    os.remove(rec["annotations"][-1]["parsing_file"])
    if len(rec["annotations"]) == 1:
        with pytest.raises(ValueError, match="no parsing annotations"):
            load_mhp_v2_split(copy, "train")
    else:
        with pytest.raises(ValueError, match="inconsistent parsing files") as err:
            load_mhp_v2_split(copy, "train")
        assert d in str(err.value)
