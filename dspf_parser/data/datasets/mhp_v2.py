"""LV-MHP-v2 (Multi-Human Parsing v2) reader for ``DatasetCatalog``.

Registered names (``dspf_parser.data.datasets.builtin``): ``mhp_v2_train`` and ``mhp_v2_val``,
read from ``$DETECTRON2_DATASETS/LV-MHP-v2`` (``DETECTRON2_DATASETS`` defaults to ``datasets``,
resolved when the dataset is loaded, not at import). The folder layout and the ``.mat`` pose
structure are those of :mod:`dspf_parser.data.mhp_v2_layout` (``list/{train,val}.txt``,
``{train,val}/images``, ``parsing_annos``, ``pose_annos``). The test split has no public
annotations and is not registered.
"""
import os
from typing import Dict, List, Optional


from ..categories import MHP_V2_SCHEMA
from ..mhp_v2_layout import load_mhp_v2_split
from ..paths import datasets_root
from .registration import register_parsing_datasets

__all__ = ["MHP_V2_SPLITS", "MHP_V2_DIRNAME", "mhp_v2_root", "load_mhp_v2", "register_mhp_v2"]

MHP_V2_DIRNAME = "LV-MHP-v2"
#: registered name -> split folder
MHP_V2_SPLITS: Dict[str, str] = {"mhp_v2_train": "train", "mhp_v2_val": "val"}


def mhp_v2_root() -> str:
    """``$DETECTRON2_DATASETS/LV-MHP-v2`` (``DETECTRON2_DATASETS`` defaulting to ``datasets``)."""
    return os.path.join(datasets_root(), MHP_V2_DIRNAME)


def load_mhp_v2(split: str, root: Optional[str] = None) -> List[Dict]:
    """Read split ``split`` of the LV-MHP-v2 folder ``root`` (default :func:`mhp_v2_root`).

    Raises:
        FileNotFoundError: the root, the split list or a split folder is missing (the message
            names the path and what belongs there), or a file the list refers to is missing.
        ValueError: malformed annotations (from :func:`load_mhp_v2_split`, naming the file).
    """
    root = mhp_v2_root() if root is None else root
    expected = (f"the LV-MHP-v2 layout: list/{split}.txt, {split}/images/<name>.jpg, "
                f"{split}/parsing_annos/<name>_<NN>_<KK>.png (zero-padded), {split}/pose_annos/<name>.mat "
                f"(see datasets/README.md; set DETECTRON2_DATASETS to the folder holding {MHP_V2_DIRNAME})")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"MHPv2 dataset root not found: {root} (expected {expected})")
    for path in (os.path.join(root, "list", f"{split}.txt"), os.path.join(root, split, "images"),
                 os.path.join(root, split, "parsing_annos"), os.path.join(root, split, "pose_annos")):
        if not os.path.exists(path):
            raise FileNotFoundError(f"MHPv2 {split} split incomplete: {path} not found (expected {expected})")
    return load_mhp_v2_split(root, split)


def register_mhp_v2() -> None:
    """Register :data:`MHP_V2_SPLITS` with the MHPv2 schema's metadata."""
    register_parsing_datasets({n: (lambda s=s: load_mhp_v2(s)) for n, s in MHP_V2_SPLITS.items()}, MHP_V2_SCHEMA)
