"""Detectron2 evaluators fed perfect and degraded predictions built from the ground truth."""
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Instances

from dspf_parser.data.annotations import load_human_annotations
from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.evaluation import InstanceParsingEvaluator, PartParsingEvaluator
from dspf_parser.ops.targets import dspf_targets

NAME = "synthetic_humans_val_eval_test"


@pytest.fixture(scope="module")
def records():
    if NAME not in DatasetCatalog.list():
        DatasetCatalog.register(NAME, lambda: DatasetCatalog.get("synthetic_humans_val")[:4])
        meta = MetadataCatalog.get("synthetic_humans_val").as_dict()
        meta.pop("name")
        MetadataCatalog.get(NAME).set(**meta)
    return DatasetCatalog.get(NAME)


def perfect_output(record, drop_people=0):
    gt = load_human_annotations(record, S.num_parts, S.num_keypoints)
    sem = torch.nn.functional.one_hot(torch.from_numpy(gt.part_map).long(), S.num_parts).permute(2, 0, 1).float()
    field, _ = dspf_targets(torch.from_numpy(gt.instance_map.astype(np.int64)), torch.from_numpy(gt.keypoints), 1)
    num = len(record["annotations"]) - drop_people
    inst = Instances((record["height"], record["width"]))
    parts = torch.from_numpy(gt.part_map)[None] * (torch.from_numpy(gt.instance_map)[None] == torch.arange(1, num + 1).view(-1, 1, 1))
    inst.pred_parts = parts.to(torch.uint8)
    inst.scores = torch.linspace(1.0, 0.5, num)
    kp = torch.from_numpy(gt.keypoints[:num]).clone()
    kp[..., 2] = (kp[..., 2] > 0).float()
    inst.pred_keypoints = kp
    return {"sem_seg": sem, "dspf": field, "instances": inst}


def run(evaluator, records, **kw):
    evaluator.reset()
    for r in records:
        evaluator.process([{"file_name": r["file_name"]}], [perfect_output(r, **kw)])
    return evaluator.evaluate()


def test_perfect_predictions_score_100(records):
    part = run(PartParsingEvaluator(NAME, distributed=False), records)["part_parsing"]
    assert part["mIoU"] == pytest.approx(100.0) and part["pixel_accuracy"] == pytest.approx(100.0)
    assert part["dspf_epe"] == pytest.approx(0.0, abs=1e-6)
    inst = run(InstanceParsingEvaluator(NAME, distributed=False), records)["instance_parsing"]
    for key in ("AP_p_50", "AP_p_vol", "PCP_50", "AP_r_50", "AP_r_vol", "pose_AP"):
        assert inst[key] == pytest.approx(100.0), key


def test_a_missing_person_lowers_recall_exactly(records):
    total = sum(len(r["annotations"]) for r in records)
    missing = sum(1 for r in records if len(r["annotations"]) > 0)  # one dropped per image
    inst = run(InstanceParsingEvaluator(NAME, distributed=False), records, drop_people=1)["instance_parsing"]
    # Every kept prediction is a perfect TP; recall tops out at (total - missing) / total.
    assert inst["PCP_50"] == pytest.approx(100.0 * (total - missing) / total)
    assert inst["AP_p_50"] == pytest.approx(100.0 * (total - missing) / total)


def test_empty_predictions_give_zero_not_a_crash(records):
    ev = InstanceParsingEvaluator(NAME, distributed=False)
    for r in records:
        inst = Instances((r["height"], r["width"]))
        inst.pred_parts = torch.zeros((0, r["height"], r["width"]), dtype=torch.uint8)
        inst.scores = torch.zeros(0)
        inst.pred_keypoints = torch.zeros((0, S.num_keypoints, 3))
        ev.process([{"file_name": r["file_name"]}], [{"instances": inst}])
    res = ev.evaluate()["instance_parsing"]
    assert res["AP_p_50"] == 0.0 and res["PCP_50"] == 0.0 and res["pose_AP"] == 0.0 and res["AP_r_vol"] == 0.0


def test_skeletons_rank_by_pose_scores_when_given(records):
    """A false skeleton ranked first by ``scores`` but last by ``pose_scores`` costs the keypoint
    mAP only when the instances have no ``pose_scores``."""

    def outputs(with_pose_scores):
        result = []
        for r in records:
            out = perfect_output(r)
            inst = out["instances"]
            if len(inst) == 0:
                result.append(out)
                continue
            false = inst[:1]
            false.pred_keypoints = false.pred_keypoints + torch.tensor([60.0, 60.0, 0.0])
            false.pred_parts = torch.zeros_like(false.pred_parts)
            false.scores = torch.tensor([2.0])
            both = Instances.cat([false, inst])
            if with_pose_scores:
                both.pose_scores = torch.cat([torch.tensor([0.0]), inst.scores])
            out["instances"] = both
            result.append(out)
        return result

    evaluator = InstanceParsingEvaluator(NAME, distributed=False)
    figures = {}
    for with_pose_scores in (False, True):
        evaluator.reset()
        for r, out in zip(records, outputs(with_pose_scores)):
            evaluator.process([{"file_name": r["file_name"]}], [out])
        figures[with_pose_scores] = evaluator.evaluate()["instance_parsing"]
    assert figures[True]["pose_AP"] == pytest.approx(100.0)
    assert figures[False]["pose_AP"] < 99.0
    assert figures[True]["AP_p_50"] == figures[False]["AP_p_50"] == pytest.approx(100.0)
