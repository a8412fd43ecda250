from .trainer import DSPFTrainer

__all__ = ["DSPFTrainer"]
