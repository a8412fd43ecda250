"""Combining the task losses: learned homoscedastic uncertainty or fixed weights."""
from typing import Dict, Sequence

import torch
from torch import nn

__all__ = ["UncertaintyLossBalancer", "FixedLossBalancer", "build_loss_balancer"]


class UncertaintyLossBalancer(nn.Module):
    """Kendall et al. (CVPR 2018) multi-task weighting, one learned log-variance per task.

    Each task loss ``L_t`` becomes ``exp(-s_t) * L_t + s_t`` with ``s_t = log(sigma_t^2)``
    (initialised to 0, i.e. weight 1). The regulariser ``s_t`` is returned as its own entry
    ``<name>_uncertainty`` so Detectron2's trainer sums and logs it like any loss.
    """

    def __init__(self, task_names: Sequence[str]):
        super().__init__()
        self.task_names = list(task_names)
        self.log_vars = nn.Parameter(torch.zeros(len(self.task_names)))

    def forward(self, losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        unknown = set(losses) - set(self.task_names)
        if unknown:
            raise KeyError(f"losses {sorted(unknown)} have no uncertainty weight; tasks: {self.task_names}")
        out = {}
        for i, name in enumerate(self.task_names):
            if name in losses:
                s = self.log_vars[i]
                out[name] = torch.exp(-s) * losses[name]
                out[name + "_uncertainty"] = s
        return out


class FixedLossBalancer(nn.Module):
    """Identity: losses are used as the heads weighted them (``*_LOSS_WEIGHT`` keys)."""

    def forward(self, losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return dict(losses)


def build_loss_balancer(kind: str, task_names: Sequence[str]) -> nn.Module:
    """``kind`` is ``cfg.MODEL.DSPF.LOSS_BALANCING``: "uncertainty" or "fixed"."""
    if kind == "uncertainty":
        return UncertaintyLossBalancer(task_names)
    if kind == "fixed":
        return FixedLossBalancer()
    raise ValueError(f"MODEL.DSPF.LOSS_BALANCING must be 'uncertainty' or 'fixed', got {kind!r}")
