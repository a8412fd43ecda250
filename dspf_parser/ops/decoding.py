"""From network maps to parsed people: the bottom-up inference of the paper (Sec. 3.3, Eq. 17).

Pure torch (no detectron2). :func:`parse_people` chains, for one image,
Hough voting -> keypoint candidates -> limb scoring -> association (differentiable matching,
rounded, or one of the greedy baselines) -> head-to-foot grouping -> pixel assignment.
Every stage is batched over joint types, limbs and pixels, so the cost hardly depends on the
number of people.
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .grouping import greedy_matching, group_people
from .hough_voting import detect_keypoints, hough_voting
from .limb_scoring import score_limbs
from .matching import round_matching, solve_matching
from .pixel_assignment import assign_pixels

__all__ = ["ASSOCIATIONS", "ParsedPeople", "associate_joints", "parse_people", "suppress_duplicates"]

ASSOCIATIONS = ("matching", "greedy_openpose", "greedy_personlab")
#: Person pixels per chunk of the pixel assignment, and the most cost entries (pixels x people x
#: joint types) one chunk may hold: bounds its memory whatever the number of people.
ASSIGN_CHUNK_SIZE = 16384
ASSIGN_BUDGET = 1 << 22


@dataclass
class ParsedPeople:
    """People found in one image.

    Attributes:
        poses: ``[P, K, 3]`` ``(x, y, score)`` in input pixels, all 0 for a missing joint.
        scores: ``[P]`` person scores (mean joint score), decreasing.
        instance_map: ``[h, w]`` long on the output grid, 0 background, ``p + 1`` for person ``p``.
        stage_seconds: wall time of each stage (filled only when ``timer`` is given).
    """

    poses: Tensor
    scores: Tensor
    instance_map: Tensor
    stage_seconds: Dict[str, float]


def suppress_duplicates(coords: Tensor, scores: Tensor, valid: Tensor, radius: float) -> Tensor:
    """Drop candidates closer than ``radius`` to a better-scored candidate of the same type.

    Args:
        coords: ``[K, N, 2]``; scores: ``[K, N]``; valid: ``[K, N]`` bool.

    Returns:
        The new ``valid`` mask ``[K, N]``: a candidate survives unless a valid candidate of its
        type with a strictly higher score (or an equal score and a lower index) lies within
        ``radius`` (one pass, not iterated).
    """
    n = coords.shape[1]
    close = torch.cdist(coords, coords) < radius  # [K, N, N]
    idx = torch.arange(n, device=coords.device)
    better = (scores[:, :, None] > scores[:, None, :]) | (
        (scores[:, :, None] == scores[:, None, :]) & (idx[:, None] < idx[None, :])
    )  # better[k, i, j]: i beats j
    beaten = (close & better & valid[:, :, None]).any(dim=1)
    return valid & ~beaten


def associate_joints(
    limb_scores: Tensor,
    pair_valid: Tensor,
    joint_scores: Tensor,
    limbs: Sequence[Tuple[int, int]],
    method: str,
    solver: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
) -> Tensor:
    """Integral matchings ``[L, N, N]`` of the candidates of every limb, all limbs at once.

    ``method``: ``"matching"`` rounds the relaxed LP solution of ``solver`` (default
    :func:`solve_matching`); ``"greedy_openpose"`` / ``"greedy_personlab"`` are the greedy
    baselines of the paper's Table 5 (:func:`greedy_matching`).
    """
    if method == "matching":
        solve = solver if solver is not None else solve_matching
        return round_matching(solve(limb_scores, pair_valid), pair_valid)
    if method == "greedy_openpose":
        return greedy_matching(limb_scores, pair_valid, "openpose")
    if method == "greedy_personlab":
        parents = joint_scores[[a for a, _ in limbs]] if len(limbs) else joint_scores[:0]
        return greedy_matching(limb_scores, pair_valid, "personlab", parent_scores=parents)
    raise ValueError(f"unknown association {method!r}; expected one of {ASSOCIATIONS}")


def parse_people(
    heatmaps: Tensor,
    offsets: Tensor,
    limb_heatmaps: Tensor,
    dspf: Tensor,
    person_mask: Tensor,
    limbs: Sequence[Tuple[int, int]],
    stride: int,
    keypoint_radius: float,
    keypoint_threshold: float = 0.3,
    max_candidates: int = 30,
    association: str = "matching",
    solver: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
    min_joints: int = 3,
    timer: Optional[Callable[[], float]] = None,
) -> ParsedPeople:
    """Parse the people of one image from its network maps (all on the stride-``s`` grid).

    Args:
        heatmaps: ``[K, h, w]`` keypoint probabilities. offsets: ``[K, 2, h, w]`` input px.
        limb_heatmaps: ``[L, h, w]`` limb probabilities. dspf: ``[2, h, w]`` input px.
        person_mask: ``[h, w]`` bool, the person pixels of the part segmentation.
        limbs: the ``L`` joint-type pairs, head to foot.
        keypoint_radius: disk radius of the keypoint targets (input px): normalises the votes
            and is the radius within which weaker candidates of a type are suppressed.
        keypoint_threshold: minimal candidate score (about 1 for a perfect prediction).
        association: one of :data:`ASSOCIATIONS`.
        solver: relaxed matching solver ``(scores [B,N,M], valid) -> X`` for ``"matching"``.
        timer: e.g. a synchronising ``time.perf_counter``; if given, stage times are recorded.
    """
    times: Dict[str, float] = {}
    clock = [timer() if timer else 0.0]

    def lap(name: str) -> None:
        if timer:
            now = timer()
            times[name] = now - clock[0]
            clock[0] = now

    hough = hough_voting(heatmaps[None], offsets[None], stride, radius=keypoint_radius)[0]
    coords, scores, valid = detect_keypoints(hough, stride, keypoint_threshold, max_per_type=max_candidates)
    valid = suppress_duplicates(coords, scores, valid, keypoint_radius)
    lap("keypoint_detection")
    limb_scores, pair_valid = score_limbs(limb_heatmaps, coords, valid, limbs, stride)
    lap("limb_scoring")
    matches = associate_joints(limb_scores, pair_valid, scores, limbs, association, solver)
    lap("matching")
    poses, person_scores = group_people(matches, limb_scores, coords, scores, valid, limbs, min_joints)
    lap("grouping")
    # The pixel assignment builds [chunk, P, K] cost tensors; with hundreds of candidates P can
    # reach K * max_candidates / 2, so the chunk shrinks to keep them at ~ASSIGN_BUDGET entries.
    people_joints = max(1, poses.shape[0] * poses.shape[1])
    chunk = max(1, min(ASSIGN_CHUNK_SIZE, ASSIGN_BUDGET // people_joints))
    instance_map = assign_pixels(person_mask, dspf, poses, person_scores, stride, chunk_size=chunk)
    lap("pixel_assignment")
    return ParsedPeople(poses, person_scores, instance_map, times)
