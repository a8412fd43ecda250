"""Registers the project's datasets in detectron2's ``DatasetCatalog`` / ``MetadataCatalog``.

Imported by ``dspf_parser`` itself, so importing the package is enough.

* ``synthetic_humans_train`` / ``synthetic_humans_val``: the embedded synthetic benchmark,
  generated deterministically on first use into ``$DSPF_SYNTHETIC_ROOT`` (default
  ``$DETECTRON2_DATASETS/synthetic_humans``, ``DETECTRON2_DATASETS`` defaulting to
  ``datasets``) in the MHPv2 folder layout, then read back by the MHPv2-layout reader.
"""
from typing import Dict, List

from detectron2.data import DatasetCatalog, MetadataCatalog

from ..categories import MHP_V2_SCHEMA
from ..mhp_v2_layout import ensure_synthetic_split, load_mhp_v2_split

__all__ = ["SYNTHETIC_SPLITS", "register_synthetic_humans"]

# name -> generation parameters of the split (changing one regenerates the cached copy).
SYNTHETIC_SPLITS: Dict[str, Dict] = {
    "synthetic_humans_train": dict(split="train", num_images=320, seed=0, image_size=(192, 192), max_people=4),
    "synthetic_humans_val": dict(split="val", num_images=40, seed=1, image_size=(192, 192), max_people=4),
}


def _load_synthetic(params: Dict) -> List[Dict]:
    root = ensure_synthetic_split(**params)
    return load_mhp_v2_split(root, params["split"])


def register_synthetic_humans() -> None:
    """Register every split of :data:`SYNTHETIC_SPLITS` (same schema and metadata as MHPv2)."""
    for name, params in SYNTHETIC_SPLITS.items():
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, lambda p=params: _load_synthetic(p))
        MetadataCatalog.get(name).set(evaluator_type="part_parsing", **MHP_V2_SCHEMA.metadata())


register_synthetic_humans()
