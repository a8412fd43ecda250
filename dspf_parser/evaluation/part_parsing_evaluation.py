"""Category-level part parsing and DSPF accuracy, as a detectron2 ``DatasetEvaluator``."""
import logging
from collections import OrderedDict
from typing import Dict, List

import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..data.annotations import load_human_annotations
from ..data.categories import get_schema
from ..ops.targets import dspf_targets
from .metrics import confusion_matrix, endpoint_error_sum, iou_from_confusion

__all__ = ["PartParsingEvaluator"]


class PartParsingEvaluator(DatasetEvaluator):
    """mIoU over all pixels of the split (background included) and DSPF end-point error.

    Ground truth is read from the dataset's own dicts (``DatasetCatalog``) at the original
    image size; predictions are the model's ``sem_seg`` (``[C, H, W]`` scores) and ``dspf``
    (``[2, H, W]``). The DSPF error is the mean Euclidean distance, in pixels, over ground-truth
    person pixels that have a visible joint. Pixels of unlabelled people (the dict's
    ``ignore_rles``) are left out of the mIoU. Results are gathered over all processes.
    """

    def __init__(self, dataset_name: str, distributed: bool = True):
        meta = MetadataCatalog.get(dataset_name)
        self._schema = get_schema(meta.schema)
        self._ignore = meta.get("ignore_label", 255)
        self._distributed = distributed
        self._gt = {d["file_name"]: d for d in DatasetCatalog.get(dataset_name)}
        self._logger = logging.getLogger(__name__)
        self.reset()

    def reset(self) -> None:
        n = self._schema.num_parts
        self._conf = np.zeros((n, n), dtype=np.int64)
        self._epe = [0.0, 0]

    def process(self, inputs: List[Dict], outputs: List[Dict]) -> None:
        for x, out in zip(inputs, outputs):
            gt = load_human_annotations(self._gt[x["file_name"]], self._schema.num_parts, self._schema.num_keypoints)
            pred = out["sem_seg"].argmax(0).cpu().numpy()
            part_map = gt.part_map.astype(np.int64)
            if gt.ignore_mask is not None:  # pixels of unlabelled people are not scored
                part_map[gt.ignore_mask & (gt.instance_map == 0)] = self._ignore
            self._conf += confusion_matrix(part_map, pred, self._schema.num_parts, self._ignore)
            if "dspf" in out:
                field, weight = dspf_targets(torch.from_numpy(gt.instance_map.astype(np.int64)),
                                             torch.from_numpy(gt.keypoints), 1)
                s, c = endpoint_error_sum(out["dspf"].cpu().numpy(), field.numpy(), weight.numpy())
                self._epe[0] += s
                self._epe[1] += c

    def evaluate(self) -> "OrderedDict[str, Dict[str, float]]":
        conf, epe = self._conf, self._epe
        if self._distributed:
            comm.synchronize()
            confs, epes = comm.gather(conf), comm.gather(epe)
            if not comm.is_main_process():
                return OrderedDict()
            conf = np.sum(confs, axis=0)
            epe = [sum(e[0] for e in epes), sum(e[1] for e in epes)]
        if conf.sum() == 0:
            self._logger.warning("PartParsingEvaluator received no predictions")
        scores = iou_from_confusion(conf)
        res = {"mIoU": 100.0 * scores["mIoU"], "pixel_accuracy": 100.0 * scores["pixel_accuracy"]}
        for name, iou in zip(self._schema.part_classes, scores["iou"]):
            if np.isfinite(iou):
                res[f"IoU-{name}"] = 100.0 * float(iou)
        res["dspf_epe"] = epe[0] / epe[1] if epe[1] else float("nan")
        return OrderedDict(part_parsing=res)
