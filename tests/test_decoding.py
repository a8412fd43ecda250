"""Bottom-up decoding from perfect maps, duplicate suppression, and the matching supervision."""
import math

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


def _cells_reference(labels, dspf, poses, person_scores, stride, input_size, person_cells, min_scale):
    """``_assign_by_cells`` by loops: the documented footprint of every labelled pixel, Eq. 17 at
    each corner cell's projection (``cost = |t - x_j| / (s_j S_p scale_p)``, ties to the first
    person), then the person whose (person-cell, same-label) bilinear weight is largest, first
    corner first; a pixel whose label no corner carries takes the nearest cell of the 4 x 4 block
    around its footprint that carries it."""
    out_h, out_w = labels.shape
    h, w = dspf.shape[-2:]
    sx, sy = out_w / input_size[1], out_h / input_size[0]
    min_out = min_scale * math.sqrt(out_h * out_w / (input_size[0] * input_size[1]))
    people = []
    for p in range(poses.shape[0]):
        joints = [(float(x), float(y), float(s), k) for k, (x, y, s) in enumerate(poses[p].tolist()) if s > 0]
        if joints and float(person_scores[p]) > 0:
            xs, ys = [j[0] for j in joints], [j[1] for j in joints]
            scale = max(math.sqrt((max(xs) - min(xs) + 1) * (max(ys) - min(ys) + 1)), min_out)
            people.append((p, joints, float(person_scores[p]) * scale))

    def eq17(i, j):
        tx = (j * stride + stride // 2 + float(dspf[0, i, j]) + 0.5) * sx - 0.5
        ty = (i * stride + stride // 2 + float(dspf[1, i, j]) + 0.5) * sy - 0.5
        best = (math.inf, 0, 0)
        for p, joints, weight in people:
            for x, y, s, k in joints:
                cost = math.hypot(tx - x, ty - y) / (s * weight)
                if cost < best[0]:
                    best = (cost, p + 1, k)
        return best[1], best[2]

    def axis(n_out, n_in, n_grid, v):
        u = min(max(((v + 0.5) * n_in / n_out - 0.5 - stride // 2) / stride, 0.0), n_grid - 1)
        return int(math.floor(u)), min(int(math.floor(u)) + 1, n_grid - 1), u - math.floor(u)

    instance = torch.zeros(out_h, out_w, dtype=torch.long)
    joint_of = {}
    for yy in range(out_h):
        for xx in range(out_w):
            if labels[yy, xx] <= 0:
                continue
            x0, x1, fx = axis(out_w, input_size[1], w, xx)
            y0, y1, fy = axis(out_h, input_size[0], h, yy)
            corners = [(y0, x0, (1 - fx) * (1 - fy)), (y0, x1, fx * (1 - fy)), (y1, x0, (1 - fx) * fy),
                       (y1, x1, fx * fy)]
            any_person = any(bool(person_cells[i, j]) for i, j, _ in corners)
            owned = [(eq17(i, j), wt if (person_cells[i, j] or not any_person) else 0.0) for i, j, wt in corners]
            owned = [((o, k), wt if o > 0 else 0.0) for (o, k), wt in owned]

            def cell_label(i, j):  # the label at the output pixel nearest the cell's centre
                cx = round((j * stride + stride // 2 + 0.5) * sx - 0.5)
                cy = round((i * stride + stride // 2 + 0.5) * sy - 0.5)
                return int(labels[min(max(cy, 0), out_h - 1), min(max(cx, 0), out_w - 1)])

            label = int(labels[yy, xx])
            eligible = [o > 0 and (bool(person_cells[i, j]) or not any_person)
                        for (i, j, _), ((o, _), _) in zip(corners, owned)]
            same = [cell_label(i, j) == label and ok for (i, j, _), ok in zip(corners, eligible)]
            if any(same):  # same-label cells weigh at least 1e-3
                owned = [(o, wt + 1e-3 if sm else 0.0) for (o, wt), sm in zip(owned, same)]
            support = [sum(wt for (o2, _), wt in owned if o2 == o and o2 > 0) for (o, _), _ in owned]
            k = max(range(4), key=lambda c: (support[c], -c))
            instance[yy, xx] = owned[k][0][0]
            joint_of[yy * out_w + xx] = owned[k][0][1]
            if all(cell_label(i, j) != label for i, j, _ in corners):
                # no footprint cell carries the label: the nearest cell of the 4 x 4 block that
                # does (and has a person), first in row-major order on ties
                best = None
                for i in range(y0 - 1, y0 + 3):
                    for j in range(x0 - 1, x0 + 3):
                        ic, jc = min(max(i, 0), h - 1), min(max(j, 0), w - 1)
                        o, kk = eq17(ic, jc)
                        if cell_label(ic, jc) == label and o > 0:
                            d = (ic - (y0 + fy)) ** 2 + (jc - (x0 + fx)) ** 2
                            if best is None or d < best[0]:
                                best = (d, o, kk)
                if best is not None:
                    instance[yy, xx] = best[1]
                    joint_of[yy * out_w + xx] = best[2]
    return instance, joint_of


@pytest.mark.parametrize("num_classes", [5, 64])
@pytest.mark.parametrize("seed", range(4))
def test_cell_assignment_equals_a_loop(seed, num_classes):
    """Random labels, field, person cells and poses; an output 7/5 of the input (no footprint
    fraction is exactly 1/2, so no two corners tie by accident); labels in bit masks (5 classes)
    and compared one by one (64)."""
    from dspf_parser.ops.decoding import _assign_by_cells

    g = torch.Generator().manual_seed(seed)
    h, w, stride = 6, 7, 4
    input_size, out = (h * stride, w * stride), (h * stride * 7 // 5, w * stride * 7 // 5)
    labels = (torch.rand(out, generator=g) < 0.6).long() * torch.randint(1, 5, out, generator=g)
    dspf = (torch.rand(2, h, w, generator=g, dtype=torch.float64) - 0.5) * 20
    person_cells = torch.rand(h, w, generator=g) < 0.7
    poses = torch.rand(3, 5, 3, generator=g, dtype=torch.float64) * torch.tensor([out[1], out[0], 1.0])
    poses[..., 2] = torch.where(poses[..., 2] < 0.3, torch.zeros(()), poses[..., 2])
    scores = torch.tensor([0.9, 0.6, 0.0 if seed == 3 else 0.4], dtype=torch.float64)
    instance, pixels, joints = _assign_by_cells(labels, dspf, poses, scores, stride, input_size, person_cells, 8.0,
                                                num_classes=num_classes)
    expected, joint_of = _cells_reference(labels, dspf, poses, scores, stride, input_size, person_cells, 8.0)
    assert torch.equal(instance, expected)
    owned = instance.reshape(-1)[pixels] > 0
    assert joints[owned].tolist() == [joint_of[int(p)] for p in pixels[owned]]


def test_cell_assignment_follows_the_part_label_across_a_boundary():
    """Two people meet between cell columns 1 (centre x = 6, the left person's torso) and 2
    (x = 10, the right person's arm). Pixel x = 7, labelled arm, weighs 0.75 on the torso cell
    and 0.25 on the arm cell: it takes the right person, whose cell carries its label; pixel
    x = 6, torso like its cell, stays with the left person; and with no corner of its own label
    (pixel x = 8 relabelled 3) the bilinear weights decide."""
    from dspf_parser.ops.decoding import _assign_by_cells

    h, w, stride = 2, 4, 4
    size = (h * stride, w * stride)
    xs = torch.arange(w) * stride + stride // 2.0
    joint_x = torch.where(xs < 8, torch.tensor(2.0), torch.tensor(14.0))
    dspf = torch.zeros(2, h, w)
    dspf[0] = joint_x - xs
    dspf[1] = 4.0 - (torch.arange(h)[:, None] * stride + stride // 2.0)
    poses = torch.tensor([[[2.0, 4.0, 1.0]], [[14.0, 4.0, 1.0]]])
    labels = torch.ones(size, dtype=torch.long)
    labels[:, 7:] = 2
    cells = torch.ones(h, w, dtype=torch.bool)
    row = _assign_by_cells(labels, dspf, poses, torch.ones(2), stride, size, cells)[0][3]
    assert row[6] == 1 and row[7] == 2 and row[9] == 2
    labels[:, 8] = 3  # pixel 8: weights 0.5 / 0.5, a tie, the first corner's (left) person
    row = _assign_by_cells(labels, dspf, poses, torch.ones(2), stride, size, cells)[0][3]
    assert row[7] == 2 and row[8] == 1


def test_cell_assignment_finds_the_label_beyond_zero_weights_and_the_footprint():
    """Person A's cells (row 0, torso label 1) above person B's (row 1, arm label 2), stride 4.
    Pixel (x 3, y 2) lies on the row of cell centres, so the bilinear weights of its row-1 cells
    are 0; labelled arm, it still goes to B, whose cells carry its label. Pixel (x 5, y 6) of
    B's row, labelled 3 (a glove), has no footprint cell of its label: it takes the person of
    the nearest cell that has it, cell (1, 2) (x 10) of A, two columns away; with no such cell
    in reach it keeps its footprint's person."""
    from dspf_parser.ops.decoding import _assign_by_cells

    h, w, stride = 2, 4, 4
    size = (h * stride, w * stride)
    centres_x = torch.arange(w) * stride + stride // 2.0
    centres_y = torch.arange(h) * stride + stride // 2.0
    joint_y = torch.tensor([0.0, 8.0])  # A's joint (8, 0), B's (8, 8)
    dspf = torch.zeros(2, h, w)
    dspf[0] = 8.0 - centres_x
    dspf[1] = (joint_y - centres_y)[:, None]
    dspf[:, 1, 2] = torch.tensor([8.0 - 10.0, 0.0 - 6.0])  # cell (1, 2) projects onto A's joint
    poses = torch.tensor([[[8.0, 0.0, 1.0]], [[8.0, 8.0, 1.0]]])
    labels = torch.ones(size, dtype=torch.long)
    labels[4:] = 2
    labels[2, 3] = 2
    labels[6, 5] = 3
    labels[6, 10] = 3  # the centre of cell (1, 2)
    cells = torch.ones(h, w, dtype=torch.bool)
    instance = _assign_by_cells(labels, dspf, poses, torch.ones(2), stride, size, cells)[0]
    assert instance[2, 3] == 2 and instance[2, 2] == 1
    assert instance[6, 5] == 1 and instance[6, 4] == 2
    labels[6, 10] = 2  # no cell carries the glove's label: the footprint decides
    instance = _assign_by_cells(labels, dspf, poses, torch.ones(2), stride, size, cells)[0]
    assert instance[6, 5] == 2


def test_cell_assignment_does_not_blend_two_people_on_their_boundary():
    """Two people side by side (the left at x < 48, the right beyond), each cell pointing at its
    own person's joint: the pixels between the last left cell and the first right cell take the
    nearer cell's person, where the bilinear DSPF of the pixel-wise reading points halfway
    between the two joints, at a third person's."""
    h, w, stride = 4, 24, 4
    xs = torch.arange(w) * stride + stride // 2.0
    joint_x = torch.where(xs < 48, torch.tensor(20.0), torch.tensor(76.0))
    dspf = torch.zeros(2, h, w)
    dspf[0] = joint_x - xs
    dspf[1] = 8.0 - (torch.arange(h)[:, None] * stride + stride // 2.0)
    poses = torch.zeros(3, 1, 3)
    poses[0, 0] = torch.tensor([20.0, 8.0, 1.0])
    poses[1, 0] = torch.tensor([76.0, 8.0, 1.0])
    poses[2, 0] = torch.tensor([48.0, 8.0, 1.0])  # someone standing behind, between the two
    labels = torch.ones(h * stride, w * stride, dtype=torch.long)
    cells = torch.ones(h, w, dtype=torch.bool)
    size = (h * stride, w * stride)
    from dspf_parser.ops.decoding import _assign_by_cells, _assign_person_pixels

    by_cells = _assign_by_cells(labels, dspf, poses, torch.ones(3), stride, size, cells)[0]
    by_pixels = _assign_person_pixels(labels, dspf, poses, torch.ones(3), stride, size)[0]
    row = by_cells[5]
    # Pixel 48 lies halfway between the cells at x = 46 and 50: a tie, the first corner's person.
    assert (row[:49] == 1).all() and (row[49:] == 2).all()
    assert (by_pixels[5, 44:52] == 3).any()  # the blended reading hands boundary pixels to the third


def test_class_max_gives_the_top_probability_and_class_argmax():
    from dspf_parser.ops.decoding import class_argmax, class_max

    g = torch.Generator().manual_seed(1)
    probs = torch.randn(7, 5, 6, generator=g).softmax(0)
    probs[3, 2, 2] = float("nan")
    top, label = class_max(probs)
    assert torch.equal(label, class_argmax(probs))
    expected = probs.nan_to_num(nan=-1.0).amax(0)
    expected[2, 2] = 0.0  # a cell with a NaN probability has top probability 0
    assert torch.equal(top, expected)


def test_part_confidence_ranking_equals_a_loop_over_people():
    """Each score times the squared mean top probability over the person's pixels (each at its
    nearest grid cell, found here from the pixel's input position), people re-sorted and the
    instance map renumbered with them; a person without pixels keeps its score."""
    from dspf_parser.ops.decoding import _rank_by_part_confidence

    g = torch.Generator().manual_seed(0)
    stride, size, out = 4, (40, 48), (30, 36)
    grid_top = torch.rand(10, 12, generator=g)
    maps = ParsingMaps(part_probs=torch.rand(3, 10, 12, generator=g), dspf=torch.zeros(2, 10, 12),
                       heatmaps=torch.zeros(1, 10, 12), offsets=torch.zeros(1, 2, 10, 12),
                       limb_heatmaps=torch.zeros(0, 10, 12), part_stride=stride)
    instance_map = torch.randint(0, 4, out, generator=g)  # people 1..3; person 4 has no pixel
    labelled = (instance_map > 0) | (torch.rand(out, generator=g) < 0.3)  # some labelled pixels of nobody
    pixels = labelled.reshape(-1).nonzero().squeeze(1)
    poses = torch.rand(4, 5, 3, generator=g)
    scores = torch.tensor([4.0, 3.0, 2.0, 1.0])
    shared = torch.rand(4, 5, generator=g) > 0.5
    new_poses, new_scores, old_scores, new_map, new_shared = _rank_by_part_confidence(
        maps, grid_top, instance_map, pixels, poses, scores, shared, 2.0, size)
    # Nearest cell of output pixel (r, c): input position (c + 0.5) * W / W' - 0.5, grid position
    # (x - s // 2) / s clamped to the grid, rounded half up.
    def nearest(n_out, n_in, n_grid):
        pos = (torch.arange(n_out, dtype=torch.float64) + 0.5) * n_in / n_out - 0.5
        u = ((pos - stride // 2) / stride).clamp(0, n_grid - 1)
        return torch.floor(u + 0.5).long().clamp(max=n_grid - 1)

    dense = grid_top[nearest(out[0], size[0], 10)][:, nearest(out[1], size[1], 12)]
    expected = []
    for p in range(4):
        mine = (instance_map == p + 1) & labelled
        expected.append(float(scores[p]) * (float(dense[mine].mean()) ** 2 if mine.any() else 1.0))
    order = sorted(range(4), key=lambda p: -expected[p])
    assert torch.allclose(new_scores, torch.tensor([expected[p] for p in order]), atol=1e-5)
    assert torch.equal(old_scores, scores[order]) and torch.equal(new_poses, poses[order])
    assert torch.equal(new_shared, shared[order])
    for rank, p in enumerate(order):
        assert torch.equal(new_map == rank + 1, instance_map == p + 1)
    assert torch.equal(new_map == 0, instance_map == 0)


def _weak_settings(**kw):
    return DecodingSettings(LIMBS, STRIDE, RADIUS, min_joints=3, share_min_limb_score=0.5, **kw)


@pytest.mark.parametrize("seed", range(4))
def test_weak_candidates_leave_the_candidates_alone_and_are_the_unshadowed_weak_peaks(seed):
    """``find_candidates(return_weak=True)``: the candidates are bit-identical to those found
    without weak ones; the weak ones are, by a loop over the peaks found at the completion
    threshold, those scoring at most ``keypoint_threshold`` that survive the duplicate
    suppression and lie farther than a disk plus one cell from every candidate of their type."""
    from dspf_parser.ops.decoding import find_candidates, suppress_duplicates
    from dspf_parser.ops.hough_voting import detect_keypoints, hough_voting

    g = torch.Generator().manual_seed(seed)
    kp, inst = scene([(0, 0), (50, 10), (100, 20)])
    kp[..., :2] += torch.rand(kp[..., :2].shape, generator=g) * 6 - 3
    heat, off, limbs, field, mask = perfect_maps(kp, inst)
    heat = heat * (0.1 + 0.9 * torch.rand(heat.shape[0], 1, 1, generator=g))  # weak and strong types
    maps = ParsingMaps(torch.stack([~mask, mask]).float(), field, heat, off, limbs, part_stride=STRIDE)
    plain = find_candidates(maps, _weak_settings())
    coords, scores, valid, weak = find_candidates(maps, _weak_settings(completion_threshold=0.1), return_weak=True)
    n = plain[0].shape[1]
    assert torch.equal(coords[:, :n], plain[0]) and torch.equal(scores[:, :n], plain[1])
    assert torch.equal(valid[:, :n], plain[2]) and not valid[:, n:].any() and not (weak & valid).any()
    assert weak.any() and valid.any()
    # The reference: every peak at the completion threshold, one by one.
    hough = hough_voting(heat[None], off[None], STRIDE, radius=RADIUS, min_vote=0.01)[0]
    all_coords, all_scores, found = detect_keypoints(hough, STRIDE, 0.1)
    found = suppress_duplicates(all_coords, all_scores, found, 4.0)
    expected = set()
    for k in range(found.shape[0]):
        for i in range(found.shape[1]):
            if not found[k, i] or float(all_scores[k, i]) > 0.3:
                continue
            xy = all_coords[k, i]
            if all(float((xy - plain[0][k, j]).norm()) >= RADIUS + STRIDE for j in range(n) if plain[2][k, j]):
                expected.add((k, round(float(xy[0]), 4), round(float(xy[1]), 4)))
    got = {(k, round(float(coords[k, i, 0]), 4), round(float(coords[k, i, 1]), 4)) for k, i in weak.nonzero().tolist()}
    assert got == expected


def test_a_weak_joint_completes_its_person_without_claiming_pixels():
    """A knee the keypoint map barely shows (its disk at 0.25 of full strength) is not a
    candidate; with ``completion_threshold`` the person takes it as a joint that claims no
    pixel, so the instance map and the part labels do not change."""
    kp, inst = scene([(0, 0), (60, 10)])
    heat, off, limbs, field, mask = perfect_maps(kp, inst)
    knee = S.keypoint_names.index("Left-knee")
    heat[knee] = heat[knee] * 0.25
    without = decode(heat, off, limbs, field, mask, share_min_limb_score=0.5)
    with_weak = decode(heat, off, limbs, field, mask, share_min_limb_score=0.5, completion_threshold=0.15)
    assert len(without.scores) == len(with_weak.scores) == 2
    assert bool((without.poses[:, knee, 2] == 0).all())
    assert bool((with_weak.poses[:, knee, 2] > 0).all()) and bool(with_weak.shared_joints[:, knee].all())
    order = with_weak.poses[:, 0, 0].argsort()
    assert torch.allclose(with_weak.poses[order, knee, :2], kp[:, knee, :2], atol=1.0)
    assert torch.equal(without.instance_map, with_weak.instance_map)
    assert torch.equal(without.part_labels, with_weak.part_labels)
