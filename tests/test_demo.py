"""Visualizer, MHPv2 submission writer/reader and demo.py (end to end on a random tiny model)."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from detectron2.structures import Boxes, Instances

from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.data.synthetic import generate_synthetic_image
from dspf_parser.utils.mhp_submission import MHPSubmissionWriter, read_submission
from dspf_parser.utils.visualizer import (
    colorize_instances, draw_parsing, draw_part_map, part_palette, person_palette,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import demo  # noqa: E402

H, W = 64, 80
FACE, TEE = 3, 12
HEAD_TOP, UPPER_NECK, R_SHOULDER, L_SHOULDER = 9, 8, 12, 13
TINY_OPTS = [
    "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.DSPF.PART_HEAD.CONVS_DIM", "32",
    "MODEL.DSPF.FIELD_HEAD.CONVS_DIM", "32", "MODEL.DSPF.POSE_HEAD.CONVS_DIM", "32",
    "MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD", "0.0", "MODEL.DSPF.INFERENCE.LIMB_PRUNE_THRESHOLD", "0.0", "MODEL.DSPF.INFERENCE.MAX_CANDIDATES", "4",
]


def two_people():
    """Person 0 (score 0.9): rows 20..54, cols 5..24, face above tee-shirt, a vertical neck limb.
    Person 1 (score 0.6): rows 20..59, cols 45..74, a horizontal shoulder limb at row 30, and a
    head-top joint of score 0 (missing) that must not be connected."""
    masks = np.zeros((2, H, W), bool)
    masks[0, 20:55, 5:25] = True
    masks[1, 20:60, 45:75] = True
    parts = np.zeros((2, H, W), np.uint8)
    parts[0, 20:30, 5:25] = FACE
    parts[0, 30:55, 5:25] = TEE
    parts[1][masks[1]] = TEE
    kp = np.zeros((2, S.num_keypoints, 3), np.float32)
    kp[0, HEAD_TOP] = (15, 22, 0.8)
    kp[0, UPPER_NECK] = (15, 40, 0.7)
    kp[1, R_SHOULDER] = (50, 30, 0.5)
    kp[1, L_SHOULDER] = (70, 30, 0.5)
    kp[1, UPPER_NECK] = (60, 50, 0.6)
    kp[1, HEAD_TOP] = (60, 5, 0.0)  # missing joint
    inst = Instances((H, W))
    inst.pred_masks = torch.from_numpy(masks)
    inst.pred_parts = torch.from_numpy(parts)
    inst.pred_keypoints = torch.from_numpy(kp)
    inst.scores = torch.tensor([0.9, 0.6])
    inst.pred_boxes = Boxes(torch.tensor([[5.0, 20, 25, 55], [45, 20, 75, 60]]))
    inst.pred_classes = torch.zeros(2, dtype=torch.int64)
    return inst


@pytest.fixture
def gray():
    return np.full((H, W, 3), 128, np.uint8)


def test_draw_parsing_parts_outlines_skeleton(gray):
    inst = two_people()
    original = gray.copy()
    out = draw_parsing(gray, inst)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert np.array_equal(gray, original), "input image modified"
    palette, people = part_palette(), person_palette(2)
    # inside person 0 (away from outline, skeleton and the score label above the box): 50 % blend of part colours
    face_px, tee_px = out[26, 9], out[50, 9]
    assert np.allclose(face_px, 0.5 * 128 + 0.5 * palette[FACE].astype(float), atol=1)
    assert np.allclose(tee_px, 0.5 * 128 + 0.5 * palette[TEE].astype(float), atol=1)
    assert not np.array_equal(face_px, tee_px)
    changed = np.any(out != 128, axis=2)
    assert changed[22:53, 7:23].all(), "person 0's mask is not coloured everywhere"
    # background away from everyone stays as it was
    assert not changed[:, 27:43].any() and not changed[62:, :].any()
    # outline of person 0 in its person colour (left edge of the mask, below the score label)
    assert np.array_equal(out[45, 5], people[0])
    # score label of person 0 above its box, filled with its person colour
    assert np.array_equal(out[10, 5], people[0])
    # vertical limb of person 0 (head-top -> upper-neck) and horizontal one of person 1
    assert np.allclose(out[31, 15], people[0], atol=2)
    assert np.allclose(out[30, 60], people[1], atol=2)
    # the missing head-top of person 1 is neither drawn nor connected to its neck
    assert not changed[2:8, 58:63].any()
    assert np.allclose(out[40, 52], 0.5 * 128 + 0.5 * palette[TEE].astype(float), atol=1)


def test_draw_parsing_threshold_numpy_fields_and_empty(gray):
    inst = two_people()
    out = draw_parsing(gray, inst, confidence_threshold=0.7)
    assert np.any(out[22:53, 7:23] != 128)
    assert (out[20:60, 45:75] == 128).all(), "person below the threshold was drawn"

    class Plain:  # numpy fields, no detectron2
        scores = inst.scores.numpy()
        pred_masks = inst.pred_masks.numpy()
        pred_keypoints = inst.pred_keypoints.numpy()

        def __len__(self):
            return 2

    plain = draw_parsing(gray, Plain())
    assert np.array_equal(plain[50, 10], (0.5 * 128 + 0.5 * person_palette(2)[0]).round().astype(np.uint8))
    assert np.array_equal(draw_parsing(gray, Instances((H, W))), gray)
    with pytest.raises(ValueError):
        draw_parsing(gray.astype(np.float32), inst)


def test_part_map_and_instance_colours():
    palette = part_palette()
    assert palette.shape == (S.num_parts, 3) and palette.dtype == np.uint8
    assert (palette[0] == 0).all() and len(np.unique(palette, axis=0)) == S.num_parts
    assert np.array_equal(palette, part_palette()) and np.array_equal(person_palette(5), person_palette(5))
    part_map = np.array([[0, FACE], [TEE, 255]])
    colored = draw_part_map(torch.from_numpy(part_map))
    assert colored.shape == (2, 2, 3) and colored.dtype == np.uint8
    assert np.array_equal(colored[0, 1], palette[FACE]) and np.array_equal(colored[1, 1], (255, 255, 255))
    ids = colorize_instances(np.array([[0, 1], [2, 2]]))
    assert (ids[0, 0] == 0).all() and not np.array_equal(ids[0, 1], ids[1, 0])
    assert np.array_equal(ids[1, 0], person_palette(2)[1])


def test_submission_round_trip(tmp_path):
    inst = two_people()
    inst.scores = torch.tensor([0.6, 0.9])  # unsorted on purpose: person ids follow the score
    folder = str(tmp_path / "sub")
    part_map = inst.pred_parts.max(0).values.numpy()
    empty = Instances((32, 48))
    empty.scores = torch.zeros(0)
    empty.pred_parts = torch.zeros(0, 32, 48, dtype=torch.uint8)
    empty.pred_keypoints = torch.zeros(0, 16, 3)
    empty.pred_boxes = Boxes(torch.zeros(0, 4))
    with MHPSubmissionWriter(folder) as writer:
        paths = writer.add("img_a", inst, part_map=part_map, file_name="/x/img_a.jpg")
        writer.add("img_b", empty)
        with pytest.raises(ValueError):
            writer.add("img_a", inst)
        with pytest.raises(ValueError):
            writer.add("bad name", inst)
    assert [os.path.basename(p) for p in paths] == ["img_a_1.png", "img_a_2.png"]
    back = read_submission(folder)
    assert list(back) == ["img_a", "img_b"]
    a = back["img_a"]
    assert (a["height"], a["width"], a["file_name"]) == (H, W, "/x/img_a.jpg")
    assert [p["person_id"] for p in a["persons"]] == [1, 2]
    for p, src in zip(a["persons"], [1, 0]):  # person 1 = the 0.9 one = index 1 of inst
        assert p["score"] == pytest.approx(float(inst.scores[src]))
        assert np.array_equal(p["parts"], inst.pred_parts[src].numpy())
        assert np.allclose(p["keypoints"], inst.pred_keypoints[src].numpy())
        assert np.allclose(p["bbox"], inst.pred_boxes.tensor[src].numpy())
    assert np.array_equal(a["global_seg"], part_map)
    assert set(np.unique(a["global_tag"])) == {0, 1, 2}
    assert (a["global_tag"][inst.pred_masks[1].numpy()] == 1).all()
    assert (a["global_tag"][inst.pred_masks[0].numpy()] == 2).all()
    assert back["img_b"]["persons"] == [] and back["img_b"]["global_tag"].shape == (32, 48)
    with open(os.path.join(folder, "results.txt")) as f:
        lines = f.read().splitlines()
    assert lines[0].split()[:3] == ["img_a", "1", "0.900000"] and lines[1] == "img_b"
    # a rerun into the same folder with fewer people leaves no stale person PNG
    with MHPSubmissionWriter(folder, confidence_threshold=0.7) as writer:
        writer.add("img_a", inst)
    assert [p["person_id"] for p in read_submission(folder)["img_a"]["persons"]] == [1]
    assert not os.path.exists(os.path.join(folder, "parsing", "img_a_2.png"))


def write_images(folder, n=2):
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"person_{i}.jpg")
        cv2.imwrite(path, generate_synthetic_image(20 + i, (64, 80)).image)
        paths.append(path)
    return paths


def test_demo_end_to_end_and_video(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_images(str(src))
    out = str(tmp_path / "out")
    torch.manual_seed(0)
    assert demo.main(["--config-file", os.path.join(REPO, "configs/synthetic/dspf_R18_tiny.yaml"),
                      "--input", str(src / "person_*.jpg"), "--output", out, "--opts", *TINY_OPTS]) == 0
    for i in range(2):
        for suffix in ("_parsing.png", "_parts.png"):
            picture = cv2.imread(os.path.join(out, f"person_{i}{suffix}"))
            assert picture is not None and picture.shape == (64, 80, 3)
    sub = read_submission(os.path.join(out, "submission"))
    assert sorted(sub) == ["person_0", "person_1"]
    assert sum(len(v["persons"]) for v in sub.values()) > 0, "no person found with KEYPOINT_THRESHOLD 0"
    for image_id, entry in sub.items():
        for p in entry["persons"]:
            assert os.path.isfile(os.path.join(out, "submission", "parsing", f"{image_id}_{p['person_id']}.png"))
            assert p["keypoints"].shape == (16, 3)

    video = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (80, 64))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write mp4v here")
    for path in sorted(src.iterdir()):
        writer.write(cv2.imread(str(path)))
    writer.release()
    demo.main(["--config-file", os.path.join(REPO, "configs/synthetic/dspf_R18_tiny.yaml"),
               "--video-input", video, "--output", out, "--opts", *TINY_OPTS])
    annotated = cv2.VideoCapture(os.path.join(out, "clip_parsing.mp4"))
    frames = 0
    while annotated.read()[0]:
        frames += 1
    annotated.release()
    assert frames == 2


def test_demo_input_errors(tmp_path):
    with pytest.raises(demo.DemoError, match="no input matched"):
        demo.main(["--input", str(tmp_path / "nothing_*.jpg"), "--output", str(tmp_path / "o")])
    with pytest.raises(demo.DemoError, match="exactly one"):
        demo.main(["--output", str(tmp_path / "o")])
    good = write_images(str(tmp_path), n=1)[0]
    broken = tmp_path / "broken.png"
    broken.write_text("this is not a picture")
    with pytest.raises(demo.DemoError, match="broken.png"):
        demo.main(["--input", good, str(broken), "--output", str(tmp_path / "o")])
    # the script itself: exit status 2 and the file named on stderr, no traceback
    proc = subprocess.run([sys.executable, os.path.join(REPO, "demo.py"), "--input", str(broken),
                           "--output", str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert "broken.png" in proc.stderr and "Traceback" not in proc.stderr
