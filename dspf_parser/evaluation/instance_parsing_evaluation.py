"""Instance-level parsing (AP^p, PCP) and pose (OKS mAP) as a detectron2 ``DatasetEvaluator``."""
import logging
from collections import OrderedDict
from typing import Dict, List

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..data.annotations import load_person_parts
from ..data.categories import get_schema
from .instance_metrics import (
    PART_IOU_THRESHOLDS,
    ap_region_from_summaries,
    oks_map,
    person_level_from_summaries,
    summarize_persons,
    summarize_regions,
)

__all__ = ["InstanceParsingEvaluator"]


class InstanceParsingEvaluator(DatasetEvaluator):
    """The MHPv2 instance metrics on a dataset with the project's dict schema.

    Ground truth: each person's own part map (``parsing_file`` PNG or ``parsing_rles``, read by
    :func:`dspf_parser.data.annotations.load_person_parts`) and joints, from the dataset's
    dicts; predictions: the model's ``instances`` (``pred_parts``, ``scores``,
    ``pred_keypoints``). Reports AP^p_50, AP^p_vol (thresholds 0.1..0.9), PCP_50, the
    region-level AP^r at 0.5/0.6/0.7 and AP^r_vol (PGN-style; every (person, part class) is a
    region scored by its person's score) and the keypoint OKS mAP (AP, AP50, AP75; the
    skeletons ranked by ``pose_scores`` when the instances have them, else by ``scores``), in percent; the matching rules are those of
    :mod:`dspf_parser.evaluation.instance_metrics`. The OKS area of a ground-truth person is the
    area of its annotated box. Each image is reduced to small per-prediction summaries as it
    is processed (:func:`summarize_persons`, :func:`summarize_regions`), so no map is kept.
    """

    def __init__(self, dataset_name: str, distributed: bool = True, max_dets: int = 100):
        """``max_dets``: detections per image kept by the keypoint OKS mAP (COCO's default of 20
        would cap recall: MHPv2 images hold up to ~58 people)."""
        self._max_dets = max_dets
        meta = MetadataCatalog.get(dataset_name)
        self._schema = get_schema(meta.schema)
        self._distributed = distributed
        self._gt = {d["file_name"]: d for d in DatasetCatalog.get(dataset_name)}
        self._logger = logging.getLogger(__name__)
        self.reset()

    def reset(self) -> None:
        self._parsing: List = []
        self._regions: List = []
        self._poses: List = []

    def process(self, inputs: List[Dict], outputs: List[Dict]) -> None:
        k = self._schema.num_keypoints
        for x, out in zip(inputs, outputs):
            record = self._gt[x["file_name"]]
            annos = record.get("annotations", [])
            # Values outside the part range (255 in the real MHPv2 release) are ignored by the
            # metrics, as the official script does.
            gt_parts = [load_person_parts(anno, record["height"], record["width"], self._schema.num_parts,
                                          image=record["file_name"], out_of_range="keep") for anno in annos]
            inst = out["instances"].to("cpu")
            pred_parts = list(inst.pred_parts.numpy())
            scores = inst.scores.numpy()
            c = self._schema.num_parts
            self._parsing.append(summarize_persons(gt_parts, pred_parts, scores, c))
            self._regions.append(summarize_regions(*_part_regions(gt_parts, pred_parts, scores), c))
            gt_kp = np.array([np.asarray(a["keypoints"], np.float32).reshape(k, 3) for a in annos]).reshape(-1, k, 3)
            areas = np.array([max(a["bbox"][2] - a["bbox"][0], 0) * max(a["bbox"][3] - a["bbox"][1], 0) for a in annos],
                             dtype=np.float64)
            # Skeletons rank by their own scores where the model gives them (``pose_scores``).
            pose_scores = inst.pose_scores.numpy() if inst.has("pose_scores") else scores
            self._poses.append((gt_kp, areas, inst.pred_keypoints.numpy(), pose_scores))

    def evaluate(self) -> "OrderedDict[str, Dict[str, float]]":
        parsing, regions, poses = self._parsing, self._regions, self._poses
        if self._distributed:
            comm.synchronize()
            parsing = sum(comm.gather(parsing), [])
            regions = sum(comm.gather(regions), [])
            poses = sum(comm.gather(poses), [])
            if not comm.is_main_process():
                return OrderedDict()
        if not parsing:
            self._logger.warning("InstanceParsingEvaluator received no predictions")
        aps, _ = person_level_from_summaries(parsing, PART_IOU_THRESHOLDS)
        _, pcp_50 = person_level_from_summaries(parsing, (0.5,))
        region = ap_region_from_summaries(regions, self._schema.num_parts)
        pose = oks_map(poses, self._schema.oks_sigmas, max_dets=self._max_dets)
        res = {
            "AP_p_50": 100.0 * float(aps[PART_IOU_THRESHOLDS.index(0.5)]),
            "AP_p_vol": 100.0 * float(np.mean(aps)),
            "PCP_50": 100.0 * float(pcp_50[0]),
            "AP_r_50": 100.0 * region["AP_r_50"],
            "AP_r_60": 100.0 * region["AP_r_60"],
            "AP_r_70": 100.0 * region["AP_r_70"],
            "AP_r_vol": 100.0 * region["AP_r_vol"],
            "pose_AP": 100.0 * pose["AP"],
            "pose_AP50": 100.0 * pose["AP50"],
            "pose_AP75": 100.0 * pose["AP75"],
        }
        return OrderedDict(instance_parsing=res)


def _part_regions(gt_parts: List[np.ndarray], pred_parts: List[np.ndarray], scores: np.ndarray):
    """One image's (person, part class) regions: GT ``[(class, mask)]``, predicted
    ``[(class, mask, person score)]``."""
    gt = [(int(c), m == c) for m in gt_parts for c in np.unique(m) if c > 0]
    pred = [(int(c), m == c, float(s)) for m, s in zip(pred_parts, scores) for c in np.unique(m) if c > 0]
    return gt, pred
