"""Registers the project's datasets in detectron2's ``DatasetCatalog`` / ``MetadataCatalog``.

Imported by ``dspf_parser`` itself, so importing the package is enough.

* ``synthetic_humans_train`` / ``synthetic_humans_val`` / ``synthetic_humans_crowd_val``: the
  embedded synthetic benchmark (the crowded split holds 12-20 people per image),
  generated deterministically on first use into ``$DSPF_SYNTHETIC_ROOT`` (default
  ``$DETECTRON2_DATASETS/synthetic_humans``, ``DETECTRON2_DATASETS`` defaulting to
  ``datasets``) in the MHPv2 folder layout, then read back by the MHPv2-layout reader.
* ``mhp_v2_train`` / ``mhp_v2_val``: LV-MHP-v2 under ``$DETECTRON2_DATASETS/LV-MHP-v2``
  (:mod:`.mhp_v2`).
* ``densepose_coco_parsing_train`` / ``densepose_coco_parsing_val``: DensePose-COCO part maps
  under ``$DETECTRON2_DATASETS/coco`` (:mod:`.densepose_coco`).
* ``pascal_person_part_train`` / ``pascal_person_part_test``: instance-level
  PASCAL-Person-Part under ``$DETECTRON2_DATASETS/pascal-person-part``
  (:mod:`.pascal_person_part`).

The real benchmarks are only read when a dataset is first requested from ``DatasetCatalog``;
a missing root or file raises then, naming the path. Every dataset has ``evaluator_type
"part_parsing"`` and its schema's ``metadata()``.
"""
from typing import Dict, List

from ..categories import MHP_V2_SCHEMA
from ..mhp_v2_layout import load_mhp_v2_split
from ..synthetic_cache import ensure_synthetic_split
from .densepose_coco import register_densepose_coco
from .mhp_v2 import register_mhp_v2
from .pascal_person_part import register_pascal_person_part
from .registration import register_parsing_datasets

__all__ = ["SYNTHETIC_SPLITS", "register_synthetic_humans", "register_all"]

# name -> generation parameters of the split (changing one regenerates the cached copy).
SYNTHETIC_SPLITS: Dict[str, Dict] = {
    "synthetic_humans_train": dict(split="train", num_images=320, seed=0, image_size=(192, 192), max_people=4),
    "synthetic_humans_val": dict(split="val", num_images=40, seed=1, image_size=(192, 192), max_people=4),
    # Crowds: 12-20 smaller people on a larger canvas, so every tool run also measures crowds.
    "synthetic_humans_crowd_val": dict(split="crowd_val", num_images=40, seed=2, image_size=(320, 320),
                                       min_people=12, max_people=20, height_range=(0.3, 0.6)),
}


def _load_synthetic(params: Dict) -> List[Dict]:
    root = ensure_synthetic_split(**params)
    return load_mhp_v2_split(root, params["split"])


def register_synthetic_humans() -> None:
    """Register every split of :data:`SYNTHETIC_SPLITS` (same schema and metadata as MHPv2)."""
    register_parsing_datasets({n: (lambda p=p: _load_synthetic(p)) for n, p in SYNTHETIC_SPLITS.items()}, MHP_V2_SCHEMA)


def register_all() -> None:
    """Register the synthetic set and the three real benchmarks (idempotent)."""
    register_synthetic_humans()
    register_mhp_v2()
    register_densepose_coco()
    register_pascal_person_part()


register_all()
