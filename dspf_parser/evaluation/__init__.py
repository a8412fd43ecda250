from .instance_parsing_evaluation import InstanceParsingEvaluator
from .part_parsing_evaluation import PartParsingEvaluator

__all__ = ["InstanceParsingEvaluator", "PartParsingEvaluator"]
