"""group_people's pair order ("limb" vs "score", confident pairs first), the DSPF support of people, and the fragments
decode_maps keeps by it (hand-computed cases and a brute-force loop)."""
import pytest
import torch

from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.ops.decoding import DecodingSettings, ParsingMaps, decode_maps
from dspf_parser.ops.dspf_grouping import dspf_support
from dspf_parser.ops.grouping import group_people, rank_people
from dspf_parser.ops.targets import dspf_targets, keypoint_targets, limb_targets

# Three joint types (head 0, neck 1, thorax 2): limbs head-neck, neck-thorax, head-thorax.
CHAIN = [(0, 1), (1, 2), (0, 2)]


def overlap_problem():
    """Person A: head a0, neck a1, thorax a2 (candidate 0 of each type). Person B: head b0 and
    thorax b2 (candidate 1), its neck lost. The head-neck matching (one neck for two heads) took
    B's head with A's neck (0.8, A's own head scores 0.7); every other matched pair is true
    (1.0)."""
    coords = torch.tensor([[[0.0, 0.0], [50.0, 0.0]],
                           [[0.0, 10.0], [0.0, 0.0]],
                           [[0.0, 20.0], [50.0, 20.0]]])
    scores = torch.tensor([[0.9, 0.8], [0.7, 0.0], [0.6, 0.5]])
    valid = torch.tensor([[True, True], [True, False], [True, True]])
    matches = torch.zeros(3, 2, 2)
    limb_scores = torch.zeros(3, 2, 2)
    matches[0, 1, 0], limb_scores[0, 1, 0] = 1, 0.8  # b0 - a1 (cross)
    limb_scores[0, 0, 0] = 0.7  # a0 - a1, not matched
    matches[1, 0, 0], limb_scores[1, 0, 0] = 1, 1.0  # a1 - a2
    matches[2, 0, 0], limb_scores[2, 0, 0] = 1, 1.0  # a0 - a2
    matches[2, 1, 1], limb_scores[2, 1, 1] = 1, 1.0  # b0 - b2
    return matches, limb_scores, coords, scores, valid


def test_limb_order_lets_the_first_limb_decide():
    """Head to foot, the cross head-neck pair comes first: B's head, A's neck and A's thorax
    form one person; A's head and B's thorax then find their places taken (hand-traced)."""
    poses, _ = group_people(*overlap_problem(), CHAIN, min_joints=1, order="limb")
    assert poses.shape[0] == 1
    assert poses[0, :, :2].tolist() == [[50.0, 0.0], [0.0, 10.0], [0.0, 20.0]]


def test_score_order_meets_the_cross_pair_last():
    """By score, the three true pairs build A = {a0, a1, a2} and B = {b0, b2} first; the cross
    pair would give a person two heads, so it is dropped: both people come out right."""
    poses, person_scores = group_people(*overlap_problem(), CHAIN, min_joints=1, order="score")
    assert poses.shape[0] == 2
    got = {tuple(map(tuple, p[:, :2].tolist())): p[:, 2].tolist() for p in poses}
    assert got == {
        ((0.0, 0.0), (0.0, 10.0), (0.0, 20.0)): pytest.approx([0.9, 0.7, 0.6]),
        ((50.0, 0.0), (0.0, 0.0), (50.0, 20.0)): pytest.approx([0.8, 0.0, 0.5]),
    }
    assert person_scores.tolist() == pytest.approx([(0.9 + 0.7 + 0.6) / 3, (0.8 + 0.5) / 2])


@pytest.mark.parametrize("order", ["limb", "score"])
def test_confident_pairs_first(order):
    """With the three true pairs (1.0) above the threshold and the cross pair (0.8) below, the
    cross pair comes last even head to foot: both people right, as with the score order. A
    threshold of 0 (every pair confident) or above every score (none) leaves ``order`` alone."""
    problem = overlap_problem()
    right = group_people(*problem, CHAIN, min_joints=1, order="score")
    for threshold in (0.9, 1.0):
        got = group_people(*problem, CHAIN, min_joints=1, order=order, confident_above=threshold)
        assert all(torch.equal(x, y) for x, y in zip(got, right))
    for threshold in (0.0, 1.5):
        got = group_people(*problem, CHAIN, min_joints=1, order=order, confident_above=threshold)
        plain = group_people(*problem, CHAIN, min_joints=1, order=order)
        assert all(torch.equal(x, y) for x, y in zip(got, plain))
    # Below the cross pair's score, limb order takes it first again.
    got = group_people(*problem, CHAIN, min_joints=1, order="limb", confident_above=0.75)
    assert got[0].shape[0] == 1


def test_rank_people_index_points_back_to_the_input():
    """People with 1, 3 and 4 joints (means 0.9, 0.5, 0.7): min_joints 2 keeps the last two,
    best first: input indices [2, 1]."""
    poses = torch.zeros(3, 4, 3)
    poses[0, 0, 2] = 0.9
    poses[1, :3, 2] = 0.5
    poses[2, :, 2] = 0.7
    poses[..., 0] = torch.arange(3.0)[:, None]
    ranked, person_scores, index = rank_people(poses, 2, return_index=True)
    assert index.tolist() == [2, 1]
    assert person_scores.tolist() == pytest.approx([0.7, 0.5])
    assert torch.equal(ranked, poses[index])
    assert all(torch.equal(x, y) for x, y in zip(rank_people(poses, 2), (ranked, person_scores)))


def test_unknown_order_is_a_clear_error():
    with pytest.raises(ValueError, match="order"):
        group_people(*overlap_problem(), CHAIN, min_joints=1, order="random")


@pytest.mark.parametrize("seed", range(4))
def test_dspf_support_matches_a_loop(seed):
    g = torch.Generator().manual_seed(seed)
    h, w, stride, radius, num_people, k = 7, 9, 4, 5.0, 3, 5
    poses = torch.zeros(num_people, k, 3)
    poses[..., 0] = torch.rand(num_people, k, generator=g) * w * stride
    poses[..., 1] = torch.rand(num_people, k, generator=g) * h * stride
    poses[..., 2] = (torch.rand(num_people, k, generator=g) < 0.6).float()
    poses[0, 0, 2] = 1.0
    cells = torch.rand(h, w, generator=g) < 0.7
    # Every cell projects near a random present joint (up to 1.5 radius off each axis).
    joints = poses[poses[..., 2] > 0][:, :2]
    pick = torch.randint(joints.shape[0], (h, w), generator=g)
    target = joints[pick] + (torch.rand(h, w, 2, generator=g) - 0.5) * 3 * radius  # [h, w, 2]
    ys, xs = torch.meshgrid(torch.arange(h) * stride + stride // 2, torch.arange(w) * stride + stride // 2,
                            indexing="ij")
    dspf = (target - torch.stack([xs, ys], dim=-1)).permute(2, 0, 1)
    expected = [0] * num_people
    for i in range(h):
        for j in range(w):
            if not cells[i, j]:
                continue
            px = j * stride + stride // 2 + float(dspf[0, i, j])
            py = i * stride + stride // 2 + float(dspf[1, i, j])
            best, who = float("inf"), None
            for p in range(num_people):
                for t in range(k):
                    if poses[p, t, 2] > 0:
                        d = ((px - float(poses[p, t, 0])) ** 2 + (py - float(poses[p, t, 1])) ** 2) ** 0.5
                        if d < best:
                            best, who = d, p
            if who is not None and best <= radius:
                expected[who] += 1
    assert 0 < sum(expected) < int(cells.sum())  # the radius both keeps and drops cells
    assert dspf_support(poses, cells, dspf, stride, radius).tolist() == expected
    assert int(dspf_support(poses, cells, dspf, stride, 1e6).sum()) == int(cells.sum())


def test_dspf_support_counts_cells_pointing_at_a_person():
    """Two rows of 4 cells (x = 2, 6, 10, 14): the left half points to (4, 4), the right half to
    (12, 4) (one joint per person); a third person's joint far away gets none."""
    poses = torch.zeros(3, 2, 3)
    poses[0, 0] = torch.tensor([4.0, 4.0, 1.0])
    poses[1, 1] = torch.tensor([12.0, 4.0, 1.0])
    poses[2, 0] = torch.tensor([60.0, 60.0, 1.0])
    xs = torch.tensor([2.0, 6.0, 10.0, 14.0])
    target = torch.tensor([4.0, 4.0, 12.0, 12.0])
    dspf = torch.zeros(2, 2, 4)
    dspf[0] = target - xs
    dspf[1, 0], dspf[1, 1] = 2.0, -2.0
    cells = torch.ones(2, 4, dtype=torch.bool)
    cells[1, 3] = False
    assert dspf_support(poses, cells, dspf, 4, 1.0).tolist() == [4, 3, 0]
    assert dspf_support(poses[:0], cells, dspf, 4, 1.0).shape == (0,)


# decode_maps on perfect maps (the scene of tests/test_decoding.py).
LIMBS = list(S.limbs)
BASE = torch.tensor([[30., 60], [30, 45], [30, 30], [40, 30], [40, 45], [40, 60], [35, 30], [35, 15], [35, 10],
                     [35, 2], [22, 30], [25, 20], [28, 12], [42, 12], [45, 20], [48, 30]])
STRIDE, RADIUS, SIGMA, SIZE = 4, 6.0, 3.0, (96, 160)


def two_people(labelled, widen=0):
    """Perfect maps of person 0 (all joints labelled) and person 1 (50 px right, 10 px down;
    ``labelled`` its labelled joint types), each filling its joints' box, person 1's widened by
    ``widen`` px: ``kp`` ``[2, 16, 3]``, the instance map, the maps and the person cells."""
    kp = torch.zeros(2, 16, 3)
    inst = torch.zeros(SIZE, dtype=torch.long)
    for p, shift in enumerate([(0.0, 0.0), (50.0, 10.0)]):
        joints = BASE + torch.tensor(shift)
        kp[p, :, :2] = joints
        x0, y0 = joints.min(0).values.long().tolist()
        x1, y1 = joints.max(0).values.long().tolist()
        inst[y0 : y1 + 1, x0 : x1 + 1 + widen * p] = p + 1
    kp[0, :, 2] = 2
    kp[1, labelled, 2] = 2
    heat, off, _ = keypoint_targets(kp, SIZE, STRIDE, RADIUS)
    limbs = limb_targets(kp, LIMBS, SIZE, STRIDE, SIGMA)
    field, weight = dspf_targets(inst, kp, STRIDE)
    mask = weight > 0
    maps = ParsingMaps(torch.stack([~mask, mask]).float(), field, heat, off, limbs, part_stride=STRIDE)
    return kp, inst, maps, mask


def test_a_person_with_one_visible_joint_is_kept_by_its_dspf_support():
    """Person 0 is whole; of person 1 (its box 50 px to the right) only the head top is labelled,
    so every one of its cells points there. Without fragments it is dropped (1 joint < 3) and its
    pixels go to person 0; with ``fragment_min_cells`` up to its cell count it is a person of its
    own, ranked after the whole one (its joint mean times ``fragment_score``), owning its box."""
    kp, inst, maps, mask = two_people([9])  # person 1: head top only
    cells_of_1 = int((mask & (inst[STRIDE // 2 :: STRIDE, STRIDE // 2 :: STRIDE] == 2)).sum())

    def decode(**settings):
        return decode_maps(maps, SIZE, SIZE, DecodingSettings(LIMBS, STRIDE, RADIUS, **settings))

    assert len(decode().scores) == 1
    assert len(decode(fragment_min_cells=cells_of_1 + 1).scores) == 1
    people = decode(fragment_min_cells=cells_of_1, fragment_score=0.2)
    assert len(people.scores) == 2
    assert (people.poses[1, :, 2] > 0).nonzero().flatten().tolist() == [9]
    assert torch.allclose(people.poses[1, 9, :2], kp[1, 9, :2], atol=1.0)
    assert float(people.scores[1]) == pytest.approx(0.2 * float(people.poses[1, 9, 2]))
    assert float(people.scores[1]) < float(people.scores[0])
    # The pixels at the centres of person 1's cells (whose DSPF is exact) are its own.
    rows, cols = (mask & (inst[STRIDE // 2 :: STRIDE, STRIDE // 2 :: STRIDE] == 2)).nonzero(as_tuple=True)
    assert (people.instance_map[rows * STRIDE + STRIDE // 2, cols * STRIDE + STRIDE // 2] == 2).all()


def test_completeness_power_ranks_partial_people_lower():
    """Person 0 whole (16 joints), person 1 with its 10 upper-body joints (pelvis up): on perfect
    maps both score about 1 without the completeness factor; with power 1 person 1's rank score
    is exactly 10/16 of it (and 1 for the whole person), with power 2 (10/16)^2; the poses and
    the pixels do not change."""
    kp, inst, maps, mask = two_people(list(range(6, 16)))  # person 1: pelvis up

    def decode(power):
        people = decode_maps(maps, SIZE, SIZE, DecodingSettings(LIMBS, STRIDE, RADIUS, limb_template_sigma=SIGMA,
                                                                  completeness_power=power))
        order = people.poses[:, 9, 0].argsort()  # person 0's head is left of person 1's
        return people, people.scores[order], people.poses[order], people.instance_map

    _, plain, poses, instances = decode(0.0)
    assert plain.tolist() == pytest.approx([1.0, 1.0], abs=0.1)
    for power in (1.0, 2.0):
        people, ranked, ranked_poses, ranked_instances = decode(power)
        assert ranked.tolist() == pytest.approx([plain[0].item(), plain[1].item() * (10 / 16) ** power])
        assert people.scores[0] > people.scores[1]  # the whole person first
        assert torch.equal(ranked_poses, poses)
    assert ((ranked_instances > 0) == (instances > 0)).all()


def test_support_power_ranks_people_by_the_cells_pointing_at_them():
    """Two whole people, person 1's box 12 px wider (more cells): on perfect maps every person
    cell projects exactly onto a joint of its own person, so person p's support is its number of
    person cells; with ``support_power`` b its rank score is the plain one times cells^b."""
    kp, inst, maps, mask = two_people(list(range(16)), widen=12)
    at_centres = inst[STRIDE // 2 :: STRIDE, STRIDE // 2 :: STRIDE]
    cells = [int((mask & (at_centres == p + 1)).sum()) for p in range(2)]
    assert cells[1] > cells[0]

    def ranked(power):
        people = decode_maps(maps, SIZE, SIZE, DecodingSettings(LIMBS, STRIDE, RADIUS, limb_template_sigma=SIGMA,
                                                                  support_power=power))
        return people.scores[people.poses[:, 9, 0].argsort()]

    plain = ranked(0.0)
    for power in (0.25, 1.0):
        assert ranked(power).tolist() == pytest.approx([plain[p].item() * cells[p] ** power for p in range(2)])
