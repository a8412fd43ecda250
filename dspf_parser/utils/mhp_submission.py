"""Writer and reader of instance-level part parsing results in the MHPv2 submission layout.

Layout written by :class:`MHPSubmissionWriter` under ``folder``::

    folder/results.json                 one per run, described below
    folder/parsing/<image_id>_<k>.png   one per person, k = 1..P (1-based)
    folder/global_seg/<image_id>.png    category-level part map        } the inputs of the
    folder/global_tag/<image_id>.png    person-id map (0 = nobody)     } official LV-MHP-v2
    folder/results.txt                  "<image_id> 1 <s1> 2 <s2> ..." } eval_submission.py

**Per-person PNGs** (the LV-MHP-v2 annotation convention, ``parsing_annos/*.png``, without the
person count in the name): single-channel 8-bit PNGs of the image size whose values are the
MHPv2 part ids (``0..58``, :data:`MHP_V2_SCHEMA.part_classes`) on that person's pixels and 0
elsewhere. People of an image are numbered ``k = 1..P`` in decreasing score order (the order of
``Instances`` returned by ``DSPFParser``; the writer sorts again, stable, to be sure).

**results.json**::

    {"format": "dspf-parser/mhp_v2-submission", "version": 1,
     "schema": "mhp_v2",
     "part_classes": [59 names], "keypoint_names": [16 names],
     "images": [                                  # in the order they were added
        {"image_id": str, "file_name": str or null, "height": int, "width": int,
         "persons": [                             # k = 1..P, decreasing score
            {"person_id": k,                      # 1-based, the k of the PNG name
             "parsing": "parsing/<image_id>_<k>.png",  # relative to folder
             "score": float,
             "bbox": [x0, y0, x1, y1],            # XYXY, pixel-edge convention
             "keypoints": [[x, y, score] x 16]}   # MPII joint order of the schema
         ]}]}

Coordinates follow the project convention (``dspf_parser.data.categories``): joints in pixel-
index coordinates (the centre of pixel ``[row, col]`` is ``(col, row)``); a missing joint has
``score`` 0 (and ``x = y = 0`` when it comes from ``DSPFParser``). ``bbox`` is the model's
``pred_boxes``: ``x1 = last column + 1``, ``y1 = last row + 1`` (as in
``dspf_parser.data.mhp_v2_layout``; the official evaluation's inclusive box is
``[x0, y0, x1 - 1, y1 - 1]``). JSON numbers are plain floats.

**Official evaluation files.** The LV-MHP-v2 evaluation kit
(``ZhaoJ9014/Multi-Human-Parsing``, ``Evaluation/Multi-Human-Parsing/v2/eval_submission.py``)
does not read per-person PNGs: it reads ``results.txt`` (per line an image id followed by
``person_id score`` pairs), ``global_seg/<image_id>.png`` (part ids) and
``global_tag/<image_id>.png`` (person ids), and rebuilds person ``p`` as
``(global_tag == p) * global_seg`` with its box from that mask (empty people are skipped). Both
are written too (``write_official=True``, the default), with the same person ids ``k``. Where
person masks overlap, ``global_tag`` keeps the higher-scoring person; ``global_seg`` is the part
map passed to :meth:`MHPSubmissionWriter.add` (e.g. the argmax of ``sem_seg``) or, without one,
the people's ``pred_parts`` composed with the same precedence. ``global_tag`` is 8-bit up to 255
people, 16-bit beyond. These three files were checked against the kit's source, not run through
it (it is Python 2 code).

``results.json`` is written when the writer is closed (``close()`` or the end of a ``with``
block without an exception); the PNGs are written by ``add``. Adding an image id removes that
id's earlier ``parsing/<image_id>_<k>.png`` files first, so a rerun into the same folder leaves
no stale people. :func:`read_submission` reads ``results.json`` and the PNGs back.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any, Dict, List, Optional

import cv2
import numpy as np

from ..data.annotations import read_label_png
from ..data.categories import MHP_V2_SCHEMA, HumanSchema
from .instances import people_arrays, to_numpy

__all__ = ["FORMAT", "VERSION", "MHPSubmissionWriter", "read_submission", "instances_to_persons"]

FORMAT = "dspf-parser/mhp_v2-submission"
VERSION = 1
JSON_NAME = "results.json"
TXT_NAME = "results.txt"
PARSING_DIR = "parsing"
GLOBAL_SEG_DIR = "global_seg"
GLOBAL_TAG_DIR = "global_tag"



def _check_image_id(image_id: str) -> None:
    if (not isinstance(image_id, str) or not image_id or image_id in (".", "..")
            or any(c in image_id for c in "/\\") or any(c.isspace() for c in image_id)):
        raise ValueError(f"invalid image id {image_id!r}: non-empty, no whitespace or path separators")




def instances_to_persons(instances: Any, image_size: tuple, confidence_threshold: float = 0.0) -> List[Dict[str, Any]]:
    """Per-person numpy records of ``instances`` with ``score >= confidence_threshold``.

    Returns dicts ``{"score": float, "parts": [H, W] uint8, "keypoints": [K, 3] float32,
    "bbox": [4] float32}`` in decreasing score order (stable). ``parts`` comes from ``pred_parts``
    (or ``pred_masks`` as part id 1 if ``pred_parts`` is missing); ``bbox`` from ``pred_boxes``
    (or from the mask when missing; zeros for an empty mask).
    """
    height, width = image_size
    if hasattr(instances, "get_fields") and not instances.get_fields():
        return []
    fields = people_arrays(instances)
    scores, parts, masks, keypoints, boxes = fields.scores, fields.parts, fields.masks, fields.keypoints, fields.boxes
    if parts is None and masks is None:
        raise ValueError("instances need pred_parts or pred_masks")
    persons = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] < confidence_threshold:
            continue
        if parts is not None:
            p = parts[i]
            if p.size and (p.min() < 0 or p.max() > 255):
                raise ValueError(f"part ids outside 0..255 in person {i}")
            p = p.astype(np.uint8)
        else:
            p = masks[i].astype(np.uint8)
        if p.shape != (height, width):
            raise ValueError(f"person {i}: part map of shape {p.shape}, expected {(height, width)}")
        if boxes is not None:
            box = boxes[i].astype(np.float32)
        else:
            ys, xs = np.nonzero(p)
            box = (np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
                   if len(xs) else np.zeros(4, np.float32))
        kp = keypoints[i].astype(np.float32) if keypoints is not None else np.zeros((0, 3), np.float32)
        persons.append({"score": float(scores[i]), "parts": p, "keypoints": kp, "bbox": box})
    return persons


def _imwrite(path: str, image: np.ndarray) -> None:
    if not cv2.imwrite(path, image):
        raise OSError(f"could not write {path}")


class MHPSubmissionWriter:
    """Accumulates per-image results and writes the layout described in the module docstring.

    Example::

        with MHPSubmissionWriter("out/submission") as writer:
            for image_id, outputs in results:
                writer.add(image_id, outputs["instances"], part_map=outputs["sem_seg"].argmax(0))
    """

    def __init__(self, folder: str, schema: HumanSchema = MHP_V2_SCHEMA, confidence_threshold: float = 0.0,
                 write_official: bool = True) -> None:
        """
        Args:
            folder: output folder (created).
            schema: label space whose class and joint names go into ``results.json``.
            confidence_threshold: people scoring below it are left out.
            write_official: also write ``global_seg/``, ``global_tag/`` and ``results.txt``.
        """
        self.folder = folder
        self.schema = schema
        self.confidence_threshold = confidence_threshold
        self.write_official = write_official
        self._images: List[Dict[str, Any]] = []
        self._ids = set()
        self._closed = False
        dirs = [PARSING_DIR] + ([GLOBAL_SEG_DIR, GLOBAL_TAG_DIR] if write_official else [])
        for d in dirs:
            os.makedirs(os.path.join(folder, d), exist_ok=True)

    def _remove_stale(self, image_id: str) -> None:
        pattern = re.compile(re.escape(image_id) + r"_\d+\.png$")
        parsing = os.path.join(self.folder, PARSING_DIR)
        for name in os.listdir(parsing):
            if pattern.match(name):
                os.remove(os.path.join(parsing, name))

    def add(self, image_id: str, instances: Any, part_map: Any = None, file_name: Optional[str] = None,
            image_size: Optional[tuple] = None) -> List[str]:
        """Write the PNGs of one image and remember its record for ``results.json``.

        Args:
            image_id: the image's name without extension (no whitespace or path separators),
                unique within the run.
            instances: detectron2 ``Instances`` (``scores``, ``pred_parts`` or ``pred_masks``,
                ``pred_keypoints``, ``pred_boxes``), torch or numpy fields.
            part_map: optional ``[H, W]`` category-level part ids for ``global_seg``.
            file_name: optional source path stored in the record.
            image_size: ``(H, W)``; default ``instances.image_size`` or the part map's shape.

        Returns:
            The paths of the per-person PNGs written, in person order ``k = 1..P``.
        """
        if self._closed:
            raise RuntimeError("writer is closed")
        _check_image_id(image_id)
        if image_id in self._ids:
            raise ValueError(f"image id {image_id!r} added twice")
        if image_size is None:
            if hasattr(instances, "image_size"):
                image_size = tuple(instances.image_size)
            elif part_map is not None:
                image_size = to_numpy(part_map).shape
            else:
                raise ValueError("image_size is needed when instances carry none and no part_map is given")
        height, width = int(image_size[0]), int(image_size[1])
        persons = instances_to_persons(instances, (height, width), self.confidence_threshold)
        self._remove_stale(image_id)
        paths, records = [], []
        for k, person in enumerate(persons, start=1):
            rel = f"{PARSING_DIR}/{image_id}_{k}.png"
            path = os.path.join(self.folder, rel)
            _imwrite(path, person["parts"])
            paths.append(path)
            records.append({
                "person_id": k,
                "parsing": rel,
                "score": person["score"],
                "bbox": [float(v) for v in person["bbox"]],
                "keypoints": [[float(v) for v in joint] for joint in person["keypoints"]],
            })
        if self.write_official:
            self._write_official(image_id, persons, part_map, (height, width))
        self._ids.add(image_id)
        self._images.append({"image_id": image_id, "file_name": file_name, "height": height, "width": width,
                             "persons": records})
        return paths

    def _write_official(self, image_id: str, persons: List[Dict[str, Any]], part_map: Any, size: tuple) -> None:
        tag = np.zeros(size, np.uint16 if len(persons) > 255 else np.uint8)
        composed = np.zeros(size, np.uint8)
        for k in range(len(persons), 0, -1):  # lowest score first: higher scores overwrite
            parts = persons[k - 1]["parts"]
            tag[parts > 0] = k
            composed[parts > 0] = parts[parts > 0]
        if part_map is not None:
            seg = to_numpy(part_map)
            if seg.shape != tuple(size):
                raise ValueError(f"part_map of shape {seg.shape}, expected {tuple(size)}")
            if seg.size and (seg.min() < 0 or seg.max() > 255):
                raise ValueError("part_map ids outside 0..255")
            seg = seg.astype(np.uint8)
        else:
            seg = composed
        _imwrite(os.path.join(self.folder, GLOBAL_SEG_DIR, f"{image_id}.png"), seg)
        _imwrite(os.path.join(self.folder, GLOBAL_TAG_DIR, f"{image_id}.png"), tag)

    @property
    def images(self) -> List[Dict[str, Any]]:
        """The ``results.json`` records of the images added so far (a copy of the list)."""
        return list(self._images)

    def add_records(self, images: List[Dict[str, Any]]) -> None:
        """Add ``results.json`` records of images whose PNGs another writer of the same folder
        wrote (e.g. the writers of the other processes of a distributed evaluation)."""
        if self._closed:
            raise RuntimeError("writer is closed")
        for image in images:
            if image["image_id"] in self._ids:
                raise ValueError(f"image id {image['image_id']!r} added twice")
            self._ids.add(image["image_id"])
            self._images.append(image)

    def close(self) -> str:
        """Write ``results.json`` (and ``results.txt``) atomically; returns the JSON's path."""
        document = {
            "format": FORMAT,
            "version": VERSION,
            "schema": self.schema.name,
            "part_classes": list(self.schema.part_classes),
            "keypoint_names": list(self.schema.keypoint_names),
            "images": self._images,
        }
        path = os.path.join(self.folder, JSON_NAME)
        self._atomic_write(path, json.dumps(document, indent=1))
        if self.write_official:
            lines = []
            for image in self._images:
                pairs = " ".join(f"{p['person_id']} {p['score']:.6f}" for p in image["persons"])
                lines.append(f"{image['image_id']} {pairs}".rstrip())
            self._atomic_write(os.path.join(self.folder, TXT_NAME), "".join(line + "\n" for line in lines))
        self._closed = True
        return path

    def _atomic_write(self, path: str, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp_", suffix=os.path.basename(path))
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def __enter__(self) -> "MHPSubmissionWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._closed:
            self.close()


def read_submission(folder: str) -> Dict[str, Dict[str, Any]]:
    """Read a folder written by :class:`MHPSubmissionWriter` (PNGs by the project's one label-PNG
    reader, :func:`dspf_parser.data.annotations.read_label_png`).

    Returns:
        ``{image_id: {"file_name", "height", "width", "persons": [...]}}`` in the JSON's image
        order; each person is ``{"person_id": int, "score": float, "bbox": [4] float32,
        "keypoints": [K, 3] float32, "parts": [H, W] uint8}``. When the official files exist,
        ``"global_seg"`` and ``"global_tag"`` ``[H, W]`` arrays are added to the image entry.

    Raises:
        FileNotFoundError: ``results.json`` or a PNG it names is missing.
        ValueError: not this format, or a PNG of the wrong size.
    """
    path = os.path.join(folder, JSON_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found (not a submission folder?)")
    with open(path) as f:
        document = json.load(f)
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: format {document.get('format')!r}, expected {FORMAT!r}")
    if document.get("version") != VERSION:
        raise ValueError(f"{path}: version {document.get('version')!r}, expected {VERSION}")
    out: Dict[str, Dict[str, Any]] = {}
    for image in document["images"]:
        size = (image["height"], image["width"])
        persons = []
        for p in image["persons"]:
            png = os.path.join(folder, p["parsing"])
            try:
                parts = read_label_png(png)
            except FileNotFoundError as e:
                raise FileNotFoundError(f"{png} (person {p['person_id']} of {image['image_id']!r}) "
                                        f"missing or unreadable") from e
            if parts.shape != size:
                raise ValueError(f"{png}: shape {parts.shape}, expected {size}")
            persons.append({
                "person_id": int(p["person_id"]),
                "score": float(p["score"]),
                "bbox": np.asarray(p["bbox"], np.float32),
                "keypoints": np.asarray(p["keypoints"], np.float32).reshape(-1, 3),
                "parts": parts.astype(np.uint8),
            })
        entry = {"file_name": image.get("file_name"), "height": size[0], "width": size[1], "persons": persons}
        for key, sub in (("global_seg", GLOBAL_SEG_DIR), ("global_tag", GLOBAL_TAG_DIR)):
            png = os.path.join(folder, sub, f"{image['image_id']}.png")
            if os.path.isfile(png):
                entry[key] = read_label_png(png)
        out[image["image_id"]] = entry
    return out
