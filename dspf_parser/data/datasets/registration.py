"""Registering a human-parsing dataset with detectron2's catalogs."""
from typing import Callable, Dict, List

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..categories import HumanSchema

__all__ = ["register_parsing_datasets"]


def register_parsing_datasets(loaders: Dict[str, Callable[[], List[Dict]]], schema: HumanSchema) -> None:
    """Register each ``name -> loader`` (called on first use) with ``schema``'s metadata and
    ``evaluator_type="part_parsing"``; names already registered are left as they are."""
    for name, load in loaders.items():
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, load)
        MetadataCatalog.get(name).set(evaluator_type="part_parsing", **schema.metadata())
