"""Assembling matched joints into people, and the greedy matching baselines (paper section 3.3).

After the per-limb bipartite matchings are solved (differentiable solver + rounding, see
``dspf_parser.ops.matching``, or one of the greedy baselines here), the matched candidate pairs
are grouped into people by walking the limbs from head to foot, following [Cao et al. 2017]
and [Kreiss et al. 2019]. All matchings share the format of ``round_matching``: a 0/1 matrix
``[L, Nmax, Nmax]`` whose entry ``[l, n, m]`` is 1 when candidate ``n`` of joint type
``limbs[l][0]`` is connected to candidate ``m`` of joint type ``limbs[l][1]``.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["complete_people", "group_people", "greedy_matching", "join_fragments", "rank_people"]


def group_people(
    matches: Tensor,
    limb_scores: Tensor,
    coords: Tensor,
    scores: Tensor,
    valid: Tensor,
    limbs: Sequence[Tuple[int, int]],
    min_joints: int = 3,
    score_over_all_types: bool = False,
    keep_unmatched: bool = False,
    order: str = "limb",
    confident_above: float = 0.0,
) -> Tuple[Tensor, Tensor]:
    """Group matched joint candidates into people, head to foot.

    The limbs are walked in the given order (head to foot); within a limb the matched pairs
    (``matches > 0.5`` and both candidates valid) are taken by decreasing limb score, so the
    result does not depend on the candidate order (up to exact score ties). For a pair
    ``(n, m)`` of limb ``(a, b)``:

    * neither candidate belongs to a person: a new person ``{a: n, b: m}`` is created;
    * exactly one belongs to a person: the other joins it if that person has no joint of the
      other type yet, otherwise the pair is dropped (an assigned joint keeps its person);
    * both belong to the same person: nothing changes (a cycle of the limb graph closes);
    * both belong to different people: they are merged (into the one created first) if they
      use disjoint joint types, otherwise the pair is dropped and both people are kept.

    With ``order="score"`` the matched pairs of all limbs are instead taken together by
    decreasing limb score (ties: limb order, then candidate order), so that a doubtful pair (e.g.
    a head matched to the neck of an overlapping person whose own neck was lost) meets the people
    the confident pairs of every limb have already built, and is dropped when it would give one
    of them a second joint of a type, instead of being taken first because its limb comes
    first. On exact maps this cuts the per-limb association errors (missed / cross-person pairs)
    from 7 / 16 to 3 / 13 of 1411 on ``synthetic_humans_val`` and from 64 / 122 to 48 / 104 of
    9331 on ``synthetic_humans_crowd_val``.

    With ``confident_above`` the pairs scoring at least that are taken first (in ``order``), then
    the others (in ``order``): the confident pairs build the people, and a doubtful pair of an
    earlier limb can no longer give a person the joint of another. A threshold near the score of
    an exact limb (e.g. 0.95 for the template score) changes the order on clean maps only: on
    damaged maps few pairs reach it and the order stays head to foot (the plain ``"score"``
    order loses people there: on ``synthetic_humans_crowd_val`` at ``--degrade 1`` pose AP 50.4
    -> 49.2, and 53.4 -> 50.3 with another damage seed).

    People are thus created from matched pairs only (>= 2 joints each), plus, with
    ``keep_unmatched``, one single-joint person per valid candidate that no pair placed (e.g. a
    wrist whose elbow is outside the image, for :func:`merge_people_by_dspf` to attach); those
    with fewer than ``min_joints`` joints are dropped.

    Person score: the mean of the Hough scores of its joints,
    ``S_p = (1 / |J_p|) * sum_{j in J_p} s_j``, or with ``score_over_all_types`` the mean over
    all ``K`` joint types, a missing joint counting 0 (PersonLab's), which ranks fragments below
    whole people. Limb scores only order the pairs.

    Args:
        matches: ``[L, Nmax, Nmax]`` integral (0/1) matchings, one per limb.
        limb_scores: ``[L, Nmax, Nmax]`` limb scores (``score_limbs``).
        coords: ``[K, Nmax, 2]`` candidate ``(x, y)`` in input pixels.
        scores: ``[K, Nmax]`` candidate scores.
        valid: ``[K, Nmax]`` bool, real candidates.
        limbs: ``L`` pairs ``(a, b)`` of joint types, ordered head to foot; cycles allowed.
        min_joints: minimal number of joints of a kept person.
        score_over_all_types: the person score's denominator is ``K`` instead of ``|J_p|``.
        keep_unmatched: add the unplaced candidates as single-joint people.
        order: ``"limb"`` (limb by limb, head to foot; within a limb by decreasing score) or
            ``"score"`` (the pairs of all limbs by decreasing score).
        confident_above: the pairs scoring at least this go first (0: one group, no effect).

    Returns:
        ``poses`` ``[P, K, 3]`` rows ``(x, y, score)`` per joint type, all 0 for a missing
        joint, and ``person_scores`` ``[P]``, sorted by decreasing person score.
    """
    num_types, nmax = valid.shape
    num_limbs = len(limbs)
    if tuple(matches.shape) != (num_limbs, nmax, nmax) or matches.shape != limb_scores.shape:
        raise ValueError(
            f"matches and limb_scores must be [L={num_limbs}, {nmax}, {nmax}], got "
            f"{tuple(matches.shape)} and {tuple(limb_scores.shape)}"
        )
    ends = torch.as_tensor(limbs, dtype=torch.long, device=valid.device).reshape(num_limbs, 2)
    pair_valid = valid[ends[:, 0]][:, :, None] & valid[ends[:, 1]][:, None, :]
    edges = ((matches > 0.5) & pair_valid).nonzero()  # [E, 3] rows (l, n, m), l ascending
    edge_scores = limb_scores[edges[:, 0], edges[:, 1], edges[:, 2]]
    # By decreasing score; for "limb" then a stable sort by limb (within each limb by score).
    if order not in ("limb", "score"):
        raise ValueError(f"unknown order {order!r}; expected 'limb' or 'score'")
    edge_order = torch.argsort(-edge_scores, stable=True)
    if order == "limb":
        edge_order = edge_order[torch.argsort(edges[edge_order, 0], stable=True)]
    confident = edge_scores[edge_order] >= confident_above
    edge_order = torch.cat([edge_order[confident], edge_order[~confident]])

    # Plain lists (the walk is per pair on the host): people[id] holds the candidate index per
    # joint type (-1: none), None once merged away; owner[k][n] the person of candidate n of
    # type k (-1: none).
    people: List[Optional[List[int]]] = []
    owner = [[-1] * nmax for _ in range(num_types)]
    for l, n, m in edges[edge_order].tolist():
        a, b = limbs[l]
        pa, pb = owner[a][n], owner[b][m]
        if pa < 0 and pb < 0:
            person = [-1] * num_types
            person[a], person[b] = n, m
            owner[a][n] = owner[b][m] = len(people)
            people.append(person)
        elif pb < 0:
            if people[pa][b] < 0:
                people[pa][b] = m
                owner[b][m] = pa
        elif pa < 0:
            if people[pb][a] < 0:
                people[pb][a] = n
                owner[a][n] = pb
        elif pa != pb:
            first, second = min(pa, pb), max(pa, pb)
            keep, other = people[first], people[second]
            if all(i < 0 or j < 0 for i, j in zip(keep, other)):
                for k, idx in enumerate(other):
                    if idx >= 0:
                        keep[k] = idx
                        owner[k][idx] = first
                people[second] = None

    if keep_unmatched:
        for k, n in valid.nonzero().tolist():
            if owner[k][n] < 0:
                people.append([n if t == k else -1 for t in range(num_types)])
    people = [person for person in people if person is not None]
    if not people:
        return rank_people(coords.new_zeros(0, num_types, 3), min_joints, score_over_all_types)
    index = torch.tensor(people, dtype=torch.long, device=coords.device)  # [P, K]
    present = index >= 0
    types = torch.arange(num_types, device=coords.device)[None, :]
    safe = index.clamp_min(0)
    joint_xy = coords[types, safe] * present[..., None]  # [P, K, 2]
    joint_score = scores[types, safe] * present  # [P, K]
    poses = torch.cat([joint_xy, joint_score[..., None].to(joint_xy.dtype)], dim=-1)
    return rank_people(poses, min_joints, score_over_all_types)


def complete_people(
    poses: Tensor,
    joint_ids: Tensor,
    coords: Tensor,
    scores: Tensor,
    valid: Tensor,
    limb_scores: Tensor,
    limbs: Sequence[Tuple[int, int]],
    min_score: float,
) -> Tuple[Tensor, Tensor]:
    """Give people the joints they share with someone else (not in the paper).

    Where two people's joints of one type coincide (an occluded shoulder behind a visible one),
    detection finds one candidate, the matching gives it to one person, and the other lacks that
    joint. A person missing type ``t`` takes the candidate of type ``t`` whose limb scores with
    all of the person's joints adjacent to ``t`` (the limbs ``(t, u)`` and ``(u, t)`` whose ``u``
    it has) are at least ``min_score``: of those, the one whose lowest such score is highest
    (the first on ties), whether or not another person holds it.

    Args:
        poses: ``[P, K, 3]`` people ``(x, y, score)`` (score 0: missing).
        joint_ids: ``[P, K]`` each joint's candidate index (-1: missing).
        coords: ``[K, N, 2]``; scores: ``[K, N]``; valid: ``[K, N]`` bool, the candidates.
        limb_scores: ``[L, N, N]``, ``[l, n, m]`` for candidate ``n`` of type ``limbs[l][0]``
            and ``m`` of type ``limbs[l][1]`` (pairs that may not be associated: 0 or below).
        limbs: the ``L`` joint-type pairs.
        min_score: the least limb score with every adjacent joint (> 0).

    Returns:
        The completed poses ``[P, K, 3]`` (an added joint takes its candidate's position and
        score) and ``[P, K]`` bool, the joints added.
    """
    num_people, num_types = poses.shape[:2]
    added = torch.zeros(num_people, num_types, dtype=torch.bool, device=poses.device)
    if num_people == 0 or not limbs or coords.shape[1] == 0:
        return poses, added
    ends = torch.as_tensor(limbs, dtype=torch.long, device=poses.device)  # [L, 2]
    rows = torch.arange(len(limbs), device=poses.device)[:, None]
    ids_a, ids_b = joint_ids[:, ends[:, 0]].t(), joint_ids[:, ends[:, 1]].t()  # [L, P]
    # The scores of every candidate of one end with the person's joint at the other end: [L, P, N].
    to_a = limb_scores.transpose(1, 2)[rows, ids_b.clamp_min(0)]
    to_b = limb_scores[rows, ids_a.clamp_min(0)]
    inf = torch.full_like(to_a, math.inf)  # no joint at the other end: no condition
    values = torch.cat([torch.where((ids_b >= 0)[..., None], to_a, inf), torch.where((ids_a >= 0)[..., None], to_b, inf)])
    types = torch.cat([ends[:, 0], ends[:, 1]])[:, None, None].expand_as(values)
    lowest = torch.full((num_types,) + tuple(values.shape[1:]), math.inf, dtype=values.dtype, device=values.device)
    lowest = lowest.scatter_reduce(0, types, values, reduce="amin").transpose(0, 1)  # [P, K, N]
    best, pick = torch.where(valid[None], lowest, torch.full_like(lowest, -math.inf)).max(dim=2)  # [P, K]
    added = (joint_ids < 0) & torch.isfinite(best) & (best >= min_score)
    if not bool(added.any()):
        return poses, added
    kinds = torch.arange(num_types, device=poses.device)[None].expand(num_people, -1)
    joint = torch.cat([coords[kinds, pick], scores[kinds, pick][..., None]], dim=2).to(poses.dtype)
    return torch.where(added[..., None], joint, poses), added


def join_fragments(poses: Tensor, joint_ids: Tensor, shared: Tensor, fragment: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Join each fragment to the whole person it shares a joint with (not in the paper).

    Where two people's joints of one type coincide (one shoulder candidate for two people), the
    matching gives the candidate to one of them, and the limb below it on the other person can
    come out as a fragment (an elbow and a wrist) while :func:`complete_people` gives the shared
    candidate to both the fragment and its own person. A fragment that holds the very candidate
    (same type, same index) that a whole person holds, and holds no type that person has with
    another candidate, is a piece of that person: the person takes the fragment's joints of the
    types it lacks (and their ``shared`` flags) and the fragment is removed. Fragments are taken
    in their order in ``poses``, each joining the first eligible person (people ranked best
    first are preferred); a fragment never joins another fragment.

    Args:
        poses: ``[P, K, 3]`` people ``(x, y, score)`` (score 0: missing), ranked.
        joint_ids: ``[P, K]`` each joint's candidate index among those of its type (-1: missing).
        shared: ``[P, K]`` bool, the joints that claim no pixel (:func:`complete_people`).
        fragment: ``[P]`` bool, the fragments (people with fewer than ``min_joints`` joints).

    Returns:
        ``kept`` ``[P']`` the indices of the people left (increasing), and their poses ``[P', K, 3]``
        and ``shared`` ``[P', K]`` with the fragments' joints added.
    """
    num_people = poses.shape[0]
    alive = torch.ones(num_people, dtype=torch.bool, device=poses.device)
    fragments = fragment.nonzero().squeeze(1).tolist()
    if num_people < 2 or not fragments:
        return alive.nonzero().squeeze(1), poses, shared
    ids, poses, shared = joint_ids.clone(), poses.clone(), shared.clone()
    for f in fragments:  # host loop over the fragments only (a few per image)
        both = (ids >= 0) & (ids[f] >= 0)  # [P, K] types both hold
        same = both & (ids == ids[f])
        eligible = same.any(dim=1) & ~(both & ~same).any(dim=1) & ~fragment & alive
        hosts = eligible.nonzero()
        if hosts.numel() == 0:
            continue
        host = int(hosts[0, 0])
        take = (ids[f] >= 0) & (ids[host] < 0)
        ids[host] = torch.where(take, ids[f], ids[host])
        poses[host] = torch.where(take[:, None], poses[f], poses[host])
        shared[host] = torch.where(take, shared[f], shared[host])
        alive[f] = False
    kept = alive.nonzero().squeeze(1)
    return kept, poses[kept], shared[kept]


def rank_people(poses: Tensor, min_joints: int = 3, score_over_all_types: bool = False, return_index: bool = False):
    """Drop people with fewer than ``min_joints`` joints and sort the rest by person score.

    Args:
        poses: ``[P, K, 3]`` ``(x, y, score)``, score 0 for a missing joint.
        min_joints, score_over_all_types: see :func:`group_people`.

    Returns:
        ``poses`` ``[P', K, 3]`` and ``person_scores`` ``[P']``, by decreasing person score, and
        with ``return_index`` the index ``[P']`` of each in the input ``poses``.
    """
    joint_score = poses[..., 2]
    present = joint_score > 0
    index = (present.sum(dim=1) >= min_joints).nonzero().squeeze(1)
    poses, joint_score, present = poses[index], joint_score[index], present[index]
    denominator = poses.shape[1] if score_over_all_types else present.sum(dim=1).clamp_min(1)
    person_scores = joint_score.sum(dim=1) / denominator
    rank = torch.argsort(-person_scores, stable=True)
    if return_index:
        return poses[rank], person_scores[rank], index[rank]
    return poses[rank], person_scores[rank]


def greedy_matching(
    scores: Tensor,
    valid: Tensor,
    variant: str = "openpose",
    threshold: float = 0.0,
    parent_scores: Optional[Tensor] = None,
) -> Tensor:
    """Greedy per-limb bipartite matching, the baselines of the paper's Table 5.

    Only pairs with ``valid`` and ``scores > threshold`` can be chosen. Variants:

    * ``"openpose"`` [Cao et al. 2017]: per limb, pairs are taken by decreasing limb score, a
      pair being accepted if neither endpoint is used yet (computed as rounds of
      "accept the best remaining pair of every limb, then remove its row and column").
    * ``"personlab"`` [Papandreou et al. 2018]: greedy from the most confident joints
      outward: per limb, the candidates of the parent type ``a`` are visited by decreasing
      joint score (``parent_scores``) and each takes its best-scoring still unused child.

    Both are vectorised over the limbs; the loop runs over at most ``Nmax`` rounds.

    Args:
        scores: ``[L, N, M]`` limb scores.
        valid: ``[L, N, M]`` bool, admissible pairs.
        variant: ``"openpose"`` or ``"personlab"``.
        threshold: minimal (strict) score of an accepted pair.
        parent_scores: ``[L, N]`` joint scores of the parent candidates (``"personlab"`` only),
            e.g. ``joint_scores[[a for a, _ in limbs]]``.

    Returns:
        ``[L, N, M]`` 0/1 matchings in ``scores.dtype`` (each row and column at most one 1).
    """
    if scores.dim() != 3 or valid.shape != scores.shape:
        raise ValueError(
            f"scores and valid must both be [L, N, M], got {tuple(scores.shape)} and "
            f"{tuple(valid.shape)}"
        )
    if variant not in ("openpose", "personlab"):
        raise ValueError(f"unknown greedy variant {variant!r}")
    num_limbs, n, m = scores.shape
    if variant == "personlab" and (parent_scores is None or parent_scores.shape != (num_limbs, n)):
        raise ValueError(f"variant 'personlab' needs parent_scores of shape {(num_limbs, n)}")
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    if chosen.numel() == 0:
        return chosen.to(scores.dtype)
    free = valid & (scores > threshold)
    masked_scores = torch.where(free, scores, torch.full_like(scores, -math.inf))
    limb_ids = torch.arange(num_limbs, device=scores.device)

    if variant == "openpose":
        for _ in range(min(n, m)):
            best, flat = masked_scores.reshape(num_limbs, n * m).max(dim=1)  # [L]
            ok = torch.isfinite(best)
            if not bool(ok.any()):
                break
            limb, row, col = limb_ids[ok], flat[ok] // m, flat[ok] % m
            chosen[limb, row, col] = True
            masked_scores[limb, row, :] = -math.inf
            masked_scores[limb, :, col] = -math.inf
    else:
        visit = torch.argsort(parent_scores, dim=1, descending=True, stable=True)  # [L, N]
        for rank in range(n):
            row = visit[:, rank]  # [L]
            best, col = masked_scores[limb_ids, row].max(dim=1)  # [L]
            ok = torch.isfinite(best)
            limb, row, col = limb_ids[ok], row[ok], col[ok]
            chosen[limb, row, col] = True
            masked_scores[limb, :, col] = -math.inf
    return chosen.to(scores.dtype)

