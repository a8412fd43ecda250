"""Robustness against bad data and hostile inputs: the bad-sample policy of the mapper, image
formats, inference on any image size, zero / hundreds of joint candidates, and a fuzz test."""
import logging
import math
import os
import tempfile

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import build_detection_train_loader
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dspf_parser.ops.decoding as decoding
from dspf_parser.data.build import SkippingMapDataset
from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.data.dataset_mapper import BadSampleError, DSPFDatasetMapper, MissingSampleFileError
from dspf_parser.ops.decoding import DecodingSettings, ParsingMaps, decode_maps
from test_model import tiny_cfg

FACE = S.part_classes.index("Face")
HEAD_TOP = S.keypoint_names.index("Head-top")
K, L = S.num_keypoints, S.num_limbs
H, W = 24, 32


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _mapper(is_train=True, bad_samples="error", augs=(), stride=1, fmt="BGR"):
    return DSPFDatasetMapper(is_train, augmentations=list(augs), image_format=fmt, schema=S, stride=stride,
                             keypoint_radius=2.0, limb_sigma=2.0, bad_samples=bad_samples)


def _person(h=H, w=W, x0=2):
    parts = np.zeros((h, w), np.uint8)
    parts[2:12, x0:x0 + 8] = FACE
    kps = np.zeros((K, 3), np.float32)
    kps[HEAD_TOP] = (x0 + 3, 4, 2)
    return parts, kps


def _sample(folder, people=(), size=(H, W), name="img", image=None):
    """Write ``name.png`` and one part PNG per person ``(parts, kps)``; return the dict."""
    folder = str(folder)
    if image is None:
        image = np.random.default_rng(0).integers(0, 255, size + (3,), dtype=np.uint8)
    path = os.path.join(folder, f"{name}.png")
    assert cv2.imwrite(path, image)
    annos = []
    for p, (parts, kps) in enumerate(people):
        ppath = os.path.join(folder, f"{name}_{len(people)}_{p + 1}.png")
        assert cv2.imwrite(ppath, parts)
        annos.append({"person_id": p + 1, "parsing_file": ppath, "keypoints": np.asarray(kps).reshape(-1).tolist(),
                      "bbox": [0, 0, 1, 1]})
    return {"file_name": path, "image_id": name, "height": size[0], "width": size[1], "annotations": annos}


def _check_consistent(out, size, num_people, stride=1):
    h, w = size
    gh, gw = math.ceil(h / stride), math.ceil(w / stride)
    assert out["image"].shape == (3, h, w) and out["image"].dtype == torch.uint8
    assert out["part_seg"].shape == (h, w) and out["instance_seg"].shape == (h, w)
    labels = out["part_seg"].unique()
    assert bool(((labels >= 0) & (labels < S.num_parts) | (labels == 255)).all())
    assert int(out["instance_seg"].min()) >= 0 and int(out["instance_seg"].max()) <= num_people
    assert out["dspf"].shape == (2, gh, gw) and out["dspf_weight"].shape == (gh, gw)
    assert out["keypoint_heatmaps"].shape == (K, gh, gw)
    assert out["keypoint_offsets"].shape == (K, 2, gh, gw)
    assert out["keypoint_offset_weights"].shape == (K, gh, gw)
    assert out["limb_heatmaps"].shape == (L, gh, gw)
    for key in ("dspf", "dspf_weight", "keypoint_heatmaps", "keypoint_offsets", "limb_heatmaps"):
        assert torch.isfinite(out[key]).all(), key
    inst = out["instances"]
    assert len(inst) == num_people and inst.image_size == (h, w)
    kp = inst.gt_keypoints.tensor
    assert kp.shape == (num_people, K, 3)
    vis = kp[..., 2] > 0
    assert bool(((kp[vis][:, 0] >= 0) & (kp[vis][:, 0] <= w - 1) & (kp[vis][:, 1] >= 0)
                 & (kp[vis][:, 1] <= h - 1)).all())
    assert bool((kp[~vis] == 0).all())


# ----------------------------------------------------------------------------------------------
# bad samples: errors that name the file
# ----------------------------------------------------------------------------------------------
def test_missing_image_names_the_file(tmp_path):
    d = _sample(tmp_path, [_person()])
    os.remove(d["file_name"])
    for is_train in (True, False):
        with pytest.raises(MissingSampleFileError, match="img.png: image file not found") as err:
            _mapper(is_train)(d)
        assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
        assert err.value.file_name == d["file_name"]


@pytest.mark.parametrize("damage", ["garbage", "truncated_png", "truncated_jpg", "empty"])
def test_corrupt_or_truncated_image_names_the_file(tmp_path, damage):
    d = _sample(tmp_path, [_person()])
    path = d["file_name"]
    rng = np.random.default_rng(1)
    if damage == "garbage":
        data = rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
    elif damage == "empty":
        data = b""
    else:
        ext = ".png" if damage == "truncated_png" else ".jpg"
        ok, enc = cv2.imencode(ext, rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        data = enc.tobytes()[: len(enc) // 2]
    with open(path, "wb") as f:
        f.write(data)
    with pytest.raises(BadSampleError, match="not a readable image") as err:
        _mapper()(d)
    assert path in str(err.value) and err.value.file_name == path


def test_image_size_differs_from_dict(tmp_path):
    d = _sample(tmp_path, [_person()])
    d["width"] = W + 1
    with pytest.raises(BadSampleError, match=rf"img.png: image is {W}x{H} \(WxH\) but the dataset dict says {W + 1}x{H}"):
        _mapper()(d)
    d["width"], d["height"] = H, W  # swapped, as with an EXIF rotation
    with pytest.raises(BadSampleError, match="EXIF"):
        _mapper(is_train=False)(d)


def test_part_png_errors_are_bad_samples_naming_the_png(tmp_path):
    parts, kps = _person()
    bad_size = _sample(tmp_path, [(parts[:-1], kps)], name="a")
    out_of_range = parts.copy()
    out_of_range[0, 0] = S.num_parts
    bad_id = _sample(tmp_path, [_person(), (out_of_range, kps)], name="b")
    missing = _sample(tmp_path, [_person()], name="c")
    os.remove(missing["annotations"][0]["parsing_file"])
    corrupt = _sample(tmp_path, [_person()], name="d")
    with open(corrupt["annotations"][0]["parsing_file"], "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"x" * 40)
    for d, person, kind in ((bad_size, 0, BadSampleError), (bad_id, 1, BadSampleError),
                            (missing, 0, MissingSampleFileError), (corrupt, 0, BadSampleError)):
        png = d["annotations"][person]["parsing_file"]
        with pytest.raises(kind) as err:
            _mapper()(d)
        assert png in str(err.value) and d["file_name"] in str(err.value)
        assert err.value.file_name == png


def test_keypoints_outside_the_image_become_invisible(tmp_path):
    parts, kps = _person()
    kps[0] = (-5, 3, 2)
    kps[1] = (W, 3, 2)
    kps[2] = (3, H + 100, 1)
    kps[3] = (1e30, -1e30, 2)
    kps[4] = (np.nan, 3, 2)
    out = _mapper()(_sample(tmp_path, [(parts, kps)]))
    _check_consistent(out, (H, W), 1)
    kp = out["instances"].gt_keypoints.tensor[0]
    assert kp[:5].abs().sum() == 0
    assert kp[HEAD_TOP].tolist() == [5.0, 4.0, 2.0]


def test_person_without_visible_joints_has_no_dspf_weight(tmp_path):
    p1, k1 = _person()
    p2, _ = _person(x0=20)
    k2 = np.zeros((K, 3), np.float32)
    k2[3] = (25, 5, 0)  # labelled position but not visible: unusable
    out = _mapper()(_sample(tmp_path, [(p1, k1), (p2, k2)]))
    _check_consistent(out, (H, W), 2)
    second = out["instance_seg"] == 2
    assert second.any()
    assert out["dspf_weight"][second].sum() == 0
    assert out["dspf_weight"][out["instance_seg"] == 1].min() > 0
    # The person still has a box, from its pixels.
    assert out["instances"].gt_boxes.tensor[1].tolist() == [20.0, 2.0, 28.0, 12.0]


def test_image_without_people_gives_background_targets(tmp_path):
    d = _sample(tmp_path, [])
    for augs, stride in (((), 1), ((T.ResizeScale(0.5, 2.0, 16, 16), T.FixedSizeCrop((16, 16)),
                                    T.RandomFlip(prob=1.0)), 4)):
        out = _mapper(augs=augs, stride=stride)(d)
        size = (H, W) if not augs else (16, 16)
        _check_consistent(out, size, 0, stride)
        assert set(out["part_seg"].unique().tolist()) <= {0, 255}
        assert out["instance_seg"].max() == 0
        for key in ("dspf_weight", "keypoint_heatmaps", "keypoint_offset_weights", "limb_heatmaps"):
            assert out[key].abs().sum() == 0, key


# ----------------------------------------------------------------------------------------------
# the "skip" policy
# ----------------------------------------------------------------------------------------------
def test_skip_policy_logs_counts_and_returns_none(tmp_path, caplog):
    good = _sample(tmp_path, [_person()], name="good")
    bad = _sample(tmp_path, [_person()], name="bad")
    os.remove(bad["annotations"][0]["parsing_file"])
    mapper = _mapper(bad_samples="skip")
    mapper.SKIP_LOG_PERIOD = 2
    with caplog.at_level(logging.WARNING, logger="dspf_parser.data.dataset_mapper"):
        assert mapper(bad) is None
        assert mapper(good) is not None
        assert mapper(bad) is None
    assert mapper.num_skipped == 2
    skips = [r.getMessage() for r in caplog.records if "Skipping bad sample" in r.getMessage()]
    assert len(skips) == 2 and all(bad["annotations"][0]["parsing_file"] in m for m in skips)
    assert any("2 bad samples skipped so far" in r.getMessage() for r in caplog.records)
    # The test mapper never skips (that would silently change the evaluated set).
    with pytest.raises(BadSampleError):
        _mapper(is_train=False, bad_samples="skip")(_sample(tmp_path, [], name="x", size=(3, 3)) | {"width": 4})
    with pytest.raises(BadSampleError):
        _mapper(bad_samples="error")(bad)


def test_bad_samples_config_key(tmp_path):
    cfg = tiny_cfg()
    assert cfg.DATALOADER.BAD_SAMPLES == "error"
    assert DSPFDatasetMapper(cfg, is_train=True).bad_samples == "error"
    cfg.DATALOADER.BAD_SAMPLES = "skip"
    assert DSPFDatasetMapper(cfg, is_train=True).bad_samples == "skip"
    cfg.DATALOADER.BAD_SAMPLES = "ignore"
    with pytest.raises(ValueError, match="DATALOADER.BAD_SAMPLES must be one of"):
        DSPFDatasetMapper(cfg, is_train=True)


def test_train_loader_draws_another_sample_on_skip(tmp_path):
    goods = [_sample(tmp_path, [_person()], name=f"good{i}") for i in range(2)]
    bads = [_sample(tmp_path, [_person()], name=f"bad{i}") for i in range(3)]
    for b in bads:
        os.remove(b["file_name"])
    mapper = _mapper(bad_samples="skip")
    ds = SkippingMapDataset(bads + goods, mapper)
    for i in range(len(ds)):
        assert ds[i]["file_name"] in {g["file_name"] for g in goods}
    assert mapper.num_skipped >= 3
    loader = build_detection_train_loader(dataset=SkippingMapDataset(bads + goods, mapper), mapper=lambda x: x,
                                          total_batch_size=4, num_workers=0)
    batch = next(iter(loader))
    assert len(batch) == 4 and all(x["file_name"] in {g["file_name"] for g in goods} for x in batch)
    with pytest.raises(RuntimeError, match="all 3 samples of the dataset were skipped"):
        SkippingMapDataset(bads, _mapper(bad_samples="skip"))[0]


# ----------------------------------------------------------------------------------------------
# image formats
# ----------------------------------------------------------------------------------------------
def test_grayscale_rgba_and_16bit_images_are_converted(tmp_path):
    gray = np.arange(H * W, dtype=np.uint8).reshape(H, W)
    bgra = np.dstack([np.full((H, W), v, np.uint8) for v in (10, 20, 30, 40)])
    wide = (np.arange(H * W).reshape(H, W) * 80).astype(np.uint16)  # up to ~61k
    for name, img, expect_bgr in (
        ("gray", gray, np.dstack([gray] * 3)),
        ("rgba", bgra, bgra[..., :3]),
        ("gray16", wide, np.dstack([np.rint(wide / 257.0).astype(np.uint8)] * 3)),
    ):
        d = _sample(tmp_path, [_person()], name=name, image=img)
        for fmt, expect in (("BGR", expect_bgr), ("RGB", expect_bgr[..., ::-1])):
            out = _mapper(is_train=False, fmt=fmt)(d)
            assert out["image"].shape == (3, H, W), (name, fmt)
            assert np.array_equal(out["image"].permute(1, 2, 0).numpy(), expect), (name, fmt)
        train = _mapper(is_train=True)(d)
        _check_consistent(train, (H, W), 1)


# ----------------------------------------------------------------------------------------------
# inference on hostile inputs
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def no_joint_model():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(**{"MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD": "1e9"}))
    return model.eval()


def _check_empty_instances(out, size):
    inst = out["instances"]
    assert inst.image_size == size and len(inst) == 0
    assert inst.pred_keypoints.shape == (0, K, 3)
    assert inst.scores.shape == (0,) and inst.pred_classes.shape == (0,)
    assert inst.pred_boxes.tensor.shape == (0, 4)
    assert inst.pred_masks.shape == (0,) + size and inst.pred_parts.shape == (0,) + size


def test_inference_on_tiny_and_elongated_images(no_joint_model):
    """1x1 and 5x17 inputs used to crash in the FPN's GroupNorm (a 1x1 coarsest feature with one
    channel per group); every size now gives outputs of its own size and no people."""
    sizes = [(1, 1), (5, 17), (31, 33), (1500, 90), (2, 300)]
    with torch.no_grad():
        for h, w in sizes:
            out = no_joint_model([{"image": torch.randint(0, 255, (3, h, w), dtype=torch.uint8)}])[0]
            assert out["sem_seg"].shape == (S.num_parts, h, w) and out["dspf"].shape == (2, h, w)
            assert torch.isfinite(out["sem_seg"]).all() and torch.isfinite(out["dspf"]).all()
            _check_empty_instances(out, (h, w))
        # A batch of very different sizes, with requested output sizes.
        batch = [{"image": torch.randint(0, 255, (3, 1, 1), dtype=torch.uint8), "height": 3, "width": 2},
                 {"image": torch.randint(0, 255, (3, 40, 9), dtype=torch.uint8)}]
        outs = no_joint_model(batch)
    assert outs[0]["sem_seg"].shape == (S.num_parts, 3, 2)
    _check_empty_instances(outs[0], (3, 2))
    _check_empty_instances(outs[1], (40, 9))


def test_inference_on_grayscale_and_rgba_files_through_the_mapper(tmp_path, no_joint_model):
    cfg = tiny_cfg()
    mapper = DSPFDatasetMapper(cfg, is_train=False)
    gray = _sample(tmp_path, [], name="gray", size=(7, 5), image=np.full((7, 5), 99, np.uint8))
    rgba = _sample(tmp_path, [], name="rgba", size=(9, 4), image=np.full((9, 4, 4), 200, np.uint8))
    with torch.no_grad():
        outs = no_joint_model([mapper(gray), mapper(rgba)])
    _check_empty_instances(outs[0], (7, 5))
    _check_empty_instances(outs[1], (9, 4))


def test_hundreds_of_candidates_through_the_model_are_bounded():
    torch.manual_seed(0)
    cfg = tiny_cfg(**{"MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD": "0.0",
                      "MODEL.DSPF.INFERENCE.MAX_CANDIDATES": "200",
                      "MODEL.DSPF.MATCHING.NUM_ITERS": "50",
                      "MODEL.DSPF.INFERENCE.ASSOCIATION": "matching"})
    model = build_model(cfg).eval()
    shapes = []
    solve = model.matching_layer.forward
    model.matching_layer.forward = lambda scores, valid=None: (shapes.append(tuple(scores.shape)), solve(scores, valid))[1]
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 255, (3, 96, 160), dtype=torch.uint8)}])[0]
    assert len(shapes) == 1
    assert shapes[0][0] == L and max(shapes[0][1:]) <= 200
    inst = out["instances"]
    assert inst.image_size == (96, 160) and inst.pred_masks.shape[1:] == (96, 160)
    assert len(inst) <= K * 200 // 2 and inst.pred_keypoints.shape == (len(inst), K, 3)
    assert torch.isfinite(inst.pred_keypoints).all()


def _decode(heat, offsets, limbs, dspf, person, stride=4, **settings):
    """``decode_maps`` of stride-``stride`` maps whose part map is ``person``, output at the input size."""
    maps = ParsingMaps(torch.stack([~person, person]).float(), dspf, heat, offsets, limbs, part_stride=stride)
    size = (person.shape[0] * stride, person.shape[1] * stride)
    return decode_maps(maps, size, size, DecodingSettings(S.limbs, stride, 6.0, **settings))


def test_decoding_hundreds_of_candidates_keeps_problem_sizes_and_memory_bounded(monkeypatch):
    g = torch.Generator().manual_seed(0)
    h, w, n = 96, 96, 200
    maps = (torch.rand(K, h, w, generator=g), torch.randn(K, 2, h, w, generator=g) * 8,
            torch.rand(L, h, w, generator=g), torch.randn(2, h, w, generator=g) * 10,
            torch.ones(h, w, dtype=torch.bool))
    solver_shapes, budgets = [], []
    real_assign = decoding.assign_projections

    def assign(*args, **kwargs):
        budgets.append(kwargs.get("budget"))
        return real_assign(*args, **kwargs)

    monkeypatch.setattr(decoding, "assign_projections", assign)

    def solver(scores, valid):
        solver_shapes.append(tuple(scores.shape))
        return decoding.solve_matching(scores, valid, num_iters=20)

    people = _decode(*maps, keypoint_threshold=0.0, max_candidates=n, association="matching", solver=solver,
                     min_joints=1, dspf_candidates=False)
    assert solver_shapes == [(L, n, n)]  # random maps saturate the candidate limit exactly
    assert budgets == [None]  # the default, bounded cost budget
    assert 0 < len(people.scores) <= K * n // 2
    assert people.instance_map.shape == (4 * h, 4 * w)
    assert int(people.instance_map.max()) <= len(people.scores) and bool((people.instance_map > 0).all())


def test_decoding_a_large_image():
    """A 2000x2000 input (500x500 grid) with two people and nothing else: finishes, people found."""
    h = w = 500
    heat = torch.zeros(K, h, w)
    offsets = torch.zeros(K, 2, h, w)
    limbs = torch.ones(L, h, w) * 0.9
    for person, (x0, y0) in enumerate(((40, 60), (300, 250))):
        for k in range(K):
            heat[k, y0 + 6 * k, x0 + 3 * k] = 1.0
    people = _decode(heat, offsets, limbs, torch.zeros(2, h, w), torch.zeros(h, w, dtype=torch.bool),
                     keypoint_threshold=0.01, max_candidates=30, association="greedy_openpose")
    assert people.instance_map.shape == (2000, 2000) and int(people.instance_map.max()) == 0
    assert 1 <= len(people.scores) <= 4 and people.poses.shape[1:] == (K, 3)


# ----------------------------------------------------------------------------------------------
# fuzz: the mapper either maps consistently or names the offending file
# ----------------------------------------------------------------------------------------------
person_st = st.fixed_dictionaries({
    "size_delta": st.sampled_from([(0, 0)] * 6 + [(1, 0), (0, -1), (-1, 3)]),
    "max_part": st.sampled_from([0, 1, 5, S.num_parts - 1, S.num_parts, 200]),
    "png": st.sampled_from(["ok"] * 8 + ["missing", "corrupt"]),
    "kp_seed": st.integers(0, 2 ** 16),
})


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    h=st.integers(1, 20), w=st.integers(1, 20),
    channels=st.sampled_from([1, 3, 4]),
    image=st.sampled_from(["ok"] * 8 + ["missing", "corrupt", "dict_size"]),
    people=st.lists(person_st, max_size=3),
    augment=st.booleans(),
    policy=st.sampled_from(["error", "skip"]),
    damage=st.booleans(),
    seed=st.integers(0, 2 ** 16),
)
def test_fuzz_mapper(h, w, channels, image, people, augment, policy, damage, seed):
    if not damage:  # half the examples are valid samples (random keypoints stay random)
        image = "ok"
        people = [dict(p, size_delta=(0, 0), max_part=min(p["max_part"], S.num_parts - 1), png="ok") for p in people]
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as folder:
        img = rng.integers(0, 256, (h, w) if channels == 1 else (h, w, channels), dtype=np.uint8)
        written = []
        for p in people:
            ph, pw = max(1, h + p["size_delta"][0]), max(1, w + p["size_delta"][1])
            parts = rng.integers(0, p["max_part"] + 1, (ph, pw)).astype(np.uint8) * (rng.random((ph, pw)) < 0.5)
            kps = np.zeros((K, 3), np.float32)
            kp_rng = np.random.default_rng(p["kp_seed"])
            kps[:, 0] = kp_rng.uniform(-w, 2 * w, K)
            kps[:, 1] = kp_rng.uniform(-h, 2 * h, K)
            kps[:, 2] = kp_rng.integers(0, 3, K)
            written.append((parts, kps))
        d = _sample(folder, written, size=(h, w), image=img)
        bad = set()
        if image == "missing":
            os.remove(d["file_name"])
            bad.add(d["file_name"])
        elif image == "corrupt":
            with open(d["file_name"], "wb") as f:
                f.write(rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
            bad.add(d["file_name"])
        elif image == "dict_size":
            d["height"] += 1
            bad.add(d["file_name"])
        for p, (parts, _), anno in zip(people, written, d["annotations"]):
            path = anno["parsing_file"]
            if p["png"] == "missing":
                os.remove(path)
            elif p["png"] == "corrupt":
                with open(path, "wb") as f:
                    f.write(b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 30, dtype=np.uint8).tobytes())
            if p["png"] != "ok" or parts.shape != (h, w) or (parts.size and parts.max() >= S.num_parts):
                bad.add(path)

        augs = [T.ResizeScale(0.5, 2.0, 16, 12), T.RandomRotation([-10, 10], expand=False),
                T.FixedSizeCrop((16, 12), pad=True), T.RandomFlip(prob=0.5)] if augment else []
        stride = 4 if augment else 1
        mapper = _mapper(bad_samples=policy, augs=augs, stride=stride)
        try:
            out = mapper(d)
        except (BadSampleError, ValueError, FileNotFoundError) as e:
            assert policy == "error" and bad, f"unexpected error: {e}"
            assert any(path in str(e) for path in bad), f"{e} names none of {bad}"
            assert isinstance(e, BadSampleError) and e.file_name in bad
            return
        if bad:
            assert policy == "skip" and out is None and mapper.num_skipped == 1
            return
        _check_consistent(out, (16, 12) if augment else (h, w), len(people), stride)
