"""complete_people: people take the joints they share with someone else."""
import math

import pytest
import torch

from dspf_parser.ops.grouping import complete_people


def _reference(poses, joint_ids, coords, scores, valid, limb_scores, limbs, min_score):
    """Loops: for each person and missing type, each valid candidate's lowest limb score with
    the person's joints adjacent to the type; the best candidate (first on ties) if that lowest
    score reaches ``min_score`` and some adjacent joint exists."""
    out, added = poses.clone(), torch.zeros(poses.shape[:2], dtype=torch.bool)
    for p in range(poses.shape[0]):
        for t in range(poses.shape[1]):
            if joint_ids[p, t] >= 0:
                continue
            best, pick = -math.inf, None
            for n in range(coords.shape[1]):
                if not valid[t, n]:
                    continue
                lows = []
                for l, (a, b) in enumerate(limbs):
                    if a == t and joint_ids[p, b] >= 0:
                        lows.append(float(limb_scores[l, n, joint_ids[p, b]]))
                    if b == t and joint_ids[p, a] >= 0:
                        lows.append(float(limb_scores[l, joint_ids[p, a], n]))
                if lows and min(lows) > best:
                    best, pick = min(lows), n
            if pick is not None and best >= min_score:
                out[p, t] = torch.tensor([*coords[t, pick].tolist(), float(scores[t, pick])])
                added[p, t] = True
    return out, added


@pytest.mark.parametrize("seed", range(6))
def test_complete_people_equals_a_loop(seed):
    g = torch.Generator().manual_seed(seed)
    num_types, n, people = 5, 4, 3
    limbs = [(0, 1), (1, 2), (2, 3), (1, 3), (3, 4)]
    coords = torch.rand(num_types, n, 2, generator=g) * 50
    scores = torch.rand(num_types, n, generator=g)
    valid = torch.rand(num_types, n, generator=g) < 0.8
    limb_scores = torch.rand(len(limbs), n, n, generator=g)
    limb_scores[limb_scores < 0.2] = 0.0  # pairs that may not be associated
    joint_ids = torch.randint(0, n, (people, num_types), generator=g)
    joint_ids[torch.rand(people, num_types, generator=g) < 0.4] = -1
    joint_ids = torch.where(valid[torch.arange(num_types), joint_ids.clamp_min(0)], joint_ids, torch.full_like(joint_ids, -1))
    present = joint_ids >= 0
    kinds = torch.arange(num_types)[None].expand(people, -1)
    poses = torch.cat([coords[kinds, joint_ids.clamp_min(0)], scores[kinds, joint_ids.clamp_min(0)][..., None]], 2)
    poses = poses * present[..., None]
    got, got_added = complete_people(poses, joint_ids, coords, scores, valid, limb_scores, limbs, 0.4)
    want, want_added = _reference(poses, joint_ids, coords, scores, valid, limb_scores, limbs, 0.4)
    assert torch.equal(got_added, want_added)
    assert torch.allclose(got, want)


def test_occluded_shoulder_is_shared():
    """Two people side by side whose right shoulders coincide: one candidate (index 0 of type
    1), held by person 0. Person 1 lacks it; its neck (type 0, candidate 1) and elbow (type 2,
    candidate 1) both score 0.9 with that shoulder, so it takes it. A candidate scoring 0.9 with
    the neck but 0.1 with the elbow is refused, and a person with no joint next to the type
    takes nothing."""
    limbs = [(0, 1), (1, 2)]  # neck-shoulder, shoulder-elbow
    coords = torch.tensor([[[10.0, 10.0], [20.0, 10.0]], [[15.0, 20.0], [40.0, 20.0]], [[15.0, 30.0], [20.0, 30.0]]])
    scores = torch.ones(3, 2)
    valid = torch.ones(3, 2, dtype=torch.bool)
    limb_scores = torch.zeros(2, 2, 2)
    limb_scores[0, 0, 0] = limb_scores[1, 0, 0] = 1.0  # person 0: neck 0 - shoulder 0 - elbow 0
    limb_scores[0, 1, 0] = limb_scores[1, 0, 1] = 0.9  # person 1's neck and elbow with shoulder 0
    limb_scores[0, 1, 1], limb_scores[1, 1, 1] = 0.9, 0.1  # shoulder 1: good with the neck only
    joint_ids = torch.tensor([[0, 0, 0], [1, -1, 1], [-1, -1, -1]])
    poses = torch.zeros(3, 3, 3)
    for p in range(3):
        for t in range(3):
            if joint_ids[p, t] >= 0:
                poses[p, t] = torch.tensor([*coords[t, joint_ids[p, t]].tolist(), 1.0])
    out, added = complete_people(poses, joint_ids, coords, scores, valid, limb_scores, limbs, 0.5)
    assert added.tolist() == [[False] * 3, [False, True, False], [False] * 3]
    assert out[1, 1].tolist() == [15.0, 20.0, 1.0]
    assert torch.equal(out[0], poses[0]) and torch.equal(out[2], poses[2])
    limb_scores[1, 0, 1] = 0.3  # the elbow no longer agrees
    _, added = complete_people(poses, joint_ids, coords, scores, valid, limb_scores, limbs, 0.5)
    assert not added.any()
