"""Two-process CPU training and evaluation with detectron2's ``launch`` (GLOO).

detectron2 main's ``launch`` sets up GLOO when there is no GPU; detectron2 0.6's asserts that
CUDA is available for more than one process, so there the test is skipped.
"""
import importlib
import inspect
import json
import os
from datetime import timedelta

import pytest
import torch
from detectron2.utils import comm

from dspf_parser.engine.distributed import any_rank_true, close_process_group, create_ddp_model
from test_train_net import _args, _register_mini_val, train_net

# The module, not the function of the same name that detectron2.engine exports.
launch_module = importlib.import_module("detectron2.engine.launch")
LAUNCH_RUNS_ON_CPU = "GLOO" in inspect.getsource(launch_module._distributed_worker)
needs_cpu_launch = pytest.mark.skipif(
    not LAUNCH_RUNS_ON_CPU,
    reason="this detectron2's launch needs CUDA for more than one process (0.6 asserts "
           "torch.cuda.is_available()); detectron2 main runs it on the CPU with GLOO")


def test_single_process_helpers_are_identity():
    model = torch.nn.Linear(2, 2)
    assert create_ddp_model(model) is model
    close_process_group()  # no process group: nothing to do, no error
    assert any_rank_true(True, torch.device("cpu")) and not any_rank_true(False, torch.device("cpu"))


def _worker(out_dir: str, poison_rank: int) -> None:
    """Per process: train 4 iterations (a NaN loss on ``poison_rank`` at iteration 1, policy
    skip), then ``train_net.main --eval-only`` on the final weights; results go to JSON files."""
    _register_mini_val()
    rank = comm.get_rank()
    cfg = train_net.setup(_args(os.path.join(out_dir, "run"), "SOLVER.MAX_ITER", "4",
                                "SOLVER.NONFINITE_LOSS", "skip", "TEST.EVAL_PERIOD", "0"))
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=False)
    model = trainer.model
    forward = model.forward

    def poisoned(batched_inputs):
        losses = forward(batched_inputs)
        if rank == poison_rank and trainer.iter == 1:
            losses["loss_dspf"] = losses["loss_dspf"] * float("nan")
        return losses

    model.forward = poisoned
    trainer.train()
    info = {"skipped_steps": trainer._skipped_steps, "ddp": type(model).__name__,
            "world_size": comm.get_world_size()}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(info, f)
    res = train_net.main(_args(os.path.join(out_dir, "eval2"), "MODEL.WEIGHTS",
                               os.path.join(out_dir, "run", "model_final.pth"), eval_only=True))
    if comm.is_main_process():
        with open(os.path.join(out_dir, "eval2.json"), "w") as f:
            json.dump(res, f)
    close_process_group()
    assert not torch.distributed.is_initialized()


@needs_cpu_launch
def test_two_process_training_and_evaluation_equals_one_process(tmp_path):
    _register_mini_val()
    out = str(tmp_path)
    # A short collective timeout: ranks falling out of step fail instead of hanging the suite.
    launch_module.launch(_worker, 2, dist_url="auto", args=(out, 1), timeout=timedelta(seconds=120))
    ranks = [json.load(open(tmp_path / f"rank{r}.json")) for r in (0, 1)]
    # The NaN on rank 1 made both ranks skip that step; the model was wrapped for GLOO.
    assert [r["skipped_steps"] for r in ranks] == [1, 1]
    assert all(r["ddp"] == "DistributedDataParallel" and r["world_size"] == 2 for r in ranks)
    assert (tmp_path / "run" / "model_final.pth").exists()
    two = json.load(open(tmp_path / "eval2.json"))
    one = train_net.main(_args(tmp_path / "eval1", "MODEL.WEIGHTS", str(tmp_path / "run" / "model_final.pth"),
                               eval_only=True))
    one = json.loads(json.dumps(one))  # the same float formatting as the 2-process file
    assert set(one) == set(two) == {"part_parsing", "instance_parsing"}
    for task in one:
        assert set(one[task]) == set(two[task])
        for key, value in one[task].items():
            assert value == pytest.approx(two[task][key], rel=1e-12, abs=1e-12, nan_ok=True), (task, key)
