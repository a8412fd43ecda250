"""dspf_parser: Dense-to-Sparse Projection Field human parsing for Detectron2.

Importing the package registers its components with detectron2: the meta-architecture
``DSPFParser`` (``META_ARCH_REGISTRY``), the heads (``PART_HEAD_REGISTRY``,
``FIELD_HEAD_REGISTRY``, ``POSE_HEAD_REGISTRY``) and the datasets (``synthetic_humans_*``).

Typical use from another detectron2 project::

    from detectron2.config import get_cfg
    from dspf_parser import add_dspf_config
    cfg = get_cfg(); add_dspf_config(cfg); cfg.merge_from_file("configs/Base-DSPF.yaml")
    model = detectron2.modeling.build_model(cfg)   # a DSPFParser

Public API:

* :func:`add_dspf_config` - adds ``MODEL.DSPF.*`` and ``INPUT.DSPF.*``.
* :class:`DSPFParser` - the network; see its docstring for inputs/outputs and tensor shapes.
* :class:`DSPFDatasetMapper` - builds images and all targets from a dataset dict.
* :class:`PartParsingEvaluator` - mIoU and DSPF end-point error.
* :mod:`dspf_parser.ops` - detectron2-free tensor algorithms (targets, feature warping, ...).
"""
__version__ = "0.1.0"

from .config import add_dspf_config
from .data import DSPFDatasetMapper, get_schema
from .evaluation import InstanceParsingEvaluator, PartParsingEvaluator
from .modeling import DSPFParser

__all__ = [
    "DSPFDatasetMapper", "DSPFParser", "InstanceParsingEvaluator", "PartParsingEvaluator", "add_dspf_config",
    "get_schema", "__version__",
]
