"""A ``DatasetEvaluator`` that writes the predictions as files, so an evaluation can be rerun
offline with :mod:`dspf_parser.evaluation.evaluate_folder`."""
import logging
import os
from collections import OrderedDict
from typing import Dict, List

import cv2
import numpy as np
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..data.categories import HumanSchema
from ..utils.mhp_submission import MHPSubmissionWriter, instances_to_persons
from ..utils.instances import to_numpy

__all__ = ["PredictionFilesEvaluator", "write_pgn_prediction"]

PGN_INSTANCE_DIR = "instance_parsing"
PGN_GLOBAL_DIR = "global_parsing"


def write_pgn_prediction(folder: str, image_id: str, persons: List[Dict], part_map: np.ndarray) -> None:
    """Write one image in the PGN / CIHP layout read by ``evaluate_folder pascal``.

    ``instance_parsing/<image_id>.png``: region ids (16-bit beyond 255 regions), one region per
    (person, part class) pair present, numbered from 1 in decreasing person score;
    ``instance_parsing/<image_id>.txt``: line ``i`` = region ``i``: ``class_id score`` (the
    person's score); ``global_parsing/<image_id>.png``: ``part_map``. Where people overlap,
    the higher-scoring person's region is kept.

    Args:
        persons: :func:`dspf_parser.utils.mhp_submission.instances_to_persons` records
            (decreasing score).
        part_map: ``[H, W]`` category-level part ids.
    """
    shape = part_map.shape
    regions = [(p["score"], int(c), p["parts"] == c) for p in persons for c in np.unique(p["parts"]) if c > 0]
    ids = np.zeros(shape, np.uint16 if len(regions) > 255 else np.uint8)
    for rid in range(len(regions), 0, -1):  # lowest score first: higher scores overwrite
        ids[regions[rid - 1][2]] = rid
    for sub in (PGN_INSTANCE_DIR, PGN_GLOBAL_DIR):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for path, image in ((os.path.join(folder, PGN_INSTANCE_DIR, f"{image_id}.png"), ids),
                        (os.path.join(folder, PGN_GLOBAL_DIR, f"{image_id}.png"), part_map.astype(np.uint8))):
        if not cv2.imwrite(path, image):
            raise OSError(f"could not write {path}")
    with open(os.path.join(folder, PGN_INSTANCE_DIR, f"{image_id}.txt"), "w") as f:
        f.write("".join(f"{c} {score:.6f}\n" for score, c, _ in regions))


class PredictionFilesEvaluator(DatasetEvaluator):
    """Writes every prediction under ``output_folder`` and returns no metric.

    ``layout="mhp"`` (MHPv2, DensePose-COCO): the MHPv2 submission layout of
    :class:`MHPSubmissionWriter` (per-person PNGs, ``results.json``, and the official
    ``results.txt`` + ``global_seg/`` + ``global_tag/``), for ``evaluate_folder mhp`` /
    ``densepose``. ``layout="pgn"`` (PASCAL-Person-Part): :func:`write_pgn_prediction`, for
    ``evaluate_folder pascal``. The category-level map is ``sem_seg.argmax(0)``. With several
    processes each writes its own images and the main process writes ``results.json`` /
    ``results.txt`` for all of them.
    """

    def __init__(self, output_folder: str, schema: HumanSchema, layout: str):
        if layout not in ("mhp", "pgn"):
            raise ValueError(f"layout must be 'mhp' or 'pgn', got {layout!r}")
        self._folder, self._schema, self._layout = output_folder, schema, layout
        self._writer = None

    def reset(self) -> None:
        self._writer = MHPSubmissionWriter(self._folder, self._schema) if self._layout == "mhp" else None

    def process(self, inputs: List[Dict], outputs: List[Dict]) -> None:
        for x, out in zip(inputs, outputs):
            image_id = str(x.get("image_id", os.path.splitext(os.path.basename(x["file_name"]))[0]))
            part_map = to_numpy(out["sem_seg"].argmax(0)).astype(np.uint8)
            instances = out.get("instances")
            if self._layout == "mhp":
                if instances is None:
                    raise ValueError("the MHPv2 submission needs instances (MODEL.DSPF.INFERENCE.INSTANCES_ON)")
                self._writer.add(image_id, instances, part_map=part_map, file_name=x.get("file_name"),
                                 image_size=part_map.shape)
            else:
                persons = instances_to_persons(instances, part_map.shape) if instances is not None else []
                write_pgn_prediction(self._folder, image_id, persons, part_map)

    def evaluate(self) -> "OrderedDict[str, Dict[str, float]]":
        if self._layout == "mhp":
            images = comm.gather(self._writer.images)
            if comm.is_main_process():
                self._writer = MHPSubmissionWriter(self._folder, self._schema)
                self._writer.add_records([image for part in images for image in part])
                path = self._writer.close()
                logging.getLogger(__name__).info("MHPv2 submission written: %s", path)
        elif comm.is_main_process():
            logging.getLogger(__name__).info("PGN prediction files written under %s", self._folder)
        return OrderedDict()
