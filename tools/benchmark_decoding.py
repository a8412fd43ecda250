#!/usr/bin/env python
"""Time each stage of the bottom-up decoding on perfect synthetic network outputs.

Example::

    python tools/benchmark_decoding.py --people 1 5 10 20 --size 512 --stride 4 --repeats 7 \
        --threads 1

For every person count, random skeletons (MHPv2 joints and limbs) are drawn on an input of
``size x size`` pixels and the network outputs a perfect model would give on the stride-``s``
grid are rendered: confidence disks + offsets per joint type, elliptical-Gaussian limb
heatmaps, a person mask around the limbs and the DSPF to each pixel's nearest own joint.
Then the stages

    voting -> detection -> limb scoring -> matching -> grouping -> pixel assignment

are run ``--repeats`` times and the median wall time of each is printed (milliseconds), with
the number of people found. Matching uses ``dspf_parser.ops.matching`` (``solve_matching`` +
``round_matching``) when that module exists, otherwise the OpenPose-style greedy matching as
a placeholder (the header says which). Nothing is asserted.
"""
import argparse
import math
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dspf_parser.ops.grouping import greedy_matching, group_people  # noqa: E402
from dspf_parser.ops.hough_voting import detect_keypoints, hough_voting  # noqa: E402
from dspf_parser.ops.limb_scoring import score_limbs  # noqa: E402
from dspf_parser.ops.pixel_assignment import assign_pixels  # noqa: E402

# MHPv2 joints in MPII order, limbs head to foot (0-based).
LIMBS = [(9, 8), (8, 7), (8, 12), (8, 13), (12, 13), (11, 12), (10, 11), (13, 14), (14, 15),
         (6, 7), (12, 2), (13, 3), (2, 6), (3, 6), (1, 2), (0, 1), (3, 4), (4, 5)]
TEMPLATE = torch.tensor([  # (x, y) of an upright person 170 px tall, head top at the origin
    [-10, 170], [-10, 120], [-10, 80], [10, 80], [10, 120], [10, 170], [0, 78], [0, 30],
    [0, 15], [0, 0], [-30, 80], [-28, 50], [-20, 25], [20, 25], [28, 50], [30, 80],
], dtype=torch.float32)
DISK_RADIUS = 8.0  # input px, confidence disks
LIMB_SIGMA = 4.0  # input px, limb Gaussians
BODY_WIDTH = 8.0  # input px (at scale 1), person mask half-width around the limbs


def load_matching() -> Tuple[str, Callable[[Tensor, Tensor], Tensor]]:
    """The integral matching of the project's solver, or the greedy placeholder."""
    try:
        from dspf_parser.ops.matching import round_matching, solve_matching
    except ModuleNotFoundError as err:
        if err.name != "dspf_parser.ops.matching":
            raise
        return "greedy openpose (placeholder: dspf_parser.ops.matching missing)", (
            lambda scores, valid: greedy_matching(scores, valid, "openpose")
        )

    def solve(scores: Tensor, valid: Tensor) -> Tensor:
        return round_matching(solve_matching(scores, valid), valid)

    return "dspf_parser.ops.matching (solve_matching + round_matching)", solve


def make_scene(num_people: int, size: int, stride: int, gen: torch.Generator) -> Dict[str, Tensor]:
    """Perfect network outputs for ``num_people`` random skeletons (grid ``h = w = size / s``).

    Returns heatmaps ``[1, K, h, w]``, offsets ``[1, K, 2, h, w]``, limb_heatmaps ``[L, h, w]``,
    person_mask ``[h, w]``, dspf ``[2, h, w]``, the ground-truth joints ``[P, K, 2]`` and
    instances ``[h, w]`` (ground-truth person of each person pixel, -1 elsewhere).
    """
    grid = size // stride
    # One person per cell of a cols x rows layout, scaled to fit its cell, jittered, mirrored.
    cols = math.ceil(math.sqrt(num_people))
    rows = math.ceil(num_people / cols)
    cell_w, cell_h = size / cols, size / rows
    fit = min(cell_w / 70.0, cell_h / 180.0, 2.0)
    slot = torch.randperm(cols * rows, generator=gen)[:num_people]
    scale = fit * (0.7 + 0.3 * torch.rand(num_people, 1, 1, generator=gen))
    flip = torch.where(torch.rand(num_people, 1, 1, generator=gen) < 0.5, -1.0, 1.0)
    centre = torch.stack([(slot % cols + 0.5) * cell_w, (slot // cols + 0.5) * cell_h], -1)
    jitter = (torch.rand(num_people, 2, generator=gen) - 0.5) * torch.tensor([cell_w, cell_h]) * 0.1
    origin = (centre + jitter)[:, None, :] - torch.cat([torch.zeros_like(scale), 85 * scale], -1)
    joints = TEMPLATE * scale * torch.cat([flip, torch.ones_like(flip)], -1) + origin
    cells = torch.arange(grid, dtype=torch.float32) * stride + stride // 2
    pos = torch.stack(torch.meshgrid(cells, cells, indexing="xy"), dim=-1)  # [h, w, 2]

    # Confidence disks and offsets to the nearest joint of each type.
    delta = joints.transpose(0, 1)[:, :, None, None, :] - pos  # [K, P, h, w, 2]
    dist = delta.norm(dim=-1)
    nearest = dist.argmin(dim=1, keepdim=True)  # [K, 1, h, w]
    heatmaps = (dist.amin(dim=1) <= DISK_RADIUS).float()[None]
    index = nearest[..., None].expand(-1, -1, -1, -1, 2)
    offsets = delta.gather(1, index)[:, 0].permute(0, 3, 1, 2)[None]

    # Distance of every cell to every limb segment of every person: [P, L, h, w].
    ends = torch.tensor(LIMBS)
    start, axis = joints[:, ends[:, 0]], joints[:, ends[:, 1]] - joints[:, ends[:, 0]]
    rel = pos - start[:, :, None, None, :]  # [P, L, h, w, 2]
    t = ((rel * axis[:, :, None, None]).sum(-1) / (axis**2).sum(-1)[..., None, None]).clamp(0, 1)
    seg_dist = (rel - t[..., None] * axis[:, :, None, None]).norm(dim=-1)
    limb_heatmaps = torch.exp(-seg_dist**2 / (2 * LIMB_SIGMA**2)).amax(dim=0)

    # Person mask around the limbs; DSPF from each person pixel to the nearest own joint.
    body = (seg_dist / scale[:, :, :, None]).amin(dim=1)  # [P, h, w]
    closest, owner = body.min(dim=0)
    person_mask = closest <= BODY_WIDTH
    own = delta.permute(1, 0, 2, 3, 4).gather(
        0, owner[None, None, :, :, None].expand(1, delta.shape[0], -1, -1, 2)
    )[0]  # [K, h, w, 2]
    dspf = own.gather(0, own.norm(dim=-1).argmin(dim=0)[None, ..., None].expand(1, -1, -1, 2))[0]
    dspf = dspf.permute(2, 0, 1) * person_mask
    return {
        "heatmaps": heatmaps, "offsets": offsets, "limb_heatmaps": limb_heatmaps,
        "person_mask": person_mask, "dspf": dspf, "joints": joints,
        "instances": torch.where(person_mask, owner, -1),
    }


def pixel_accuracy(instance: Tensor, poses: Tensor, scene: Dict[str, Tensor]) -> float:
    """Fraction of ground-truth person pixels given to the decoded person of the right identity.

    A decoded person is identified with the ground-truth person nearest to its joints (mean
    distance over its present joints).
    """
    present = poses[:, :, 2] > 0  # [Q, K]
    gaps = (poses[:, None, :, :2] - scene["joints"][None]).norm(dim=-1)  # [Q, P, K]
    mean_gap = (gaps * present[:, None]).sum(-1) / present.sum(-1, keepdim=True).clamp_min(1)
    identity = torch.cat([torch.tensor([-2]), mean_gap.argmin(dim=1)])  # instance 0 -> -2
    truth = scene["instances"]
    mask = truth >= 0
    return float((identity[instance[mask]] == truth[mask]).float().mean()) if mask.any() else 1.0


def benchmark(
    num_people: int, args: argparse.Namespace, match
) -> Tuple[Dict[str, float], int, float]:
    """Median milliseconds per stage over ``args.repeats`` runs, people found, pixel accuracy."""
    scene = make_scene(num_people, args.size, args.stride, torch.Generator().manual_seed(args.seed))
    times: Dict[str, List[float]] = {}

    def timed(stage: str, fn: Callable[[], object]):
        begin = time.perf_counter()
        out = fn()
        times.setdefault(stage, []).append((time.perf_counter() - begin) * 1e3)
        return out

    s = args.stride
    for _ in range(args.repeats + 1):  # the first run warms up and is not counted
        hough = timed("voting", lambda: hough_voting(
            scene["heatmaps"], scene["offsets"], s, radius=DISK_RADIUS))
        coords, scores, valid = timed("detection", lambda: detect_keypoints(
            hough[0], s, threshold=0.5, max_per_type=args.max_per_type))
        limb_scores, pair_valid = timed("limb scoring", lambda: score_limbs(
            scene["limb_heatmaps"], coords, valid, LIMBS, s))
        matches = timed("matching", lambda: match(limb_scores, pair_valid))
        poses, person_scores = timed("grouping", lambda: group_people(
            matches, limb_scores, coords, scores, valid, LIMBS))
        instance = timed("pixel assignment", lambda: assign_pixels(
            scene["person_mask"], scene["dspf"], poses, person_scores, s))
    medians = {stage: statistics.median(v[1:]) for stage, v in times.items()}
    return medians, poses.shape[0], pixel_accuracy(instance, poses, scene)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--size", type=int, default=512, help="input side, pixels")
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--max-per-type", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    name, match = load_matching()
    grid = args.size // args.stride
    print(f"input {args.size}x{args.size}, stride {args.stride} (grid {grid}x{grid}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"matching: {name}")
    stages = ["voting", "detection", "limb scoring", "matching", "grouping", "pixel assignment"]
    print(f"median ms over {args.repeats} runs; found = people decoded, pix acc = person pixels "
          "given to the right person")
    print(f"{'people':>6} {'found':>5} {'pix acc':>7} " + " ".join(f"{st:>16}" for st in stages)
          + f" {'total':>9}")
    for num_people in args.people:
        medians, found, accuracy = benchmark(num_people, args, match)
        print(f"{num_people:>6} {found:>5} {accuracy:>7.3f} "
              + " ".join(f"{medians[st]:>16.2f}" for st in stages)
              + f" {sum(medians.values()):>9.2f}")


if __name__ == "__main__":
    main()
