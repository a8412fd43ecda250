"""Training never loses work: non-finite losses, atomic checkpoints."""
import os

import pytest
import torch

from test_train_net import _args, _register_mini_val, train_net


def _trainer(tmp_path, *extra):
    _register_mini_val()
    cfg = train_net.setup(_args(tmp_path / "run", "SOLVER.MAX_ITER", "4", *extra))
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=False)
    return trainer


def _poison(trainer, at_iteration):
    """Make the loss dict's loss_dspf NaN at one iteration."""
    model = trainer.model
    forward = model.forward

    def poisoned(batched_inputs):
        out = forward(batched_inputs)
        if model.training and trainer.iter == at_iteration:
            out["loss_dspf"] = out["loss_dspf"] * float("nan")
        return out

    model.forward = poisoned


def test_nonfinite_loss_stops_naming_term_and_iteration(tmp_path):
    trainer = _trainer(tmp_path)
    _poison(trainer, 2)
    with pytest.raises(FloatingPointError, match=r"iteration 2: loss_dspf=nan"):
        trainer.train()


def test_nonfinite_loss_can_skip_the_step(tmp_path):
    trainer = _trainer(tmp_path, "SOLVER.NONFINITE_LOSS", "skip", "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()")
    _poison(trainer, 2)
    before = {}

    class Snapshot:
        def before_step(self):
            if trainer.iter == 2:
                before.update({k: v.clone() for k, v in trainer.model.state_dict().items()})

        def after_step(self):
            if trainer.iter == 2:
                after = trainer.model.state_dict()
                assert all(torch.equal(before[k], after[k]) for k in before), "a skipped step changed weights"

    from detectron2.engine import HookBase

    hook = type("SnapshotHook", (HookBase,), dict(vars(Snapshot)))()
    trainer.register_hooks([hook])
    trainer.train()
    assert trainer._skipped_steps == 1
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_bad_policy_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="NONFINITE_LOSS"):
        _trainer(tmp_path, "SOLVER.NONFINITE_LOSS", "ignore")


def test_kill_during_checkpoint_write_keeps_the_last_good_one(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path)
    out = tmp_path / "run"
    trainer.iter = 1
    trainer.checkpointer.save("model_0000001", iteration=1)
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"

    def killed_midway(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_midway)
    trainer.iter = 3
    with pytest.raises(KeyboardInterrupt):
        trainer.checkpointer.save("model_0000003", iteration=3)
    monkeypatch.undo()
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
    assert not (out / "model_0000003.pth").exists()
    resumed = train_net.Trainer(trainer.cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    assert os.path.getsize(out / "model_0000001.pth") > 0


def test_skipped_bad_samples_are_counted_across_workers(tmp_path, caplog):
    import copy
    import logging

    from detectron2.data import DatasetCatalog, MetadataCatalog

    name = "synthetic_humans_train_with_bad"
    if name not in DatasetCatalog.list():
        def load():
            good = DatasetCatalog.get("synthetic_humans_train")[:4]
            bad = [copy.deepcopy(d) for d in good[:2]]
            for i, d in enumerate(bad):
                d["file_name"] = str(tmp_path / f"missing_{i}.jpg")
            return good + bad
        DatasetCatalog.register(name, load)
        meta = MetadataCatalog.get("synthetic_humans_train").as_dict()
        meta.pop("name")
        MetadataCatalog.get(name).set(**meta)
    trainer = _trainer(tmp_path, "DATASETS.TRAIN", f"('{name}',)", "DATALOADER.BAD_SAMPLES", "skip",
                       "DATALOADER.NUM_WORKERS", "1", "SOLVER.MAX_ITER", "8", "DATASETS.TEST", "()", "SEED", "1")
    with caplog.at_level(logging.WARNING):
        trainer.train()
    assert trainer._bad_samples_skipped > 0
    assert any("bad samples skipped (DATALOADER.BAD_SAMPLES skip)" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not hasattr(__import__("detectron2.engine.train_loop", fromlist=["TrainerBase"]).TrainerBase,
                                "after_backward"),
                    reason="this detectron2 has no after_backward hook (added after 0.6)")
def test_after_backward_hooks_run_between_backward_and_step(tmp_path):
    from detectron2.engine import HookBase

    trainer = _trainer(tmp_path, "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()")
    seen = []

    class GradSeen(HookBase):
        def before_step(self):
            self._before = [p.detach().clone() for p in self.trainer.model.parameters()]

        def after_backward(self):
            params = list(self.trainer.model.parameters())
            has_grad = any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
            unchanged = all(torch.equal(a, p.detach()) for a, p in zip(self._before, params))
            seen.append((self.trainer.iter, has_grad, unchanged))

    trainer.register_hooks([GradSeen()])
    trainer.train()
    assert seen == [(i, True, True) for i in range(4)]
