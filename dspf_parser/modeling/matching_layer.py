"""The differentiable matching solver as a registered detectron2 component."""
from typing import Optional

from detectron2.config import configurable
from torch import Tensor, nn

from ..ops.matching import DifferentiableMatching
from .registry import MATCHING_REGISTRY

__all__ = ["LPMatchingLayer", "build_matching_layer"]


@MATCHING_REGISTRY.register()
class LPMatchingLayer(nn.Module):
    """Maximum-weight bipartite matching relaxed to an LP, solved by projected gradient ascent
    with Dykstra's cyclic projection (:func:`dspf_parser.ops.matching.solve_matching`).

    ``forward(scores [B, N, M], valid [B, N, M] or None) -> X [B, N, M]``; no parameters.

    In training mode the solver is unrolled for ``train_num_iters`` iterations only: a fully
    converged solver sits on a vertex of the polytope, where the assignment is piecewise
    constant in the scores and the matching loss would pass no gradient; the short unroll keeps
    ``X`` fractional where the scores are ambiguous, which is exactly where the loss must push.
    In eval mode it runs at most ``num_iters`` iterations towards the LP optimum, stopping as soon
    as the whole batch's relative primal-dual gap is ``<= tol`` (checked every ``check_every``
    iterations; ``tol = 0``: always ``num_iters``). Training always unrolls exactly
    ``train_num_iters`` iterations.
    """

    @configurable
    def __init__(
        self, *, num_iters: int, train_num_iters: int, step: float, dykstra_iters: int,
        tol: float = 0.0, check_every: int = 25,
    ):
        super().__init__()
        self.solver = DifferentiableMatching(
            num_iters=num_iters, step=step, dykstra_iters=dykstra_iters, tol=tol,
            check_every=check_every,
        )
        # Constant step while training: the growing step schedule that makes the inference solver
        # reach the vertex also multiplies the unrolled Jacobian (d X / d scores grows with the sum
        # of the steps), which made the matching loss's gradient swamp the other tasks.
        self.train_solver = DifferentiableMatching(
            num_iters=train_num_iters, step=step, dykstra_iters=dykstra_iters,
            peak_step=step, anneal_fraction=0.0, final_step=step,
        )

    @classmethod
    def from_config(cls, cfg):
        m = cfg.MODEL.DSPF.MATCHING
        return {
            "num_iters": m.NUM_ITERS,
            "train_num_iters": m.TRAIN_NUM_ITERS,
            "step": m.STEP,
            "dykstra_iters": m.DYKSTRA_ITERS,
            "tol": m.TOL,
            "check_every": m.CHECK_EVERY,
        }

    def forward(self, scores: Tensor, valid: Optional[Tensor] = None) -> Tensor:
        return (self.train_solver if self.training else self.solver)(scores, valid)


def build_matching_layer(cfg) -> nn.Module:
    """Build the matching layer named by ``cfg.MODEL.DSPF.MATCHING.NAME``."""
    return MATCHING_REGISTRY.get(cfg.MODEL.DSPF.MATCHING.NAME)(cfg)
