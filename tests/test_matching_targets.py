"""Stage-two matching problems on the candidates inference detects (``LOSS_PROBLEMS detected``)."""
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Instances, Keypoints
from detectron2.utils.events import EventStorage
from test_model import fake_batch, tiny_cfg

from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.modeling.matching_layer import LPMatchingLayer
from dspf_parser.ops.decoding import DecodingSettings, ParsingMaps, find_candidates
from dspf_parser.ops.matching import matching_loss
from dspf_parser.ops.matching_targets import candidate_owners, detected_limb_problems
from dspf_parser.ops.targets import dspf_targets, keypoint_targets, limb_targets

LIMBS = list(S.limbs)
BASE = torch.tensor([[30., 60], [30, 45], [30, 30], [40, 30], [40, 45], [40, 60], [35, 30], [35, 15], [35, 10],
                     [35, 2], [22, 30], [25, 20], [28, 12], [42, 12], [45, 20], [48, 30]])
STRIDE, RADIUS, SIGMA, SIZE = 4, 6.0, 3.0, (96, 160)
SETTINGS = DecodingSettings(LIMBS, STRIDE, RADIUS, limb_template_sigma=SIGMA)
SPURIOUS_TYPE, SPURIOUS_AT = 0, (145.0, 85.0)  # a right ankle far from both people


def two_people(shift):
    """Person 0 at ``BASE``, person 1 at ``BASE + shift``, all joints labelled; each person's
    pixels are the box around its joints. Returns ``keypoints [2, 16, 3]`` and the instance map."""
    kp = torch.zeros(2, S.num_keypoints, 3)
    inst = torch.zeros(SIZE, dtype=torch.long)
    for p, offset in enumerate([(0.0, 0.0), shift]):
        kp[p, :, :2] = BASE + torch.tensor(offset)
        kp[p, :, 2] = 2
        x0, y0 = kp[p, :, :2].min(0).values.long().tolist()
        x1, y1 = kp[p, :, :2].max(0).values.long().tolist()
        inst[y0:y1 + 1, x0:x1 + 1] = p + 1
    return kp, inst


def exact_maps(kp, inst, spurious=False):
    """The maps of a perfect network (the targets, as ``oracle_maps`` builds them), plus, if
    ``spurious``, a keypoint disk of type ``SPURIOUS_TYPE`` at ``SPURIOUS_AT`` (no person there)."""
    heat, off, _ = keypoint_targets(kp, SIZE, STRIDE, RADIUS)
    if spurious:
        fake = torch.zeros(1, S.num_keypoints, 3)
        fake[0, SPURIOUS_TYPE] = torch.tensor([*SPURIOUS_AT, 1.0])
        fake_heat, fake_off, _ = keypoint_targets(fake, SIZE, STRIDE, RADIUS)
        add = fake_heat > heat
        heat, off = torch.where(add, fake_heat, heat), torch.where(add[:, None], fake_off, off)
    field, weight = dspf_targets(inst, kp, STRIDE)
    part_probs = torch.stack([weight == 0, weight > 0]).float()
    return ParsingMaps(part_probs, field, heat, off, limb_targets(kp, LIMBS, SIZE, STRIDE, SIGMA), part_stride=STRIDE)


def test_exact_maps_detect_the_joints_and_mark_the_true_pairs():
    kp, inst = two_people((60.0, 10.0))  # person 0 spans x 22..48, person 1 x 82..108
    maps = exact_maps(kp, inst, spurious=True)
    coords, _, valid = find_candidates(maps, SETTINGS)
    # The candidates are the joints, plus the spurious blob among the right ankles.
    assert valid.sum(1).tolist() == [3] + [2] * (S.num_keypoints - 1)
    for k in range(S.num_keypoints):
        expected = kp[:, k, :2] if k != SPURIOUS_TYPE else torch.cat([kp[:, k, :2], torch.tensor([SPURIOUS_AT])])
        found = coords[k][valid[k]]
        assert torch.allclose(found[found[:, 0].argsort()], expected[expected[:, 0].argsort()], atol=0.1)

    # Owners by position: left of x = 65 person 0, up to x = 120 person 1, the blob nobody's.
    x = coords[..., 0]
    side = torch.where(x < 65, 0, torch.where(x < 120, 1, -1))
    expected_owner = torch.where(valid, side, torch.full_like(side, -1))
    assert torch.equal(candidate_owners(coords, valid, kp, RADIUS), expected_owner)
    # Candidates 3 px off their joints match within a radius of 3.01 px, not of 2.99 px.
    moved = coords + torch.tensor([3.0, 0.0])
    assert torch.equal(candidate_owners(moved, valid, kp, 3.01), expected_owner)
    assert torch.equal(candidate_owners(moved, valid, kp, 2.99), torch.full_like(side, -1))

    # Every candidate pair in the loss (min_limb_score -1): the target is 1 on the pairs of one
    # person's limb, 0 on crossed pairs and on every pair of the blob.
    every_pair = DecodingSettings(LIMBS, STRIDE, RADIUS, limb_template_sigma=SIGMA, min_limb_score=-1.0)
    scores, pair_valid, target = detected_limb_problems([maps], [kp], every_pair, RADIUS)
    assert scores.shape == pair_valid.shape == target.shape == (len(LIMBS), 3, 3)
    expected = torch.zeros(len(LIMBS), 3, 3)
    for l, (a, b) in enumerate(LIMBS):
        for n in range(int(valid[a].sum())):
            for m in range(int(valid[b].sum())):
                expected[l, n, m] = float(side[a, n] == side[b, m] and side[a, n] >= 0)
    assert torch.equal(target, expected)
    assert target.sum() == 2 * len(LIMBS)
    blob = int((x[SPURIOUS_TYPE] > 120).nonzero())
    blob_limbs = [l for l, (a, b) in enumerate(LIMBS) if SPURIOUS_TYPE in (a, b)]
    assert blob_limbs
    for l in blob_limbs:
        row = pair_valid[l, blob] if LIMBS[l][0] == SPURIOUS_TYPE else pair_valid[l, :, blob]
        assert row[:2].all() and not row[2:].any()  # the blob's pairs with both joints count
        assert (target[l, blob] == 0).all() and (target[l, :, blob] == 0).all()
    # Padding (the rows and columns beyond two candidates of the blob-free types) never counts.
    for l, (a, b) in enumerate(LIMBS):
        assert not pair_valid[l, int(valid[a].sum()):].any() and not pair_valid[l, :, int(valid[b].sum()):].any()

    # With the default settings every true pair of the exact maps scores above 0: all are in the loss.
    _, pair_valid, target = detected_limb_problems([maps], [kp], SETTINGS, RADIUS)
    assert pair_valid[target.bool()].all()


def test_candidate_owners_are_one_to_one_per_type():
    # Type 0: two candidates around person 0's joint (the nearer takes it, the other is a
    # duplicate), person 1's joint unlabelled. Type 1: candidates swapped w.r.t. the joints.
    coords = torch.tensor([[[10.0, 10.0], [12.0, 10.0], [0.0, 0.0]], [[52.0, 10.0], [21.0, 10.0], [0.0, 0.0]]])
    valid = torch.tensor([[True, True, False], [True, True, False]])
    kp = torch.tensor([[[11.6, 10.0, 2.0], [20.0, 10.0, 1.0]], [[13.0, 10.0, 0.0], [50.0, 10.0, 2.0]]])
    assert candidate_owners(coords, valid, kp, 6.0).tolist() == [[-1, 0, -1], [1, 0, -1]]
    assert candidate_owners(coords, valid, kp[:0], 6.0).tolist() == [[-1, -1, -1]] * 2


def test_detected_problems_pad_to_the_batch_and_handle_images_without_candidates():
    kp, inst = two_people((60.0, 10.0))
    blank = exact_maps(kp, inst).map(torch.zeros_like)
    scores, valid, target = detected_limb_problems([blank, exact_maps(kp, inst, spurious=True)],
                                                   [torch.zeros(0, S.num_keypoints, 3), kp], SETTINGS, RADIUS)
    num = len(LIMBS)
    assert scores.shape == (2 * num, 3, 3)
    assert not valid[:num].any() and not target[:num].any()  # image 0: nothing detected
    assert target[num:].sum() == 2 * num  # image 1 follows, image-major
    scores, valid, target = detected_limb_problems([blank], [kp], SETTINGS, RADIUS)
    assert scores.shape == (num, 1, 1) and not valid.any() and not target.any()


def test_matching_loss_gradient_reaches_heatmaps_offsets_and_limb_maps():
    # Two overlapping people, so that crossed pairs compete with the true ones and the unrolled
    # solver's assignment stays fractional. The keypoint maps are damaged: on exact maps all the
    # votes of a joint land on the joint, so their 3x3 centroid (the candidate) does not move
    # with the heatmap values; scaled disks and noisy offsets spread the votes.
    kp, inst = two_people((12.0, 4.0))
    exact = exact_maps(kp, inst)
    g = torch.Generator().manual_seed(0)
    heat = (exact.heatmaps * (0.6 + 0.4 * torch.rand(exact.heatmaps.shape, generator=g))).requires_grad_()
    noise = 1.5 * torch.randn(exact.offsets.shape, generator=g) * exact.heatmaps[:, None]
    offsets = (exact.offsets + noise).requires_grad_()
    limbs = exact.limb_heatmaps.clone().requires_grad_()
    maps = ParsingMaps(exact.part_probs, exact.dspf, heat, offsets, limbs, part_stride=STRIDE)
    scores, valid, target = detected_limb_problems([maps], [kp], SETTINGS, RADIUS)
    assert (target.bool() & valid).sum() == 2 * len(LIMBS)  # the two people are still found
    layer = LPMatchingLayer(num_iters=500, train_num_iters=20, step=0.3, dykstra_iters=1).train()
    loss = matching_loss(layer(scores, valid), target, valid)
    assert torch.isfinite(loss)
    for name, grad in zip(("heatmaps", "offsets", "limb heatmaps"), torch.autograd.grad(loss, [heat, offsets, limbs])):
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def _batch_with_people(n, size, seed=0):
    batch = fake_batch(n=n, size=size, seed=seed)
    g = torch.Generator().manual_seed(seed)
    for x in batch:
        kp = torch.rand(3, S.num_keypoints, 3, generator=g) * (size - 4)
        kp[..., 2] = 2
        x["instances"] = Instances((size, size))
        x["instances"].gt_keypoints = Keypoints(kp)
    return batch


def test_model_detected_matching_loss_trains_keypoint_detection():
    # The untrained heads predict heatmaps of about sigmoid(-4) = 0.018 everywhere, a Hough vote
    # mass of about 0.02 per peak: no candidate clears the default threshold 0.3. At 0.01 the
    # tiny model finds about 30 candidates per joint type on a 64x64 image.
    torch.manual_seed(0)
    model = build_model(tiny_cfg(**{"MODEL.DSPF.MATCHING.LOSS_ON": "True",
                                    "MODEL.DSPF.MATCHING.LOSS_PROBLEMS": "detected",
                                    "MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD": "0.01"}))
    assert model.matching_problems == "detected" and model.match_radius == model.keypoint_radius
    model.train()
    with EventStorage():
        losses = model(_batch_with_people(2, 64))
    loss = losses["loss_matching"]
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    head = model.pose_head
    for name, conv in (("keypoint heatmap", head.heatmap), ("keypoint offset", head.offset), ("limb", head.limb)):
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0, name
        assert torch.isfinite(conv.weight.grad).all(), name


def test_model_detected_matching_loss_without_candidates_is_an_attached_zero():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(**{"MODEL.DSPF.MATCHING.LOSS_ON": "True",
                                    "MODEL.DSPF.MATCHING.LOSS_PROBLEMS": "detected"}))
    model.train()
    with EventStorage():
        loss = model(_batch_with_people(1, 64))["loss_matching"]  # threshold 0.3: nothing detected
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()


@pytest.mark.parametrize("key, value", [("MODEL.DSPF.MATCHING.LOSS_PROBLEMS", "detections"),
                                        ("MODEL.DSPF.MATCHING.MATCH_RADIUS", "-1.0")])
def test_bad_matching_problem_keys_are_clear_errors(key, value):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        build_model(tiny_cfg(**{key: value}))


def test_stage_two_detected_config_only_switches_the_problems():
    from detectron2.config import get_cfg

    from dspf_parser import add_dspf_config

    cfgs = {}
    for name in ("dspf_R18_tiny_stage2", "dspf_R18_tiny_stage2_detected"):
        cfgs[name] = get_cfg()
        add_dspf_config(cfgs[name])
        cfgs[name].merge_from_file(f"configs/synthetic/{name}.yaml")
    base, detected = cfgs["dspf_R18_tiny_stage2"], cfgs["dspf_R18_tiny_stage2_detected"]
    assert base.MODEL.DSPF.MATCHING.LOSS_PROBLEMS == "ground_truth"
    assert detected.MODEL.DSPF.MATCHING.LOSS_PROBLEMS == "detected"
    detected.MODEL.DSPF.MATCHING.LOSS_PROBLEMS, detected.OUTPUT_DIR = "ground_truth", base.OUTPUT_DIR
    assert detected == base
