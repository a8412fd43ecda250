"""The evaluator's prediction files rerun offline with evaluate_folder: perfect predictions
written by PredictionFilesEvaluator score 100 there."""
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, Instances

from dspf_parser.data.annotations import load_human_annotations, load_person_parts
from dspf_parser.data.categories import MHP_V2_SCHEMA, PASCAL_PERSON_PART_SCHEMA
from dspf_parser.data.datasets.pascal_person_part import load_pascal_person_part_split
from dspf_parser.evaluation.evaluate_folder import evaluate_pascal, evaluate_records
from dspf_parser.evaluation.prediction_files import PredictionFilesEvaluator
from test_real_datasets import write_pascal_split


def _perfect_outputs(record, schema):
    h, w = record["height"], record["width"]
    gt = load_human_annotations(record, schema.num_parts, schema.num_keypoints)
    parts = [load_person_parts(a, h, w, schema.num_parts) for a in record["annotations"]]
    inst = Instances((h, w))
    inst.pred_parts = torch.as_tensor(np.stack(parts).astype(np.int64))
    inst.scores = torch.linspace(1.0, 0.5, len(parts))
    inst.pred_boxes = Boxes(torch.tensor([a["bbox"] for a in record["annotations"]], dtype=torch.float32))
    kp = torch.as_tensor(gt.keypoints.copy())
    kp[..., 2] = (kp[..., 2] > 0).float()
    inst.pred_keypoints = kp
    sem_seg = torch.nn.functional.one_hot(torch.as_tensor(gt.part_map.astype(np.int64)), schema.num_parts)
    return {"sem_seg": sem_seg.permute(2, 0, 1).float(), "instances": inst}


def _run(evaluator, records, schema):
    evaluator.reset()
    for r in records:
        evaluator.process([r], [_perfect_outputs(r, schema)])
    assert evaluator.evaluate() == {}


def test_mhp_submission_files_rescore_to_100(tmp_path):
    records = DatasetCatalog.get("synthetic_humans_val")[:3]
    _run(PredictionFilesEvaluator(str(tmp_path), MHP_V2_SCHEMA, "mhp"), records, MHP_V2_SCHEMA)
    assert (tmp_path / "results.json").exists() and (tmp_path / "results.txt").exists()
    res = evaluate_records(records, str(tmp_path), MHP_V2_SCHEMA)
    for key in ("AP_p_50", "AP_p_vol", "PCP_50", "mIoU", "pose_AP"):
        assert res[key] == pytest.approx(100.0), key


def test_pgn_files_rescore_to_100(tmp_path):
    gt_dir = tmp_path / "Testing"
    write_pascal_split(str(gt_dir))
    records = load_pascal_person_part_split(str(gt_dir), "test_id.txt")
    pred = tmp_path / "pred"
    _run(PredictionFilesEvaluator(str(pred), PASCAL_PERSON_PART_SCHEMA, "pgn"), records, PASCAL_PERSON_PART_SCHEMA)
    res = evaluate_pascal(str(gt_dir), str(pred))
    for key in ("AP_r_50", "AP_r_vol"):
        assert res[key] == pytest.approx(100.0), key
    assert res["pred_regions"] == res["gt_regions"] == 4
