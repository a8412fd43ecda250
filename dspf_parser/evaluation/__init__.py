from .part_parsing_evaluation import PartParsingEvaluator

__all__ = ["PartParsingEvaluator"]
