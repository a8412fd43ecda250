"""SOLVER.AMP.ENABLED trains in the project's own step, with its non-finite-loss policy (CPU, bfloat16)."""
import pytest
import torch

from test_reliability import _poison, _trainer

AMP = ("SOLVER.AMP.ENABLED", "True", "TEST.EVAL_PERIOD", "0", "DATASETS.TEST", "()", "SOLVER.MAX_ITER", "3")


def test_amp_trains_with_finite_losses(tmp_path):
    trainer = _trainer(tmp_path, *AMP)
    assert trainer._amp_dtype == torch.bfloat16 and trainer._grad_scaler is None
    before = [p.detach().clone() for p in trainer.model.parameters()]
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    trainer.train()
    assert seen and set(seen) == {torch.bfloat16}  # the forward ran under autocast
    losses = trainer.storage.history("total_loss").values()
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(v)) for v, _ in losses)
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, p.detach()) for a, p in zip(before, after))
    assert all(p.dtype == torch.float32 for p in after)  # autocast: parameters stay float32


def test_amp_skips_nonfinite_step(tmp_path):
    trainer = _trainer(tmp_path, *AMP, "SOLVER.NONFINITE_LOSS", "skip")
    _poison(trainer, 1)
    trainer.train()
    assert trainer._skipped_steps == 1
    assert trainer.storage.history("skipped_steps").latest() == 1
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_amp_nonfinite_error(tmp_path):
    trainer = _trainer(tmp_path, *AMP)
    _poison(trainer, 1)
    with pytest.raises(FloatingPointError, match=r"iteration 1: loss_dspf=nan"):
        trainer.train()


def test_float16_grad_scaler_state_is_checkpointed(tmp_path):
    trainer = _trainer(tmp_path, *AMP, "SOLVER.AMP.DTYPE", "float16")
    scaler = trainer._grad_scaler
    assert trainer._amp_dtype == torch.float16 and scaler is not None
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()  # scale, backward, unscale, step, update (CPU float16 autocast)
    assert any(not torch.equal(a, p.detach()) for a, p in zip(before, trainer.model.parameters()))
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    scaler.load_state_dict({**scaler.state_dict(), "scale": 1024.0, "_growth_tracker": 7})
    trainer.iter = 1
    trainer.checkpointer.save("model_0000001", iteration=1)
    saved = torch.load(tmp_path / "run" / "model_0000001.pth", map_location="cpu", weights_only=False)
    assert saved["trainer"]["_trainer"]["grad_scaler"]["scale"] == 1024.0
    resumed = _trainer(tmp_path, *AMP, "SOLVER.AMP.DTYPE", "float16")
    resumed.resume_or_load(resume=True)
    assert resumed._grad_scaler.get_scale() == 1024.0
    assert resumed._grad_scaler.state_dict()["_growth_tracker"] == 7


def test_bad_amp_dtype_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="SOLVER.AMP.DTYPE"):
        _trainer(tmp_path, *AMP, "SOLVER.AMP.DTYPE", "float8")
