"""The project's ``DefaultTrainer``: its mapper, its evaluators, and complete resumable state."""
import logging
import os
import time
import weakref
from collections import OrderedDict
from typing import Dict

import torch

from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.engine import DefaultTrainer
from detectron2.engine.train_loop import SimpleTrainer, TrainerBase
from detectron2.evaluation import DatasetEvaluators
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..data import DSPFDatasetMapper
from ..data.build import SKIPPED_KEY, build_dspf_train_loader
from ..data.categories import PASCAL_PERSON_PART_SCHEMA, get_schema
from ..evaluation import InstanceParsingEvaluator, PartParsingEvaluator
from ..evaluation.coco_results import COCOResultsEvaluator
from ..evaluation.prediction_files import PredictionFilesEvaluator
from ..modeling.test_time_augmentation import DSPFParserWithTTA
from .checkpoint import AtomicCheckpointer
from .distributed import any_rank_true, create_ddp_model

__all__ = ["DSPFTrainer"]

# detectron2 0.6's DefaultTrainer checkpoints only the iteration and the hooks, not the
# optimizer (later versions add the inner trainer's state under "_trainer").
_UPSTREAM_SAVES_OPTIMIZER = DefaultTrainer.load_state_dict is not TrainerBase.load_state_dict
# detectron2 main calls hooks' ``after_backward`` between the backward and the optimizer step.
_HAS_AFTER_BACKWARD = hasattr(TrainerBase, "after_backward")


def _amp_dtype(name: str, device_type: str) -> torch.dtype:
    """The autocast dtype of ``SOLVER.AMP.DTYPE`` on ``device_type`` ("auto": float16 on CUDA,
    bfloat16 elsewhere)."""
    if name == "auto":
        return torch.float16 if device_type == "cuda" else torch.bfloat16
    if name not in ("float16", "bfloat16"):
        raise ValueError(f"SOLVER.AMP.DTYPE must be 'auto', 'float16' or 'bfloat16', got {name!r}")
    return getattr(torch, name)


class DSPFTrainer(DefaultTrainer):
    """``DefaultTrainer`` with :class:`DSPFDatasetMapper` and the evaluator of each dataset.

    * Checkpoints always hold the optimizer state (momentum buffers), on every detectron2
      version, and are written atomically (:class:`AtomicCheckpointer`), so ``--resume``
      continues exactly where a killed run stopped.
    * A non-finite loss term (``SOLVER.NONFINITE_LOSS``): ``"error"`` stops training with a
      ``FloatingPointError`` naming the terms and the iteration; ``"skip"`` logs it, skips the
      update (no backward, no optimizer step) and counts the skipped steps (``skipped_steps``
      in the metrics). With several processes the decision is taken on all of them together
      (an all-reduce of "some term is non-finite here"): every rank skips, or raises, in the
      same step, so their collectives stay in step.
    * Mixed precision (``SOLVER.AMP.ENABLED``) in the same step, on CUDA and on the CPU: the
      forward runs under ``torch.autocast`` with ``SOLVER.AMP.DTYPE`` (``"auto"``: float16 on
      CUDA, bfloat16 on the CPU); float16 adds a ``torch.amp.GradScaler`` (the gradients are
      unscaled before ``after_backward``, so hooks and gradient clipping see true values; its
      state is checkpointed under ``_trainer`` / ``grad_scaler``, as detectron2's
      ``AMPTrainer``). The non-finite-loss policy applies as without AMP.
    * The step is detectron2's (``SimpleTrainer.run_step``) with the check above added: on
      detectron2 main it honours ``zero_grad_before_forward`` and ``async_write_metrics`` and
      calls the hooks' ``after_backward`` (of the hooks registered on this trainer) between
      the backward and the optimizer step.
    * Several processes on the CPU (GLOO, as detectron2 main's ``launch`` sets up without a
      GPU): the model is wrapped by :func:`dspf_parser.engine.distributed.create_ddp_model`,
      since detectron2's wrapper passes ``device_ids``, which torch rejects for CPU models.
    * Bad samples skipped by the data loader (``DATALOADER.BAD_SAMPLES skip``) are counted over
      all workers (``bad_samples_skipped`` in the metrics) and the totals logged at the end.
    """

    def __init__(self, cfg):
        self._nonfinite_policy = cfg.SOLVER.NONFINITE_LOSS
        if self._nonfinite_policy not in ("error", "skip"):
            raise ValueError(f"SOLVER.NONFINITE_LOSS must be 'error' or 'skip', got {self._nonfinite_policy!r}")
        self._skipped_steps = 0
        self._bad_samples_skipped = 0
        # DefaultTrainer.__init__ (the same on 0.6 and main), with the CPU-capable DDP wrapper
        # and the atomic checkpointer.
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = create_ddp_model(model, broadcast_buffers=False)
        self._trainer = SimpleTrainer(model, data_loader, optimizer)
        self._amp_device, self._amp_dtype = torch.device(cfg.MODEL.DEVICE).type, None
        if cfg.SOLVER.AMP.ENABLED:
            self._amp_dtype = _amp_dtype(cfg.SOLVER.AMP.DTYPE, self._amp_device)
        self._grad_scaler = (torch.amp.GradScaler(self._amp_device) if self._amp_dtype == torch.float16 else None)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def train(self):
        result = super().train()
        if self._bad_samples_skipped or self._skipped_steps:
            logging.getLogger(__name__).warning(
                "training done: %d bad samples skipped (DATALOADER.BAD_SAMPLES skip), %d steps skipped for a "
                "non-finite loss (SOLVER.NONFINITE_LOSS skip)", self._bad_samples_skipped, self._skipped_steps)
        return result

    def run_step(self):
        inner = self._trainer
        inner.iter = self.iter
        assert inner.model.training, "[DSPFTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(inner._data_loader_iter)
        data_time = time.perf_counter() - start
        skipped = sum(x.pop(SKIPPED_KEY, 0) for x in data)
        if skipped:
            self._bad_samples_skipped += skipped
            self.storage.put_scalar("bad_samples_skipped", self._bad_samples_skipped)
        zero_grad_first = getattr(inner, "zero_grad_before_forward", False)
        if zero_grad_first:
            inner.optimizer.zero_grad()
        with torch.autocast(self._amp_device, dtype=self._amp_dtype, enabled=self._amp_dtype is not None):
            loss_dict = inner.model(data)
        bad = {k: float(v.detach()) for k, v in loss_dict.items() if not torch.isfinite(v).all()}
        device = next(iter(loss_dict.values())).device
        if any_rank_true(bool(bad), device):
            where = (", ".join(f"{k}={v}" for k, v in bad.items()) if bad
                     else "on another process")
            message = f"non-finite loss at iteration {self.iter}: {where}"
            if self._nonfinite_policy == "error":
                raise FloatingPointError(message + " (set SOLVER.NONFINITE_LOSS skip to skip such steps)")
            self._skipped_steps += 1
            logging.getLogger(__name__).warning("%s; step skipped on every process (%d so far)",
                                                message, self._skipped_steps)
            self.storage.put_scalar("skipped_steps", self._skipped_steps)
            return
        losses = sum(loss_dict.values())
        if not zero_grad_first:
            inner.optimizer.zero_grad()
        scaler = self._grad_scaler
        if scaler is None:
            losses.backward()
        else:
            scaler.scale(losses).backward()
            scaler.unscale_(inner.optimizer)
        if _HAS_AFTER_BACKWARD:
            self.after_backward()
        if getattr(inner, "async_write_metrics", False):
            inner.concurrent_executor.submit(inner._write_metrics, loss_dict, data_time, iter=self.iter)
        else:
            inner._write_metrics(loss_dict, data_time)
        if scaler is None:
            inner.optimizer.step()
        else:
            scaler.step(inner.optimizer)
            scaler.update()

    @classmethod
    def build_optimizer(cls, cfg, model):
        """detectron2's SGD (``SOLVER.OPTIMIZER "SGD"``, the paper's, with ``SOLVER.MOMENTUM`` /
        ``NESTEROV``) or AdamW (``"AdamW"``, fused, no weight decay on norms and biases), both on
        detectron2's parameter groups; the loss balancer's log-variances get
        ``SOLVER.LOSS_BALANCER_LR_FACTOR`` times the learning rate and no weight decay."""
        name = cfg.SOLVER.OPTIMIZER
        if name not in ("SGD", "AdamW"):
            raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD' or 'AdamW', got {name!r}")
        adamw = name == "AdamW"
        params = get_default_optimizer_params(
            model, base_lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY,
            weight_decay_norm=0.0 if adamw else cfg.SOLVER.WEIGHT_DECAY_NORM,
            bias_lr_factor=1.0 if adamw else cfg.SOLVER.BIAS_LR_FACTOR,
            weight_decay_bias=0.0 if adamw else cfg.SOLVER.WEIGHT_DECAY_BIAS,
            overrides={"log_vars": {"lr": cfg.SOLVER.BASE_LR * cfg.SOLVER.LOSS_BALANCER_LR_FACTOR,
                                    "weight_decay": 0.0}},
        )
        if adamw:  # fused: one kernel over all parameters (CPU and CUDA; 0.28 -> 0.25 s/it on the CPU recipe)
            fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for g in params for p in g["params"])
            return maybe_add_gradient_clipping(cfg, torch.optim.AdamW)(params, lr=cfg.SOLVER.BASE_LR, fused=fused)
        return maybe_add_gradient_clipping(cfg, torch.optim.SGD)(
            params, lr=cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV)

    @classmethod
    def test_with_TTA(cls, cfg, model):
        """Evaluate ``model`` with flip / multi-scale test-time augmentation (``TEST.AUG.*``,
        :class:`DSPFParserWithTTA`) on ``DATASETS.TEST``; results are keyed ``<task>_TTA`` and
        the predictions written under ``OUTPUT_DIR/inference_TTA/<dataset>``."""
        logging.getLogger(__name__).info("Running inference with test-time augmentation ...")
        evaluators = [cls.build_evaluator(cfg, name, output_folder=os.path.join(cfg.OUTPUT_DIR, "inference_TTA", name))
                      for name in cfg.DATASETS.TEST]
        results = cls.test(cfg, DSPFParserWithTTA(cfg, model), evaluators)
        return OrderedDict((task + "_TTA", value) for task, value in results.items())

    @classmethod
    def build_train_loader(cls, cfg):
        return build_dspf_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=DSPFDatasetMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        """The part-parsing metrics, the instance metrics (``MODEL.DSPF.INFERENCE.INSTANCES_ON``)
        and a :class:`PredictionFilesEvaluator` writing the predictions under ``output_folder``
        (default ``OUTPUT_DIR/inference/<dataset_name>``) so the evaluation can be rerun
        offline: the MHPv2 submission layout (``evaluate_folder mhp`` / ``densepose``), or the
        PGN layout for PASCAL-Person-Part (``evaluate_folder pascal``); with
        ``TEST.DSPF_COCO_RESULTS`` also ``coco_results.json`` (:class:`COCOResultsEvaluator`)."""
        meta = MetadataCatalog.get(dataset_name)
        evaluator_type = meta.get("evaluator_type")
        if evaluator_type != "part_parsing":
            raise ValueError(f"no evaluator for dataset {dataset_name!r} (evaluator_type={evaluator_type!r})")
        evaluators = [PartParsingEvaluator(dataset_name)]
        if cfg.MODEL.DSPF.INFERENCE.INSTANCES_ON:
            evaluators.append(InstanceParsingEvaluator(dataset_name))
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        layout = "pgn" if meta.schema == PASCAL_PERSON_PART_SCHEMA.name else "mhp"
        evaluators.append(PredictionFilesEvaluator(output_folder, get_schema(meta.schema), layout))
        if cfg.TEST.DSPF_COCO_RESULTS:
            evaluators.append(COCOResultsEvaluator(output_folder))
        return DatasetEvaluators(evaluators)

    def state_dict(self) -> Dict:
        ret = super().state_dict()
        if not _UPSTREAM_SAVES_OPTIMIZER:
            ret["_trainer"] = self._trainer.state_dict()
        if self._grad_scaler is not None:
            ret["_trainer"]["grad_scaler"] = self._grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict: Dict) -> None:
        super().load_state_dict(state_dict)
        if not _UPSTREAM_SAVES_OPTIMIZER and "_trainer" in state_dict:
            self._trainer.load_state_dict(state_dict["_trainer"])
        if self._grad_scaler is not None and "grad_scaler" in state_dict.get("_trainer", {}):
            self._grad_scaler.load_state_dict(state_dict["_trainer"]["grad_scaler"])
