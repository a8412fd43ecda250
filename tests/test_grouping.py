"""Tests of person grouping and the greedy matching baselines (dspf_parser.ops.grouping)."""
from typing import List, Tuple

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from dspf_parser.ops.grouping import greedy_matching, group_people

# MPII order; head-to-foot MHPv2 limbs, and the same graph with other endpoint orientations
# (the second one is the 0-based list of the benchmark notes, as in data/categories.py).
LIMBS = [(9, 8), (8, 7), (8, 12), (8, 13), (12, 13), (11, 12), (10, 11), (13, 14), (14, 15),
         (6, 7), (12, 2), (13, 3), (2, 6), (3, 6), (1, 2), (0, 1), (3, 4), (4, 5)]
LIMBS_NOTES = [(8, 9), (7, 8), (8, 12), (8, 13), (12, 13), (11, 12), (10, 11), (13, 14),
               (14, 15), (6, 7), (12, 2), (13, 3), (2, 6), (3, 6), (1, 2), (0, 1), (3, 4), (4, 5)]
TEMPLATE = torch.tensor([
    [-10, 170], [-10, 120], [-10, 80], [10, 80], [10, 120], [10, 170], [0, 78], [0, 30],
    [0, 15], [0, 0], [-30, 80], [-28, 50], [-20, 25], [20, 25], [28, 50], [30, 80],
], dtype=torch.float64)
K = 16


def _scene(num_people: int, present: torch.Tensor, seed: int):
    """Candidates of ``num_people`` skeletons, shuffled per joint type.

    Returns coords [K, N, 2], scores [K, N], valid [K, N], owner [K, N] (person id, -1 pad) and
    the expected poses [P, K, 3] (missing joints all 0).
    """
    gen = torch.Generator().manual_seed(seed)
    people = torch.stack([TEMPLATE * (1 + 0.2 * p) + torch.tensor([60.0 + 90 * p, 20.0 + 5 * p])
                          for p in range(num_people)])  # [P, K, 2]
    joint_scores = 0.5 + 0.5 * torch.rand(num_people, K, generator=gen, dtype=torch.float64)
    coords = torch.zeros(K, num_people, 2, dtype=torch.float64)
    scores = torch.zeros(K, num_people, dtype=torch.float64)
    owner = torch.full((K, num_people), -1, dtype=torch.long)
    for k in range(K):
        ids = [p for p in torch.randperm(num_people, generator=gen).tolist() if present[p, k]]
        for n, p in enumerate(ids):
            coords[k, n], scores[k, n], owner[k, n] = people[p, k], joint_scores[p, k], p
    valid = owner >= 0
    expected = torch.cat([people, joint_scores[..., None]], dim=-1) * present[..., None]
    return coords, scores, valid, owner, expected


def _perfect_matches(owner: torch.Tensor, limbs, seed: int = 0):
    """0/1 matchings connecting candidates of the same person, plus noisy limb scores."""
    ends = torch.tensor(limbs)
    first, second = owner[ends[:, 0]], owner[ends[:, 1]]  # [L, N]
    matches = (first[:, :, None] == second[:, None, :]) & (first[:, :, None] >= 0)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.rand(matches.shape, generator=gen, dtype=torch.float64)
    limb_scores = torch.where(matches, 0.6 + 0.4 * noise, 0.3 * noise)
    return matches.double(), limb_scores


def _as_set(poses: torch.Tensor) -> List[Tuple[float, ...]]:
    return sorted(tuple(round(v, 6) for v in p.flatten().tolist()) for p in poses)


@pytest.mark.parametrize("limbs", [LIMBS, LIMBS_NOTES])
@pytest.mark.parametrize("seed", [0, 1])
def test_three_people_reconstructed_under_any_candidate_order(limbs, seed):
    present = torch.ones(3, K, dtype=torch.bool)
    coords, scores, valid, owner, expected = _scene(3, present, seed)
    matches, limb_scores = _perfect_matches(owner, limbs, seed)
    poses, person_scores = group_people(matches, limb_scores, coords, scores, valid, limbs)
    assert poses.shape == (3, K, 3)
    assert _as_set(poses) == _as_set(expected)
    torch.testing.assert_close(person_scores, poses[:, :, 2].mean(dim=1))
    assert (person_scores[:-1] >= person_scores[1:]).all()


def test_missing_joints():
    present = torch.ones(3, K, dtype=torch.bool)
    present[0, 7] = False  # thorax: the body stays connected through shoulders and hips
    present[1, 8] = False  # upper neck: head top is cut off; the fragments merge at the hips
    present[2, 1] = False  # right knee: the right ankle is cut off
    coords, scores, valid, owner, expected = _scene(3, present, seed=4)
    matches, limb_scores = _perfect_matches(owner, LIMBS)
    poses, _ = group_people(matches, limb_scores, coords, scores, valid, LIMBS)
    expected[1, 9] = 0
    expected[2, 0] = 0
    assert _as_set(poses) == _as_set(expected)


def test_min_joints_and_two_joint_people():
    present = torch.zeros(2, K, dtype=torch.bool)
    present[0, [8, 9]] = True  # a head only
    present[1] = True
    coords, scores, valid, owner, expected = _scene(2, present, seed=5)
    matches, limb_scores = _perfect_matches(owner, LIMBS)
    poses, _ = group_people(matches, limb_scores, coords, scores, valid, LIMBS, min_joints=2)
    assert _as_set(poses) == _as_set(expected)
    poses, _ = group_people(matches, limb_scores, coords, scores, valid, LIMBS, min_joints=3)
    assert _as_set(poses) == _as_set(expected[1:])


def test_person_score_over_all_joint_types_ranks_fragments_low():
    """A 2-joint head and a whole person: by the mean of its joints the head can rank first;
    over all K types it scores (s_8 + s_9) / K, below the whole person whenever its joints are
    not far stronger (hand-computed from the candidate scores)."""
    present = torch.zeros(2, K, dtype=torch.bool)
    present[0, [8, 9]] = True
    present[1] = True
    coords, scores, valid, owner, expected = _scene(2, present, seed=5)
    matches, limb_scores = _perfect_matches(owner, LIMBS)
    poses, person_scores = group_people(matches, limb_scores, coords, scores, valid, LIMBS, min_joints=2,
                                        score_over_all_types=True)
    present_after = poses[:, :, 2] > 0
    torch.testing.assert_close(person_scores, poses[:, :, 2].sum(dim=1) / K)
    assert present_after.sum(dim=1).tolist() == [K, 2]  # the whole person first


def _toy(num_types: int, num_candidates: int):
    coords = torch.arange(num_types * num_candidates * 2, dtype=torch.float64)
    coords = coords.reshape(num_types, num_candidates, 2)
    scores = torch.full((num_types, num_candidates), 0.5, dtype=torch.float64)
    return coords, scores, torch.ones(num_types, num_candidates, dtype=torch.bool)


def test_conflicting_people_are_not_merged():
    # Limbs 0-1 and 2-1 build two people that both own a type-1 joint; the 0-2 limb between
    # them would give the merged person two type-1 joints, so both are kept.
    limbs = [(0, 1), (2, 1), (0, 2)]
    coords, scores, valid = _toy(3, 2)
    matches = torch.zeros(3, 2, 2, dtype=torch.float64)
    matches[0, 0, 0] = matches[1, 1, 1] = matches[2, 0, 1] = 1
    poses, _ = group_people(matches, matches.clone(), coords, scores, valid, limbs, min_joints=2)
    got = {tuple((poses[p, :, 2] > 0).tolist()) for p in range(poses.shape[0])}
    assert got == {(True, True, False), (False, True, True)}
    # People with disjoint joint types do merge: {0, 1} and {2, 3}, linked by limb 1-2.
    limbs = [(0, 1), (2, 3), (1, 2)]
    coords, scores, valid = _toy(4, 1)
    matches = torch.ones(3, 1, 1, dtype=torch.float64)
    poses, _ = group_people(matches, matches.clone(), coords, scores, valid, limbs)
    assert poses.shape == (1, 4, 3) and (poses[0, :, 2] > 0).all()
    torch.testing.assert_close(poses[0, :, :2], coords[:, 0])


def test_assigned_joint_keeps_its_person():
    # Limb 0-2 pairs the person's type-0 joint with a second type-2 candidate: dropped.
    limbs = [(0, 1), (1, 2), (0, 2)]
    coords, scores, valid = _toy(3, 2)
    valid[:2, 1] = False
    matches = torch.zeros(3, 2, 2, dtype=torch.float64)
    matches[0, 0, 0] = matches[1, 0, 0] = matches[2, 0, 1] = 1
    poses, person_scores = group_people(matches, matches.clone(), coords, scores, valid, limbs)
    assert poses.shape == (1, 3, 3)
    torch.testing.assert_close(poses[0, :, :2], coords[:, 0])
    torch.testing.assert_close(person_scores, torch.tensor([0.5], dtype=torch.float64))


def test_grouping_empty_cases():
    coords, scores = torch.zeros(K, 0, 2), torch.zeros(K, 0)
    valid = torch.zeros(K, 0, dtype=torch.bool)
    empty = torch.zeros(len(LIMBS), 0, 0)
    poses, person_scores = group_people(empty, empty, coords, scores, valid, LIMBS)
    assert poses.shape == (0, K, 3) and person_scores.shape == (0,)
    coords, scores, valid, owner, _ = _scene(2, torch.ones(2, K, dtype=torch.bool), 0)
    nothing = torch.zeros(len(LIMBS), 2, 2, dtype=torch.float64)
    poses, person_scores = group_people(nothing, nothing, coords, scores, valid, LIMBS)
    assert poses.shape == (0, K, 3) and person_scores.shape == (0,)
    poses, _ = group_people(torch.zeros(0, 2, 2), torch.zeros(0, 2, 2), coords, scores, valid, [])
    assert poses.shape == (0, K, 3)
    with pytest.raises(ValueError):
        group_people(nothing[:3], nothing, coords, scores, valid, LIMBS)


# ---- greedy baselines ---------------------------------------------------------------------

def _optimum(scores: torch.Tensor, valid: torch.Tensor, threshold: float = 0.0) -> float:
    weights = torch.where(valid & (scores > threshold), scores, torch.zeros_like(scores))
    rows, cols = linear_sum_assignment(weights.numpy(), maximize=True)
    return float(weights[rows, cols].sum())


def _reference_openpose(scores, valid, threshold):
    out = torch.zeros_like(scores)
    for l in range(scores.shape[0]):
        pairs = [(float(scores[l, i, j]), i, j) for i in range(scores.shape[1])
                 for j in range(scores.shape[2]) if valid[l, i, j] and scores[l, i, j] > threshold]
        used_rows, used_cols = set(), set()
        for _, i, j in sorted(pairs, reverse=True):
            if i not in used_rows and j not in used_cols:
                out[l, i, j] = 1
                used_rows.add(i)
                used_cols.add(j)
    return out


def _reference_personlab(scores, valid, threshold, parent_scores):
    out = torch.zeros_like(scores)
    for l in range(scores.shape[0]):
        used = set()
        for i in sorted(range(scores.shape[1]), key=lambda r: -float(parent_scores[l, r])):
            options = [(float(scores[l, i, j]), j) for j in range(scores.shape[2])
                       if j not in used and valid[l, i, j] and scores[l, i, j] > threshold]
            if options:
                j = max(options)[1]
                out[l, i, j] = 1
                used.add(j)
    return out


def test_greedy_differs_from_the_optimum_on_crafted_cases():
    scores = torch.tensor([[[0.9, 0.8], [0.8, 0.1]]], dtype=torch.float64)
    valid = torch.ones_like(scores, dtype=torch.bool)
    optimum = _optimum(scores[0], valid[0])  # 0.8 + 0.8
    openpose = greedy_matching(scores, valid, "openpose")
    assert openpose[0].tolist() == [[1, 0], [0, 1]]  # 0.9 first, then only 0.1 is left
    assert float((openpose * scores).sum()) == pytest.approx(1.0)
    assert optimum == pytest.approx(1.6)
    # PersonLab-style from the most confident parent: parent 1 first reaches the optimum,
    # parent 0 first does what OpenPose does.
    personlab = greedy_matching(scores, valid, "personlab", 0.0, torch.tensor([[0.2, 0.9]]))
    assert personlab[0].tolist() == [[0, 1], [1, 0]]
    assert float((personlab * scores).sum()) == pytest.approx(optimum)
    personlab = greedy_matching(scores, valid, "personlab", 0.0, torch.tensor([[0.9, 0.2]]))
    assert personlab[0].tolist() == [[1, 0], [0, 1]]

    # Here OpenPose is optimal and PersonLab is not (the confident parent takes 0.5, the other
    # is left with a pair at the threshold).
    scores = torch.tensor([[[0.5, 0.4], [0.6, 0.0]]], dtype=torch.float64)
    openpose = greedy_matching(scores, valid, "openpose")
    personlab = greedy_matching(scores, valid, "personlab", 0.0, torch.tensor([[0.9, 0.1]]))
    assert openpose[0].tolist() == [[0, 1], [1, 0]]
    assert personlab[0].tolist() == [[1, 0], [0, 0]]
    assert float((openpose * scores).sum()) == pytest.approx(_optimum(scores[0], valid[0]))
    assert float((personlab * scores).sum()) < _optimum(scores[0], valid[0])


def test_greedy_matches_loop_references_on_random_inputs():
    torch.manual_seed(7)
    scores = torch.rand(6, 5, 7, dtype=torch.float64)
    valid = torch.rand(6, 5, 7) > 0.2
    parent = torch.rand(6, 5, dtype=torch.float64)
    for threshold in (0.0, 0.4):
        openpose = greedy_matching(scores, valid, "openpose", threshold)
        personlab = greedy_matching(scores, valid, "personlab", threshold, parent)
        assert torch.equal(openpose, _reference_openpose(scores, valid, threshold))
        assert torch.equal(personlab, _reference_personlab(scores, valid, threshold, parent))
        for chosen in (openpose, personlab):
            assert chosen.dtype == scores.dtype
            assert (chosen.sum(dim=1) <= 1).all() and (chosen.sum(dim=2) <= 1).all()
            assert (valid & (scores > threshold))[chosen > 0].all()
            for l in range(6):
                total = float((chosen[l] * scores[l]).sum())
                assert total <= _optimum(scores[l], valid[l], threshold) + 1e-9


def test_greedy_output_feeds_grouping():
    present = torch.ones(3, K, dtype=torch.bool)
    coords, scores, valid, owner, expected = _scene(3, present, seed=8)
    _, limb_scores = _perfect_matches(owner, LIMBS)
    ends = torch.tensor(LIMBS)
    pair_valid = valid[ends[:, 0]][:, :, None] & valid[ends[:, 1]][:, None, :]
    for variant in ("openpose", "personlab"):
        matches = greedy_matching(limb_scores, pair_valid, variant, 0.5, scores[ends[:, 0]])
        poses, _ = group_people(matches, limb_scores, coords, scores, valid, LIMBS)
        assert _as_set(poses) == _as_set(expected)


def test_greedy_empty_and_errors():
    for shape in ((0, 3, 3), (4, 0, 3), (4, 3, 0)):
        scores = torch.zeros(shape)
        valid = torch.zeros(shape, dtype=torch.bool)
        assert greedy_matching(scores, valid, "openpose").shape == shape
        parent = torch.zeros(shape[:2])
        assert greedy_matching(scores, valid, "personlab", parent_scores=parent).shape == shape
    scores = torch.rand(2, 3, 3)
    valid = torch.ones(2, 3, 3, dtype=torch.bool)
    assert greedy_matching(scores, ~valid, "openpose").sum() == 0
    with pytest.raises(ValueError):
        greedy_matching(scores, valid, "personlab")
    with pytest.raises(ValueError):
        greedy_matching(scores, valid, "hungarian")
