"""Training augmentations: the paper's scale factor, BGR-aware saturation, and content alignment."""
import cv2
import numpy as np
import pytest
import torch
from detectron2.data import transforms as T

from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.data.dataset_mapper import DSPFDatasetMapper
from dspf_parser.data.transforms import RandomSaturationOf, RandomScaleFactor, build_augmentations
from test_model import tiny_cfg

LEFT_ARM, RIGHT_ARM = S.part_classes.index("Left-arm"), S.part_classes.index("Right-arm")
L_WRIST, R_WRIST = S.keypoint_names.index("Left-wrist"), S.keypoint_names.index("Right-wrist")
H, W = 96, 120


def _cfg(**overrides):
    cfg = tiny_cfg(**{"INPUT.DSPF.CROP_SIZE": "(96, 120)", "INPUT.DSPF.COLOR_JITTER": "0.0", **overrides})
    return cfg


def _sample(tmp_path):
    """A black image with a red left arm (its part label) and a white 5x5 marker on the left wrist."""
    img = np.zeros((H, W, 3), np.uint8)
    parts = np.zeros((H, W), np.uint8)
    parts[30:70, 20:34] = LEFT_ARM
    img[parts == LEFT_ARM] = (0, 0, 255)  # BGR red
    img[58:63, 25:30] = 255  # the wrist marker, centre (27, 60)
    cv2.imwrite(str(tmp_path / "img.png"), img)
    cv2.imwrite(str(tmp_path / "img_1_1.png"), parts)
    kps = np.zeros((S.num_keypoints, 3), np.float32)
    kps[L_WRIST] = (27, 60, 2)
    return {"file_name": str(tmp_path / "img.png"), "image_id": "img", "height": H, "width": W,
            "annotations": [{"person_id": 1, "parsing_file": str(tmp_path / "img_1_1.png"),
                             "keypoints": kps.reshape(-1).tolist(), "bbox": [20, 30, 14, 40]}]}


def test_scale_factor_is_relative_to_the_image_and_spans_the_range():
    image = np.zeros((100, 60, 3), np.uint8)
    np.random.seed(0)
    ratios = []
    for _ in range(300):
        t = RandomScaleFactor(0.5, 2.0).get_transform(image)
        assert abs(t.new_w / 60 - t.new_h / 100) < 0.02  # aspect kept
        ratios.append(t.new_h / 100)
    assert 0.5 <= min(ratios) < 0.55 and 1.95 < max(ratios) <= 2.0
    t = RandomScaleFactor(1.0, 1.0).get_transform(image)
    assert (t.new_h, t.new_w) == (100, 60)
    with pytest.raises(ValueError, match="SCALE_RANGE"):
        RandomScaleFactor(0.0, 1.0)


def test_unit_scale_without_rotation_keeps_a_person_size(tmp_path):
    cfg = _cfg(**{"INPUT.DSPF.SCALE_RANGE": "(1.0, 1.0)", "INPUT.DSPF.ROTATION": "0.0",
                  "INPUT.DSPF.FLIP_PROB": "0.0"})
    mapper = DSPFDatasetMapper(cfg, is_train=True, augmentations=build_augmentations(cfg, True))
    out = mapper(_sample(tmp_path))
    assert out["image"].shape == (3, H, W)
    assert int((out["part_seg"] == LEFT_ARM).sum()) == 40 * 14
    torch.testing.assert_close(out["instances"].gt_keypoints.tensor[0, L_WRIST], torch.tensor([27.0, 60.0, 2.0]))


def test_joints_and_parts_stay_on_the_image_content(tmp_path):
    """Scale, rotation, crop and flip: the transformed wrist lies on the (transformed) white
    marker of the image, and the pixels labelled arm are red in the image."""
    cfg = _cfg(**{"INPUT.DSPF.SCALE_RANGE": "(0.6, 1.6)", "INPUT.DSPF.ROTATION": "15.0",
                  "INPUT.DSPF.FLIP_PROB": "0.5"})
    mapper = DSPFDatasetMapper(cfg, is_train=True, augmentations=build_augmentations(cfg, True))
    record = _sample(tmp_path)
    np.random.seed(1)
    checked = flipped = 0
    for _ in range(12):
        out = mapper(record)
        image = out["image"].permute(1, 2, 0).numpy().astype(int)  # BGR
        kp = out["instances"].gt_keypoints.tensor[0]
        arm = (out["part_seg"] == LEFT_ARM) | (out["part_seg"] == RIGHT_ARM)
        # Pixels labelled arm, away from its border (where the image is interpolated and the
        # label is not), are red (or the white marker), never background.
        inner = ~torch.nn.functional.max_pool2d((~arm)[None, None].float(), 3, 1, 1)[0, 0].bool()
        if inner.sum() > 20:
            assert (image[inner.numpy()][:, 2] > 128).all()
        wrist = kp[R_WRIST] if kp[R_WRIST, 2] > 0 else kp[L_WRIST]
        flipped += int(kp[R_WRIST, 2] > 0)
        x, y = int(round(float(wrist[0]))), int(round(float(wrist[1])))
        if wrist[2] > 0 and 1 <= x < W - 1 and 1 <= y < H - 1:
            assert image[y - 1 : y + 2, x - 1 : x + 2].min(axis=2).max() > 200, (x, y)  # the white marker
            checked += 1
    assert checked >= 6 and 0 < flipped < 12


def test_saturation_jitter_reads_bgr_channels():
    g = np.random.default_rng(0)
    rgb = g.integers(0, 255, (8, 9, 3)).astype(np.float32)
    bgr = rgb[:, :, ::-1].copy()
    np.random.seed(3)
    out_bgr = RandomSaturationOf(0.2, 1.8, "BGR").get_transform(bgr).apply_image(bgr)
    np.random.seed(3)
    out_rgb = RandomSaturationOf(0.2, 1.8, "RGB").get_transform(rgb).apply_image(rgb)
    np.testing.assert_allclose(out_bgr[:, :, ::-1], out_rgb, rtol=1e-5)
    # A gray image has nothing to (de)saturate: unchanged.
    gray = np.repeat(g.integers(0, 255, (8, 9, 1)).astype(np.float32), 3, axis=2)
    np.random.seed(4)
    np.testing.assert_allclose(RandomSaturationOf(0.2, 1.8, "BGR").get_transform(gray).apply_image(gray), gray,
                               rtol=1e-4)
    with pytest.raises(ValueError, match="INPUT.FORMAT"):
        RandomSaturationOf(0.5, 1.5, "L")


def test_test_time_augmentation_is_the_test_resize():
    cfg = _cfg(**{"INPUT.MIN_SIZE_TEST": "64"})
    (resize,) = build_augmentations(cfg, False)
    assert isinstance(resize, T.ResizeShortestEdge)
    train = build_augmentations(cfg, True)
    assert isinstance(train[0], T.ResizeShortestEdge) and isinstance(train[1], RandomScaleFactor)
