"""Bottom-up decoding from perfect maps, duplicate suppression, and the matching supervision."""
import pytest
import torch

from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.ops.decoding import (ASSOCIATIONS, DecodingSettings, ParsingMaps, decode_maps,
                                      suppress_duplicates)
from dspf_parser.ops.matching import matching_loss, solve_matching
from dspf_parser.ops.matching_targets import ground_truth_limb_problems
from dspf_parser.ops.targets import dspf_targets, keypoint_targets, limb_targets

LIMBS = list(S.limbs)
BASE = torch.tensor([[30., 60], [30, 45], [30, 30], [40, 30], [40, 45], [40, 60], [35, 30], [35, 15], [35, 10],
                     [35, 2], [22, 30], [25, 20], [28, 12], [42, 12], [45, 20], [48, 30]])
STRIDE, RADIUS, SIGMA, SIZE = 4, 6.0, 3.0, (96, 160)


def scene(shifts):
    """People at ``BASE + shift``; each person's pixels = a box around its joints."""
    kp = torch.zeros(len(shifts), 16, 3)
    inst = torch.zeros(SIZE, dtype=torch.long)
    for p, shift in enumerate(shifts):
        kp[p, :, :2] = BASE + torch.tensor(shift)
        kp[p, :, 2] = 2
        x0, y0 = (BASE + torch.tensor(shift)).min(0).values.long().tolist()
        x1, y1 = (BASE + torch.tensor(shift)).max(0).values.long().tolist()
        inst[y0 : y1 + 1, x0 : x1 + 1] = p + 1
    return kp, inst


def decode(heat, off, limbs, field, mask, **settings):
    """``decode_maps`` of stride-``STRIDE`` maps whose part map is ``mask`` (1 = person), output
    at the input size ``grid * STRIDE``."""
    probs = torch.stack([~mask, mask]).float()
    maps = ParsingMaps(probs, field, heat, off, limbs, part_stride=STRIDE)
    size = (mask.shape[0] * STRIDE, mask.shape[1] * STRIDE)
    return decode_maps(maps, size, size, DecodingSettings(LIMBS, STRIDE, RADIUS, **settings))


def perfect_maps(kp, inst):
    heat, off, _ = keypoint_targets(kp, SIZE, STRIDE, RADIUS)
    limbs = limb_targets(kp, LIMBS, SIZE, STRIDE, SIGMA)
    field, weight = dspf_targets(inst, kp, STRIDE)
    return heat, off, limbs, field, weight > 0


@pytest.mark.parametrize("association", ASSOCIATIONS)
def test_perfect_maps_give_the_true_people(association):
    kp, inst = scene([(0, 0), (50, 10), (100, 20)])
    heat, off, limbs, field, mask = perfect_maps(kp, inst)
    people = decode(heat, off, limbs, field, mask, association=association)
    assert len(people.scores) == 3
    order = people.poses[:, 0, 0].argsort()  # by x of the right ankle = scene order
    assert torch.allclose(people.poses[order, :, :2], kp[:, :, :2], atol=1.0)
    assert torch.all(people.poses[:, :, 2] > 0.5)
    # Every person cell centre (the full-resolution pixel the cell stands for) goes to its own
    # person (instance ids follow the score order).
    cells = mask.nonzero(as_tuple=True)
    rows, cols = cells[0] * STRIDE + STRIDE // 2, cells[1] * STRIDE + STRIDE // 2
    mapping = torch.empty(4, dtype=torch.long)
    mapping[order + 1] = torch.arange(1, 4)
    assert people.instance_map.shape == SIZE
    assert torch.equal(mapping[people.instance_map[rows, cols]], inst[rows, cols])
    # And every pixel with a part label goes to some person.
    assert bool((people.instance_map[people.part_labels > 0] > 0).all())


def test_no_signal_gives_no_people_and_background():
    h, w = SIZE[0] // STRIDE, SIZE[1] // STRIDE
    people = decode(torch.zeros(16, h, w), torch.zeros(16, 2, h, w), torch.zeros(18, h, w),
                    torch.zeros(2, h, w), torch.ones(h, w, dtype=torch.bool))
    assert people.poses.shape == (0, 16, 3) and people.scores.shape == (0,)
    assert people.instance_map.shape == SIZE and people.instance_map.max() == 0


def test_unknown_association_is_a_clear_error():
    kp, inst = scene([(0, 0)])
    with pytest.raises(ValueError, match="unknown association"):
        decode(*perfect_maps(kp, inst), association="hungarian")


def test_suppress_duplicates_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(3, 12, 2, generator=g) * 20
    scores = torch.rand(3, 12, generator=g).sort(dim=1, descending=True).values
    scores[0, 3] = scores[0, 2]  # a tie
    valid = torch.rand(3, 12, generator=g) > 0.2
    got = suppress_duplicates(coords, scores, valid, 4.0)
    for k in range(3):
        for j in range(12):
            beaten = any(
                valid[k, i] and (coords[k, i] - coords[k, j]).norm() < 4.0
                and (scores[k, i] > scores[k, j] or (scores[k, i] == scores[k, j] and i < j))
                for i in range(12) if i != j
            )
            assert bool(got[k, j]) == bool(valid[k, j] and not beaten)


def test_ground_truth_limb_problems_and_matching_loss_gradient():
    kp, inst = scene([(0, 0), (50, 10)])
    kp[1, 9, 2] = 0  # person 2's head top unlabelled
    limbs = limb_targets(kp, LIMBS, SIZE, STRIDE, SIGMA)[None].clone().requires_grad_(True)
    scores, valid, target = ground_truth_limb_problems(limbs, [kp], LIMBS, STRIDE)
    assert scores.shape == (18, 2, 2)
    head = LIMBS.index((8, 9))  # upper neck -> head top
    assert valid[head].tolist() == [[True, False], [True, False]]
    assert target[head].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    # True pairs score higher than crossed ones on a perfect limb map.
    both = valid.all(dim=(1, 2))
    diag = scores[both].diagonal(dim1=1, dim2=2)
    assert torch.all(diag.min(1).values > scores[both][:, 0, 1]) and torch.all(diag.min(1).values > scores[both][:, 1, 0])
    x = solve_matching(scores, valid)
    loss = matching_loss(x, target, valid)
    assert loss.item() < 0.1
    # A corrupted map (person 1's shoulders painted where the crossed pair lies) is penalised,
    # and the gradient reaches the limb heatmap.
    limbs2 = limbs.detach().clone()
    limbs2[0, LIMBS.index((12, 13))] = 0.5
    limbs2.requires_grad_(True)
    s2, v2, t2 = ground_truth_limb_problems(limbs2, [kp], LIMBS, STRIDE)
    loss2 = matching_loss(solve_matching(s2, v2), t2, v2)
    loss2.backward()
    assert limbs2.grad is not None and limbs2.grad.abs().sum() > 0


def test_ground_truth_limb_problems_with_no_people():
    limbs = torch.zeros(2, 18, 8, 8)
    scores, valid, target = ground_truth_limb_problems(limbs, [torch.zeros(0, 16, 3)] * 2, LIMBS, STRIDE)
    assert scores.shape == (36, 1, 1) and not valid.any() and target.sum() == 0


def test_class_argmax_is_torch_argmax_with_ties_to_the_lower_class():
    from dspf_parser.ops.decoding import class_argmax

    g = torch.Generator().manual_seed(0)
    for c in (1, 2, 7, 59, 300):
        probs = torch.randint(0, 3, (c, 9, 11), generator=g).float()  # many ties
        assert torch.equal(class_argmax(probs), probs.argmax(0))
        soft = torch.randn(c, 5, 6, generator=g).softmax(0)
        assert torch.equal(class_argmax(soft), soft.argmax(0))
    nan = torch.rand(4, 3, 3, generator=g)
    nan[2, 1, 1] = float("nan")
    got = class_argmax(nan)
    assert int(got[1, 1]) == 0 and torch.equal(got[0], nan.argmax(0)[0])


def test_sample_at_pixels_reads_the_grid_as_the_dense_sampling():
    """The DSPF read at chosen output pixels equals the dense ``sample_grid_at_pixels`` there
    (same grid convention), for strides 1-8 and output sizes above and below the input."""
    from dspf_parser.ops.decoding import sample_at_pixels
    from dspf_parser.ops.targets import sample_grid_at_pixels

    g = torch.Generator().manual_seed(0)
    for stride, size, out in [(4, (37, 50), (37, 50)), (4, (37, 50), (80, 101)), (8, (64, 40), (20, 13)),
                              (1, (9, 7), (9, 7)), (2, (15, 16), (31, 8))]:
        grid = torch.randn(2, -(-size[0] // stride), -(-size[1] // stride), generator=g)
        dense = sample_grid_at_pixels(grid, stride, size, out).reshape(2, -1)
        pixels = torch.randperm(out[0] * out[1], generator=g)[: max(1, out[0] * out[1] // 3)]
        assert torch.allclose(sample_at_pixels(grid, stride, pixels, size, out), dense[:, pixels], atol=1e-5)


@pytest.mark.parametrize("kind", ["random", "blocks", "ties", "two_classes"])
def test_part_labels_are_the_dense_argmax(kind):
    """The labels equal the argmax of the full-resolution probabilities (``grid_sample``'s
    interpolation), up to pixels whose two best classes are within float rounding."""
    from dspf_parser.ops.decoding import part_labels
    from dspf_parser.ops.targets import sample_grid_at_pixels

    g = torch.Generator().manual_seed({"random": 0, "blocks": 1, "ties": 2, "two_classes": 3}[kind])
    checked = 0
    for trial in range(60):
        c = 2 if kind == "two_classes" else int(torch.randint(2, 8, (1,), generator=g))
        hp, wp = (int(v) for v in torch.randint(1, 12, (2,), generator=g))
        s = [1, 2, 4, 8][trial % 4]
        size = (hp * s - int(torch.randint(0, s, (1,), generator=g)), wp * s)
        out = [size, (2 * size[0] + 1, size[1] + 3), (max(1, size[0] // 2), max(1, size[1] // 3))][trial % 3]
        if kind in ("random", "two_classes"):
            logits = torch.randn(c, hp, wp, generator=g) * 3
        elif kind == "blocks":
            labels = torch.randint(0, c, (hp, wp), generator=g)
            logits = torch.nn.functional.one_hot(labels, c).permute(2, 0, 1).float() * 20 - 10
        else:
            logits = torch.randint(0, 2, (c, hp, wp), generator=g).float()
        probs = logits.softmax(0)
        dense = sample_grid_at_pixels(probs, s, size, out)
        got = part_labels(probs, s, size, out)
        assert got.shape == dense.shape[1:] and got.dtype == torch.long
        top2 = dense.topk(min(2, c), dim=0).values
        clear = top2[0] - top2[-1] > 1e-6
        assert torch.equal(got[clear], dense.argmax(0)[clear])
        # Elsewhere the label is one of the (near-)best classes.
        picked = dense.gather(0, got[None])[0]
        assert bool((picked >= top2[0] - 1e-6).all())
        assert torch.equal(part_labels(probs, s, size, out, grid_labels=probs.argmax(0)), got)
        checked += int(clear.sum())
    assert checked > 1000


def test_min_limb_score_keeps_weak_pairs_out_of_the_association():
    """On perfect maps every true limb scores about 1 (template score): a floor of 0.5 keeps
    the three people, a floor above every score leaves no pair to associate, hence no people."""
    kp, inst = scene([(0, 0), (50, 10), (100, 20)])
    heat, off, limbs, field, mask = perfect_maps(kp, inst)
    kept = decode(heat, off, limbs, field, mask, limb_template_sigma=SIGMA, min_limb_score=0.5)
    assert len(kept.scores) == 3
    none = decode(heat, off, limbs, field, mask, limb_template_sigma=SIGMA, min_limb_score=1.0)
    assert len(none.scores) == 0 and int(none.instance_map.max()) == 0


TORSO = [2, 3, 6, 7, 12, 13]  # hips, pelvis, thorax, shoulders: every limb between the fragments


@pytest.mark.parametrize("shifts", [[(0, 0)], [(0, 0), (40, 0)]])
def test_dspf_grouping_joins_the_fragments_of_each_person(shifts):
    """With the torso joints unlabelled (outside the image, say), no limb links a person's head,
    arms and legs: each is a 2-joint fragment, all dropped by ``min_joints`` 3. The DSPF still
    links them (the person's cells point to the fragments' joints and touch on their bisectors):
    each person comes back whole, with exactly its 10 labelled joints; two people side by side
    (their boxes touching) stay two."""
    kp, inst = scene(shifts)
    kp[:, TORSO, 2] = 0
    heat, off, limbs, field, mask = perfect_maps(kp, inst)
    assert len(decode(heat, off, limbs, field, mask, dspf_grouping=False).scores) == 0
    people = decode(heat, off, limbs, field, mask)
    assert len(people.scores) == len(shifts)
    order = people.poses[:, 0, 0].argsort()
    present = people.poses[order, :, 2] > 0
    assert torch.equal(present, kp[:, :, 2] > 0)
    assert torch.allclose(people.poses[order][present][:, :2], kp[kp[:, :, 2] > 0][:, :2], atol=1.0)
