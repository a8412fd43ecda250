"""train_net.py end to end on the synthetic benchmark: train, kill, --resume, --eval-only."""
import json
import os
import sys

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import HookBase

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_net  # noqa: E402

MINI_VAL = "synthetic_humans_val_mini"


def _register_mini_val():
    if MINI_VAL not in DatasetCatalog.list():
        DatasetCatalog.register(MINI_VAL, lambda: DatasetCatalog.get("synthetic_humans_val")[:3])
        meta = MetadataCatalog.get("synthetic_humans_val").as_dict()
        meta.pop("name")
        MetadataCatalog.get(MINI_VAL).set(**meta)


def _args(output_dir, *extra, resume=False, eval_only=False):
    argv = ["--config-file", "configs/synthetic/dspf_R18_tiny.yaml"]
    argv += ["--resume"] * resume + ["--eval-only"] * eval_only
    argv += [
        "OUTPUT_DIR", str(output_dir), "DATASETS.TEST", f"('{MINI_VAL}',)",
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.DSPF.PART_HEAD.CONVS_DIM", "32",
        "MODEL.DSPF.FIELD_HEAD.CONVS_DIM", "32", "MODEL.DSPF.POSE_HEAD.CONVS_DIM", "32",
        "INPUT.DSPF.CROP_SIZE", "(64, 64)", "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0",
        "SOLVER.CHECKPOINT_PERIOD", "2", "SOLVER.WARMUP_ITERS", "2", *extra,
    ]
    return train_net.default_argument_parser().parse_args(argv)


class _Killed(Exception):
    pass


class _KillAfter(HookBase):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            raise _Killed()


def test_train_kill_resume_and_eval_only(tmp_path):
    _register_mini_val()
    out = tmp_path / "run"
    cfg = train_net.setup(_args(out, "SOLVER.MAX_ITER", "6"))
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.register_hooks([_KillAfter(3)])
    with pytest.raises(_Killed):
        trainer.train()
    # Checkpoints after iterations 1 and 3 (period 2); the last one is recorded.
    assert (out / "last_checkpoint").read_text().strip() == "model_0000003.pth"
    saved = torch.load(out / "model_0000003.pth", map_location="cpu", weights_only=False)
    assert saved["iteration"] == 3
    assert saved["trainer"]["hooks"]["LRScheduler"]["last_epoch"] == 4

    resumed = train_net.Trainer(cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 4
    # The optimizer state (AdamW moments for the recipe; SGD momentum otherwise) is restored.
    state = resumed.optimizer.state_dict()["state"]
    saved_state = saved["trainer"]["_trainer"]["optimizer"]["state"]
    assert state and all(
        torch.equal(state[k][name], saved_state[k][name])
        for k in state for name in state[k] if torch.is_tensor(state[k][name])
    )
    assert all("exp_avg" in v for v in state.values())
    assert all(group["fused"] for group in resumed.optimizer.param_groups)  # one kernel per step
    resumed.train()
    assert (out / "model_final.pth").exists()
    records = [json.loads(line) for line in open(out / "metrics.json")]
    train_iterations = [r["iteration"] for r in records if "total_loss" in r]
    assert max(train_iterations) == 5
    # The evaluation after training was written with the metrics.
    assert any("part_parsing/mIoU" in r and "instance_parsing/AP_p_50" in r for r in records)

    res = train_net.main(_args(out, "MODEL.WEIGHTS", str(out / "model_final.pth"), eval_only=True))
    metrics = res["part_parsing"]
    assert 0.0 <= metrics["mIoU"] <= 100.0 and metrics["dspf_epe"] >= 0.0

    # --eval-only with test-time augmentation adds the *_TTA rows next to the plain ones.
    res = train_net.main(_args(out, "MODEL.WEIGHTS", str(out / "model_final.pth"), "TEST.AUG.ENABLED", "True",
                               "TEST.AUG.MIN_SIZES", "(160, 192)", eval_only=True))
    assert {"part_parsing", "part_parsing_TTA", "instance_parsing_TTA"} <= set(res)
    assert 0.0 <= res["part_parsing_TTA"]["mIoU"] <= 100.0
    assert (out / "inference_TTA").is_dir()
