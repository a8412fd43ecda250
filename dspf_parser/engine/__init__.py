from .checkpoint import AtomicCheckpointer
from .predictor import DSPFPredictor
from .trainer import DSPFTrainer

__all__ = ["AtomicCheckpointer", "DSPFPredictor", "DSPFTrainer"]
