"""The folder evaluator CLI (``python -m dspf_parser.evaluation.evaluate_folder``) on tiny
ground truths: perfect prediction folders score 100, empty ones 0."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from detectron2.structures import Instances

from dspf_parser.data.annotations import load_human_annotations
from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.data.mhp_v2_layout import load_mhp_v2_split
from dspf_parser.data.synthetic_cache import write_synthetic_split
from dspf_parser.evaluation.evaluate_folder import main
from dspf_parser.utils.mhp_submission import MHPSubmissionWriter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------------
# MHPv2
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mhp_gt(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("mhp") / "LV-MHP-v2")
    write_synthetic_split(root, "val", num_images=3, seed=5, image_size=(64, 64), max_people=3, progress=False)
    return root


def _gt_persons(rec):
    gt = load_human_annotations(rec, S.num_parts, S.num_keypoints)
    num = len(rec["annotations"])
    parts = [np.where(gt.instance_map == p + 1, gt.part_map, 0).astype(np.uint8) for p in range(num)]
    return gt, parts


def _write_perfect_submission(root, folder):
    with MHPSubmissionWriter(folder) as writer:
        for rec in load_mhp_v2_split(root, "val"):
            gt, parts = _gt_persons(rec)
            inst = Instances((rec["height"], rec["width"]))
            inst.pred_parts = torch.from_numpy(np.stack(parts))
            inst.scores = torch.linspace(0.9, 0.5, len(parts))
            kp = torch.from_numpy(gt.keypoints).clone()
            kp[..., 2] = (kp[..., 2] > 0).float()
            inst.pred_keypoints = kp
            writer.add(rec["image_id"], inst, part_map=gt.part_map)


def test_mhp_perfect_submission_scores_100(mhp_gt, tmp_path, capsys):
    folder = str(tmp_path / "sub")
    _write_perfect_submission(mhp_gt, folder)
    out_json = str(tmp_path / "res.json")
    res = main(["mhp", "--gt", mhp_gt, "--split", "val", "--pred", folder, "--json", out_json])
    for key in ("mIoU", "AP_p_50", "AP_p_vol", "PCP_50", "pose_AP"):
        assert res[key] == pytest.approx(100.0), key
    assert res["images"] == 3 and res["pred_persons"] == res["gt_persons"] > 0
    printed = capsys.readouterr().out
    assert "AP^p_50" in printed and "100.00" in printed
    assert json.load(open(out_json))["AP_p_vol"] == pytest.approx(100.0)


def test_mhp_official_txt_layout(mhp_gt, tmp_path):
    """results.txt + per-person PNGs <image>_<k>.png (no results.json); also via global_seg/tag."""
    folder = tmp_path / "txt"
    folder.mkdir()
    lines = []
    for rec in load_mhp_v2_split(mhp_gt, "val"):
        _, parts = _gt_persons(rec)
        for k, p in enumerate(parts, start=1):
            cv2.imwrite(str(folder / f"{rec['image_id']}_{k}.png"), p)
        lines.append(rec["image_id"] + "".join(f" {k} {1.0 - 0.1 * k:.2f}" for k in range(1, len(parts) + 1)))
    (folder / "results.txt").write_text("\n".join(lines) + "\n")
    res = main(["mhp", "--gt", mhp_gt, "--pred", str(folder)])
    for key in ("mIoU", "AP_p_50", "AP_p_vol", "PCP_50"):
        assert res[key] == pytest.approx(100.0), key
    assert "pose_AP" not in res
    # The official kit's inputs only: global_seg + global_tag.
    sub = tmp_path / "official"
    _write_perfect_submission(mhp_gt, str(sub))
    os.remove(sub / "results.json")
    for name in os.listdir(sub / "parsing"):
        os.remove(sub / "parsing" / name)
    res = main(["mhp", "--gt", mhp_gt, "--pred", str(sub)])
    assert res["AP_p_50"] == pytest.approx(100.0) and res["PCP_50"] == pytest.approx(100.0)


def test_mhp_empty_folder_scores_0(mhp_gt, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = main(["mhp", "--gt", mhp_gt, "--pred", str(empty)])
    assert res["AP_p_50"] == 0.0 and res["AP_p_vol"] == 0.0 and res["PCP_50"] == 0.0
    assert res["pred_persons"] == 0


def test_mhp_png_without_scores_is_an_error(mhp_gt, tmp_path):
    (tmp_path / "x_1.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="results.txt"):
        main(["mhp", "--gt", mhp_gt, "--pred", str(tmp_path)])


# ----------------------------------------------------------------------------------------------
# PASCAL-Person-Part / PGN-style AP^r
# ----------------------------------------------------------------------------------------------
from test_real_datasets import PASCAL_DISK_ID  # noqa: E402


def _write_pascal_gt(split_dir):
    """Two 20x30 images in the instance-level layout. Returns {image: [(class, person, mask)]}."""
    for sub in ("Images", "Category_ids", "Human_ids"):
        os.makedirs(os.path.join(split_dir, sub), exist_ok=True)
    regions = {}
    for n, image_id in enumerate(("2008_000001", "2008_000002")):
        cat = np.zeros((20, 30), np.uint8)
        hum = np.zeros((20, 30), np.uint8)
        cat[2:6, 2:8], hum[2:6, 2:8] = 1, 1
        cat[6:14, 2:8], hum[6:14, 2:8] = 2, 1
        cat[5:10, 15 + n:20], hum[5:10, 15 + n:20] = 1, 2   # a second head: two regions of class 1
        cat[10:18, 15:20], hum[10:18, 15:20] = 6, 2
        cv2.imwrite(os.path.join(split_dir, "Images", f"{image_id}.jpg"), np.zeros((20, 30, 3), np.uint8))
        disk = np.vectorize(PASCAL_DISK_ID.get)(cat).astype(np.uint8)  # the instance-level copy's ids
        cv2.imwrite(os.path.join(split_dir, "Category_ids", f"{image_id}.png"), disk)
        cv2.imwrite(os.path.join(split_dir, "Human_ids", f"{image_id}.png"), hum)
        regions[image_id] = [(int(c), int(p), (cat == c) & (hum == p))
                             for p in (1, 2) for c in np.unique(cat[hum == p]) if c > 0]
    with open(os.path.join(split_dir, "test_id.txt"), "w") as f:
        f.write("2008_000001\n2008_000002\n")
    return regions


def _write_region_folder(folder, regions, gt_format=False):
    os.makedirs(folder, exist_ok=True)
    for image_id, regs in regions.items():
        id_map = np.zeros((20, 30), np.uint8)
        lines = []
        for rid, (cls, person, mask) in enumerate(regs, start=1):
            id_map[mask] = rid
            lines.append(f"{rid} {cls} {person}" if gt_format else f"{cls} {1.0 - 0.05 * rid:.2f}")
        cv2.imwrite(os.path.join(folder, f"{image_id}.png"), id_map)
        with open(os.path.join(folder, f"{image_id}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def pascal_gt(tmp_path_factory):
    split = str(tmp_path_factory.mktemp("pascal") / "Testing")
    return split, _write_pascal_gt(split)


def test_pascal_perfect_prediction_scores_100(pascal_gt, tmp_path):
    split, regions = pascal_gt
    pred = str(tmp_path / "pred")
    _write_region_folder(os.path.join(pred, "instance_parsing"), regions)
    res = main(["pascal", "--gt", split, "--pred", pred])
    for key in ("mIoU", "AP_r_50", "AP_r_60", "AP_r_70", "AP_r_vol"):
        assert res[key] == pytest.approx(100.0), key
    assert res["gt_regions"] == res["pred_regions"] == 8
    # The same against PGN-format ground truth (<image>.png + "region class person" lines).
    gt_pgn = str(tmp_path / "Instance_ids")
    _write_region_folder(gt_pgn, regions, gt_format=True)
    res = main(["pascal", "--gt", gt_pgn, "--pred", pred, "--one-to-one"])
    assert res["AP_r_vol"] == pytest.approx(100.0) and res["mIoU"] == pytest.approx(100.0)


def test_pascal_empty_folder_scores_0(pascal_gt, tmp_path):
    split, _ = pascal_gt
    empty = tmp_path / "empty"
    empty.mkdir()
    res = main(["pascal", "--gt", split, "--pred", str(empty)])
    for key in ("AP_r_50", "AP_r_60", "AP_r_70", "AP_r_vol"):
        assert res[key] == 0.0, key


def test_module_entry_point(pascal_gt, tmp_path):
    split, regions = pascal_gt
    pred = str(tmp_path / "pred")
    _write_region_folder(pred, regions)
    proc = subprocess.run([sys.executable, "-m", "dspf_parser.evaluation.evaluate_folder", "pascal", "--gt", split,
                           "--pred", pred], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "AP^r_vol" in proc.stdout and "100.00" in proc.stdout


# ----------------------------------------------------------------------------------------------
# DensePose-COCO
# ----------------------------------------------------------------------------------------------
def test_densepose_perfect_and_empty_folders(tmp_path):
    from dspf_parser.data.categories import DENSEPOSE_SCHEMA as D
    from dspf_parser.data.datasets.densepose_coco import load_densepose_coco_json
    from test_real_datasets import _densepose_json

    gt_json = tmp_path / "annotations" / "dp.json"
    _densepose_json(gt_json)
    images = tmp_path / "val2014"
    images.mkdir()
    for n in (7, 9):
        cv2.imwrite(str(images / f"COCO_val2014_{n:012d}.jpg"), np.zeros((30, 40, 3), np.uint8))
    folder = str(tmp_path / "sub")
    with MHPSubmissionWriter(folder, schema=D) as writer:
        for rec in load_densepose_coco_json(str(gt_json), str(images)):
            gt = load_human_annotations(rec, D.num_parts, D.num_keypoints)
            num = len(rec["annotations"])
            parts = [np.where(gt.instance_map == p + 1, gt.part_map, 0).astype(np.uint8) for p in range(num)]
            inst = Instances((rec["height"], rec["width"]))
            inst.pred_parts = torch.from_numpy(np.stack(parts))
            inst.scores = torch.linspace(0.9, 0.5, num)
            writer.add(rec["image_id"], inst, part_map=gt.part_map)
    res = main(["densepose", "--gt", str(gt_json), "--images", str(images), "--pred", folder])
    for key in ("mIoU", "AP_p_50", "AP_p_vol", "PCP_50"):
        assert res[key] == pytest.approx(100.0), key
    os.makedirs(tmp_path / "empty")
    empty = main(["densepose", "--gt", str(gt_json), "--images", str(images), "--pred", str(tmp_path / "empty")])
    assert empty["AP_p_50"] == 0.0 and empty["PCP_50"] == 0.0
