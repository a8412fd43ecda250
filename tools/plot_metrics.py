#!/usr/bin/env python
"""Learning curves of a training run: losses and evaluation metrics from its ``metrics.json``.

Example::

    python tools/plot_metrics.py output/synthetic_R18_tiny            # -> .../learning_curves.png
    python tools/plot_metrics.py OUTPUT_DIR --output curves.png --smooth 20

``metrics.json`` (detectron2's ``JSONWriter``) holds one JSON object per logged iteration; the
training rows carry ``total_loss`` and the per-task ``loss_*`` terms, and the rows written by
``TEST.EVAL_PERIOD`` evaluations carry ``part_parsing/mIoU``, ``instance_parsing/AP_p_50``,
``instance_parsing/AP_p_vol``, ``instance_parsing/PCP_50`` and ``instance_parsing/pose_AP``
(one dataset) or the same keys prefixed by the dataset name. Left panel: the task losses
(``balancer_input_loss_*`` when logged, else ``total_loss`` and ``loss_*``; moving average over
``--smooth`` logged points, log scale); right panel: every metric against the iteration. A line
of the final metrics is printed.
"""
import argparse
import json
import os
from collections import defaultdict
from typing import Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

METRIC_SUFFIXES = ("mIoU", "AP_p_50", "AP_p_vol", "PCP_50", "pose_AP")


def read_metrics(path: str) -> List[Dict]:
    """The rows of a ``metrics.json``; a truncated last line (a run killed mid-write) is dropped,
    any other unreadable line is an error naming the file and the line."""
    rows = []
    with open(path) as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON line ({e})") from None
    if not rows:
        raise ValueError(f"{path}: no metrics rows")
    return rows


def curves(rows: List[Dict]) -> Tuple[Dict[str, List[Tuple[int, float]]], Dict[str, List[Tuple[int, float]]]]:
    """``(losses, metrics)``: per key the ``(iteration, value)`` points. When a run was resumed,
    a later row of the same iteration replaces the earlier one.

    The losses are the task losses as the loss balancer receives them (``balancer_input_loss_*``)
    when the run logged them: under uncertainty weighting the ``loss_*`` terms are rescaled by
    learned variances and ``total_loss`` can be negative, which says little about learning."""
    losses: Dict[str, Dict[int, float]] = defaultdict(dict)
    metrics: Dict[str, Dict[int, float]] = defaultdict(dict)
    for row in rows:
        it = int(row.get("iteration", -1))
        for key, value in row.items():
            if not isinstance(value, (int, float)):
                continue
            if key == "total_loss" or (key.startswith(("loss_", "balancer_input_loss_"))
                                       and not key.endswith("_uncertainty")):
                losses[key][it] = float(value)
            elif key.split("/")[-1] in METRIC_SUFFIXES:
                metrics[key][it] = float(value)
    task = {k: v for k, v in losses.items() if k.startswith("balancer_input_")}
    as_points = lambda d: {k: sorted(v.items()) for k, v in sorted(d.items())}  # noqa: E731
    return as_points(task or losses), as_points(metrics)


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot(losses, metrics, output: str, title: str, smooth: int) -> None:
    """Write the two-panel PNG."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    for key, points in losses.items():
        its, vals = np.array(points).T
        vals = _smooth(vals, smooth)
        left.plot(its[len(its) - len(vals):], vals, label=key, lw=2.0 if key == "total_loss" else 1.0)
    left.set_yscale("log")
    left.set(xlabel="iteration", ylabel=f"loss (moving average of {smooth})", title="training losses")
    left.legend(fontsize=7)
    for key, points in metrics.items():
        its, vals = np.array(points).T
        right.plot(its, vals, marker="o", label=key)
    right.set(xlabel="iteration", ylabel="percent", title="evaluation (TEST.EVAL_PERIOD)")
    if metrics:
        right.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("output_dir", help="a training OUTPUT_DIR holding metrics.json")
    p.add_argument("--output", help="PNG path (default: OUTPUT_DIR/learning_curves.png)")
    p.add_argument("--smooth", type=int, default=10, help="moving-average window of the losses")
    args = p.parse_args(argv)
    path = os.path.join(args.output_dir, "metrics.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no metrics.json (is {args.output_dir} a training OUTPUT_DIR?)")
    losses, metrics = curves(read_metrics(path))
    output = args.output or os.path.join(args.output_dir, "learning_curves.png")
    plot(losses, metrics, output, args.output_dir, args.smooth)
    final = {k: v[-1][1] for k, v in metrics.items()}
    print(f"wrote {output}; final: " + " ".join(f"{k}={v:.1f}" for k, v in final.items()))
    return output


if __name__ == "__main__":
    main()
