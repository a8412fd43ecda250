from . import datasets  # noqa: F401  (registers the datasets)
from .categories import MHP_V2_SCHEMA, SCHEMAS, HumanSchema, get_schema
from .build import SkippingMapDataset, build_dspf_train_loader
from .dataset_mapper import BadSampleError, DSPFDatasetMapper

__all__ = [
    "BadSampleError", "DSPFDatasetMapper", "HumanSchema", "MHP_V2_SCHEMA", "SCHEMAS", "SkippingMapDataset",
    "build_dspf_train_loader", "get_schema",
]
