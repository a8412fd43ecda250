"""Tests of the differentiable matching layer (dspf_parser.ops.matching).

References are independent of the solver: ``scipy.optimize.linear_sum_assignment`` (Hungarian),
exhaustive enumeration of all partial matchings for tiny problems, a sequential greedy for the
rounding, finite differences (``gradcheck``) for the gradients and hand-computed losses.
"""
import itertools
import math
from typing import List, Tuple

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from dspf_parser.ops.matching import (
    exact_matching,
    DifferentiableMatching,
    matching_loss,
    round_matching,
    solve_matching,
)

REL_GAP = 1e-3  # required relative objective gap to the LP optimum
FEAS_TOL = 1e-4  # tolerance of the row / column sum constraints


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Run the many small tensor ops of the unrolled solver on one thread.

    Intra-op threading does not pay off for [500, 20, 20] tensors and, on a loaded machine,
    makes every op wait for the busiest core (observed: 40 s instead of 0.5 s per batch).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_problems(
    batch: int, n: int, m: int, kind: str, seed: int, drop: float = 0.1
) -> Tuple[Tensor, Tensor]:
    """``[batch, n, m]`` float64 scores of the given kind and a valid mask.

    Each problem is a random ``n' x m'`` corner (``1 <= n' <= n``, ``1 <= m' <= m``) of the
    padded frame, minus a fraction ``drop`` of randomly forbidden entries.
    """
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, n, m)
    if kind == "uniform":  # mixed signs, mostly positive
        scores = torch.rand(shape, generator=gen, dtype=torch.float64) * 1.5 - 0.5
    elif kind == "normal":
        scores = torch.randn(shape, generator=gen, dtype=torch.float64)
    elif kind == "negative":  # mostly negative: few positive-gain pairs
        scores = torch.rand(shape, generator=gen, dtype=torch.float64) * 1.2 - 1.0
    elif kind == "near_ties":  # rank one plus small noise: many near-optimal matchings
        a = torch.rand(batch, n, 1, generator=gen, dtype=torch.float64)
        b = torch.rand(batch, 1, m, generator=gen, dtype=torch.float64)
        scores = a * b + 0.05 * torch.randn(shape, generator=gen, dtype=torch.float64)
    elif kind == "integer":  # exact ties
        scores = torch.randint(-3, 6, shape, generator=gen).to(torch.float64)
    else:
        raise ValueError(kind)
    rows = torch.randint(1, n + 1, (batch, 1, 1), generator=gen)
    cols = torch.randint(1, m + 1, (batch, 1, 1), generator=gen)
    valid = (torch.arange(n).view(1, n, 1) < rows) & (torch.arange(m).view(1, 1, m) < cols)
    valid &= torch.rand(shape, generator=gen) >= drop
    return scores, valid


def hungarian(scores: Tensor, valid: Tensor) -> Tuple[np.ndarray, np.ndarray]:
    """LP optimum ``[B]`` and an optimal matching ``[B, N, M]`` (bool) of every problem.

    Not matching is allowed, so the optimum over partial matchings equals the optimum over
    full (rectangular) assignments of the clipped weights ``w = max(s, 0)`` (0 off ``valid``):
    a partial matching extends to an assignment whose ``w``-value is at least its ``s``-value
    (added pairs weigh >= 0), and dropping the pairs with ``s <= 0`` from an assignment gives
    a partial matching whose ``s``-value equals the assignment's ``w``-value. The bipartite
    matching polytope is integral, so this is also the LP optimum. The returned matching
    keeps the assigned pairs with ``w > 0``.
    """
    weights = torch.where(valid, scores.clamp_min(0), torch.zeros_like(scores)).double().numpy()
    best = np.zeros(len(weights))
    match = np.zeros(weights.shape, dtype=bool)
    for b, w in enumerate(weights):
        r, c = linear_sum_assignment(w, maximize=True)
        keep = w[r, c] > 0
        best[b] = w[r, c].sum()
        match[b, r[keep], c[keep]] = True
    return best, match


def check_feasible(x: Tensor, valid: Tensor) -> None:
    """``x >= 0``, row / column sums ``<= 1 + FEAS_TOL``, exactly 0 off ``valid``."""
    assert torch.isfinite(x).all()
    assert (x >= 0).all()
    assert (x.sum(dim=2) <= 1 + FEAS_TOL).all()
    assert (x.sum(dim=1) <= 1 + FEAS_TOL).all()
    assert (x[~valid] == 0).all()


def relative_gaps(scores: Tensor, valid: Tensor, x: Tensor) -> np.ndarray:
    """``(OPT - <S, X>) / OPT`` per problem (absolute gap where ``OPT == 0``)."""
    best, _ = hungarian(scores, valid)
    value = torch.where(valid, scores * x.double(), torch.zeros_like(scores)).sum(dim=(1, 2))
    gap = best - value.numpy()
    return np.where(best > 0, gap / np.maximum(best, 1e-300), gap)


# --- objective and feasibility against the Hungarian optimum ------------------------------------


@pytest.mark.parametrize(
    "n, m, kind, seed",
    [
        (20, 20, "uniform", 0),
        (20, 20, "normal", 1),
        (20, 14, "negative", 2),
        (12, 20, "uniform", 3),
        (20, 20, "near_ties", 4),
        (16, 18, "integer", 5),
        (8, 5, "normal", 6),
        (1, 20, "uniform", 7),
    ],
)
def test_objective_within_lp_optimum(n: int, m: int, kind: str, seed: int) -> None:
    scores, valid = random_problems(500, n, m, kind, seed)
    x = solve_matching(scores.float(), valid)
    check_feasible(x, valid)
    gaps = relative_gaps(scores, valid, x)
    assert gaps.max() <= REL_GAP, f"worst gap {gaps.max():.2e}, mean {gaps.mean():.2e}"
    # Feasible X can never beat the LP optimum (up to the feasibility tolerance).
    assert gaps.min() >= -5 * FEAS_TOL


def test_float64_and_dykstra_sweeps() -> None:
    scores, valid = random_problems(300, 10, 10, "uniform", 11)
    for x in (
        solve_matching(scores, valid),
        solve_matching(scores.float(), valid, num_iters=250, dykstra_iters=2),
    ):
        check_feasible(x, valid)
        assert relative_gaps(scores, valid, x).max() <= REL_GAP


def test_padding_and_batching_do_not_change_a_problem() -> None:
    scores, valid = random_problems(40, 12, 15, "normal", 12, drop=0.0)
    x = solve_matching(scores, valid)
    for b in range(0, 40, 7):
        n, m = int(valid[b].any(1).sum()), int(valid[b].any(0).sum())
        alone = solve_matching(scores[b : b + 1, :n, :m])
        torch.testing.assert_close(x[b : b + 1, :n, :m], alone, atol=1e-6, rtol=0)
        assert (x[b, n:] == 0).all() and (x[b, :, m:] == 0).all()


def test_scale_invariance() -> None:
    scores, valid = random_problems(50, 9, 7, "normal", 13)
    x = solve_matching(scores, valid)
    torch.testing.assert_close(solve_matching(scores * 37.5, valid), x, atol=1e-8, rtol=0)


# --- exhaustive reference for tiny problems -----------------------------------------------------


def partial_matchings(n: int, m: int) -> List[List[Tuple[int, int]]]:
    """All matchings (sets of pairs sharing no row and no column) of an ``n x m`` grid."""
    out: List[List[Tuple[int, int]]] = []
    for k in range(min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                out.append(list(zip(rows, cols)))
    return out


@pytest.mark.parametrize("n, m", [(3, 3), (2, 3), (3, 1)])
def test_brute_force_tiny(n: int, m: int) -> None:
    scores, valid = random_problems(400, n, m, "uniform", 20 + n * 10 + m)
    matchings = partial_matchings(n, m)
    assert len(matchings) == {(3, 3): 34, (2, 3): 13, (3, 1): 4}[(n, m)]
    x = solve_matching(scores.float(), valid)
    rounded = round_matching(x, valid)
    check_feasible(x, valid)
    s = torch.where(valid, scores, torch.full_like(scores, -math.inf)).numpy()
    for b in range(len(s)):
        values = sorted(
            (sum(s[b, i, j] for i, j in mt), idx) for idx, mt in enumerate(matchings)
        )
        best, best_idx = values[-1]
        assert float((scores[b] * x[b].double()).sum()) >= best * (1 - REL_GAP) - 1e-6
        if best - values[-2][0] > 0.05:  # unique optimum by a margin: rounding recovers it
            expected = torch.zeros(n, m, dtype=torch.bool)
            for i, j in matchings[best_idx]:
                expected[i, j] = True
            assert torch.equal(rounded[b], expected)


# --- rounding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch, n, m, kind, seed", [(500, 10, 12, "uniform", 30), (300, 20, 20, "normal", 31)]
)
def test_round_matching_recovers_unique_hungarian_optimum(
    batch: int, n: int, m: int, kind: str, seed: int
) -> None:
    scores, valid = random_problems(batch, n, m, kind, seed)
    best, match = hungarian(scores, valid)
    # Second-best matching: any other matching misses an edge of the optimum (one that keeps
    # all of them and adds a positive edge would beat the optimum), so the best value with
    # each optimal edge forbidden in turn (its weight set to 0) bounds every other matching.
    second = np.zeros_like(best)
    for b in range(len(scores)):
        for i, j in zip(*np.nonzero(match[b])):
            forbidden = valid[b : b + 1].clone()
            forbidden[0, i, j] = False
            second[b] = max(second[b], hungarian(scores[b : b + 1], forbidden)[0][0])
    unique = best - second >= 0.005  # scores are O(1)
    assert unique.sum() >= batch // 2
    rounded = round_matching(solve_matching(scores.float(), valid), valid).numpy()
    mismatched = np.nonzero(unique & ~(rounded == match).all(axis=(1, 2)))[0]
    assert len(mismatched) == 0, f"rounding differs from Hungarian on problems {mismatched}"


def sequential_greedy(x: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """Reference: accept pairs by decreasing value, skipping used rows / columns."""
    out = np.zeros(x.shape, dtype=bool)
    used_r, used_c = set(), set()
    order = sorted(((-x[i, j], i, j) for i, j in zip(*np.nonzero(valid))))
    for neg, i, j in order:
        if -neg >= threshold and i not in used_r and j not in used_c:
            out[i, j] = True
            used_r.add(i)
            used_c.add(j)
    return out


def test_round_matching_fractional_equals_sequential_greedy() -> None:
    gen = torch.Generator().manual_seed(40)
    x = torch.rand(300, 7, 9, generator=gen)  # distinct values, far from a matching
    x = x / x.sum(dim=2, keepdim=True)
    valid = torch.rand(300, 7, 9, generator=gen) > 0.2
    for threshold in (0.0, 0.1, 0.2):
        rounded = round_matching(x, valid, threshold)
        assert rounded.dtype == torch.bool
        assert (rounded.sum(dim=2) <= 1).all() and (rounded.sum(dim=1) <= 1).all()
        for b in range(len(x)):
            expected = sequential_greedy(x[b].numpy(), valid[b].numpy(), threshold)
            assert np.array_equal(rounded[b].numpy(), expected)


def test_round_matching_ties_and_threshold() -> None:
    half = torch.full((1, 2, 2), 0.5)
    assert torch.equal(round_matching(half), torch.eye(2, dtype=torch.bool)[None])
    third = torch.full((1, 3, 3), 1 / 3)
    assert int(round_matching(third).sum()) == 3
    assert int(round_matching(third, threshold=0.5).sum()) == 0
    x = torch.tensor([[[0.95, 0.05], [0.0, 0.08]]])
    assert torch.equal(round_matching(x), torch.tensor([[[True, False], [False, False]]]))
    # Greedy, not maximum cardinality: 0.08 is taken first and blocks both 0.05 and 0.0.
    valid = torch.tensor([[[False, True], [True, True]]])
    expected = torch.tensor([[[False, False], [False, True]]])
    assert torch.equal(round_matching(x, valid, 0.0), expected)


# --- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        dict(num_iters=20, step=0.05, peak_step=0.5),  # fractional X: non-zero Jacobian
        dict(num_iters=12),  # default ramp + anneal, shortened
        dict(num_iters=8, step=0.1, peak_step=1.0, dykstra_iters=3),
    ],
)
def test_gradcheck_through_unrolled_solver(options: dict) -> None:
    gen = torch.Generator().manual_seed(50)
    valid = torch.ones(2, 3, 4, dtype=torch.bool)
    valid[1, 2, :] = False
    valid[1, :, 3] = False
    jac_max = 0.0
    for _ in range(3):
        scores = torch.rand(2, 3, 4, generator=gen, dtype=torch.float64) * 1.5 - 0.5
        scores.requires_grad_(True)
        fn = lambda s: solve_matching(s, valid, **options)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (scores,), eps=1e-6, atol=1e-5, rtol=1e-4)
        jac = torch.autograd.functional.jacobian(fn, scores)
        jac_max = max(jac_max, float(jac.abs().max()))
        assert (jac.reshape(2, 3, 4, 2, 3, 4)[:, :, :, ~valid] == 0).all()  # invalid: no grad
    if options.get("step") == 0.05:
        assert jac_max > 0.1


def test_matching_loss_gradient_flows_to_scores() -> None:
    gen = torch.Generator().manual_seed(51)
    scores = torch.rand(4, 5, 6, generator=gen, requires_grad=True)
    target = torch.zeros(4, 5, 6)
    target[:, torch.arange(5), torch.arange(5)] = 1
    x = solve_matching(scores, num_iters=30, step=0.05, peak_step=0.5)
    loss = matching_loss(x, target)
    loss.backward()
    assert torch.isfinite(scores.grad).all() and scores.grad.abs().max() > 0
    # A gradient step on the scores lowers the loss.
    with torch.no_grad():
        stepped = scores - 0.05 * scores.grad / scores.grad.abs().max()
    new = matching_loss(solve_matching(stepped, num_iters=30, step=0.05, peak_step=0.5), target)
    assert new < loss


def test_default_solver_backward_is_finite() -> None:
    scores, valid = random_problems(18, 20, 20, "normal", 52)
    scores = scores.float().requires_grad_(True)
    x = solve_matching(scores, valid)
    (x * torch.randn_like(x)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[~valid] == 0).all()


# --- matching loss ------------------------------------------------------------------------------


def test_matching_loss_hand_computed() -> None:
    x = torch.tensor([[[0.9, 0.2], [0.7, 1.0]]], dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[[1, 0], [0, 1]]], dtype=torch.bool)
    valid = torch.tensor([[[True, True], [False, True]]])
    eps = 1e-6
    loss = matching_loss(x, target, valid, eps=eps)
    expected = -(math.log(0.9) + math.log(0.8) + math.log(1 - eps)) / 3
    assert abs(loss.item() - expected) < 1e-12
    loss.backward()
    grad = torch.tensor([[[-1 / 0.9 / 3, 1 / 0.8 / 3], [0.0, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(x.grad, grad)  # clamped (1.0) and invalid entries: no gradient
    # Without a mask every entry counts: mean over 4 entries.
    full = matching_loss(x.detach(), target.float(), eps=eps)
    assert abs(float(full) - (3 * expected - math.log(0.3)) / 4) < 1e-12


def test_matching_loss_nothing_valid() -> None:
    x = torch.rand(2, 3, 3, requires_grad=True)
    loss = matching_loss(x, torch.zeros(2, 3, 3), torch.zeros(2, 3, 3, dtype=torch.bool))
    assert loss.detach().item() == 0.0 and loss.requires_grad
    loss.backward()
    assert (x.grad == 0).all()
    empty = torch.zeros(0, 4, 4, requires_grad=True)
    loss = matching_loss(empty, torch.zeros(0, 4, 4))
    assert loss.detach().item() == 0.0 and loss.requires_grad


# --- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 3, 3), (2, 0, 4), (2, 4, 0), (0, 0, 0)])
def test_empty_problems(shape: Tuple[int, int, int]) -> None:
    scores = torch.zeros(shape, requires_grad=True)
    x = solve_matching(scores)
    assert x.shape == shape and x.dtype == scores.dtype
    assert round_matching(x).shape == shape
    model = DifferentiableMatching()
    assert model(scores, torch.ones(shape, dtype=torch.bool)).shape == shape


def test_single_row_and_column() -> None:
    row = torch.tensor([[[0.3, -0.2, 0.9, 0.5]]])
    x = solve_matching(row)
    torch.testing.assert_close(x, torch.tensor([[[0.0, 0.0, 1.0, 0.0]]]), atol=1e-4, rtol=0)
    col = row.transpose(1, 2)
    torch.testing.assert_close(solve_matching(col), x.transpose(1, 2), atol=1e-4, rtol=0)
    assert torch.equal(round_matching(x), x > 0.5)
    one = solve_matching(torch.tensor([[[2.5]], [[-1.0]]]))
    torch.testing.assert_close(one, torch.tensor([[[1.0]], [[0.0]]]), atol=1e-4, rtol=0)


def test_non_finite_scores_are_invalid() -> None:
    scores, valid = random_problems(50, 6, 7, "uniform", 60, drop=0.0)
    scores = scores.float()
    bad = torch.rand(scores.shape, generator=torch.Generator().manual_seed(61)) < 0.2
    values = torch.tensor([math.nan, math.inf, -math.inf])
    noisy = torch.where(bad, values[torch.arange(bad.numel()) % 3].view_as(scores), scores)
    noisy.requires_grad_(True)
    x = solve_matching(noisy, valid)
    check_feasible(x, valid & ~bad)
    torch.testing.assert_close(x, solve_matching(scores, valid & ~bad), atol=1e-6, rtol=0)
    x.sum().backward()
    assert torch.isfinite(noisy.grad).all() and (noisy.grad[bad] == 0).all()


def test_all_invalid_or_nonpositive_gives_zeros() -> None:
    scores = torch.randn(3, 4, 5)
    assert (solve_matching(scores, torch.zeros(3, 4, 5, dtype=torch.bool)) == 0).all()
    assert (solve_matching(-scores.abs()) == 0).all()
    assert (solve_matching(torch.zeros(3, 4, 5)) == 0).all()
    assert (solve_matching(torch.full((1, 2, 2), math.nan)) == 0).all()
    assert not round_matching(torch.zeros(3, 4, 5)).any()


def test_dtypes_and_argument_errors() -> None:
    x = solve_matching(torch.tensor([[[3, 1], [1, 3]]]))
    assert x.dtype == torch.get_default_dtype()
    torch.testing.assert_close(x, torch.eye(2)[None], atol=1e-4, rtol=0)
    half = solve_matching(torch.tensor([[[3.0, 1.0], [1.0, 3.0]]], dtype=torch.bfloat16))
    assert half.dtype == torch.bfloat16
    with pytest.raises(ValueError):
        solve_matching(torch.zeros(3, 3))
    with pytest.raises(ValueError):
        solve_matching(torch.zeros(1, 3, 3), torch.ones(1, 3, 2, dtype=torch.bool))
    with pytest.raises(ValueError):
        solve_matching(torch.zeros(1, 3, 3), num_iters=0)
    with pytest.raises(ValueError):
        matching_loss(torch.zeros(1, 3, 3), torch.zeros(1, 3, 2))


def test_module_wrapper() -> None:
    scores, valid = random_problems(5, 6, 6, "normal", 70)
    module = DifferentiableMatching(num_iters=100, step=0.2, dykstra_iters=2)
    assert isinstance(module, torch.nn.Module) and len(list(module.parameters())) == 0
    assert "num_iters=100" in repr(module)
    expected = solve_matching(scores, valid, num_iters=100, step=0.2, dykstra_iters=2)
    torch.testing.assert_close(module(scores, valid), expected, atol=0, rtol=0)


def _brute_force_max_weight(w: np.ndarray) -> float:
    """Best total weight of any matching (pairs of weight <= 0 never help), by enumeration."""
    n, m = w.shape
    best = 0.0
    for k in range(min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                best = max(best, sum(max(w[r, c], 0.0) for r, c in zip(rows, cols)))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_exact_matching_is_the_brute_force_optimum(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(3, 4, 5, generator=g, dtype=torch.float64) - 0.2  # some non-positive
    valid = torch.rand(3, 4, 5, generator=g) > 0.3
    valid[2] = False  # a problem with nothing admissible
    chosen = exact_matching(scores, valid)
    assert chosen.dtype == torch.bool and chosen.shape == scores.shape
    assert (chosen.sum(2) <= 1).all() and (chosen.sum(1) <= 1).all()
    assert not (chosen & ~valid).any() and not (chosen & (scores <= 0)).any()
    for b in range(3):
        w = torch.where(valid[b], scores[b], torch.zeros(())).numpy()
        assert float(scores[b][chosen[b]].sum()) == pytest.approx(_brute_force_max_weight(w))
    assert not chosen[2].any()


def test_exact_matching_equals_the_converged_relaxation() -> None:
    """On problems with a unique optimum, the rounded PGD solution is the exact one."""
    g = torch.Generator().manual_seed(1)
    scores = torch.rand(8, 6, 6, generator=g, dtype=torch.float64)
    relaxed = round_matching(solve_matching(scores, num_iters=2000), threshold=0.5)
    assert torch.equal(exact_matching(scores), relaxed)


def reference_exact_matching(scores: Tensor, valid: Tensor) -> Tensor:
    """The documented rule of ``exact_matching``, written plainly: per problem, one
    ``linear_sum_assignment`` of ``w = scores`` on the valid entries with ``scores > 0`` (0
    elsewhere), restricted to the rows / columns holding such an entry, pairs of weight 0
    dropped (torch indexing per problem, a Python loop over the pairs)."""
    out = torch.zeros(scores.shape, dtype=torch.bool)
    for b in range(scores.shape[0]):
        keep = valid[b] & (scores[b] > 0)
        w = torch.where(keep, scores[b].double(), torch.zeros((), dtype=torch.float64)).numpy()
        rows = np.flatnonzero(keep.any(dim=1).numpy())
        cols = np.flatnonzero(keep.any(dim=0).numpy())
        if rows.size == 0:
            continue
        sub = w[np.ix_(rows, cols)]
        for i, j in zip(*linear_sum_assignment(sub, maximize=True)):
            if sub[i, j] > 0:
                out[b, rows[i], cols[j]] = True
    return out


def exact_problems(batch: int, n: int, m: int, kind: str, seed: int) -> Tuple[Tensor, Tensor]:
    """Scores of ``kind`` with ~30% invalid entries, all-invalid rows / columns, all-invalid
    and all-non-positive problems, and (``kind="full"``) problems where every row and column
    has a positive valid entry (the batched fast path)."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "full":
        scores = torch.rand(batch, n, m, generator=gen, dtype=torch.float64) + 0.1
        return scores, torch.ones(batch, n, m, dtype=torch.bool)
    if kind == "sparse":  # pruned limb scores: a few positive pairs, mostly disjoint problems
        scores = torch.rand(batch, n, m, generator=gen, dtype=torch.float64)
        return scores, torch.rand(batch, n, m, generator=gen) < 0.4 / max(n, m)
    scores, _ = random_problems(batch, n, m, kind, seed)
    valid = torch.rand(batch, n, m, generator=gen) >= 0.3
    if batch >= 4:
        valid[0] = False  # nothing admissible
        scores[1] = -scores[1].abs()  # nothing positive (0 included)
        valid[2, : n // 2] = False  # all-invalid rows
        valid[3, :, : m // 2] = False  # all-invalid columns
    return scores, valid


@pytest.mark.parametrize(
    "batch, n, m, kind, seed",
    [
        (40, 20, 20, "uniform", 0),
        (40, 7, 12, "normal", 1),
        (40, 12, 7, "negative", 2),
        (40, 9, 9, "integer", 3),  # exact ties: same tie-breaking as the reference
        (40, 6, 6, "near_ties", 4),
        (40, 1, 1, "uniform", 5),
        (40, 1, 5, "integer", 6),
        (40, 5, 1, "normal", 7),
        (18, 20, 20, "full", 8),
        (18, 9, 4, "full", 9),
        (1, 3, 3, "full", 10),
        (3, 1, 1, "full", 11),
        (60, 12, 12, "sparse", 12),  # disjoint problems (no solver) mixed with the others
    ],
)
def test_exact_matching_equals_the_plain_reference(
    batch: int, n: int, m: int, kind: str, seed: int
) -> None:
    scores, valid = exact_problems(batch, n, m, kind, seed)
    expected = reference_exact_matching(scores, valid)
    for dtype in (torch.float64, torch.float32):
        chosen = exact_matching(scores.to(dtype), valid)
        assert chosen.dtype == torch.bool and chosen.device == scores.device
        assert torch.equal(chosen, reference_exact_matching(scores.to(dtype), valid))
    assert torch.equal(exact_matching(scores, valid), expected)
    assert not (expected.sum(2) > 1).any() and not (expected.sum(1) > 1).any()
    if kind == "sparse":
        weights = torch.where(valid, scores, torch.zeros(()))
        disjoint = ((weights > 0).sum(2).amax(1) <= 1) & ((weights > 0).sum(1).amax(1) <= 1)
        assert 5 < int(disjoint.sum()) < scores.shape[0] - 5
    if kind in ("uniform", "normal", "negative", "full", "sparse"):
        # Continuous scores: the optimum is unique, so a plain scipy loop on the whole padded
        # matrices (the benchmark's scipy_loop) gives the same pairs of positive weight.
        weights = torch.where(valid, scores.clamp_min(0), torch.zeros(())).numpy()
        plain = np.zeros(weights.shape, dtype=bool)
        for b, w in enumerate(weights):
            r, c = linear_sum_assignment(w, maximize=True)
            keep = w[r, c] > 0
            plain[b, r[keep], c[keep]] = True
        assert torch.equal(expected, torch.from_numpy(plain))


def test_exact_matching_optimum_by_brute_force_on_tiny_problems() -> None:
    """Mixed batches (fast and general paths, ties, empty problems) against enumeration."""
    for seed, (n, m) in enumerate([(3, 3), (2, 4), (4, 2), (4, 4), (1, 3)]):
        scores, valid = exact_problems(30, n, m, "integer" if seed % 2 else "uniform", 20 + seed)
        chosen = exact_matching(scores, valid)
        assert not (chosen & ~valid).any() and not (chosen & (scores <= 0)).any()
        assert (chosen.sum(2) <= 1).all() and (chosen.sum(1) <= 1).all()
        for b in range(scores.shape[0]):
            w = torch.where(valid[b], scores[b], torch.zeros((), dtype=scores.dtype)).numpy()
            assert float(scores[b][chosen[b]].sum()) == pytest.approx(_brute_force_max_weight(w))


@pytest.mark.parametrize("shape", [(0, 3, 3), (0, 0, 0), (2, 0, 4), (3, 4, 0), (0, 1, 1)])
def test_exact_matching_empty_batches(shape: Tuple[int, int, int]) -> None:
    for valid in (None, torch.ones(shape, dtype=torch.bool)):
        chosen = exact_matching(torch.zeros(shape), valid)
        assert chosen.shape == shape and chosen.dtype == torch.bool


def test_exact_matching_inputs() -> None:
    """Other score dtypes, no mask, non-finite scores, non-contiguous and grad-tracking
    inputs give the reference's matchings; argument errors."""
    scores, valid = exact_problems(12, 6, 8, "integer", 30)
    expected = reference_exact_matching(scores, valid)
    for dtype in (torch.float16, torch.bfloat16, torch.int64, torch.int32):
        assert torch.equal(exact_matching(scores.to(dtype), valid), expected)
    assert torch.equal(exact_matching(scores, valid.to(torch.uint8)), expected)
    all_valid = torch.ones_like(valid)
    assert torch.equal(exact_matching(scores), reference_exact_matching(scores, all_valid))
    noisy = scores.clone()
    noisy[~valid & (torch.arange(8) % 2 == 0)] = math.nan
    noisy[~valid & (torch.arange(8) % 2 == 1)] = -math.inf
    assert torch.equal(exact_matching(noisy, valid), expected)
    assert torch.equal(exact_matching(noisy), reference_exact_matching(noisy, all_valid))
    grad = scores.clone().float().requires_grad_(True)
    assert torch.equal(exact_matching(grad, valid), expected)
    t_scores = scores.transpose(1, 2).contiguous().transpose(1, 2)  # same values, strided
    t_valid = valid.transpose(1, 2).contiguous().transpose(1, 2)
    assert not t_scores.is_contiguous() and torch.equal(exact_matching(t_scores, t_valid), expected)
    with pytest.raises(ValueError):
        exact_matching(torch.zeros(3, 3))
    with pytest.raises(ValueError):
        exact_matching(torch.zeros(1, 3, 3), torch.ones(1, 3, 2, dtype=torch.bool))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_exact_matching_on_cuda() -> None:
    scores, valid = exact_problems(40, 9, 7, "integer", 40)
    expected = reference_exact_matching(scores, valid)
    for dtype in (torch.float32, torch.float64, torch.float16):
        chosen = exact_matching(scores.to("cuda", dtype), valid.cuda())
        assert chosen.device.type == "cuda" and chosen.dtype == torch.bool
        assert torch.equal(chosen.cpu(), expected)
    ones = torch.ones(18, 1, 1, dtype=torch.bool, device="cuda")
    assert torch.equal(exact_matching(torch.ones(18, 1, 1, device="cuda"), ones), ones)
    assert exact_matching(torch.zeros(0, 3, 3, device="cuda")).device.type == "cuda"


# --- convergence stop ----------------------------------------------------------------------------


@pytest.mark.parametrize("n, kind, seed", [(20, "uniform", 80), (20, "near_ties", 81), (5, "normal", 82)])
def test_convergence_stop_certifies_its_gap(n: int, kind: str, seed: int) -> None:
    """An early stop returns a feasible X within ``tol`` of the scipy optimum, in fewer iterations."""
    scores, valid = random_problems(60, n, n, kind, seed)
    tol = 1e-3
    x, iters = solve_matching(scores.float(), valid, tol=tol, check_every=25, return_iters=True)
    assert iters < 500 and iters % 25 == 0
    check_feasible(x, valid)
    gaps = relative_gaps(scores, valid, x)
    assert gaps.max() <= tol + 1e-5  # float32 rounding of the certificate
    assert gaps.min() >= -5 * FEAS_TOL


def test_convergence_stop_off_runs_every_iteration() -> None:
    scores, valid = random_problems(10, 6, 6, "uniform", 83)
    x, iters = solve_matching(scores, valid, num_iters=120, return_iters=True)
    assert iters == 120
    late, late_iters = solve_matching(scores, valid, num_iters=120, tol=1e-12, return_iters=True)
    assert late_iters == 120  # unreachable tolerance: the full schedule, same result
    torch.testing.assert_close(x, late, atol=0, rtol=0)
    with pytest.raises(ValueError):
        solve_matching(scores, valid, tol=-1.0)
    with pytest.raises(ValueError):
        solve_matching(scores, valid, check_every=0)


def test_gradcheck_with_convergence_stop() -> None:
    """The early-stopped solver stays differentiable (the graph of the iterations run)."""
    gen = torch.Generator().manual_seed(84)
    scores = (torch.rand(2, 3, 4, generator=gen, dtype=torch.float64) * 1.5 - 0.5).requires_grad_(True)
    fn = lambda s: solve_matching(s, num_iters=40, step=0.05, peak_step=0.5, tol=0.5, check_every=5)  # noqa: E731
    _, iters = solve_matching(scores.detach(), num_iters=40, step=0.05, peak_step=0.5, tol=0.5,
                              check_every=5, return_iters=True)
    assert iters < 40
    assert torch.autograd.gradcheck(fn, (scores,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_matching_layer_stops_in_eval_only() -> None:
    from dspf_parser.modeling.matching_layer import LPMatchingLayer

    layer = LPMatchingLayer(num_iters=500, train_num_iters=20, step=0.3, dykstra_iters=1,
                            tol=1e-3, check_every=25)
    scores, valid = random_problems(8, 6, 6, "uniform", 85)
    scores = scores.float()
    expected, iters = solve_matching(scores, valid, tol=1e-3, check_every=25, return_iters=True)
    assert iters < 500
    torch.testing.assert_close(layer.eval()(scores, valid), expected, atol=0, rtol=0)
    train = solve_matching(scores, valid, num_iters=20, step=0.3, peak_step=0.3, anneal_fraction=0.0,
                           final_step=0.3)
    torch.testing.assert_close(layer.train()(scores, valid), train, atol=0, rtol=0)
