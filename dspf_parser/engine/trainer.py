"""The project's ``DefaultTrainer``: its mapper, its evaluators, and complete resumable state."""
from typing import Dict

from detectron2.data import MetadataCatalog, build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer
from detectron2.engine.train_loop import TrainerBase
from detectron2.evaluation import DatasetEvaluators

from ..data import DSPFDatasetMapper
from ..evaluation import PartParsingEvaluator

__all__ = ["DSPFTrainer"]

# detectron2 0.6's DefaultTrainer checkpoints only the iteration and the hooks, not the
# optimizer (later versions add the inner trainer's state under "_trainer").
_UPSTREAM_SAVES_OPTIMIZER = DefaultTrainer.load_state_dict is not TrainerBase.load_state_dict


class DSPFTrainer(DefaultTrainer):
    """``DefaultTrainer`` with :class:`DSPFDatasetMapper` and the evaluator of each dataset.

    Checkpoints always hold the optimizer state (momentum buffers), on every detectron2
    version, so ``--resume`` continues exactly where a killed run stopped.
    """

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, mapper=DSPFDatasetMapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=DSPFDatasetMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
        if evaluator_type != "part_parsing":
            raise ValueError(f"no evaluator for dataset {dataset_name!r} (evaluator_type={evaluator_type!r})")
        return DatasetEvaluators([PartParsingEvaluator(dataset_name)])

    def state_dict(self) -> Dict:
        ret = super().state_dict()
        if not _UPSTREAM_SAVES_OPTIMIZER:
            ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict: Dict) -> None:
        super().load_state_dict(state_dict)
        if not _UPSTREAM_SAVES_OPTIMIZER and "_trainer" in state_dict:
            self._trainer.load_state_dict(state_dict["_trainer"])
