from . import datasets  # noqa: F401  (registers the datasets)
from .categories import MHP_V2_SCHEMA, SCHEMAS, HumanSchema, get_schema
from .dataset_mapper import DSPFDatasetMapper

__all__ = ["DSPFDatasetMapper", "HumanSchema", "MHP_V2_SCHEMA", "SCHEMAS", "get_schema"]
