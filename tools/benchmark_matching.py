#!/usr/bin/env python
"""Time the differentiable matching solver and measure its objective gap to the LP optimum.

Example::

    python tools/benchmark_matching.py --limbs 18 --sizes 20 60 --repeats 5

For every size ``n``, a batch of ``--limbs`` random ``n x n`` limb score matrices (uniform in
``[-0.5, 1]``, each problem padded from a random ``n' x m'`` with ``n', m' <= n``) is solved
with ``dspf_parser.ops.matching.solve_matching`` (default settings unless overridden) on the
CPU and, when available, on CUDA (with ``torch.cuda.synchronize``). Printed per device and
size (median over ``--repeats``, milliseconds):

* ``fwd``: ``solve_matching`` under ``torch.no_grad``;
* ``fwd+bwd``: ``solve_matching`` + backward of ``(X * scores).sum()``;
* ``round``: ``round_matching``.

Then, on ``--check`` problems of each size, the relative objective gap
``(OPT - <S, X>) / OPT`` against ``scipy.optimize.linear_sum_assignment`` on ``max(S, 0)``
(the LP optimum; not matching is allowed) is summarised (mean / 99th percentile / max), with
the fraction of problems whose ``round_matching`` equals the Hungarian matching (edges with a
positive score). With ``--tol`` (the convergence stop, ``MODEL.DSPF.MATCHING.TOL``) the solver
stops once the batch's certified primal-dual gap is ``<= tol`` (checked every
``--check-every`` iterations); ``iterations`` is how many it ran, and the gap of the objective
``<S, X>`` to that of ``exact_matching`` (the production exact solver) is printed with it.
Nothing is asserted.

With ``--exact P [P ...]`` only the exact association is timed instead, on the CPU::

    python tools/benchmark_matching.py --exact 1 20 60 --threads 1

for every people count ``P``: ``--limbs`` random ``P x P`` problems (scores uniform in
``[-0.5, 1]``, ~30% invalid entries), ``exact_matching`` against the plain reference of
``tools/benchmark.py`` (``scipy_loop``: ``max(score, 0)`` on the valid entries, one host copy,
then one ``linear_sum_assignment`` per limb), called alternately so that both see the same
machine load; medians in milliseconds and their ratio.
"""
import argparse
import os
import statistics
import sys
import time
from typing import Callable, List, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dspf_parser.ops.matching import exact_matching, round_matching, solve_matching  # noqa: E402


def random_problems(batch: int, n: int, gen: torch.Generator) -> Tuple[Tensor, Tensor]:
    """``[batch, n, n]`` scores in ``[-0.5, 1]`` and a valid mask of a random ``n' x m'`` corner."""
    scores = torch.rand(batch, n, n, generator=gen) * 1.5 - 0.5
    rows = torch.randint(1, n + 1, (batch, 1, 1), generator=gen)
    cols = torch.randint(1, n + 1, (batch, 1, 1), generator=gen)
    ids = torch.arange(n)
    valid = (ids.view(1, n, 1) < rows) & (ids.view(1, 1, n) < cols)
    return scores, valid


def median_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds (after one warm-up call)."""
    fn()
    times: List[float] = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def hungarian(scores: Tensor, valid: Tensor) -> Tuple[np.ndarray, np.ndarray]:
    """LP optima ``[B]`` and optimal matchings ``[B, N, M]`` (positive-score edges only)."""
    weights = torch.where(valid, scores.clamp_min(0), torch.zeros_like(scores)).double().numpy()
    best = np.zeros(len(weights))
    match = np.zeros(weights.shape, dtype=bool)
    for b, w in enumerate(weights):
        r, c = linear_sum_assignment(w, maximize=True)
        keep = w[r, c] > 0
        best[b] = w[r, c].sum()
        match[b, r[keep], c[keep]] = True
    return best, match


def scipy_loop(limb_scores: Tensor, pair_valid: Tensor) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The plain reference association of ``tools/benchmark.py`` (same code)."""
    weights = torch.where(pair_valid, limb_scores.clamp_min(0), torch.zeros(())).cpu().double().numpy()
    return [linear_sum_assignment(w, maximize=True) for w in weights]


def time_exact(people: List[int], limbs: int, repeats: int, gen: torch.Generator) -> None:
    """Median ms of ``exact_matching`` and of ``scipy_loop`` on the same problems, interleaved."""
    print(f"exact_matching vs plain linear_sum_assignment loop, {limbs} limbs, CPU, "
          f"median of {repeats} interleaved calls:")
    for n in people:
        scores = torch.rand(limbs, n, n, generator=gen) * 1.5 - 0.5
        valid = torch.rand(limbs, n, n, generator=gen) >= 0.3
        calls = {"exact": lambda: exact_matching(scores, valid), "loop": lambda: scipy_loop(scores, valid)}
        times: dict = {name: [] for name in calls}
        for _ in range(10):  # warm-up
            for fn in calls.values():
                fn()
        for _ in range(repeats):
            for name, fn in calls.items():
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1e3)
        exact, loop = statistics.median(times["exact"]), statistics.median(times["loop"])
        print(f"  {n:3d} people: exact_matching {exact:.3f} ms, scipy loop {loop:.3f} ms, "
              f"ratio {exact / loop:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limbs", type=int, default=18, help="problems per batch")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 60], help="n of n x n")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (5; --exact: 300)")
    parser.add_argument("--check", type=int, default=500, help="problems for the gap check")
    parser.add_argument("--num-iters", type=int, default=None)
    parser.add_argument("--step", type=float, default=None)
    parser.add_argument("--dykstra-iters", type=int, default=None)
    parser.add_argument("--tol", type=float, default=None, help="convergence stop (0: off)")
    parser.add_argument("--check-every", type=int, default=None, help="iterations between checks")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--exact", type=int, nargs="+", default=None, metavar="PEOPLE",
                        help="only time exact_matching against a plain scipy loop at these "
                             "people counts (P x P problems)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.exact:
        time_exact(args.exact, args.limbs, args.repeats or 300, torch.Generator().manual_seed(0))
        return
    args.repeats = args.repeats or 5
    options = {
        key: value
        for key, value in (
            ("num_iters", args.num_iters),
            ("step", args.step),
            ("dykstra_iters", args.dykstra_iters),
            ("tol", args.tol),
            ("check_every", args.check_every),
        )
        if value is not None
    }
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    gen = torch.Generator().manual_seed(0)
    print(f"solve_matching options: {options or 'defaults'}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")

    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for n in args.sizes:
            scores, valid = random_problems(args.limbs, n, gen)
            scores, valid = scores.to(device), valid.to(device)

            def forward() -> Tensor:
                with torch.no_grad():
                    return solve_matching(scores, valid, **options)

            def forward_backward() -> None:
                s = scores.clone().requires_grad_(True)
                (solve_matching(s, valid, **options) * s).sum().backward()

            x = forward()
            fwd = median_ms(forward, device, args.repeats)
            bwd = median_ms(forward_backward, device, args.repeats)
            rnd = median_ms(lambda: round_matching(x, valid), device, args.repeats)
            print(f"[{name}] {args.limbs} x {n}x{n}: fwd {fwd:.1f} ms, fwd+bwd {bwd:.1f} ms, "
                  f"round {rnd:.2f} ms")

    for n in args.sizes:
        scores, valid = random_problems(args.check, n, gen)
        with torch.no_grad():
            x = solve_matching(scores, valid, **options)
        best, match = hungarian(scores, valid)
        value = (scores.double() * x.double()).sum(dim=(1, 2)).numpy()
        gap = np.where(best > 0, (best - value) / np.maximum(best, 1e-12), 0.0)
        same = (round_matching(x, valid).numpy() == match).all(axis=(1, 2))
        print(f"gap vs scipy, {args.check} problems <= {n}x{n}: mean {gap.mean():.2e}, "
              f"p99 {np.quantile(gap, 0.99):.2e}, max {gap.max():.2e}; "
              f"rounding == Hungarian on {same.mean():.1%}")
        # Iterations to converge and objective gap to exact_matching, batch by batch of --limbs
        # problems (the convergence check covers a whole batch, as one image's limbs).
        iterations, exact_gaps = [], []
        for start in range(0, args.check, args.limbs):
            s, v = scores[start:start + args.limbs], valid[start:start + args.limbs]
            with torch.no_grad():
                xb, iters = solve_matching(s, v, **options, return_iters=True)
            exact = torch.where(exact_matching(s, v), s, torch.zeros(())).double().sum(dim=(1, 2))
            relaxed = torch.where(v, s * xb, torch.zeros(())).double().sum(dim=(1, 2))
            exact_gaps.append(((exact - relaxed) / exact.clamp_min(1e-12)).numpy())
            iterations.append(iters)
        exact_gaps = np.concatenate(exact_gaps)
        print(f"PGD layer <= {n}x{n}, batches of {args.limbs}: iterations to converge "
              f"median {statistics.median(iterations):.0f}, max {max(iterations)}; objective gap "
              f"to exact_matching mean {exact_gaps.mean():.2e}, max {exact_gaps.max():.2e}")


if __name__ == "__main__":
    main()
