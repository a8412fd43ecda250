"""Parsed people as COCO results (the ``loadRes`` format of pycocotools), and a
``DatasetEvaluator`` writing them as ``coco_results.json``."""
import json
import logging
import os
from collections import OrderedDict
from typing import Any, Dict, List, Union

import numpy as np
import pycocotools.mask as mask_util
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm
from detectron2.utils.file_io import PathManager

from ..utils.instances import instance_field

__all__ = ["COCO_PERSON_CATEGORY_ID", "COCOResultsEvaluator", "encode_mask", "instances_to_coco_results"]

#: COCO's category id of "person".
COCO_PERSON_CATEGORY_ID = 1


def encode_mask(mask: np.ndarray) -> Dict[str, Any]:
    """The RLE of a ``[H, W]`` binary mask (``pycocotools.mask.encode``), ``counts`` as ``str``
    so that ``json`` can write it."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def instances_to_coco_results(instances: Any, image_id: Union[int, str]) -> List[Dict[str, Any]]:
    """One COCO result dict per person of ``instances`` (the model's output Instances).

    Keys: ``image_id``, ``category_id`` (1, person), ``keypoints`` (flat ``[x, y, s] * K``: the
    joint in pixel-index coordinates, as COCO annotations have them, and its score as the third
    value like COCO keypoint results; ``0, 0, 0`` for a missing joint), ``score``, ``bbox``
    (``XYWH`` of ``pred_boxes``, else of the mask), ``segmentation`` (RLE of ``pred_masks``) and
    ``parts``: ``[{"part_id", "segmentation"}]``, one RLE per part id > 0 present in the
    person's ``pred_parts``. Fields the instances lack are left out (no ``keypoints`` without
    ``pred_keypoints``, ...).

    Args:
        instances: ``Instances`` with ``scores`` ``[P]`` and any of ``pred_keypoints``
            ``[P, K, 3]``, ``pred_masks`` ``[P, H, W]`` bool, ``pred_parts`` ``[P, H, W]`` uint8,
            ``pred_boxes`` (``XYXY``).
        image_id: the id the results refer to (the dataset's ``image_id``).
    """
    scores = instance_field(instances, "scores")
    num = len(instances) if scores is None else len(scores)
    keypoints = instance_field(instances, "pred_keypoints")
    masks = instance_field(instances, "pred_masks")
    parts = instance_field(instances, "pred_parts")
    boxes = instance_field(instances, "pred_boxes")
    results = []
    for i in range(num):
        result: Dict[str, Any] = {"image_id": image_id, "category_id": COCO_PERSON_CATEGORY_ID,
                                  "score": 1.0 if scores is None else float(scores[i])}
        if keypoints is not None:
            kp = keypoints[i].astype(np.float64)
            kp[kp[:, 2] <= 0] = 0.0
            result["keypoints"] = kp.reshape(-1).tolist()
        if masks is not None:
            result["segmentation"] = encode_mask(masks[i])
        if boxes is not None:
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            result["bbox"] = [x0, y0, x1 - x0, y1 - y0]
        elif masks is not None:
            result["bbox"] = mask_util.toBbox(result["segmentation"]).tolist()
        if parts is not None:
            result["parts"] = [{"part_id": int(c), "segmentation": encode_mask(parts[i] == c)}
                               for c in np.unique(parts[i]) if c > 0]
        results.append(result)
    return results


class COCOResultsEvaluator(DatasetEvaluator):
    """Collects :func:`instances_to_coco_results` of every image and writes them, from the main
    process and for all processes, to ``<output_dir>/coco_results.json``. Returns no metric.
    ``TEST.DSPF_COCO_RESULTS`` adds it to :meth:`DSPFTrainer.build_evaluator`.
    """

    def __init__(self, output_dir: str):
        self._output_dir = output_dir
        self._results: List[Dict[str, Any]] = []

    def reset(self) -> None:
        self._results = []

    def process(self, inputs: List[Dict], outputs: List[Dict]) -> None:
        for x, out in zip(inputs, outputs):
            if "instances" not in out:
                raise ValueError("COCO results need instances (MODEL.DSPF.INFERENCE.INSTANCES_ON)")
            image_id = x.get("image_id", os.path.splitext(os.path.basename(x.get("file_name", "")))[0])
            self._results.extend(instances_to_coco_results(out["instances"].to("cpu"), image_id))

    def evaluate(self) -> "OrderedDict[str, Dict[str, float]]":
        comm.synchronize()
        results = [r for part in comm.gather(self._results, dst=0) for r in part]
        if comm.is_main_process():
            PathManager.mkdirs(self._output_dir)
            path = os.path.join(self._output_dir, "coco_results.json")
            with PathManager.open(path, "w") as f:
                json.dump(results, f)
            logging.getLogger(__name__).info("%d COCO results written: %s", len(results), path)
        return OrderedDict()
