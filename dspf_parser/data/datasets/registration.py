"""Registering a human-parsing dataset with detectron2's catalogs."""
from typing import Callable, Dict, List

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from ..categories import HumanSchema

__all__ = ["register_parsing_datasets", "with_detectron2_fields"]


#: detectron2's ``BoxMode.XYXY_ABS``: every reader's ``bbox`` is XYXY in absolute pixels.
_DETECTRON2_DEFAULTS = {"bbox_mode": int(BoxMode.XYXY_ABS), "category_id": 0, "iscrowd": 0}


def with_detectron2_fields(records: List[Dict]) -> List[Dict]:
    """Give every person annotation detectron2's ``bbox_mode`` (``XYXY_ABS``), ``category_id``
    (0, ``thing_classes[0] == "person"``) and ``iscrowd`` (0) where a reader did not set them
    (in place; returns ``records``)."""
    for r in records:
        for a in r.get("annotations", []):
            for key, value in _DETECTRON2_DEFAULTS.items():
                a.setdefault(key, value)
    return records


def register_parsing_datasets(loaders: Dict[str, Callable[[], List[Dict]]], schema: HumanSchema) -> None:
    """Register each ``name -> loader`` (called on first use) with ``schema``'s metadata and
    ``evaluator_type="part_parsing"``; names already registered are left as they are. The
    loaded dicts carry detectron2's annotation fields (:func:`with_detectron2_fields`)."""
    for name, load in loaders.items():
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, lambda load=load: with_detectron2_fields(load()))
        MetadataCatalog.get(name).set(evaluator_type="part_parsing", **schema.metadata())
