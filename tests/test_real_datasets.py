"""Readers of the three real benchmarks on tiny fixtures in their official formats, the schemas,
the shared part-map helper, and the benchmark configs (no download, CPU)."""
import json
import os
import sys

import cv2
import numpy as np
import pytest
import scipy.io
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from detectron2.structures import Instances
from pycocotools import mask as mask_util

from dspf_parser import add_dspf_config
from dspf_parser.data.annotations import load_human_annotations, load_person_parts
from dspf_parser.data.categories import (DENSEPOSE_SCHEMA, MHP_V2_SCHEMA, PASCAL_PERSON_PART_SCHEMA, SCHEMAS,
                                         get_schema)
from dspf_parser.data.datasets.pascal_person_part import LABEL_ORDERS, load_pascal_person_part_split
from dspf_parser.data.mhp_v2_layout import write_mhp_v2_sample
from dspf_parser.data.synthetic import SyntheticSample
from dspf_parser.evaluation import InstanceParsingEvaluator, PartParsingEvaluator

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
BENCHMARKS = {  # config folder -> (schema, train set, test set)
    "mhp_v2": ("mhp_v2", "mhp_v2_train", "mhp_v2_val"),
    "densepose_coco": ("densepose_coco", "densepose_coco_parsing_train", "densepose_coco_parsing_val"),
    "pascal_person_part": ("pascal_person_part", "pascal_person_part_train", "pascal_person_part_test"),
}


# ----------------------------------------------------------------------------------------------
# Schemas
# ----------------------------------------------------------------------------------------------
def test_schemas_registered_with_flips_from_names():
    assert {"mhp_v2", "densepose_coco", "pascal_person_part"} <= set(SCHEMAS)
    assert get_schema("mhp_v2") is MHP_V2_SCHEMA
    d = DENSEPOSE_SCHEMA
    assert d.num_parts == 15 and d.num_keypoints == 17 and d.num_limbs == 19
    names = d.part_classes

    def flipped(n):
        return names[d.part_flip[names.index(n)]]
    # Left/Right inside the name (DensePose's "UpperLeft-Leg") flips too.
    assert flipped("UpperLeft-Leg") == "UpperRight-Leg" and flipped("LowerRight-Arm") == "LowerLeft-Arm"
    assert flipped("Right-Hand") == "Left-Hand" and flipped("Torso") == "Torso" and flipped("Head") == "Head"
    kp = d.keypoint_names
    assert kp[0] == "nose" and kp[d.keypoint_flip[kp.index("left_eye")]] == "right_eye"
    assert kp[d.keypoint_flip[kp.index("right_ankle")]] == "left_ankle"
    assert d.oks_sigmas[0] == pytest.approx(0.026) and d.oks_sigmas[-1] == pytest.approx(0.089)
    assert (kp.index("left_ankle"), kp.index("left_knee")) in [tuple(sorted(l, reverse=True)) for l in d.limbs]
    p = PASCAL_PERSON_PART_SCHEMA
    assert p.part_classes[1:] == ("Head", "Torso", "Upper-arms", "Lower-arms", "Upper-legs", "Lower-legs")
    assert p.part_flip == tuple(range(7)) and p.num_keypoints == 14
    assert p.keypoint_names[p.keypoint_flip[p.keypoint_names.index("Left-wrist")]] == "Right-wrist"
    # Every joint is reached by a limb (grouping walks them).
    for s in SCHEMAS.values():
        assert {j for l in s.limbs for j in l} == set(range(s.num_keypoints)), s.name


# ----------------------------------------------------------------------------------------------
# load_person_parts
# ----------------------------------------------------------------------------------------------
def _rle(mask):
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(r["size"]), "counts": r["counts"].decode("ascii")}


def test_person_parts_from_png_and_from_rles_agree(tmp_path):
    parts = np.zeros((12, 10), np.uint8)
    parts[1:4, 2:6] = 3
    parts[5:9, 1:3] = 7
    png = str(tmp_path / "p.png")
    cv2.imwrite(png, parts)
    from_png = load_person_parts({"parsing_file": png}, 12, 10, 59)
    rles = {"3": _rle(parts == 3), 7: _rle(parts == 7)}  # str keys, as after a JSON round trip
    from_rle = load_person_parts({"parsing_rles": rles}, 12, 10, 59)
    np.testing.assert_array_equal(from_png, parts)
    np.testing.assert_array_equal(from_rle, parts)
    with pytest.raises(ValueError, match=r"img.jpg person 4.*9x11|img.jpg person 4"):
        load_person_parts({"person_id": 4, "parsing_rles": {3: _rle(parts[:11, :9] == 3)}}, 12, 10, 59,
                          image="img.jpg")
    with pytest.raises(ValueError, match="out of range"):
        load_person_parts({"parsing_rles": {59: _rle(parts == 3)}}, 12, 10, 59)
    with pytest.raises(ValueError, match="neither"):
        load_person_parts({"person_id": 1}, 12, 10, 59, image="img.jpg")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_person_parts({"parsing_file": str(tmp_path / "missing.png")}, 12, 10, 59)


# ----------------------------------------------------------------------------------------------
# MHPv2
# ----------------------------------------------------------------------------------------------
def _mhp_sample():
    """Two people on a 24x32 image: hand-placed parts, joints and boxes."""
    h, w = 24, 32
    part_map = np.zeros((h, w), np.uint8)
    inst = np.zeros((h, w), np.uint8)
    part_map[2:6, 3:8], inst[2:6, 3:8] = 3, 1        # Face
    part_map[6:14, 3:8], inst[6:14, 3:8] = 12, 1     # Tee-shirt
    part_map[4:20, 20:26], inst[4:20, 20:26] = 17, 2  # Pants
    kps = np.zeros((2, 16, 3), np.float32)
    kps[0, 9] = (5, 2, 2)      # head top, visible
    kps[0, 7] = (5, 7, 1)      # thorax, occluded
    kps[1, 0] = (21, 19, 2)    # right ankle
    boxes = np.array([[3, 2, 8, 14], [20, 4, 26, 20]], np.float32)
    image = np.full((h, w, 3), 90, np.uint8)
    return SyntheticSample(image, part_map, inst, kps, boxes)


@pytest.fixture
def datasets_root(tmp_path, monkeypatch):
    root = tmp_path / "d2datasets"
    root.mkdir()
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    return root


def test_mhp_v2_reader(datasets_root):
    root = datasets_root / "LV-MHP-v2"
    sample = _mhp_sample()
    for split in ("train", "val"):
        write_mhp_v2_sample(str(root), split, "img_a", sample)
        (root / "list").mkdir(exist_ok=True)
        (root / "list" / f"{split}.txt").write_text("img_a\n")
    for name in ("mhp_v2_train", "mhp_v2_val"):
        meta = MetadataCatalog.get(name)
        assert meta.evaluator_type == "part_parsing" and meta.schema == "mhp_v2"
        (rec,) = DatasetCatalog.get(name)
        assert rec["image_id"] == "img_a" and (rec["height"], rec["width"]) == (24, 32)
        gt = load_human_annotations(rec, MHP_V2_SCHEMA.num_parts, MHP_V2_SCHEMA.num_keypoints)
        np.testing.assert_array_equal(gt.part_map, sample.part_map)
        np.testing.assert_array_equal(gt.instance_map, sample.instance_map)
        np.testing.assert_allclose(gt.keypoints, sample.keypoints)
        assert [a["bbox"] for a in rec["annotations"]] == [[3, 2, 8, 14], [20, 4, 26, 20]]
        assert gt.ignore_mask is None


def test_mhp_v2_missing_root_and_list_name_the_path(datasets_root):
    with pytest.raises(FileNotFoundError, match=str(datasets_root / "LV-MHP-v2")):
        DatasetCatalog.get("mhp_v2_val")
    write_mhp_v2_sample(str(datasets_root / "LV-MHP-v2"), "val", "img_a", _mhp_sample())
    with pytest.raises(FileNotFoundError, match=str(datasets_root / "LV-MHP-v2" / "list" / "val.txt")):
        DatasetCatalog.get("mhp_v2_val")


# ----------------------------------------------------------------------------------------------
# DensePose-COCO
# ----------------------------------------------------------------------------------------------
def _grid_rle(mask):
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [256, 256], "counts": r["counts"].decode("ascii")}  # the official json stores str


def _densepose_json(path):
    """Image 1 (40x30): person A with 3 parts, person B (box past the right edge) with one part,
    person C without dp_masks; image 2: only a person without dp_masks."""
    grid = np.zeros((256, 256), bool)
    torso, head, rhand = grid.copy(), grid.copy(), grid.copy()
    torso[0:128] = True
    head[0:64] = True          # overlaps the torso: the later part id (14) wins
    rhand[128:, 128:] = True
    dp_a = [[] for _ in range(14)]
    dp_a[0], dp_a[1], dp_a[13] = _grid_rle(torso), _grid_rle(rhand), _grid_rle(head)
    dp_b = [[] for _ in range(14)]
    dp_b[3] = _grid_rle(~grid)  # Left-Foot everywhere
    kps_a = [0.0] * 51
    kps_a[0:3] = [11.0, 3.0, 2.0]     # nose
    kps_a[27:30] = [18.0, 15.0, 1.0]  # right wrist
    doc = {
        "images": [{"id": 7, "file_name": "COCO_val2014_000000000007.jpg", "height": 30, "width": 40},
                   {"id": 9, "file_name": "COCO_val2014_000000000009.jpg", "height": 30, "width": 40}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 300.0,
             "bbox": [4.7, 2.2, 16.9, 20.5], "keypoints": kps_a, "num_keypoints": 2,
             "segmentation": [[4, 2, 20, 2, 20, 22, 4, 22]], "dp_masks": dp_a,
             "dp_I": [1.0], "dp_U": [0.5], "dp_V": [0.5], "dp_x": [10.0], "dp_y": [10.0]},
            {"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 150.0,
             "bbox": [30.0, 10.0, 20.0, 15.0], "num_keypoints": 0, "keypoints": [0] * 51,
             "segmentation": [[30, 10, 39, 10, 39, 24, 30, 24]], "dp_masks": dp_b},
            {"id": 3, "image_id": 7, "category_id": 1, "iscrowd": 0, "area": 20.0,
             "bbox": [0.0, 25.0, 5.0, 4.0], "num_keypoints": 0, "keypoints": [0] * 51,
             "segmentation": [[0, 25, 5, 25, 5, 29, 0, 29]]},
            {"id": 4, "image_id": 9, "category_id": 1, "iscrowd": 0, "area": 20.0,
             "bbox": [0.0, 0.0, 5.0, 4.0], "num_keypoints": 0, "keypoints": [0] * 51,
             "segmentation": [[0, 0, 5, 0, 5, 4, 0, 4]]},
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return kps_a


def test_densepose_coco_reader(datasets_root):
    coco = datasets_root / "coco"
    kps_a = _densepose_json(coco / "annotations" / "densepose_coco_2014_minival.json")
    (coco / "val2014").mkdir()
    for n in (7, 9):
        cv2.imwrite(str(coco / "val2014" / f"COCO_val2014_{n:012d}.jpg"), np.zeros((30, 40, 3), np.uint8))
    meta = MetadataCatalog.get("densepose_coco_parsing_val")
    assert meta.schema == "densepose_coco" and meta.evaluator_type == "part_parsing"
    recs = DatasetCatalog.get("densepose_coco_parsing_val")
    assert len(recs) == 1  # image 9 has no DensePose person
    rec = recs[0]
    assert rec["image_id"] == "COCO_val2014_000000000007" and (rec["height"], rec["width"]) == (30, 40)
    assert [a["coco_ann_id"] for a in rec["annotations"]] == [1, 2]
    s = DENSEPOSE_SCHEMA
    gt = load_human_annotations(rec, s.num_parts, s.num_keypoints)
    head, torso, rhand, lfoot = (s.part_classes.index(n) for n in ("Head", "Torso", "Right-Hand", "Left-Foot"))
    # Person A: box int -> x 4..20, y 2..22 (16 x 20); nearest rows: src = floor(i * 256 / 20).
    expected = np.zeros((30, 40), np.uint8)
    expected[2:7, 4:20] = head      # rows i = 0..4 -> src < 64
    expected[7:12, 4:20] = torso    # rows i = 5..9 -> src 64..127
    expected[12:22, 12:20] = rhand  # rows i >= 10, cols j >= 8 -> src >= 128
    # Person B: box x 30..50 clipped to 40, y 10..25: the whole grid squeezed into 10 x 15.
    expected[10:25, 30:40] = lfoot
    np.testing.assert_array_equal(gt.part_map, expected)
    inst = np.zeros((30, 40), np.uint8)
    inst[expected > 0] = 1
    inst[10:25, 30:40] = 2
    np.testing.assert_array_equal(gt.instance_map, inst)
    np.testing.assert_allclose(gt.keypoints[0].ravel(), kps_a)
    assert gt.keypoints[1].sum() == 0
    assert rec["annotations"][0]["bbox"] == pytest.approx([4.7, 2.2, 21.6, 22.7])
    # Person C (no dp_masks) is an ignore region, not a person.
    assert gt.ignore_mask is not None and gt.ignore_mask[26:28, 1:4].all()
    assert not gt.ignore_mask[:20].any()


def test_densepose_missing_files_name_the_path(datasets_root):
    with pytest.raises(FileNotFoundError, match=str(datasets_root / "coco")):
        DatasetCatalog.get("densepose_coco_parsing_train")
    (datasets_root / "coco").mkdir()
    json_path = datasets_root / "coco" / "annotations" / "densepose_coco_2014_train.json"
    with pytest.raises(FileNotFoundError, match=str(json_path)):
        DatasetCatalog.get("densepose_coco_parsing_train")
    _densepose_json(json_path)
    with pytest.raises(FileNotFoundError, match=str(datasets_root / "coco" / "train2014")):
        DatasetCatalog.get("densepose_coco_parsing_train")


# ----------------------------------------------------------------------------------------------
# PASCAL-Person-Part
# ----------------------------------------------------------------------------------------------
#: schema part id -> on-disk id of the instance-level copy (the inverse of its LABEL_ORDERS row)
PASCAL_DISK_ID = {schema: disk for disk, schema in enumerate(LABEL_ORDERS["instance_level"])}


def write_pascal_split(split_dir, list_name="test_id.txt"):
    """One 20x30 image of the instance-level copy: person 1 head + torso, person 2 upper arms +
    lower legs, person 3 with no part pixel, and a part pixel outside every person; part ids on
    disk in that copy's order, the list in ../tools/, Xia et al. joints in ../pose_annotations/
    (pose persons out of order: a pose off every person first, then person 1's). Returns
    (categories in schema ids, humans)."""
    for sub in ("Images", "Category_ids", "Human_ids"):
        os.makedirs(os.path.join(split_dir, sub), exist_ok=True)
    root = os.path.dirname(split_dir)
    cat = np.zeros((20, 30), np.uint8)
    hum = np.zeros((20, 30), np.uint8)
    cat[2:6, 2:8], hum[2:6, 2:8] = 1, 1
    cat[6:14, 2:8], hum[6:14, 2:8] = 2, 1
    cat[5:10, 15:20], hum[5:10, 15:20] = 3, 2
    cat[10:18, 15:20], hum[10:18, 15:20] = 6, 2
    hum[0:2, 25:30] = 3
    cat[18:20, 0:3] = 5
    disk = np.vectorize(PASCAL_DISK_ID.get)(cat).astype(np.uint8)
    cv2.imwrite(os.path.join(split_dir, "Images", "2008_000001.jpg"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(os.path.join(split_dir, "Category_ids", "2008_000001.png"), disk)
    cv2.imwrite(os.path.join(split_dir, "Human_ids", "2008_000001.png"), hum)
    os.makedirs(os.path.join(root, "pose_annotations"), exist_ok=True)
    xia = np.zeros((2, 14, 3))
    xia[0, 0] = (11, 17, 1)    # a pose on nobody (between the people)
    xia[0, 1] = (11, 3, 1)
    xia[1, 0] = (4, 2, 1)      # person 1: head (top), visible (Xia v = 1)
    xia[1, 1] = (4, 6, 2)      # neck, occluded (Xia v = 2)
    xia[1, 2] = (-1, 5, 1)     # a negative coordinate: absent
    boxes = np.array([[10, 2, 13, 18], [2, 2, 8, 14]], float)
    scipy.io.savemat(os.path.join(root, "pose_annotations", "2008_000001.mat"), {"joints": xia, "boxes": boxes})
    os.makedirs(os.path.join(root, "tools"), exist_ok=True)
    with open(os.path.join(root, "tools", list_name), "w") as f:
        f.write("2008_000001\n")
    return cat, hum


def test_pascal_person_part_reader(datasets_root):
    cat, hum = write_pascal_split(str(datasets_root / "pascal-person-part" / "Testing"))
    meta = MetadataCatalog.get("pascal_person_part_test")
    assert meta.schema == "pascal_person_part" and meta.evaluator_type == "part_parsing"
    (rec,) = DatasetCatalog.get("pascal_person_part_test")
    assert [a["person_id"] for a in rec["annotations"]] == [1, 2]
    s = PASCAL_PERSON_PART_SCHEMA
    gt = load_human_annotations(rec, s.num_parts, s.num_keypoints)
    expected = np.where(hum > 0, cat, 0)
    expected[hum == 3] = 0
    np.testing.assert_array_equal(gt.part_map, expected)
    np.testing.assert_array_equal(gt.instance_map, np.where(hum < 3, hum, 0))
    assert gt.keypoints[0, 13].tolist() == [4, 2, 2] and gt.keypoints[0, 12].tolist() == [4, 6, 1]
    assert gt.keypoints[1].sum() == 0
    assert rec["annotations"][0]["bbox"] == [2, 2, 8, 14] and rec["annotations"][1]["bbox"] == [15, 5, 20, 18]
    ignore = np.zeros((20, 30), bool)
    ignore[0:2, 25:30] = ignore[18:20, 0:3] = True
    np.testing.assert_array_equal(gt.ignore_mask, ignore)
    # The semantic release's order reads the on-disk ids as they are.
    recs = load_pascal_person_part_split(str(datasets_root / "pascal-person-part" / "Testing"), "test_id.txt",
                                         "semantic")
    as_is = load_human_annotations(recs[0], s.num_parts, s.num_keypoints).part_map
    assert as_is[3, 3] == PASCAL_DISK_ID[s.part_classes.index("Head")] == s.part_classes.index("Torso")
    assert as_is[7, 3] == PASCAL_DISK_ID[s.part_classes.index("Torso")] == s.part_classes.index("Lower-arms")


def test_pascal_joints_missing_or_unreadable(datasets_root):
    split = datasets_root / "pascal-person-part" / "Testing"
    write_pascal_split(str(split))
    mat = datasets_root / "pascal-person-part" / "pose_annotations" / "2008_000001.mat"
    mat.write_bytes(b"not a mat file" * 8)
    with pytest.raises(ValueError, match=str(mat)):
        load_pascal_person_part_split(str(split), "test_id.txt")
    os.remove(mat)
    with pytest.raises(FileNotFoundError, match=str(mat)):
        load_pascal_person_part_split(str(split), "test_id.txt")
    (rec,) = load_pascal_person_part_split(str(split), "test_id.txt", missing_joints="skip")
    assert len(rec["annotations"]) == 2 and not any(any(a["keypoints"]) for a in rec["annotations"])
    os.rmdir(mat.parent)
    with pytest.raises(FileNotFoundError, match="pose_annotations"):
        load_pascal_person_part_split(str(split), "test_id.txt")


def test_pascal_errors_name_the_path(datasets_root):
    root = datasets_root / "pascal-person-part"
    with pytest.raises(FileNotFoundError, match=str(root)):
        DatasetCatalog.get("pascal_person_part_train")
    split = root / "Training"
    write_pascal_split(str(split), "train_id.txt")
    os.remove(split / "Human_ids" / "2008_000001.png")
    with pytest.raises(FileNotFoundError, match=str(split / "Human_ids" / "2008_000001.png")):
        DatasetCatalog.get("pascal_person_part_train")
    write_pascal_split(str(split), "train_id.txt")
    bad = np.zeros((20, 30), np.uint8)
    bad[0, 0] = 9
    cv2.imwrite(str(split / "Category_ids" / "2008_000001.png"), bad)
    with pytest.raises(ValueError, match=r"Category_ids/2008_000001.png.*9"):
        DatasetCatalog.get("pascal_person_part_train")


def test_evaluators_read_rle_ground_truth(datasets_root):
    """PartParsingEvaluator and InstanceParsingEvaluator on a dataset whose people are RLEs."""
    write_pascal_split(str(datasets_root / "pascal-person-part" / "Testing"))
    s = PASCAL_PERSON_PART_SCHEMA
    rec = DatasetCatalog.get("pascal_person_part_test")[0]
    gt = load_human_annotations(rec, s.num_parts, s.num_keypoints)
    num = len(rec["annotations"])
    inst = Instances((rec["height"], rec["width"]))
    pm, im = torch.from_numpy(gt.part_map), torch.from_numpy(gt.instance_map)
    inst.pred_parts = (pm[None] * (im[None] == torch.arange(1, num + 1).view(-1, 1, 1))).to(torch.uint8)
    inst.scores = torch.tensor([0.9, 0.8])
    kp = torch.from_numpy(gt.keypoints).clone()
    kp[..., 2] = (kp[..., 2] > 0).float()
    inst.pred_keypoints = kp
    sem = torch.nn.functional.one_hot(pm.long(), s.num_parts).permute(2, 0, 1).float()
    out = {"sem_seg": sem, "instances": inst}
    part = PartParsingEvaluator("pascal_person_part_test", distributed=False)
    part.process([{"file_name": rec["file_name"]}], [out])
    assert part.evaluate()["part_parsing"]["mIoU"] == pytest.approx(100.0)
    ev = InstanceParsingEvaluator("pascal_person_part_test", distributed=False)
    ev.process([{"file_name": rec["file_name"]}], [out])
    res = ev.evaluate()["instance_parsing"]
    assert res["AP_p_50"] == pytest.approx(100.0) and res["PCP_50"] == pytest.approx(100.0)


# ----------------------------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------------------------
def _cfg(path, *opts):
    cfg = get_cfg()
    add_dspf_config(cfg)
    cfg.merge_from_file(path)
    cfg.merge_from_list(list(opts))
    return cfg


@pytest.mark.parametrize("bench", sorted(BENCHMARKS))
def test_benchmark_configs(bench):
    schema, train, test = BENCHMARKS[bench]
    for depth in (101, 50):
        one = _cfg(os.path.join(CONFIG_DIR, bench, f"dspf_R{depth}_FPN.yaml"))
        two = _cfg(os.path.join(CONFIG_DIR, bench, f"dspf_R{depth}_FPN_stage2.yaml"))
        for cfg in (one, two):
            assert cfg.MODEL.DSPF.SCHEMA == schema and get_schema(cfg.MODEL.DSPF.SCHEMA).name == schema
            assert cfg.DATASETS.TRAIN == (train,) and cfg.DATASETS.TEST == (test,)
            assert cfg.MODEL.RESNETS.DEPTH == depth and cfg.MODEL.RESNETS.NORM == "FrozenBN"
            assert cfg.MODEL.DEVICE == "cuda" and cfg.SOLVER.IMS_PER_BATCH == 16
            assert cfg.SOLVER.MOMENTUM == 0.9 and cfg.SOLVER.WEIGHT_DECAY == pytest.approx(1e-5)
            assert cfg.INPUT.MIN_SIZE_TEST > 0 and cfg.INPUT.MAX_SIZE_TEST >= cfg.INPUT.MIN_SIZE_TEST
        assert one.MODEL.WEIGHTS == f"detectron2://ImageNetPretrained/MSRA/R-{depth}.pkl"
        assert one.SOLVER.BASE_LR == pytest.approx(0.05) and one.SOLVER.GAMMA == pytest.approx(0.1)
        assert len(one.SOLVER.STEPS) == 1 and 0.8 * one.SOLVER.MAX_ITER < one.SOLVER.STEPS[0] < one.SOLVER.MAX_ITER
        assert not one.MODEL.DSPF.MATCHING.LOSS_ON
        assert two.MODEL.DSPF.MATCHING.LOSS_ON and two.SOLVER.STEPS == ()
        assert two.SOLVER.BASE_LR == pytest.approx(1e-4) and two.MODEL.WEIGHTS.endswith("model_final.pth")
        assert two.OUTPUT_DIR != one.OUTPUT_DIR
    cfg = _cfg(os.path.join(CONFIG_DIR, bench, "dspf_R50_FPN.yaml"), "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "")
    model = build_model(cfg)
    assert type(model).__name__ == "DSPFParser"
    assert sum(p.numel() for p in model.parameters()) > 20_000_000


def test_prepare_pascal_person_part_checks_previews_and_writes_lists(datasets_root, tmp_path, capsys):
    sys.path.insert(0, os.path.join(os.path.dirname(CONFIG_DIR), "datasets"))
    import prepare_pascal_person_part as prep

    root = datasets_root / "pascal-person-part"
    write_pascal_split(str(root / "Testing"))
    os.remove(root / "tools" / "test_id.txt")
    assert prep.main(["--root", str(root), "--write-lists", "--preview", "1", "--output", str(tmp_path / "p")]) == 0
    assert (root / "tools" / "test_id.txt").read_text() == "2008_000001\n"
    out = capsys.readouterr().out
    assert "'persons': 2" in out and "'persons_with_joints': 1" in out and "'Head': 24" in out
    panel = cv2.imread(str(tmp_path / "p" / "Testing_2008_000001.png"))
    assert panel.shape == (40, 180, 3)
