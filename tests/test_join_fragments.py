"""join_fragments: a fragment that holds a whole person's joint candidate joins that person."""
import torch

from dspf_parser.ops.grouping import join_fragments

K = 6


def _people(rows):
    """Poses ``[P, K, 3]`` and candidate ids ``[P, K]`` from rows of ``{type: candidate}``; a
    joint sits at ``(10 * type + candidate, candidate)`` with score ``0.5 + candidate / 10``."""
    poses = torch.zeros(len(rows), K, 3)
    ids = torch.full((len(rows), K), -1, dtype=torch.long)
    for p, row in enumerate(rows):
        for t, n in row.items():
            poses[p, t] = torch.tensor([10.0 * t + n, float(n), 0.5 + n / 10])
            ids[p, t] = n
    return poses, ids


def test_the_arm_below_a_shared_shoulder_joins_its_person():
    # Person 0 holds shoulder candidate 0 (type 2) with its own elbow / wrist (types 3, 4);
    # person 1 was completed with the same shoulder (shared) and lacks types 3, 4; the fragment
    # (person 2) is an elbow and a wrist with that shoulder added.
    poses, ids = _people([{0: 0, 1: 0, 2: 0, 3: 0, 4: 0}, {0: 1, 1: 1, 2: 0, 5: 1}, {2: 0, 3: 2, 4: 2}])
    shared = torch.zeros(3, K, dtype=torch.bool)
    shared[1, 2] = shared[2, 2] = True
    fragment = torch.tensor([False, False, True])
    kept, out, out_shared = join_fragments(poses, ids, shared, fragment)
    assert kept.tolist() == [0, 1]
    assert torch.equal(out[0], poses[0])  # person 0 holds types 3 and 4 elsewhere: untouched
    expected = poses[1].clone()
    expected[3], expected[4] = poses[2, 3], poses[2, 4]
    assert torch.equal(out[1], expected)
    assert out_shared.tolist() == [[False] * K, [False, False, True, False, False, False]]


def test_fragments_that_conflict_share_nothing_or_meet_only_fragments_stay():
    poses, ids = _people([
        {0: 0, 1: 0, 2: 0},  # whole person
        {2: 0, 1: 3, 5: 3},  # shares candidate 0 of type 2 but holds type 1 with another candidate
        {3: 4, 4: 4},  # shares no candidate
        {3: 4, 5: 5},  # shares candidate 4 of type 3 with a fragment only
    ])
    shared = torch.zeros(4, K, dtype=torch.bool)
    fragment = torch.tensor([False, True, True, True])
    kept, out, out_shared = join_fragments(poses, ids, shared, fragment)
    assert kept.tolist() == [0, 1, 2, 3]
    assert torch.equal(out, poses) and not out_shared.any()


def test_the_first_eligible_person_takes_the_fragment_and_its_joints_count_for_the_next():
    poses, ids = _people([
        {0: 0, 1: 0, 2: 0},
        {0: 0, 1: 1, 5: 1},  # second person holding candidate 0 of type 0 too
        {0: 0, 3: 2},  # eligible for both: the first (best-ranked) takes it
        {1: 0, 3: 3},  # eligible for person 0 before the first fragment joined, not after (type 3)
    ])
    shared = torch.zeros(4, K, dtype=torch.bool)
    fragment = torch.tensor([False, False, True, True])
    kept, out, _ = join_fragments(poses, ids, shared, fragment)
    assert kept.tolist() == [0, 1, 3]
    assert out[0, 3].tolist() == poses[2, 3].tolist()
    assert torch.equal(out[1], poses[1]) and torch.equal(out[2], poses[3])


def test_no_fragment_or_one_person_returns_the_input():
    poses, ids = _people([{0: 0, 1: 0, 2: 0}, {0: 1, 1: 1, 2: 1}])
    shared = torch.zeros(2, K, dtype=torch.bool)
    kept, out, out_shared = join_fragments(poses, ids, shared, torch.tensor([False, False]))
    assert kept.tolist() == [0, 1] and out is poses and out_shared is shared
    kept, out, _ = join_fragments(poses[:1], ids[:1], shared[:1], torch.tensor([True]))
    assert kept.tolist() == [0]
