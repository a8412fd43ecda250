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
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .dspf_grouping import merge_people_by_dspf
from .grouping import greedy_matching, group_people, rank_people
from .hough_voting import detect_keypoints, hough_voting
from .limb_scoring import score_limbs
from .matching import exact_matching, round_matching, solve_matching
from .pixel_assignment import assign_pixels
from .targets import sample_grid_at_pixels

__all__ = [
    "ASSOCIATIONS", "PERSON_SCORES", "DecodingSettings", "ParsingMaps", "ParsedPeople", "associate_joints",
    "decode_maps", "dense_outputs", "dspf_candidates", "find_candidates", "person_pixels",
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
    """

    limbs: Sequence[Tuple[int, int]]
    stride: int
    keypoint_radius: float
    keypoint_threshold: float = 0.3
    max_candidates: int = 100
    association: str = "exact"
    solver: Optional[Callable[[Tensor, Tensor], Tensor]] = None
    min_joints: int = 3
    duplicate_radius: float = 6.0
    dspf_candidates: bool = True
    limb_template_sigma: Optional[float] = None
    limb_prune_below: Optional[float] = None
    min_limb_score: float = 0.0
    person_score: str = "joints_x_limbs"
    min_person_score: float = 0.0
    dspf_grouping: bool = True
    dspf_min_boundary: float = 2.0
    dspf_max_conflict: float = 0.02


@dataclass
class ParsedPeople:
    """People found in one image, in the frame of the output image (``H' x W'``).

    Attributes:
        poses: ``[P, K, 3]`` ``(x, y, score)`` in output pixels, all 0 for a missing joint.
        scores: ``[P]`` person scores (:attr:`DecodingSettings.person_score`), decreasing.
        instance_map: ``[H', W']`` long, 0 background, ``p + 1`` for person ``p``.
        part_probs: ``[C, H', W']`` part probabilities.
        dspf: ``[2, H', W']`` DSPF in output pixels.
        stage_seconds: wall time of each stage (filled only when ``timer`` is given).
    """

    poses: Tensor
    scores: Tensor
    instance_map: Tensor
    part_probs: Tensor
    dspf: Tensor
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
    density = hough_voting(person[None, None].to(hough.dtype), dspf[None, None], stride)[0]
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


def _merge_candidates(
    coords: Tensor, scores: Tensor, valid: Tensor, extra_coords: Tensor, extra_scores: Tensor,
    radius: float, max_candidates: int,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Add the extra candidates ``[K, M]`` (score 0 = none) that lie farther than ``radius`` from
    every candidate of their type; per type the ``max_candidates`` best are kept, sorted by
    decreasing score, padded to the longest row."""
    if extra_coords.shape[1] == 0:
        return coords, scores, valid
    near = torch.cdist(extra_coords, coords) < radius  # [K, M, N]
    new = (extra_scores > 0) & ~(near & valid[:, None, :]).any(dim=2)
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


def _window_cells(n_out: int, n_in: int, n_grid: int, stride: int, device: torch.device) -> Tensor:
    """``[3, n_out]`` grid indices covering the bilinear footprint of every output pixel along
    one axis, for the sampling of :func:`sample_grid_at_pixels` (clamped at the border): the cells
    ``floor(u - e) .. floor(u + e) + 1`` around the pixel's grid position ``u`` (``e = 1e-3``
    absorbs the rounding of ``grid_sample``'s own position), as first, middle, last (repeated
    when the footprint spans two cells)."""
    pos = (torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    cell = (pos - stride // 2) / stride
    low = torch.floor(cell - 1e-3).long().clamp(0, n_grid - 1)
    high = (torch.floor(cell + 1e-3).long() + 1).clamp(0, n_grid - 1)
    return torch.stack([low, torch.minimum(low + 1, high), high])


def person_pixels(
    part_grid: Tensor, part_stride: int, input_size: Tuple[int, int], output_size: Tuple[int, int],
    part_probs: Tensor, margin: float = 1e-4,
) -> Tensor:
    """``part_probs.argmax(0) > 0`` (the person pixels of the output image), computing the argmax
    over the ``C`` classes only where it is not decided by the grid.

    ``part_probs`` ``[C, H', W']`` is the bilinear (convex) interpolation of ``part_grid``
    ``[C, hp, wp]`` (:func:`sample_grid_at_pixels`). Where every grid cell of a pixel's bilinear
    footprint has the same top class ``c`` with a lead over every other class of more than
    ``margin``, the interpolated ``c`` leads every other class by more than ``margin`` too (a
    convex combination of the leads), far above float rounding: the pixel's label is ``c``.
    Only the other pixels (part boundaries) read the ``C`` values of ``part_probs``.

    Returns:
        ``[H', W']`` bool.
    """
    num_classes, out_h, out_w = part_probs.shape
    if num_classes < 2 or out_h == 0 or out_w == 0:
        return part_probs.new_zeros(out_h, out_w, dtype=torch.bool)
    hp, wp = part_grid.shape[-2:]
    top, index = part_grid.topk(2, dim=0)
    label = torch.where(top[0] - top[1] > margin, index[0], torch.full_like(index[0], -1)).int()  # [hp, wp]
    cols = _window_cells(out_w, input_size[1], wp, part_stride, label.device)  # [3, W']
    rows = _window_cells(out_h, input_size[0], hp, part_stride, label.device)  # [3, H']
    across = [label[:, c] for c in cols]  # 3 x [hp, W']
    low = torch.minimum(torch.minimum(across[0], across[1]), across[2])
    high = torch.maximum(torch.maximum(across[0], across[1]), across[2])
    low = torch.minimum(torch.minimum(low[rows[0]], low[rows[1]]), low[rows[2]])  # [H', W']
    high = torch.maximum(torch.maximum(high[rows[0]], high[rows[1]]), high[rows[2]])
    decided = (low == high) & (low >= 0)
    person = decided & (low > 0)
    band = (~decided).reshape(-1).nonzero().squeeze(1)
    flat = person.reshape(-1)
    flat[band] = part_probs.reshape(num_classes, -1)[:, band].argmax(0) > 0
    return person


def _to_output_frame(poses: Tensor, input_size: Tuple[int, int], output_size: Tuple[int, int]) -> Tensor:
    """Joints ``[P, K, 3]`` from input to output pixel-index coordinates (missing joints stay 0)."""
    scale = poses.new_tensor([output_size[1] / input_size[1], output_size[0] / input_size[0]])
    present = poses[..., 2:] > 0
    out = poses.clone()
    out[..., :2] = torch.where(present, (poses[..., :2] + 0.5) * scale - 0.5, poses[..., :2])
    return out


def find_candidates(maps: ParsingMaps, settings: DecodingSettings) -> Tuple[Tensor, Tensor, Tensor]:
    """Keypoint candidates of one image (the ``keypoint_detection`` stage of :func:`decode_maps`):
    Hough peaks, duplicates suppressed, merged with the DSPF-projected points if enabled.

    Returns:
        ``coords`` ``[K, N, 2]`` (input pixels), ``scores`` ``[K, N]``, ``valid`` ``[K, N]`` bool.
    """
    s = settings
    hough = hough_voting(maps.heatmaps[None], maps.offsets[None], s.stride, radius=s.keypoint_radius)[0]
    coords, scores, valid = detect_keypoints(hough, s.stride, s.keypoint_threshold, max_per_type=s.max_candidates)
    valid = suppress_duplicates(coords, scores, valid, s.duplicate_radius)
    if s.dspf_candidates:
        person_cells = _grid_person(maps, s.stride)
        extra_coords, extra_scores = dspf_candidates(hough, maps.dspf, person_cells, s.stride,
                                                     s.keypoint_threshold, s.keypoint_radius)
        # A projected point only adds a joint the Hough peaks missed: it must lie farther than
        # a keypoint disk plus one cell from every peak of its type (the 3x3 centroid of the
        # projections of small people, with joints a few pixels apart, lands up to ~7 px from
        # the joint; merged at DUPLICATE_RADIUS it came back as a duplicate joint).
        coords, scores, valid = _merge_candidates(coords, scores, valid, extra_coords, extra_scores,
                                                  s.keypoint_radius + s.stride, s.max_candidates)
    return coords, scores, valid


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
    depends on: the candidate count (``detect_keypoints``, ``_merge_candidates``), the DSPF
    points found (boolean index in :func:`dspf_candidates`), the packed pair width when limb
    pruning is on, the person pixels and the tile-candidate width of :func:`assign_pixels`, the
    boundary pixels of :func:`person_pixels`. Two are by design: ``"exact"`` copies the
    ``[L, N, N]`` scores to the host once (scipy runs on the CPU) and :func:`group_people`
    walks the matched edges (about people x limbs) on the host, a union of growing people in
    limb order, and :func:`merge_people_by_dspf` reads its people-pair counts to merge them (a
    union-find over at most people^2 pairs); ``"matching"`` adds one sync per convergence check
    (every ``CHECK_EVERY`` iterations) and one per rounding round. ``tools/benchmark.py --device
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

    coords, scores, valid = find_candidates(maps, s)
    lap("keypoint_detection")
    limb_scores, pair_valid = score_limbs(maps.limb_heatmaps, coords, valid, s.limbs, s.stride,
                                          template_sigma=s.limb_template_sigma,
                                          prune_below=s.limb_prune_below)
    pair_valid = pair_valid & (limb_scores > s.min_limb_score)
    lap("limb_scoring")
    matches = associate_joints(limb_scores, pair_valid, scores, s.limbs, s.association, s.solver)
    lap("matching")
    all_types = s.person_score == "all_types"
    if not s.dspf_grouping:
        poses, person_scores = group_people(matches, limb_scores, coords, scores, valid, s.limbs, s.min_joints,
                                            all_types)
    else:
        poses, _ = group_people(matches, limb_scores, coords, scores, valid, s.limbs, 1, keep_unmatched=True)
        poses = merge_people_by_dspf(poses, _grid_person(maps, s.stride), maps.dspf, s.stride, s.keypoint_radius,
                                     s.dspf_min_boundary, s.dspf_max_conflict)
        poses, person_scores = rank_people(poses, s.min_joints, all_types)
    rank_scores = person_scores
    if s.person_score == "joints_x_limbs":
        support = _limb_support(_joint_ids(poses, coords, valid), limb_scores * pair_valid, s.limbs)
        rank_scores = person_scores * support
        order = torch.argsort(-rank_scores, stable=True)
        poses, person_scores, rank_scores = poses[order], person_scores[order], rank_scores[order]
    keep = rank_scores > s.min_person_score
    poses, person_scores, rank_scores = poses[keep], person_scores[keep], rank_scores[keep]
    poses = _to_output_frame(poses, input_size, output_size)
    lap("grouping")
    part_probs, dspf = dense_outputs(maps, s.stride, input_size, output_size)
    person = person_pixels(maps.part_probs, maps.part_stride, input_size, output_size, part_probs)
    instance_map = assign_pixels(person, dspf, poses, person_scores, stride=1)
    lap("pixel_assignment")
    return ParsedPeople(poses, rank_scores, instance_map, part_probs, dspf, times)


def _grid_person(maps: ParsingMaps, stride: int) -> Tensor:
    """``[h, w]`` bool: the grid cells whose part label (at the cell centre) is not background."""
    h, w = maps.dspf.shape[-2:]
    if maps.part_stride == stride:
        probs = maps.part_probs[:, :h, :w]
    else:  # read the finer part map at the cell centres
        rows = (torch.arange(h, device=maps.dspf.device) * stride + stride // 2) // maps.part_stride
        cols = (torch.arange(w, device=maps.dspf.device) * stride + stride // 2) // maps.part_stride
        hp, wp = maps.part_probs.shape[-2:]
        probs = maps.part_probs[:, rows.clamp(max=hp - 1)][:, :, cols.clamp(max=wp - 1)]
    return probs.argmax(0) > 0


def _joint_ids(poses: Tensor, coords: Tensor, valid: Tensor) -> Tensor:
    """``[P, K]`` index ``n`` of every joint of ``poses`` among the candidates of its type (-1:
    missing), found by its coordinates (the poses' joints are copies of candidates)."""
    if coords.shape[1] == 0:
        return torch.full(poses.shape[:2], -1, dtype=torch.long, device=poses.device)
    same = (poses[:, :, None, :2] == coords[None]).all(dim=-1) & valid[None]  # [P, K, N]
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
