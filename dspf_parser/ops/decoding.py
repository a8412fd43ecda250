"""From network maps to parsed people: the bottom-up inference of the paper (Sec. 3.3, Eq. 17).

Pure torch (no detectron2). :func:`decode_maps` is the one inference seam: the model, the oracle
evaluation (``tools/oracle_eval.py``), ``tools/benchmark.py`` and test-time augmentation all give
it the maps of one image (:class:`ParsingMaps`) and get the people back. It chains

Hough voting -> keypoint candidates (Hough peaks + DSPF-projected points) -> limb scoring ->
association (exact or differentiable matching, or a greedy baseline) -> head-to-foot grouping ->
pixel assignment (Eq. 17) on every pixel of the output image.

Every stage is batched over joint types, limbs and pixels.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .dspf_grouping import dspf_support, merge_people_by_dspf
from .grouping import complete_people, greedy_matching, group_people, join_fragments, rank_people
from .hough_voting import detect_keypoints, hough_voting
from .limb_scoring import score_limbs
from .matching import exact_matching, round_matching, solve_matching
from .orphans import adopt_skeletons, unexplained_regions
from .part_cleanup import absorb_weak_parts
from .pixel_assignment import assign_projections, square_tiles
from .sides import (SideLayout, chain_support, coinciding_mirrors, face_camera, orient_chains, person_facing,
                    resolve_part_sides)
from .targets import grid_footprint, sample_grid_at_pixels

__all__ = [
    "ASSOCIATIONS", "PERSON_SCORES", "DecodingSettings", "ParsingMaps", "ParsedPeople", "agree_with_labels",
    "associate_joints", "class_argmax", "class_max", "decode_maps", "dense_outputs", "dspf_candidates", "find_candidates", "part_labels", "sample_at_pixels",
    "suppress_duplicates",
]

ASSOCIATIONS = ("exact", "matching", "greedy_openpose", "greedy_personlab")
PERSON_SCORES = ("joints", "all_types", "joints_x_limbs")


@dataclass
class ParsingMaps:
    """What the network says about one image, on the stride-``s`` grid of its input.

    Probabilities (not logits), so that test-time augmentation can average maps.

    Attributes:
        part_probs: ``[C, hp, wp]`` part probabilities on the grid of stride ``part_stride``.
        dspf: ``[2, h, w]`` DSPF ``(dx, dy)`` in input pixels.
        heatmaps: ``[K, h, w]`` keypoint disk probabilities.
        offsets: ``[K, 2, h, w]`` keypoint offsets in input pixels.
        limb_heatmaps: ``[L, h, w]`` limb probabilities.
        part_stride: stride of ``part_probs`` (the heads' stride, or 1 for input-resolution
            part maps as the oracle gives them).
    """

    part_probs: Tensor
    dspf: Tensor
    heatmaps: Tensor
    offsets: Tensor
    limb_heatmaps: Tensor
    part_stride: int

    def map(self, fn: Callable[[Tensor], Tensor]) -> "ParsingMaps":
        """The maps with ``fn`` applied to every tensor (e.g. ``lambda t: t.to(device)``)."""
        return dataclasses.replace(self, **{f.name: fn(getattr(self, f.name))
                                             for f in dataclasses.fields(self) if f.name != "part_stride"})


@dataclass
class DecodingSettings:
    """Everything :func:`decode_maps` needs besides the maps (``MODEL.DSPF.INFERENCE``).

    Attributes:
        limbs: the ``L`` joint-type pairs, head to foot.
        stride: stride ``s`` of the maps' grid.
        keypoint_radius: disk radius of the keypoint targets (input px): normalises the votes.
        keypoint_threshold: minimal candidate score (about 1 for a perfect prediction).
        max_candidates: most candidates per joint type.
        association: one of :data:`ASSOCIATIONS` (default ``"exact"``).
        solver: relaxed matching solver ``(scores [B,N,M], valid) -> X`` for ``"matching"``.
        min_joints: people with fewer joints are dropped.
        duplicate_radius: a candidate closer than this (input px) to a better one of its type
            is dropped.
        dspf_candidates: also take the DSPF-projected points as candidates (those farther than
            ``keypoint_radius + stride`` from every Hough peak of their type).
        hough_min_vote: cells of keypoint confidence at or below this cast no Hough vote
            (sparse voting, :func:`hough_voting`); ``None``: every cell votes.
        limb_template_sigma: score limbs against the limb target of each pair (the targets'
            limb sigma, input px), or by the plain mean of the heatmap if ``None``
            (:func:`score_limbs`).
        limb_prune_below: only the pairs whose limb heatmap reads at least this at their
            midpoint get the full limb score, the others 0 (``None``: every pair;
            :func:`score_limbs`).
        min_limb_score: pairs whose limb score is not above this cannot be associated.
        person_score: how people are scored and ranked (:data:`PERSON_SCORES`): ``"joints"``
            the mean score of its joints (:func:`group_people`); ``"all_types"`` the joint scores
            summed over all ``K`` types / ``K`` (missing joints count 0); ``"joints_x_limbs"``
            the joint mean times the mean limb score of the limbs whose two joints it has
            (0 for none): a chain of spurious peaks joined by faint limb evidence ranks last.
            Eq. 17 always weighs people by their joint mean.
        min_person_score: people scoring at or below this are dropped.
        dspf_grouping: keep the candidates no pair placed as single-joint people and merge the
            people that the DSPF shows to be one (:func:`merge_people_by_dspf`) before
            ``min_joints`` applies.
        dspf_min_boundary, dspf_max_conflict: the merge criterion of
            :func:`merge_people_by_dspf` (touching neighbour pairs, share of conflicting cells).
            One touching pair is enough: a person cut by the image border can be one cell
            wide where its fragments meet (the conflicts still keep apart two people who touch;
            oracle, exact association, 2 -> 1: synthetic_humans_val pose AP 90.8 -> 92.1,
            AP^p_vol 83.3 -> 83.8; crowd split AP^p_50 85.1 -> 85.7, pose AP 89.0 -> 89.5;
            --degrade 1 val 79.2 -> 79.4, crowd 48.1 -> 48.8; --degrade 2 val 47.0 -> 44.6).
        dspf_duplicate_radius: people sharing a joint type still merge when each shared type's
            two joints are within this many ``keypoint_radius`` (a second peak of a joint; the
            ``duplicate_radius`` of :func:`merge_people_by_dspf`; 0: never).
        grouping_order: the order in which :func:`group_people` takes the matched pairs:
            ``"limb"`` (head to foot) or ``"score"`` (all limbs by decreasing limb score).
        fragment_min_cells: with ``dspf_grouping``, a person left with fewer than ``min_joints``
            joints after the DSPF merge is kept anyway when at least this many person cells of
            the grid project (DSPF) within ``keypoint_radius`` of its joints, their nearest
            decoded joint (:func:`dspf_support`): a person of whom only one or two joints are
            visible but whose body is (0: no such fragment is kept).
        fragment_score: the rank score of such a fragment is multiplied by this (and, without a
            limb, is its joint mean times this), so that it ranks below the whole people.
        grouping_confident_above: :func:`group_people` takes the matched pairs scoring at least
            this first, then the others (0: no such split).
        completeness_power: the rank score is multiplied by ``(joints / K) ** completeness_power``
            (``K`` joint types): partial people (halves of a split person, a mix of two, chains
            of spurious peaks) rank below whole ones. At 1 with ``"joints_x_limbs"`` the rank is
            the ``"all_types"`` score (PersonLab's) times the mean limb score. Eq. 17 still
            weighs people by their joint mean.
        support_power: the rank score is also multiplied by ``max(1, cells) ** support_power``,
            ``cells`` the person cells that the DSPF gives to the person (:func:`dspf_support`
            among the people of the DSPF merge, before ``min_joints`` and ``fragment_min_cells``
            drop any; about its area in cells): small people, whose masks are the least
            reliable, and people few cells point to rank lower.
        min_person_scale: floor (input px) of the person scale of Eq. 17
            (:func:`~dspf_parser.ops.pixel_assignment.person_scales`).
        pixel_assignment: where Eq. 17 reads the DSPF for the labelled pixels: ``"cells"`` at
            the grid cells, each pixel then taking the person of its bilinear footprint's person
            cells (:func:`_assign_by_cells`), or ``"pixels"`` at every pixel, the DSPF read
            bilinearly there (:func:`_assign_person_pixels`).
        sides: resolve left and right per person from the way it faces (:mod:`.sides`; not in
            the paper): its limb chains are oriented and its sided part pixels take the side of
            their Eq. 17 joint. ``None``: the part map's argmax and the grouped joints as they are.
        side_keep_ratio: with ``sides``, a pixel keeps its side when the part map prefers it
            by more than this factor (:func:`~dspf_parser.ops.sides.resolve_part_sides`).
        side_keep_support: with ``sides``, a limb chain whose left and right joints the keypoint
            maps tell apart this well keeps its sides (:func:`~dspf_parser.ops.sides.chain_support`).
        side_mirror_radius: with ``sides``, a person's two mirror joints (left and right ankle...)
            within this distance (input px) are one joint detected under both names, which
            cannot tell a side: the pixels whose Eq. 17 joint it is keep the part map's side
            (:func:`~dspf_parser.ops.sides.coinciding_mirrors`; 0: off).
        side_labels: what the maps' left and right mean: ``"anatomical"`` (the person's own, as
            annotated) or ``"camera"`` (the person's own if it faced the camera: the targets of
            ``MODEL.DSPF.SIDE_LABELS camera``); with ``"camera"`` the chains are oriented for a
            person facing the camera and people found facing away then exchange their sides
            (:func:`~dspf_parser.ops.sides.face_camera`). Needs ``sides``.
        small_part_fraction, small_part_confidence: a part region of a person with fewer
            pixels than this share of the person's and a mean top probability below
            ``small_part_confidence`` takes the person's other classes
            (:func:`~dspf_parser.ops.part_cleanup.absorb_weak_parts`; 0: off).
        share_min_limb_score: a person missing a joint type takes a candidate of that type, even
            one another person holds, whose limb scores with all of its adjacent joints reach
            this (:func:`~dspf_parser.ops.grouping.complete_people`; 0: off). Such joints are in
            the poses but claim no pixel in Eq. 17 (they are another person's too).
        completion_threshold: with ``share_min_limb_score``, the Hough peaks scoring above this
            but not above ``keypoint_threshold`` are weak candidates: the matching and the
            grouping never see them, but :func:`~dspf_parser.ops.grouping.complete_people` may
            give one to a person missing its type (a joint the keypoint maps barely show, such
            as a knee on a straight leg), as a joint that claims no pixel
            (:func:`find_candidates`; 0: off).
        part_confidence_power: after Eq. 17 the rank scores are multiplied by ``conf **
            part_confidence_power``, ``conf`` the mean top part probability over the person's
            pixels, and the people re-ranked (0: off): a person whose part labels the part map is
            unsure of ranks lower (exact, one-hot part maps give every person 1).
        join_fragments: with ``share_min_limb_score``, a kept fragment (fewer than ``min_joints``
            joints) that holds, after the completion, a candidate that a whole person holds and
            no type that person has with another candidate joins that person
            (:func:`~dspf_parser.ops.grouping.join_fragments`): the limb below a shared shoulder.
        orphan_min_cells, orphan_distance, orphan_min_spread: after Eq. 17, a 4-connected
            region of at least ``orphan_min_cells`` person cells whose DSPF projections all land
            farther than ``orphan_distance * keypoint_radius`` from every joint of the person
            that took them, and spread at least ``orphan_min_spread * keypoint_radius`` about
            their mean, becomes a person of its own, ranked below every decoded person
            (:func:`~dspf_parser.ops.orphans.unexplained_regions`; 0 cells: off). Its skeleton is
            the fragment dropped for ``fragment_min_cells`` that most of its projections land on,
            if one does (:func:`~dspf_parser.ops.orphans.adopt_skeletons`), none otherwise.
    """

    limbs: Sequence[Tuple[int, int]]
    stride: int
    keypoint_radius: float
    keypoint_threshold: float = 0.3
    max_candidates: int = 100
    association: str = "exact"
    solver: Optional[Callable[[Tensor, Tensor], Tensor]] = None
    min_joints: int = 3
    duplicate_radius: float = 4.0
    dspf_candidates: bool = True
    hough_min_vote: Optional[float] = 0.01
    limb_template_sigma: Optional[float] = None
    limb_prune_below: Optional[float] = None
    min_limb_score: float = 0.0
    person_score: str = "joints_x_limbs"
    min_person_score: float = 0.0
    dspf_grouping: bool = True
    dspf_min_boundary: float = 1.0
    dspf_max_conflict: float = 0.02
    dspf_duplicate_radius: float = 3.0
    grouping_order: str = "limb"
    fragment_min_cells: int = 0
    fragment_score: float = 0.2
    grouping_confident_above: float = 0.0
    completeness_power: float = 0.0
    support_power: float = 0.0
    min_person_scale: float = 1.0
    pixel_assignment: str = "cells"
    sides: Optional[SideLayout] = None
    side_keep_ratio: float = 50.0
    side_keep_support: float = 0.5
    side_mirror_radius: float = 0.0
    side_labels: str = "anatomical"
    small_part_fraction: float = 0.0
    small_part_confidence: float = 0.8
    share_min_limb_score: float = 0.0
    completion_threshold: float = 0.0
    join_fragments: bool = True
    part_confidence_power: float = 0.0
    orphan_min_cells: int = 0
    orphan_distance: float = 6.0
    orphan_min_spread: float = 1.0

    def __post_init__(self) -> None:
        if self.pixel_assignment not in ("cells", "pixels"):
            raise ValueError("pixel_assignment (MODEL.DSPF.INFERENCE.PIXEL_ASSIGNMENT) must be 'cells' or "
                             f"'pixels', got {self.pixel_assignment!r}")
        if self.side_labels not in ("anatomical", "camera"):
            raise ValueError(f"side_labels must be 'anatomical' or 'camera', got {self.side_labels!r}")
        if self.side_labels == "camera" and self.sides is None:
            raise ValueError("side_labels='camera' needs the schema's SideLayout in sides (the people facing "
                             "away must be given back their own sides)")


@dataclass
class ParsedPeople:
    """People found in one image, in the frame of the output image (``H' x W'``).

    Attributes:
        poses: ``[P, K, 3]`` ``(x, y, score)`` in output pixels, all 0 for a missing joint.
        scores: ``[P]`` person scores (:attr:`DecodingSettings.person_score`), decreasing.
        instance_map: ``[H', W']`` long, 0 background, ``p + 1`` for person ``p``.
        part_labels: ``[H', W']`` long part label of every pixel (:func:`part_labels`; the
            part probabilities and DSPF at every output pixel are :func:`dense_outputs`).
        stage_seconds: wall time of each stage (filled only when ``timer`` is given).
        shared_joints: ``[P, K]`` bool, the joints a person took from a candidate it may share
            with someone else (:attr:`DecodingSettings.share_min_limb_score`); they claim no
            pixel in Eq. 17.
        pose_scores: ``[P]`` the people's scores as skeletons: ``scores`` before the part
            confidence (:attr:`DecodingSettings.part_confidence_power`), which ranks masks, not
            poses (equal to ``scores`` when it is off).
    """

    poses: Tensor
    scores: Tensor
    instance_map: Tensor
    part_labels: Tensor
    stage_seconds: Dict[str, float]
    shared_joints: Tensor
    pose_scores: Tensor


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


def dspf_candidates(
    hough: Tensor, dspf: Tensor, person: Tensor, stride: int, threshold: float, radius: float
) -> Tuple[Tensor, Tensor]:
    """Keypoint candidates from the DSPF (paper Sec. 3.3): where person pixels project to.

    Every person cell ``q`` of the grid (``person``) projects to ``q + dspf(q)``; the projections
    are splatted into a density map (:func:`hough_voting` with weight 1), whose local maxima
    (3x3) receiving at least ``pi * (radius / (2 s))^2`` cells' worth of projections (a quarter
    of a keypoint disk) are the projected points. Each is refined to its 3x3 centroid and scored
    for every joint type by the Hough votes of that type on the 2x2 cells around it (where a
    vote cast exactly at the point lands; the 3x3 window of the Hough peaks' scores would also
    count a neighbouring joint's votes); a (point, type) pair with ``score > threshold`` is a
    candidate.

    Args:
        hough: ``[K, h, w]`` Hough maps (normalised by the disk radius).
        dspf: ``[2, h, w]`` DSPF in input pixels.
        person: ``[h, w]`` bool person cells.
        stride, threshold, radius: grid stride, minimal score, keypoint disk radius (input px).

    Returns:
        ``coords`` ``[K, M, 2]`` (input pixels) and ``scores`` ``[K, M]`` (0 where a point is not
        a candidate of that type), ``M`` projected points.
    """
    num_types = hough.shape[0]
    density = hough_voting(person[None, None].to(hough.dtype), dspf[None, None], stride, min_vote=0.0)[0]  # person cells vote
    min_mass = torch.pi * (radius / (2 * stride)) ** 2
    points, _, found = detect_keypoints(density, stride, min_mass, max_per_type=density[0].numel())
    points = points[0][found[0]]  # [M, 2]
    if points.shape[0] == 0:
        return hough.new_zeros(num_types, 0, 2), hough.new_zeros(num_types, 0)
    # Vote mass of each type on the 2x2 cells around the point: where a vote cast exactly at the
    # point is splatted (a wider window would also count a neighbouring joint's votes).
    h, w = hough.shape[-2:]
    grid = (points - stride // 2) / stride
    x0, y0 = grid[:, 0].floor().long(), grid[:, 1].floor().long()
    scores = hough.new_zeros(num_types, points.shape[0])
    for dy in (0, 1):
        for dx in (0, 1):
            x, y = x0 + dx, y0 + dy
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            scores += hough[:, y.clamp(0, h - 1), x.clamp(0, w - 1)] * inside
    scores = torch.where(scores > threshold, scores, torch.zeros_like(scores))
    return points[None].expand(num_types, -1, -1), scores


def _near_candidate(points: Tensor, kind: Tensor, coords: Tensor, valid: Tensor, radius: float) -> Tensor:
    """``[E]`` bool: whether a candidate (``coords`` ``[K, N, 2]``, ``valid`` ``[K, N]``) of type
    ``kind[e]`` lies closer than ``radius`` to ``points[e]`` (``points`` ``[E, 2]``)."""
    dx = points[:, :1] - coords[..., 0].index_select(0, kind)  # [E, N]
    dy = points[:, 1:] - coords[..., 1].index_select(0, kind)
    return ((dx * dx + dy * dy < radius * radius) & valid.index_select(0, kind)).any(dim=1)


def _merge_candidates(
    coords: Tensor, scores: Tensor, valid: Tensor, extra_coords: Tensor, extra_scores: Tensor,
    radius: float, max_candidates: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Add the extra candidates ``[K, M]`` (score 0 = none) that lie farther than ``radius`` from
    every candidate of their type; per type the ``max_candidates`` best are kept, sorted by
    decreasing score, padded to the longest row."""
    if extra_coords.shape[1] == 0:
        return coords, scores, valid
    kind, point = (extra_scores > 0).nonzero(as_tuple=True)  # the (type, point) candidates, [E]
    far = ~_near_candidate(extra_coords[kind, point], kind, coords, valid, radius)
    new = torch.zeros(extra_scores.shape, dtype=torch.bool, device=extra_scores.device)
    new[kind[far], point[far]] = True
    all_coords = torch.cat([coords, extra_coords], dim=1)
    all_valid = torch.cat([valid, new], dim=1)
    all_scores = torch.where(all_valid, torch.cat([scores, extra_scores], dim=1), torch.zeros(()))
    key = torch.where(all_valid, all_scores, torch.full_like(all_scores, -1.0))
    num = min(max_candidates, int(all_valid.sum(dim=1).max()))
    top, order = key.topk(num, dim=1)
    keep = top >= 0
    coords = all_coords.gather(1, order[..., None].expand(-1, -1, 2)) * keep[..., None]
    return coords, torch.where(keep, top, torch.zeros_like(top)), keep


def associate_joints(
    limb_scores: Tensor,
    pair_valid: Tensor,
    joint_scores: Tensor,
    limbs: Sequence[Tuple[int, int]],
    method: str,
    solver: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
) -> Tensor:
    """Integral matchings ``[L, N, N]`` of the candidates of every limb, all limbs at once.

    ``method``: ``"exact"`` solves each limb's maximum-weight matching exactly
    (:func:`exact_matching`, the integral optimum the LP relaxation converges to);
    ``"matching"`` rounds the relaxed LP solution of ``solver`` (default
    :func:`solve_matching`, the paper's differentiable layer); ``"greedy_openpose"`` / ``"greedy_personlab"`` are the greedy
    baselines of the paper's Table 5 (:func:`greedy_matching`).
    """
    if method == "exact":
        return exact_matching(limb_scores, pair_valid)
    if method == "matching":
        solve = solver if solver is not None else solve_matching
        return round_matching(solve(limb_scores, pair_valid), pair_valid)
    if method == "greedy_openpose":
        return greedy_matching(limb_scores, pair_valid, "openpose")
    if method == "greedy_personlab":
        parents = joint_scores[[a for a, _ in limbs]] if len(limbs) else joint_scores[:0]
        return greedy_matching(limb_scores, pair_valid, "personlab", parent_scores=parents)
    raise ValueError(f"unknown association {method!r}; expected one of {ASSOCIATIONS}")


def dense_outputs(
    maps: ParsingMaps, stride: int, input_size: Tuple[int, int], output_size: Tuple[int, int]
) -> Tuple[Tensor, Tensor]:
    """Part probabilities ``[C, H', W']`` and DSPF ``[2, H', W']`` (output pixels) at every pixel
    of the output image, by :func:`sample_grid_at_pixels` (the grid convention of the targets).
    """
    part_probs = sample_grid_at_pixels(maps.part_probs, maps.part_stride, input_size, output_size)
    dspf = sample_grid_at_pixels(maps.dspf, stride, input_size, output_size)
    scale = dspf.new_tensor([output_size[1] / input_size[1], output_size[0] / input_size[0]])
    return part_probs, dspf * scale.view(2, 1, 1)


def _bilinear(values: Tensor, fx: Tensor, fy: Tensor) -> Tensor:
    """Bilinear value from the corner values ``[..., 4, N]`` (order ``(y0, x0), (y0, x1), (y1, x0),
    (y1, x1)``) and the fractions ``fx``, ``fy`` ``[N]``: non-decreasing in every corner value,
    also in floating point (non-negative weights, rounding is monotone)."""
    top = values[..., 0, :] * (1 - fx) + values[..., 1, :] * fx
    bottom = values[..., 2, :] * (1 - fx) + values[..., 3, :] * fx
    return top * (1 - fy) + bottom * fy


def _pixel_footprints(pixels: Tensor, grid_size: Tuple[int, int], stride: int, input_size: Tuple[int, int],
                      output_size: Tuple[int, int], dtype: torch.dtype) -> Tuple[Tensor, Tensor, Tensor]:
    """Flat grid cells ``[4, N]`` (order of :func:`_bilinear`) and fractions ``fx``, ``fy`` ``[N]``
    of the output pixels ``pixels`` (flat indices ``[N]`` of the ``H' x W'`` image) on the
    stride-``s`` grid ``grid_size = (h, w)`` (:func:`grid_footprint`)."""
    (h, w), (out_h, out_w) = grid_size, output_size
    x0, x1, fx = grid_footprint(out_w, input_size[1], w, stride, pixels.device, dtype)
    y0, y1, fy = grid_footprint(out_h, input_size[0], h, stride, pixels.device, dtype)
    rows, cols = pixels // out_w, pixels % out_w
    # index_select: CPU advanced indexing is several times slower for these 1-D gathers.
    r0, r1 = y0.index_select(0, rows) * w, y1.index_select(0, rows) * w
    c0, c1 = x0.index_select(0, cols), x1.index_select(0, cols)
    return torch.stack([r0 + c0, r0 + c1, r1 + c0, r1 + c1]), fx.index_select(0, cols), fy.index_select(0, rows)


def class_argmax(probs: Tensor) -> Tensor:
    """``probs.argmax(0)`` of ``[C, h, w]`` (ties to the lower class) as ``probs.max(0)``'s
    indices, which are the first maximum's as well: CPU ``argmax`` over a leading dimension
    is about 3x slower for 59 classes on a 128 x 128 grid. A cell with a NaN probability gets
    class 0 (background)."""
    return class_max(probs)[1]


def class_max(probs: Tensor) -> Tuple[Tensor, Tensor]:
    """The top probability ``[h, w]`` of ``probs`` ``[C, h, w]`` (0 where a value is NaN) and its
    class, :func:`class_argmax`, from one reduction."""
    values, first = probs.max(dim=0)
    nan = values.isnan()
    return torch.where(nan, torch.zeros_like(values), values), torch.where(nan, torch.zeros_like(first), first)


def _compact(indices: Tensor, size: int) -> Tuple[Tensor, Tensor]:
    """The distinct values of ``indices`` (any shape, in ``[0, size)``) in increasing order
    ``[M]``, and ``[size]`` the row of each value among them (0 for the values not present):
    ``unique[row_of[indices]] == indices``. Without ``torch.unique``'s sort."""
    present = torch.zeros(size, dtype=torch.bool, device=indices.device)
    present[indices.reshape(-1)] = True
    unique = present.nonzero().squeeze(1)
    row_of = torch.zeros(size, dtype=torch.long, device=indices.device)
    row_of[unique] = torch.arange(unique.numel(), device=indices.device)
    return unique, row_of


def _quad_corners(quads: Tensor, grid_size: Tuple[int, int]) -> Tensor:
    """The four cells ``[4, Q]`` (order of :func:`_bilinear`) of the quads whose top-left cells are
    ``quads`` (flat indices ``[Q]`` of the ``h x w`` grid): ``(i, j)``, ``(i, j + 1)``, ``(i + 1,
    j)``, ``(i + 1, j + 1)``, clamped to the grid as :func:`grid_footprint` clamps."""
    h, w = grid_size
    qi, qj = quads // w, quads % w
    right, below = (qj + 1).clamp(max=w - 1), (qi + 1).clamp(max=h - 1)
    return torch.stack([qi * w + qj, qi * w + right, below * w + qj, below * w + right])


def part_labels(part_grid: Tensor, part_stride: int, input_size: Tuple[int, int], output_size: Tuple[int, int],
                grid_labels: Optional[Tensor] = None) -> Tensor:
    """Part label of every pixel of the output image: the argmax over the ``C`` classes of the
    bilinear interpolation of ``part_grid`` ``[C, hp, wp]`` (the reading of
    :func:`grid_footprint`; ties to the lower class), without interpolating all ``C`` classes
    at every pixel.

    * Where the four grid cells of a pixel's bilinear footprint share their argmax ``c``, the
      pixel's label is ``c`` (every other class reads at most ``c``'s value at each cell, so at
      most ``c``'s interpolated value; a class tied at every cell has a higher index).
    * Elsewhere (part boundaries) the four cells' argmaxes are interpolated; every other class
      reads at most the cell's second-best value, so when the best of them beats the
      interpolation of the second-best values, it is the label; otherwise (near ties) all ``C``
      classes are interpolated for that pixel.

    The result equals ``sample_grid_at_pixels(part_grid, ...).argmax(0)`` (which interpolates
    with ``grid_sample``) except where that map's two best classes are within float rounding.

    Args:
        part_grid: ``[C, hp, wp]`` part probabilities on the stride-``part_stride`` grid.
        part_stride, input_size, output_size: grid stride, ``(H, W)`` input and ``(H', W')`` output.
        grid_labels: ``part_grid.argmax(0)`` if already computed.

    Returns:
        ``[H', W']`` long labels.
    """
    num_classes, hp, wp = part_grid.shape
    out_h, out_w = output_size
    if num_classes == 0 or out_h == 0 or out_w == 0:
        return torch.zeros(out_h, out_w, dtype=torch.long, device=part_grid.device)
    dtype = part_grid.dtype if part_grid.is_floating_point() else torch.float32
    label = class_argmax(part_grid) if grid_labels is None else grid_labels  # [hp, wp]
    x0, x1, fx = grid_footprint(out_w, input_size[1], wp, part_stride, part_grid.device, dtype)
    y0, y1, fy = grid_footprint(out_h, input_size[0], hp, part_stride, part_grid.device, dtype)
    # Quads: the 4 cells (i, j), (i, j + 1), (i + 1, j), (i + 1, j + 1) (clamped) of every cell
    # as top-left corner; a pixel reads the quad of (y0, x0). Decided quads share one label.
    small = label.to(torch.int16 if num_classes > 255 else torch.uint8)
    right = torch.arange(wp, device=label.device).add(1).clamp(max=wp - 1)
    below = torch.arange(hp, device=label.device).add(1).clamp(max=hp - 1)
    low = torch.minimum(small, small[:, right])
    high = torch.maximum(small, small[:, right])
    low, high = torch.minimum(low, low[below]), torch.maximum(high, high[below])  # [hp, wp]
    quad_label = torch.where(low == high, low.long(), torch.full_like(label, -1))
    # Columns first: gathering along dim 1 costs per element, along dim 0 per row. One spare row
    # (pixel ``spare``) takes the writes of the padding below.
    spare = out_h * out_w
    rows_and_spare = torch.cat([y0, y0[:1]])
    labels = quad_label.index_select(1, x0).index_select(0, rows_and_spare).reshape(-1)  # -1 in the band
    quads = (quad_label.reshape(-1) < 0).nonzero().squeeze(1)  # [Q] the band's quads
    if quads.numel() == 0:
        return labels[:spare].view(out_h, out_w)
    # Per band quad: its corner cells, their argmaxes (the candidates) and every candidate's
    # values at the corners, and the corners' second-best values.
    corners = _quad_corners(quads, (hp, wp))  # [4, Q]
    flat = part_grid.reshape(num_classes, -1).to(dtype)
    cand = label.reshape(-1)[corners].sort(dim=0).values  # [4, Q]: the corners' argmaxes, ascending
    table = flat.reshape(-1).index_select(0, (cand[:, None] * (hp * wp) + corners[None]).reshape(-1))
    # Second-best values at the corner cells only (the whole grid's cost as much as the rest).
    cells, _ = _compact(corners, hp * wp)  # [M]
    others = flat.index_select(1, cells)  # [C, M]
    others[label.reshape(-1).index_select(0, cells), torch.arange(cells.numel(), device=label.device)] = -math.inf
    runner_up = torch.empty(hp * wp, dtype=dtype, device=label.device)
    runner_up[cells] = others.amax(dim=0)
    table = torch.cat([table.view(4, 4, -1), runner_up[corners][None]])  # [5, 4 corners, Q]: row 4 the bound's
    # A quad's pixels are a block of rows x columns (those whose top-left cell is the quad's):
    # its 5 rows interpolated once per column, then per row (:func:`_bilinear`'s arithmetic),
    # padded blocks ``[By, Bx, Q]`` (the quads last, contiguous); padding writes to a spare slot.
    rows, row_ok = _quad_block(y0, quads // wp, hp)  # [By, Q]
    cols, col_ok = _quad_block(x0, quads % wp, wp)  # [Bx, Q]
    gx, gy = fx[cols], fy[rows][:, None]  # [Bx, Q], [By, 1, Q]
    top = table[:, 0, None] * (1 - gx) + table[:, 1, None] * gx  # [5, Bx, Q]
    bottom = table[:, 2, None] * (1 - gx) + table[:, 3, None] * gx
    value = (top[:, None] * (1 - gy) + bottom[:, None] * gy).view(5, -1, quads.numel())  # [5, By Bx, Q]
    band = torch.where(row_ok[:, None] & col_ok[None], rows[:, None] * out_w + cols[None], spare).reshape(-1)
    # Element-wise over the 4 candidate rows (CPU reductions over a leading dim of 4 are slow):
    # the candidates ascend, so a later row wins only by a strictly larger value (ties to the
    # lower class).
    best, winner = value[0], cand[0].expand_as(value[0])  # [By Bx, Q]
    for k in (1, 2, 3):
        better = value[k] > best
        best = torch.where(better, value[k], best)
        winner = torch.where(better, cand[k], winner)
    winner = winner.reshape(-1)
    close = ((best.reshape(-1) <= value[4].reshape(-1)) & (band < spare)).nonzero().squeeze(1)  # -inf bound: one class
    if close.numel():  # near ties: every class
        pixel = band[close]
        quad = close % quads.numel()
        at = corners.index_select(1, quad).reshape(-1)  # flat gathers, and max(0)'s first index
        every = _bilinear(flat.index_select(1, at).view(num_classes, 4, -1),
                          fx.index_select(0, pixel % out_w), fy.index_select(0, pixel // out_w))  # [C, Nc]
        winner[close] = every.max(dim=0).indices
    labels[band] = winner
    return labels[:spare].view(out_h, out_w)


def _quad_block(low: Tensor, index: Tensor, n_grid: int) -> Tuple[Tensor, Tensor]:
    """The output pixels of one axis whose footprint starts at grid index ``index`` ``[Q]``:
    ``low`` ``[n_out]`` is :func:`grid_footprint`'s ``i0`` (non-decreasing), so those pixels are
    a run; returns them padded to the longest run, ``[B, Q]`` (clamped to the axis), and which
    are real ``[B, Q]`` bool. One host sync (the longest run)."""
    count = torch.bincount(low, minlength=n_grid)
    first = (count.cumsum(0) - count).index_select(0, index)
    count = count.index_select(0, index)
    width = int(count.max()) if index.numel() else 0
    step = torch.arange(width, device=low.device)[:, None]
    return (first + step).clamp(max=max(low.numel() - 1, 0)), step < count


def sample_at_pixels(grid: Tensor, stride: int, pixels: Tensor, input_size: Tuple[int, int],
                     output_size: Tuple[int, int]) -> Tensor:
    """Bilinear values ``[C, N]`` of the stride-``s`` grid maps ``grid`` ``[C, h, w]`` at the output
    pixels ``pixels`` (flat indices ``[N]`` of the ``H' x W'`` image): the columns of
    :func:`sample_grid_at_pixels` at those pixels (same reading, :func:`grid_footprint`)."""
    cells, fx, fy = _pixel_footprints(pixels, tuple(grid.shape[-2:]), stride, input_size, output_size, grid.dtype)
    values = grid.reshape(grid.shape[0], -1).index_select(1, cells.reshape(-1)).view(grid.shape[0], *cells.shape)
    return _bilinear(values, fx, fy)


def _output_length(input_size: Tuple[int, int], output_size: Tuple[int, int]) -> float:
    """Output pixels per input pixel of a length (radius, scale): the geometric mean of the two
    axes' factors of :func:`_output_px`."""
    return math.sqrt(output_size[0] * output_size[1] / (input_size[0] * input_size[1]))


def _output_px(xy: Tensor, input_size: Tuple[int, int], output_size: Tuple[int, int]) -> Tensor:
    """Points ``[..., 2]`` ``(x, y)`` from input to output pixel-index coordinates (same field of
    view: ``x' = (x + 0.5) W' / W - 0.5``)."""
    scale = xy.new_tensor([output_size[1] / input_size[1], output_size[0] / input_size[0]])
    return (xy + 0.5) * scale - 0.5


def _to_output_frame(poses: Tensor, input_size: Tuple[int, int], output_size: Tuple[int, int]) -> Tensor:
    """Joints ``[P, K, 3]`` from input to output pixel-index coordinates (missing joints stay 0)."""
    present = poses[..., 2:] > 0
    out = poses.clone()
    out[..., :2] = torch.where(present, _output_px(poses[..., :2], input_size, output_size), poses[..., :2])
    return out


def find_candidates(maps: ParsingMaps, settings: DecodingSettings, person_cells: Optional[Tensor] = None,
                    return_weak: bool = False):
    """Keypoint candidates of one image (the ``keypoint_detection`` stage of :func:`decode_maps`):
    Hough peaks, duplicates suppressed, merged with the DSPF-projected points if enabled.
    ``person_cells``: the ``[h, w]`` person cells of the grid if already computed.

    With ``return_weak``, ``0 < settings.completion_threshold < settings.keypoint_threshold`` and
    ``settings.share_min_limb_score`` (their only user, :func:`complete_people`) the peaks
    scoring above ``completion_threshold`` but not above ``keypoint_threshold`` (after the same
    duplicate suppression, at most ``max_candidates`` peaks per type in all) are also
    returned, as columns appended after the candidates and flagged by ``weak``, except those
    within a keypoint disk plus one cell of a candidate of their type (its shadow). The
    candidates themselves (their columns, order and padding) are those found without them.

    Returns:
        ``coords`` ``[K, N, 2]`` (input pixels), ``scores`` ``[K, N]``, ``valid`` ``[K, N]`` bool,
        and with ``return_weak`` ``weak`` ``[K, N]`` bool (disjoint from ``valid``; all False
        when the weak candidates are off or none is found, and then no column is appended).
    """
    s = settings
    hough = hough_voting(maps.heatmaps[None], maps.offsets[None], s.stride, radius=s.keypoint_radius,
                         min_vote=s.hough_min_vote)[0]
    with_weak = return_weak and 0 < s.completion_threshold < s.keypoint_threshold and s.share_min_limb_score > 0
    low = s.completion_threshold if with_weak else s.keypoint_threshold
    coords, scores, valid = detect_keypoints(hough, s.stride, low, max_per_type=s.max_candidates)
    peaks = valid  # before the duplicate suppression
    valid = suppress_duplicates(coords, scores, valid, s.duplicate_radius)
    if with_weak:
        # The peaks are sorted by decreasing score: the candidates are a prefix of every row,
        # those the detection at keypoint_threshold alone returns (a peak is only suppressed by a
        # better one); the columns after the longest prefix and the weak entries inside it are
        # that detection's padding.
        strong = scores > s.keypoint_threshold
        weak_coords, weak_scores, weak = coords, scores, valid & ~strong
        width = int((peaks & strong).sum(dim=1).max()) if strong.numel() else 0
        keep = strong[:, :width]
        coords, scores = coords[:, :width] * keep[..., None], scores[:, :width] * keep
        valid = valid[:, :width] & keep
    if s.dspf_candidates:
        person_cells = _grid_person(maps, s.stride) if person_cells is None else person_cells
        extra_coords, extra_scores = dspf_candidates(hough, maps.dspf, person_cells, s.stride,
                                                     s.keypoint_threshold, s.keypoint_radius)
        # A projected point only adds a joint the Hough peaks missed: it must lie farther than
        # a keypoint disk plus one cell from every peak of its type (the 3x3 centroid of the
        # projections of small people, with joints a few pixels apart, lands up to ~7 px from
        # the joint; merged at DUPLICATE_RADIUS it came back as a duplicate joint).
        coords, scores, valid = _merge_candidates(coords, scores, valid, extra_coords, extra_scores,
                                                  s.keypoint_radius + s.stride, s.max_candidates)
    if not return_weak:
        return coords, scores, valid
    if not with_weak:
        return coords, scores, valid, torch.zeros_like(valid)
    # A weak peak within a keypoint disk plus one cell of a candidate of its type is its shadow.
    kind, column = weak.nonzero(as_tuple=True)  # [E]
    shadow = _near_candidate(weak_coords[kind, column], kind, coords, valid, s.keypoint_radius + s.stride)
    weak = weak.index_put((kind[shadow], column[shadow]), torch.zeros((), dtype=torch.bool, device=weak.device))
    weak_width = int(weak.sum(dim=1).max()) if weak.numel() else 0  # one host sync: the columns to append
    if weak_width == 0:
        return coords, scores, valid, torch.zeros_like(valid)
    top, order = torch.where(weak, weak_scores, torch.full_like(weak_scores, -1.0)).topk(weak_width, dim=1)
    keep = top > 0  # the weak peaks of each type, by decreasing score, padded
    weak_coords = weak_coords.gather(1, order[..., None].expand(-1, -1, 2)) * keep[..., None]
    weak_scores = torch.where(keep, top, torch.zeros_like(top))
    return (torch.cat([coords, weak_coords], dim=1), torch.cat([scores, weak_scores], dim=1),
            torch.cat([valid, torch.zeros_like(keep)], dim=1), torch.cat([torch.zeros_like(valid), keep], dim=1))


def decode_maps(
    maps: ParsingMaps,
    input_size: Tuple[int, int],
    output_size: Tuple[int, int],
    settings: DecodingSettings,
    timer: Optional[Callable[[], float]] = None,
) -> ParsedPeople:
    """Parse the people of one image from its maps: the inference seam.

    Args:
        maps: the image's maps, cropped to its grid ``ceil(H / s) x ceil(W / s)``.
        input_size: ``(H, W)`` of the network input.
        output_size: ``(H', W')`` of the output image (same field of view).
        settings: decoding settings.
        timer: e.g. a synchronising ``time.perf_counter``; if given, stage times are recorded
            (``keypoint_detection``, ``limb_scoring``, ``matching``, ``grouping``,
            ``pixel_assignment``).

    Returns:
        :class:`ParsedPeople` in the output frame; every pixel whose part label is not
        background goes to a person whenever at least one person was found.

    Host synchronisation (CUDA): none per pixel, per candidate pair or per PGD iteration; per
    image a fixed number of small ones, each reading one size that the next tensor's shape
    depends on: the candidate count (``detect_keypoints``, ``_merge_candidates``; with
    ``completion_threshold`` also their count among the weaker peaks and whether a weak
    candidate is left, :func:`find_candidates`, read again here), the DSPF
    points found (boolean index in :func:`dspf_candidates`), the three stages' surviving pair
    counts when limb pruning is on, the bucket grid's size and its (point, site) pair count in
    :func:`~dspf_parser.ops.dspf_grouping.nearest_within`, the person pixels (and with
    ``pixel_assignment="cells"`` their footprints' cells, the pixels whose label no footprint
    cell carries and those of them that find it nearby) and the candidate (tile, person) and
    (tile, joint) lists of :func:`assign_projections` (its tile-candidate width), the band
    pixels and their cells of :func:`part_labels`. Two are by design: ``"exact"`` copies the
    ``[L, N, N]`` scores to the host once (scipy runs on the CPU) and :func:`group_people`
    walks the matched edges (about people x limbs) on the host, a union of growing people in
    limb order, and :func:`merge_people_by_dspf` reads its people-pair counts to merge them (a
    union-find over at most people^2 pairs); ``"matching"`` adds one sync per convergence check
    (every ``CHECK_EVERY`` iterations) and one per rounding round. With
    ``orphan_min_cells`` the unexplained-cell mask ``[h, w]`` goes to the host once for its
    connected regions (``scipy.ndimage.label``), and its region count is read. ``tools/benchmark.py --device
    cuda`` times every stage with ``torch.cuda.synchronize``.
    """
    s = settings
    times: Dict[str, float] = {}
    clock = [timer() if timer else 0.0]

    def lap(name: str) -> None:
        if timer:
            now = timer()
            times[name] = now - clock[0]
            clock[0] = now

    grid_top, grid_labels = class_max(maps.part_probs)  # [hp, wp] top probability and its class, shared by the stages
    person_cells = _grid_person(maps, s.stride, grid_labels)
    coords, scores, valid, weak = find_candidates(maps, s, person_cells, return_weak=True)
    detected = valid | weak  # the weak candidates are scored too, for complete_people
    lap("keypoint_detection")
    limb_scores, detected_pairs = score_limbs(maps.limb_heatmaps, coords, detected, s.limbs, s.stride,
                                              template_sigma=s.limb_template_sigma,
                                              prune_below=s.limb_prune_below)
    detected_pairs = detected_pairs & (limb_scores > s.min_limb_score)
    pair_valid = detected_pairs
    if bool(weak.any()):  # the pairs of two candidates only (one host sync)
        ends = torch.as_tensor(s.limbs, dtype=torch.long, device=valid.device).reshape(-1, 2)
        pair_valid = detected_pairs & valid[ends[:, 0]][:, :, None] & valid[ends[:, 1]][:, None, :]
    lap("limb_scoring")
    matches = associate_joints(limb_scores, pair_valid, scores, s.limbs, s.association, s.solver)
    lap("matching")
    all_types = s.person_score == "all_types"
    dropped = coords.new_zeros(0, valid.shape[0], 3)  # the fragments too few cells projected onto
    if not s.dspf_grouping:
        poses, person_scores = group_people(matches, limb_scores, coords, scores, valid, s.limbs, s.min_joints,
                                            all_types, order=s.grouping_order,
                                            confident_above=s.grouping_confident_above)
    else:
        poses, _ = group_people(matches, limb_scores, coords, scores, valid, s.limbs, 1, keep_unmatched=True,
                                order=s.grouping_order, confident_above=s.grouping_confident_above)
        poses, cells = merge_people_by_dspf(poses, person_cells, maps.dspf, s.stride, s.keypoint_radius,
                                            s.dspf_min_boundary, s.dspf_max_conflict,
                                            duplicate_radius=s.dspf_duplicate_radius * s.keypoint_radius,
                                            return_support=True)
        if s.fragment_min_cells > 0:  # fragments that enough person cells project onto stay
            few = (poses[..., 2] > 0).sum(dim=1) < s.min_joints
            kept = ~few | (cells >= s.fragment_min_cells)
            dropped, poses, cells = poses[~kept], poses[kept], cells[kept]
            poses, person_scores, index = rank_people(poses, 1, all_types, return_index=True)
        else:
            poses, person_scores, index = rank_people(poses, s.min_joints, all_types, return_index=True)
        cells = cells[index]
    few = (poses[..., 2] > 0).sum(dim=1) < s.min_joints  # kept fragments
    rank_scores = person_scores
    # Each joint's candidate and the associable pairs' scores, for the limb support and the shared joints.
    joint_ids, usable_scores = None, None
    if s.person_score == "joints_x_limbs" or s.share_min_limb_score > 0:
        joint_ids, usable_scores = _joint_ids(poses, coords, valid), limb_scores * detected_pairs  # [P, K], [L, N, N]
    if s.person_score == "joints_x_limbs":
        support = _limb_support(joint_ids, usable_scores, s.limbs)
        rank_scores = person_scores * torch.where(few & (support <= 0), torch.ones_like(support), support)
    rank_scores = torch.where(few, rank_scores * s.fragment_score, rank_scores)
    if s.completeness_power:
        complete = (poses[..., 2] > 0).sum(dim=1).to(rank_scores.dtype) / max(poses.shape[1], 1)
        rank_scores = rank_scores * complete ** s.completeness_power
    if s.support_power:
        if not s.dspf_grouping:
            cells = dspf_support(poses, person_cells, maps.dspf, s.stride, s.keypoint_radius)
        rank_scores = rank_scores * cells.clamp_min(1) ** s.support_power
    order = torch.argsort(-rank_scores, stable=True)
    poses, person_scores, rank_scores = poses[order], person_scores[order], rank_scores[order]
    keep = rank_scores > s.min_person_score
    poses, person_scores, rank_scores = poses[keep], person_scores[keep], rank_scores[keep]
    shared = torch.zeros(poses.shape[:2], dtype=torch.bool, device=poses.device)
    if s.share_min_limb_score > 0:
        poses, shared = complete_people(poses, joint_ids[order][keep], coords, scores, detected, usable_scores, s.limbs,
                                        s.share_min_limb_score)
        if s.join_fragments:
            kept, poses, shared = join_fragments(poses, _joint_ids(poses, coords, detected), shared, few[order][keep])
            person_scores, rank_scores = person_scores[kept], rank_scores[kept]
    support = chain_support(maps.heatmaps, poses, s.sides, s.stride) if s.sides is not None else None
    poses = _to_output_frame(poses, input_size, output_size)
    lap("grouping")
    labels = part_labels(maps.part_probs, maps.part_stride, input_size, output_size,
                         grid_labels if maps.part_stride == s.stride else None)
    claim = torch.where(shared[..., None], torch.zeros_like(poses), poses)  # shared joints claim no pixel
    if s.pixel_assignment == "cells":
        instance_map, pixels, joints = _assign_by_cells(labels, maps.dspf, claim, person_scores, s.stride,
                                                        input_size, person_cells, s.min_person_scale,
                                                        num_classes=maps.part_probs.shape[0])
    else:
        instance_map, pixels, joints = _assign_person_pixels(labels, maps.dspf, claim, person_scores, s.stride,
                                                             input_size, s.min_person_scale)
    if s.sides is not None and poses.shape[0] > 0:
        poses, labels, moved = _resolve_sides(maps, labels, instance_map, pixels, joints, poses, support, s,
                                              input_size)
        shared = shared.gather(1, moved)  # the shared joints under the types the sides gave them
    if s.small_part_fraction > 0 and poses.shape[0] > 0:
        labels = _absorb_weak_parts(maps, labels, instance_map, pixels, s, input_size)
    pose_scores = rank_scores
    if s.part_confidence_power and poses.shape[0] > 0:
        poses, rank_scores, pose_scores, instance_map, shared = _rank_by_part_confidence(
            maps, grid_top, instance_map, pixels, poses, rank_scores, shared, s.part_confidence_power, input_size)
    if s.orphan_min_cells > 0:
        poses, rank_scores, pose_scores, instance_map, shared = _add_orphans(
            maps, grid_top, person_cells, labels, instance_map, pixels, poses, rank_scores, pose_scores, shared, s,
            input_size, _to_output_frame(dropped, input_size, output_size))
    lap("pixel_assignment")
    return ParsedPeople(poses, rank_scores, instance_map, labels, times, shared, pose_scores)


def _assign_person_pixels(labels: Tensor, dspf: Tensor, poses: Tensor, person_scores: Tensor, stride: int,
                          input_size: Tuple[int, int], min_scale: float = 1.0,
                          tile: int = 16) -> Tuple[Tensor, Tensor, Tensor]:
    """Instance map ``[H', W']`` of Eq. 17 on every pixel whose part label ``labels`` ``[H', W']`` is
    not background, the DSPF ``[2, h, w]`` (input px) read at those pixels only
    (:func:`sample_at_pixels`, in output px) and the pixels tiled in ``tile x tile`` squares
    for :func:`assign_projections`; ``poses`` in the output frame, ``min_scale`` in input px.
    Also returns those pixels (flat indices ``[N]``) and the type ``[N]`` of each one's argmin
    joint."""
    out_h, out_w = labels.shape
    pixels = (labels.reshape(-1) > 0).nonzero().squeeze(1)
    scale = dspf.new_tensor([out_w / input_size[1], out_h / input_size[0]])
    vectors = sample_at_pixels(dspf, stride, pixels, input_size, (out_h, out_w)) * scale[:, None]  # [2, N]
    rows, cols = pixels // out_w, pixels % out_w
    targets = torch.stack([cols.to(dspf.dtype) + vectors[0], rows.to(dspf.dtype) + vectors[1]], dim=1)
    tiles, num_tiles = square_tiles(rows, cols, (out_h, out_w), tile)
    instance = torch.zeros(out_h * out_w, dtype=torch.long, device=labels.device)
    min_scale = min_scale * _output_length(input_size, (out_h, out_w))  # in output px
    instance[pixels], joints = assign_projections(targets, tiles, num_tiles, poses, person_scores,
                                                  min_scale=min_scale, return_joints=True)
    return instance.view(out_h, out_w), pixels, joints


def _cell_centre_pixels(grid_size: Tuple[int, int], stride: int, input_size: Tuple[int, int],
                        output_size: Tuple[int, int], device: torch.device, dtype: torch.dtype) -> Tensor:
    """Flat index ``[h * w]`` (row-major cells) of the output pixel nearest each grid cell's
    centre ``(j * s + s // 2, i * s + s // 2)`` (input px, taken to the output frame, rounded
    and clamped to the image)."""
    (h, w), (out_h, out_w) = grid_size, output_size
    centre = torch.arange(max(h, w), device=device, dtype=dtype) * stride + stride // 2
    centre_px = _output_px(torch.stack([centre, centre], dim=1), input_size, output_size).round_().long()
    rows, cols = centre_px[:h, 1].clamp_(0, out_h - 1), centre_px[:w, 0].clamp_(0, out_w - 1)
    return (rows[:, None] * out_w + cols).reshape(-1)


def _assign_by_cells(labels: Tensor, dspf: Tensor, poses: Tensor, person_scores: Tensor, stride: int,
                     input_size: Tuple[int, int], person_cells: Tensor, min_scale: float = 1.0,
                     tile: int = 8, num_classes: int = 64) -> Tuple[Tensor, Tensor, Tensor]:
    """Eq. 17 on the grid cells, then every labelled pixel takes the person of its bilinear
    footprint's cells (``DecodingSettings.pixel_assignment = "cells"``).

    Each cell ``c`` of the footprints of the pixels whose part label ``labels`` ``[H', W']`` is not
    background is given a person by Eq. 17 (:func:`assign_projections`) at its own projection
    ``c + dspf(c)`` (output frame). A cell's part label is ``labels`` at the output pixel nearest
    its centre. A pixel's four footprint cells (:func:`grid_footprint`) carry their bilinear
    weights, counted only over the person cells ``person_cells`` ``[h, w]`` when the footprint
    has one (all four otherwise), and then only over the cells whose part label is the pixel's,
    when there is one (each such cell weighs at least :data:`_SAME_LABEL_FLOOR`: a pixel on a row
    or column of cell centres gives the far corners bilinear weight 0, and a thin part's pixel on
    the edge of its region would otherwise follow the neighbour's cell it lies on); the pixel
    takes the person whose cells weigh most (ties: the first corner in the order of
    :func:`_bilinear`), and the type of its Eq. 17 joint at that cell. A pixel whose label none
    of its four cells carries (a hand or a sliver thinner than the grid) takes the person of the
    nearest cell of the ``4 x 4`` block around its footprint that carries it, if one does.
    Reading the DSPF bilinearly instead mixes, on the boundary between two people, vectors that
    point to two different joints, and the blend lands between them; a background cell's vector
    means nothing. A footprint is the quad of its top-left cell, so the work is per quad: where
    the four cells share one person (or none), every corner weighs the same and the pixel takes
    the first; only the pixels of mixed quads are weighed. ``tile``: the side (grid cells) of
    the squares that :func:`assign_projections` prunes by (8 was the fastest of 4, 8, 16 and 32
    on the 1-, 20- and 60-person scenes of ``tools/benchmark.py``; the result does not depend on
    it). ``num_classes``: more than the largest part label.

    Returns:
        the instance map ``[H', W']``, the labelled pixels (flat indices ``[N]``) and the joint
        type ``[N]`` of each one's person, as :func:`_assign_person_pixels`.
    """
    out_h, out_w = labels.shape
    h, w = dspf.shape[-2:]
    device, dtype = labels.device, dspf.dtype
    flat_labels = labels.reshape(-1)
    pixels = (flat_labels > 0).nonzero().squeeze(1)
    pixel_label = flat_labels.index_select(0, pixels)  # [N]
    x0, _, fx = grid_footprint(out_w, input_size[1], w, stride, device, dtype)
    y0, _, fy = grid_footprint(out_h, input_size[0], h, stride, device, dtype)
    rows, cols = pixels // out_w, pixels % out_w
    # A pixel's footprint is the quad of its top-left cell (y0, x0): work per distinct quad.
    top_left = y0.index_select(0, rows) * w + x0.index_select(0, cols)  # [N]
    quads, quad_row = _compact(top_left, h * w)  # [Q]
    at = quad_row.index_select(0, top_left)  # [N] the quad of each pixel
    corners = _quad_corners(quads, (h, w))  # [4, Q]
    # Part label of every grid cell: the label of the output pixel nearest its centre.
    grid_label = flat_labels.index_select(0, _cell_centre_pixels((h, w), stride, input_size, (out_h, out_w),
                                                                 device, dtype))  # [h * w]
    corner_label = grid_label.index_select(0, corners.reshape(-1)).view(4, -1)  # [4, Q]
    lacking = (~_carried(corner_label, at, pixel_label, num_classes)).nonzero().squeeze(1)
    block = _cell_block(top_left.index_select(0, lacking), (h, w))  # [16, n] cells around their footprints
    grid_cells, row_of = _compact(torch.cat([corners.reshape(-1), block.reshape(-1)]), h * w)  # [M] cells to assign
    ci, cj = grid_cells // w, grid_cells % w
    centres = torch.stack([cj, ci], dim=1).to(dtype) * stride + stride // 2  # input px, [M, 2]
    projections = centres + dspf.reshape(2, -1).index_select(1, grid_cells).t()
    targets = _output_px(projections, input_size, (out_h, out_w))  # [M, 2]
    tiles, num_tiles = square_tiles(ci, cj, (h, w), tile)
    min_scale = min_scale * _output_length(input_size, (out_h, out_w))  # in output px
    cell_owner, cell_joint = assign_projections(targets, tiles, num_tiles, poses, person_scores,
                                                min_scale=min_scale, return_joints=True)  # [M]
    corner_at = row_of.index_select(0, corners.reshape(-1))
    quad_owners = cell_owner.index_select(0, corner_at).view(4, -1)  # [4, Q]
    quad_joints = cell_joint.index_select(0, corner_at).view(4, -1)
    # Where the four corners share their person, every corner weighs the same: the first one.
    owner = quad_owners[0].index_select(0, at)  # [N]
    joint = quad_joints[0].index_select(0, at)
    mixed = (~(quad_owners == quad_owners[:1]).all(dim=0)).index_select(0, at).nonzero().squeeze(1)  # [n]
    if mixed.numel():
        quad = at.index_select(0, mixed)
        owners = quad_owners.index_select(1, quad)  # [4, n]
        on_person = person_cells.reshape(-1).index_select(0, corners.index_select(1, quad).reshape(-1)).view(4, -1)
        eligible = (on_person | ~on_person.any(dim=0, keepdim=True)) & (owners > 0)
        gx, gy = fx.index_select(0, cols.index_select(0, mixed)), fy.index_select(0, rows.index_select(0, mixed))
        weights = torch.stack([(1 - gx) * (1 - gy), gx * (1 - gy), (1 - gx) * gy, gx * gy]) * eligible  # [4, n]
        # Corners whose cell carries the pixel's own part label speak for it: where two people
        # meet, a pixel labelled arm goes to the person whose arm cell is next to it, not to the
        # person whose torso cell is nearer.
        same = (corner_label.index_select(1, quad) == pixel_label.index_select(0, mixed)) & eligible
        weights = torch.where(same.any(dim=0, keepdim=True), (weights + _SAME_LABEL_FLOOR) * same, weights)
        support = ((owners[:, None] == owners[None]) * weights[None]).sum(dim=1)  # [4, n]: weight of each corner's person
        # The first corner of largest support (CPU argmax over a dim of 4 is several times slower).
        best, corner = support[0], torch.zeros_like(owners[0])
        for k in (1, 2, 3):
            better = support[k] > best
            best = torch.where(better, support[k], best)
            corner = torch.where(better, k, corner)
        owner[mixed] = owners.gather(0, corner[None])[0]
        joint[mixed] = quad_joints.index_select(1, quad).gather(0, corner[None])[0]
    if lacking.numel():
        # The nearest cell of the block that carries the pixel's label (and has a person).
        at_rows = row_of.index_select(0, block.reshape(-1))
        block_owner = cell_owner.index_select(0, at_rows).view(16, -1)
        found = (grid_label.index_select(0, block.reshape(-1)).view(16, -1)
                 == pixel_label.index_select(0, lacking)) & (block_owner > 0)
        row_at, col_at = rows.index_select(0, lacking), cols.index_select(0, lacking)
        u = y0.index_select(0, row_at).to(dtype) + fy.index_select(0, row_at)  # the pixels in grid units
        v = x0.index_select(0, col_at).to(dtype) + fx.index_select(0, col_at)
        gap = ((block // w).to(dtype) - u) ** 2 + ((block % w).to(dtype) - v) ** 2  # [16, n]
        pick = torch.where(found, gap, torch.full_like(gap, math.inf)).min(dim=0).indices  # first of the nearest
        hit = found.any(dim=0).nonzero().squeeze(1)
        pick = pick.index_select(0, hit)[None]
        block_joint = cell_joint.index_select(0, at_rows).view(16, -1)
        owner[lacking.index_select(0, hit)] = block_owner.index_select(1, hit).gather(0, pick)[0]
        joint[lacking.index_select(0, hit)] = block_joint.index_select(1, hit).gather(0, pick)[0]
    instance = torch.zeros(out_h * out_w, dtype=torch.long, device=device)
    instance[pixels] = owner
    return instance.view(out_h, out_w), pixels, joint


#: The least weight of a footprint cell that carries its pixel's part label (``_assign_by_cells``).
_SAME_LABEL_FLOOR = 1e-3


def _carried(corner_label: Tensor, at: Tensor, pixel_label: Tensor, num_classes: int) -> Tensor:
    """``[N]`` bool: whether one of the four cells of each pixel's footprint carries its label.

    Args:
        corner_label: ``[4, Q]`` part labels of the quads' corner cells.
        at: ``[N]`` the quad of each pixel. pixel_label: ``[N]`` its label.
        num_classes: more than the largest label; up to 63 the quads' labels are one bit mask
            each (one gather per pixel instead of four).
    """
    if num_classes <= 63:
        bits = torch.ones((), dtype=torch.long, device=corner_label.device) << corner_label
        mask = bits[0] | bits[1] | bits[2] | bits[3]  # [Q]
        return ((mask.index_select(0, at) >> pixel_label) & 1) > 0
    return (corner_label.index_select(1, at) == pixel_label).any(dim=0)


def _cell_block(quads: Tensor, grid_size: Tuple[int, int]) -> Tensor:
    """The ``4 x 4`` cells ``[16, Q]`` around the quads whose top-left cells are ``quads`` (flat
    indices ``[Q]`` of the ``h x w`` grid): rows ``i - 1 .. i + 2`` and columns ``j - 1 .. j + 2``,
    clamped to the grid (a clamped cell repeats one inside it)."""
    h, w = grid_size
    qi, qj = quads // w, quads % w
    steps = torch.arange(-1, 3, device=quads.device)
    bi = (qi[None] + steps[:, None]).clamp(0, h - 1)  # [4, Q]
    bj = (qj[None] + steps[:, None]).clamp(0, w - 1)
    return (bi[:, None] * w + bj[None]).reshape(16, -1)


def _resolve_sides(maps: ParsingMaps, labels: Tensor, instance_map: Tensor, pixels: Tensor, joints: Tensor,
                   poses: Tensor, support: Tensor, settings: DecodingSettings,
                   input_size: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor]:
    """People's facing, oriented limb chains and sided part pixels (:mod:`.sides`): the poses
    ``[P, K, 3]`` (output frame) oriented, the part labels ``[H', W']`` with the person pixels
    ``pixels`` (their argmin joint types ``joints``, both ``[N]``) resolved, and ``[P, K]`` long,
    where each joint of the result came from (``result = poses.gather(1, index)`` per joint);
    ``support`` the chains' :func:`chain_support`. With camera-frame maps
    (``settings.side_labels``) the orientation and relabelling assume every person faces the
    camera, then the people found facing away exchange their sides (:func:`face_camera`).
    ``labels`` (``decode_maps``' own) is updated in place and returned."""
    layout = settings.sides
    flat = labels.view(-1)
    pixel_labels = flat.index_select(0, pixels)
    all_owners = instance_map.reshape(-1).index_select(0, pixels)
    camera = settings.side_labels == "camera"  # the maps' sides are those of a person facing the camera
    facing = person_facing(pixel_labels, all_owners, joints, poses.shape[0], layout)
    poses, perm = orient_chains(poses, torch.ones_like(facing) if camera else facing, layout, support,
                                settings.side_keep_support)
    part_side = torch.as_tensor(layout.part_side, device=labels.device)
    sided = ((all_owners > 0) & (part_side.index_select(0, pixel_labels) > 0)).nonzero().squeeze(1)
    pix, owner, joints = pixels.index_select(0, sided), all_owners.index_select(0, sided), joints.index_select(0, sided)
    lab = pixel_labels.index_select(0, sided)
    mate = torch.as_tensor(layout.part_mate, device=labels.device).index_select(0, lab)
    grid = maps.part_probs
    dtype = grid.dtype if grid.is_floating_point() else torch.float32
    cells, fx, fy = _pixel_footprints(pix, tuple(grid.shape[-2:]), maps.part_stride, input_size,
                                      tuple(labels.shape), dtype)
    cells_per_map = grid.shape[-2] * grid.shape[-1]
    at = (torch.stack([lab, mate])[:, None] * cells_per_map + cells[None]).reshape(-1)  # flat gather
    values = _bilinear(grid.reshape(-1).index_select(0, at).to(dtype).view(2, *cells.shape),
                       fx, fy)  # [2, N]: the label's and its mirror's
    became = perm.reshape(-1).index_select(0, (owner - 1) * perm.shape[1] + joints)  # each pixel's joint, oriented
    undecided = None
    if settings.side_mirror_radius > 0:  # poses are in the output frame
        radius = settings.side_mirror_radius * _output_length(input_size, tuple(labels.shape))
        coinciding = coinciding_mirrors(poses, layout, radius)  # [P, K]
        undecided = coinciding.reshape(-1).index_select(0, (owner - 1) * poses.shape[1] + became)
    flat[pix] = resolve_part_sides(lab, became, values, layout, settings.side_keep_ratio, undecided)
    source = perm  # orient_chains returns poses.gather(1, perm)
    if camera:  # people facing away take their own sides
        poses, flat[pixels] = face_camera(poses, flat[pixels], all_owners, facing < 0, layout)
        joint_mate = torch.as_tensor(layout.keypoint_mate, device=perm.device)
        source = torch.where((facing < 0)[:, None], perm.index_select(1, joint_mate), perm)
    return poses, flat.view(labels.shape), source


def _rank_by_part_confidence(maps: ParsingMaps, grid_top: Tensor, instance_map: Tensor, pixels: Tensor,
                             poses: Tensor, rank_scores: Tensor, shared: Tensor, power: float,
                             input_size: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The people re-ranked by the confidence of their part labels
    (:attr:`DecodingSettings.part_confidence_power`): each rank score times ``conf ** power``,
    ``conf`` the mean over the person's pixels (``pixels`` ``[N]``, flat) of the part map's top
    probability (``grid_top`` ``[hp, wp]``) at each pixel's nearest grid cell (of its bilinear
    footprint, :func:`grid_footprint`: one gather per pixel, where the bilinear reading cost
    2-3 ms at 512 x 512); a person without pixels keeps its score. Returns the poses
    ``[P, K, 3]``, the new scores ``[P]`` (decreasing), the old ones, the instance map
    ``[H', W']`` (renumbered) and the shared joints ``[P, K]``, all in the new order."""
    num_people = poses.shape[0]
    out_h, out_w = instance_map.shape
    hp, wp = grid_top.shape
    x0, x1, fx = grid_footprint(out_w, input_size[1], wp, maps.part_stride, pixels.device)
    y0, y1, fy = grid_footprint(out_h, input_size[0], hp, maps.part_stride, pixels.device)
    col = torch.where(fx < 0.5, x0, x1)  # [W'] nearest cell column of each output column
    row = torch.where(fy < 0.5, y0, y1) * wp  # [H']
    owners = instance_map.reshape(-1).index_select(0, pixels)  # [N], p + 1
    cells = row.index_select(0, pixels // out_w) + col.index_select(0, pixels % out_w)
    top = grid_top.reshape(-1).index_select(0, cells)
    count = torch.bincount(owners, minlength=num_people + 1)[1:].to(top.dtype)
    total = torch.bincount(owners, weights=top, minlength=num_people + 1)[1:].to(top.dtype)
    conf = torch.where(count > 0, total / count.clamp_min(1), torch.ones_like(total))
    scores = rank_scores * conf.to(rank_scores.dtype) ** power
    order = torch.argsort(-scores, stable=True)
    renumber = torch.zeros(num_people + 1, dtype=instance_map.dtype, device=instance_map.device)
    renumber[order + 1] = torch.arange(1, num_people + 1, dtype=instance_map.dtype, device=instance_map.device)
    # Only the labelled pixels carry a person; flat gathers and scatters (CPU advanced indexing is
    # several times slower).
    renumbered = torch.zeros_like(instance_map).view(-1).index_copy_(0, pixels, renumber.index_select(0, owners))
    renumbered = renumbered.view(instance_map.shape)
    return poses[order], scores[order], rank_scores[order], renumbered, shared[order]


#: An orphan's rank score is the lowest decoded person's (1 without one) times this and its
#: cells' mean top part probability: orphans rank below every person with a skeleton.
_ORPHAN_SCORE = 1e-3


def _add_orphans(maps: ParsingMaps, grid_top: Tensor, person_cells: Tensor, labels: Tensor, instance_map: Tensor,
                 pixels: Tensor, poses: Tensor, rank_scores: Tensor, pose_scores: Tensor, shared: Tensor,
                 s: DecodingSettings, input_size: Tuple[int, int], fragments: Optional[Tensor] = None):
    """People without a skeleton from the person cells that no decoded person explains
    (:attr:`DecodingSettings.orphan_min_cells`, :func:`~dspf_parser.ops.orphans.unexplained_regions`).

    A person cell counts when the output pixel nearest its centre is labelled; its owner is
    that pixel's person and its projection ``centre + dspf`` is taken to the output frame. A
    labelled pixel (``pixels``, flat ``[N]``) joins region ``r`` when one of the four cells
    around it (rows ``floor(v)``, ``floor(v) + 1`` and columns ``floor(u)``, ``floor(u) + 1`` of
    its unclamped grid position ``(u, v)``, each clamped to the grid: the bilinear footprint
    except within half a cell of the top and left borders, where both fall on cell 0; first in
    the order top-left, top-right, bottom-left, bottom-right) is in ``r`` and has the pixel's person (a region's cells one cell wide, at the
    image border or a sliver, then still take all its pixels). The regions become people
    ``P + 1, ...`` with rank score the lowest decoded person's (1 without one) times
    :data:`_ORPHAN_SCORE` times the mean top part probability of their cells, in decreasing
    rank score. An orphan's skeleton is the fragment of ``fragments`` ``[F, K, 3]`` (output
    frame: the skeletons the decoding dropped for too few cells) that its projections land on
    (:func:`~dspf_parser.ops.orphans.adopt_skeletons`, within a keypoint radius), with its rank
    score as pose score; without one its pose is all 0, pose score 0.

    Returns:
        poses, rank scores, pose scores, instance map and shared joints with the orphans appended.
    """
    h, w = person_cells.shape
    out_h, out_w = labels.shape
    device, dtype = maps.dspf.device, maps.dspf.dtype
    stride = s.stride
    centre = torch.arange(max(h, w), device=device, dtype=dtype) * stride + stride // 2
    at_centre = _cell_centre_pixels((h, w), stride, input_size, (out_h, out_w), device, dtype)
    cells = person_cells & (labels.reshape(-1).index_select(0, at_centre) > 0).view(h, w)
    owners = instance_map.reshape(-1).index_select(0, at_centre).view(h, w)
    grid = torch.stack(torch.meshgrid(centre[:w], centre[:h], indexing="xy"), dim=0)  # [2, h, w] (x, y) input px
    projections = _output_px((grid + maps.dspf).permute(1, 2, 0), input_size, (out_h, out_w)).permute(2, 0, 1)
    radius = s.keypoint_radius * _output_length(input_size, (out_h, out_w))
    region, count = unexplained_regions(cells, projections, owners, poses, s.orphan_distance * radius,
                                        s.orphan_min_cells, s.orphan_min_spread * radius)
    if count == 0:
        return poses, rank_scores, pose_scores, instance_map, shared
    fragments = poses.new_zeros(0, *poses.shape[1:]) if fragments is None else fragments
    adopted = adopt_skeletons(region, count, projections, fragments, radius)  # [R], -1: none
    # The four cells around every labelled pixel (inverse of the output frame, then the grid),
    # per output row and column: the grid index of the footprint's first cell, unclamped.
    def first_cell(n_out: int, n_in: int) -> Tensor:
        at = (torch.arange(n_out, device=device, dtype=dtype) + 0.5) * (n_in / n_out) - 0.5
        return torch.floor((at - stride // 2) / stride).long()

    rows, cols = pixels // out_w, pixels % out_w
    ci, cj = first_cell(out_h, input_size[0]).index_select(0, rows), first_cell(out_w, input_size[1]).index_select(0, cols)
    # Only the pixels with a region cell among their four can join one: those whose first cell
    # (clamped) starts a 2 x 2 block (clamped) that holds one (a superset), tested exactly below.
    in_region = region > 0
    below = torch.arange(1, h + 1, device=device).clamp_(max=h - 1)
    right = torch.arange(1, w + 1, device=device).clamp_(max=w - 1)
    block = in_region | in_region.index_select(0, below)
    block = block | block.index_select(1, right)
    maybe = block.reshape(-1).index_select(0, ci.clamp(0, h - 1) * w + cj.clamp(0, w - 1)).nonzero().squeeze(1)
    ci, cj, near_pixels = ci.index_select(0, maybe), cj.index_select(0, maybe), pixels.index_select(0, maybe)
    flat = instance_map.reshape(-1).clone()
    owner = flat.index_select(0, near_pixels)
    joins = torch.zeros_like(owner)
    for di, dj in ((0, 0), (0, 1), (1, 0), (1, 1)):
        cell = (ci + di).clamp(0, h - 1) * w + (cj + dj).clamp(0, w - 1)
        r = region.reshape(-1).index_select(0, cell)
        fits = (joins == 0) & (r > 0) & (owner == owners.reshape(-1).index_select(0, cell))
        joins = torch.where(fits, r, joins)
    # Scores: below every decoded person, in the order of their cells' part confidence.
    part_stride, (hp, wp) = maps.part_stride, grid_top.shape
    top_rows = torch.div(centre[:h], part_stride, rounding_mode="floor").long().clamp_(0, hp - 1)
    top_cols = torch.div(centre[:w], part_stride, rounding_mode="floor").long().clamp_(0, wp - 1)
    top = grid_top.index_select(0, top_rows).index_select(1, top_cols).reshape(-1).to(dtype)  # [h * w] at the cells
    area = torch.bincount(region.reshape(-1), minlength=count + 1)[1:].to(dtype)
    confidence = torch.zeros(count + 1, dtype=dtype, device=device).index_add_(
        0, region.reshape(-1), top)[1:] / area.clamp_min(1)
    num = poses.shape[0]
    lowest = rank_scores.min() if num else torch.ones((), dtype=rank_scores.dtype, device=device)
    orphan_scores = (lowest * _ORPHAN_SCORE * confidence).to(rank_scores.dtype)
    order = torch.argsort(-orphan_scores, stable=True)  # people stay in decreasing score
    orphan_scores = orphan_scores[order]
    person_of_region = torch.zeros(count + 1, dtype=torch.long, device=device)
    person_of_region[order + 1] = num + 1 + torch.arange(count, device=device)
    moved = joins > 0
    flat[near_pixels[moved]] = person_of_region.index_select(0, joins[moved])
    adopted = adopted[order]
    has = adopted >= 0
    row = torch.where(has, adopted, torch.full_like(adopted, fragments.shape[0]))  # row F: no skeleton
    skeletons = torch.cat([fragments, fragments.new_zeros(1, *poses.shape[1:])]).index_select(0, row)
    poses = torch.cat([poses, skeletons.to(poses.dtype)])
    shared = torch.cat([shared, shared.new_zeros((count,) + shared.shape[1:])])
    rank_scores = torch.cat([rank_scores, orphan_scores])
    pose_scores = torch.cat([pose_scores, torch.where(has, orphan_scores, torch.zeros_like(orphan_scores))])
    return poses, rank_scores, pose_scores, flat.view(out_h, out_w), shared


def _absorb_weak_parts(maps: ParsingMaps, labels: Tensor, instance_map: Tensor, pixels: Tensor,
                       settings: DecodingSettings, input_size: Tuple[int, int]) -> Tensor:
    """The part labels ``[H', W']`` with each person's small weak regions relabelled
    (:func:`absorb_weak_parts`); ``pixels`` ``[N]`` the flat indices of the labelled pixels, the
    probabilities read at them as :func:`part_labels` reads them (:func:`sample_at_pixels`).
    ``labels`` (``decode_maps``' own) is updated in place and returned."""
    grid = maps.part_probs

    def probs_at(index: Tensor) -> Tensor:
        return sample_at_pixels(grid, maps.part_stride, pixels[index], input_size, tuple(labels.shape))  # [C, n]

    flat = labels.view(-1)
    flat[pixels] = absorb_weak_parts(flat.index_select(0, pixels), instance_map.reshape(-1).index_select(0, pixels),
                                     probs_at, grid.shape[0], settings.small_part_fraction,
                                     settings.small_part_confidence)
    return flat.view(labels.shape)


def agree_with_labels(probs: Tensor, labels: Tensor) -> Tensor:
    """Category-level probabilities ``[C, H, W]`` whose argmax is the decoded part labels
    ``[H, W]`` (sides resolved, weak regions absorbed): where a pixel's label is not the
    probabilities' argmax, the two classes' values are exchanged (a distribution stays one).
    Elsewhere ``probs`` is unchanged (and returned as it is when nothing differs)."""
    top = probs.argmax(dim=0, keepdim=True)  # [1, H, W]
    label = labels[None].to(top.dtype)
    swap = label != top
    if not bool(swap.any()):
        return probs
    a, b = probs.gather(0, top), probs.gather(0, label)
    out = probs.clone()
    out.scatter_(0, top, torch.where(swap, b, a))
    out.scatter_(0, label, torch.where(swap, a, b))
    return out


def _grid_person(maps: ParsingMaps, stride: int, grid_labels: Optional[Tensor] = None) -> Tensor:
    """``[h, w]`` bool: the grid cells whose part label (at the cell centre) is not background;
    ``grid_labels``: ``maps.part_probs.argmax(0)`` if already computed."""
    h, w = maps.dspf.shape[-2:]
    labels = class_argmax(maps.part_probs) if grid_labels is None else grid_labels
    if maps.part_stride != stride:  # read the finer part map at the cell centres
        rows = (torch.arange(h, device=maps.dspf.device) * stride + stride // 2) // maps.part_stride
        cols = (torch.arange(w, device=maps.dspf.device) * stride + stride // 2) // maps.part_stride
        hp, wp = labels.shape
        labels = labels[rows.clamp(max=hp - 1)][:, cols.clamp(max=wp - 1)]
    return labels[:h, :w] > 0


def _joint_ids(poses: Tensor, coords: Tensor, valid: Tensor) -> Tensor:
    """``[P, K]`` index ``n`` of every joint of ``poses`` among the candidates of its type (-1:
    missing), found by its coordinates (the poses' joints are copies of candidates)."""
    if coords.shape[1] == 0:
        return torch.full(poses.shape[:2], -1, dtype=torch.long, device=poses.device)
    xy = poses[..., :2].unsqueeze(2)  # [P, K, 1, 2]; planar comparisons (a reduction over a last dim of 2 is slow)
    same = (xy[..., 0] == coords[None, ..., 0]) & (xy[..., 1] == coords[None, ..., 1]) & valid[None]  # [P, K, N]
    ids = same.to(torch.uint8).argmax(dim=2)
    return torch.where(poses[..., 2] > 0, ids, torch.full_like(ids, -1))


def _limb_support(joint_ids: Tensor, limb_scores: Tensor, limbs: Sequence[Tuple[int, int]]) -> Tensor:
    """``[P]`` mean limb score (``limb_scores`` ``[L, N, N]``) over the limbs whose two joints a
    person has (0 for a person with none)."""
    ends = torch.as_tensor(limbs, dtype=torch.long, device=joint_ids.device).reshape(-1, 2)
    a, b = joint_ids[:, ends[:, 0]], joint_ids[:, ends[:, 1]]  # [P, L]
    both = (a >= 0) & (b >= 0)
    limb = torch.arange(len(limbs), device=joint_ids.device)[None, :].expand_as(a)
    values = limb_scores[limb, a.clamp_min(0), b.clamp_min(0)] * both
    return values.sum(dim=1) / both.sum(dim=1).clamp_min(1)
