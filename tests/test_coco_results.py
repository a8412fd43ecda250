"""COCO results of parsed people, checked with pycocotools (loadRes, annToMask, COCOeval)."""
import contextlib
import io
import json
import os
import sys

import cv2
import numpy as np
import pycocotools.mask as mask_util
import torch
from detectron2.structures import Boxes, Instances
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from dspf_parser.data.synthetic import generate_synthetic_image
from dspf_parser.evaluation.coco_results import COCOResultsEvaluator, instances_to_coco_results

H, W, IMAGE_ID = 20, 24, 7


def _people():
    """Two people: masks, part maps (ids 1, 2, 5 / 3), keypoints (one missing joint), scores."""
    masks = np.zeros((2, H, W), bool)
    masks[0, 2:12, 3:10] = True
    masks[1, 8:19, 12:22] = True
    masks[1, 8:10, 12:14] = False
    parts = np.zeros((2, H, W), np.uint8)
    parts[0, 2:6, 3:10], parts[0, 6:12, 3:6], parts[0, 6:12, 6:10] = 1, 2, 5
    parts[1][masks[1]] = 3
    keypoints = np.array([[[4.0, 3.0, 0.9], [8.5, 10.0, 0.4], [0.0, 0.0, 0.0]],
                          [[15.0, 9.0, 0.7], [20.0, 18.0, 0.8], [13.0, 12.5, 0.6]]], np.float32)
    scores = np.array([0.65, 0.7], np.float32)
    inst = Instances((H, W))
    inst.scores = torch.from_numpy(scores)
    inst.pred_keypoints = torch.from_numpy(keypoints)
    inst.pred_masks = torch.from_numpy(masks)
    inst.pred_parts = torch.from_numpy(parts)
    inst.pred_boxes = Boxes(torch.tensor([[3.0, 2.0, 10.0, 12.0], [12.0, 8.0, 22.0, 19.0]]))
    return inst, masks, parts, keypoints, scores


def _ground_truth(masks):
    """A COCO ground truth in memory: one image, the person category, one annotation per mask."""
    anns = []
    for i, m in enumerate(masks):
        rle = mask_util.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        anns.append({"id": i + 1, "image_id": IMAGE_ID, "category_id": 1, "iscrowd": 0, "segmentation": rle,
                     "area": float(m.sum()), "bbox": mask_util.toBbox(rle).tolist()})
    gt = COCO()
    gt.dataset = {"images": [{"id": IMAGE_ID, "height": H, "width": W}], "annotations": anns,
                  "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def test_round_trip_through_json_and_pycocotools():
    inst, masks, parts, keypoints, scores = _people()
    results = json.loads(json.dumps(instances_to_coco_results(inst, IMAGE_ID)))
    gt = _ground_truth(masks)
    with contextlib.redirect_stdout(io.StringIO()):
        res = gt.loadRes(results)
    anns = [res.anns[i] for i in sorted(res.anns)]
    assert len(anns) == 2
    for i, ann in enumerate(anns):
        assert ann["image_id"] == IMAGE_ID and ann["category_id"] == 1
        assert np.array_equal(res.annToMask(ann).astype(bool), masks[i])
        assert ann["score"] == float(scores[i])
        assert ann["bbox"] == [[3.0, 2.0, 7.0, 10.0], [12.0, 8.0, 10.0, 11.0]][i]
        np.testing.assert_allclose(np.array(ann["keypoints"]).reshape(-1, 3), keypoints[i], rtol=0, atol=1e-6)
        present = sorted(int(c) for c in np.unique(parts[i]) if c > 0)
        assert [p["part_id"] for p in ann["parts"]] == present
        for p in ann["parts"]:
            rle = {"size": p["segmentation"]["size"], "counts": p["segmentation"]["counts"].encode("ascii")}
            assert np.array_equal(mask_util.decode(rle).astype(bool), parts[i] == p["part_id"])


def test_perfect_results_have_segm_ap_one():
    inst, masks, *_ = _people()
    gt = _ground_truth(masks)
    with contextlib.redirect_stdout(io.StringIO()):
        res = gt.loadRes(json.loads(json.dumps(instances_to_coco_results(inst, IMAGE_ID))))
        ev = COCOeval(gt, res, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == 1.0  # AP at IoU 0.50:0.95, area "all"


def test_evaluator_from_build_evaluator_writes_the_file(tmp_path):
    from test_train_net import MINI_VAL, _args, _register_mini_val, train_net

    _register_mini_val()
    cfg = train_net.setup(_args(tmp_path / "run"))
    assert cfg.TEST.DSPF_COCO_RESULTS is False
    assert not any(isinstance(e, COCOResultsEvaluator)
                   for e in train_net.Trainer.build_evaluator(cfg, MINI_VAL)._evaluators)
    cfg = train_net.setup(_args(tmp_path / "run", "TEST.DSPF_COCO_RESULTS", "True"))
    out = tmp_path / "eval"
    evaluators = train_net.Trainer.build_evaluator(cfg, MINI_VAL, output_folder=str(out))._evaluators
    (evaluator,) = [e for e in evaluators if isinstance(e, COCOResultsEvaluator)]
    inst = _people()[0]
    evaluator.reset()
    evaluator.process([{"image_id": "a", "file_name": "a.jpg"}, {"file_name": "/x/b.png"}],
                      [{"instances": inst}, {"instances": inst[:1]}])
    assert evaluator.evaluate() == {}
    written = json.loads((out / "coco_results.json").read_text())
    assert [r["image_id"] for r in written] == ["a", "a", "b"]
    assert written == json.loads(json.dumps(instances_to_coco_results(inst, "a")
                                            + instances_to_coco_results(inst[:1], "b")))


def test_demo_writes_coco_json(tmp_path):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, repo)
    import demo

    cv2.imwrite(str(tmp_path / "person_0.jpg"), generate_synthetic_image(20, (64, 80)).image)
    torch.manual_seed(0)
    path = tmp_path / "res" / "coco.json"
    assert demo.main(["--config-file", os.path.join(repo, "configs/synthetic/dspf_R18_tiny.yaml"),
                      "--input", str(tmp_path / "person_0.jpg"), "--output", str(tmp_path / "out"),
                      "--coco-json", str(path), "--opts", "MODEL.FPN.OUT_CHANNELS", "32",
                      "MODEL.DSPF.PART_HEAD.CONVS_DIM", "32", "MODEL.DSPF.FIELD_HEAD.CONVS_DIM", "32",
                      "MODEL.DSPF.POSE_HEAD.CONVS_DIM", "32", "MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD", "0.0",
                      "MODEL.DSPF.INFERENCE.LIMB_PRUNE_THRESHOLD", "0.0",
                      "MODEL.DSPF.INFERENCE.MAX_CANDIDATES", "4"]) == 0
    results = json.loads(path.read_text())
    assert results, "no person found with KEYPOINT_THRESHOLD 0"
    assert all(r["image_id"] == "person_0" for r in results)
    for r in results:
        assert mask_util.decode({"size": r["segmentation"]["size"],
                                 "counts": r["segmentation"]["counts"].encode()}).shape == (64, 80)
