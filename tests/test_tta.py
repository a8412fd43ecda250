"""Test-time augmentation: the flip geometry against the target encoders, rescaling against an
analytic field, exact maps unchanged, and the TTA model end to end."""
import pytest
import torch
from detectron2.modeling import build_model

from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.modeling.test_time_augmentation import DSPFParserWithTTA
from dspf_parser.ops.decoding import DecodingSettings, ParsingMaps, decode_maps
from dspf_parser.ops.targets import dspf_targets, grid_coordinates, keypoint_targets, limb_targets
from dspf_parser.ops.tta import flip_image, flip_shift, limb_flip_permutation, merge_maps, mirror_maps, rescale_maps

from test_decoding import BASE
from test_model import tiny_cfg

LIMBS = list(S.limbs)
LIMB_FLIP = limb_flip_permutation(LIMBS, S.keypoint_flip)
STRIDE, RADIUS, SIGMA = 4, 6.0, 3.0


def mirrored_name(name):
    for a, b in (("Left", "Right"), ("Right", "Left")):
        if name.startswith(a):
            return b + name[len(a):]
    return name


def test_limb_flip_permutation_mirrors_the_joint_names():
    names = S.keypoint_names
    for l, (a, b) in enumerate(LIMBS):
        a2, b2 = LIMBS[LIMB_FLIP[l]]
        assert {names[a2], names[b2]} == {mirrored_name(names[a]), mirrored_name(names[b])}
    assert [LIMB_FLIP[i] for i in LIMB_FLIP] == list(range(len(LIMBS)))


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_flip_shift_maps_cell_centres_onto_cell_centres(stride):
    for width in range(1, 41):
        d = flip_shift(width, stride)
        assert 0 <= d < stride
        _, xs = grid_coordinates(1, width, stride)
        mirrored = width - 1 + d - xs  # positions in the flipped image
        assert torch.all((mirrored - stride // 2) % stride == 0)


def scene(size, shifts):
    kp = torch.zeros(len(shifts), S.num_keypoints, 3)
    inst = torch.zeros(size, dtype=torch.long)
    for p, shift in enumerate(shifts):
        kp[p, :, :2] = BASE + torch.tensor(shift, dtype=torch.float32)
        kp[p, :, 2] = 2
        x0, y0 = kp[p, :, :2].min(0).values.long().tolist()
        x1, y1 = kp[p, :, :2].max(0).values.long().tolist()
        inst[y0:y1 + 1, x0:x1 + 1] = p + 1
    return kp, inst


def exact_maps(kp, inst, part_seg):
    size = tuple(inst.shape)
    heat, off, _ = keypoint_targets(kp, size, STRIDE, RADIUS)
    limbs = limb_targets(kp, LIMBS, size, STRIDE, SIGMA)
    field, _ = dspf_targets(inst, kp, STRIDE)
    probs = torch.nn.functional.one_hot(part_seg, S.num_parts).permute(2, 0, 1).float()
    return ParsingMaps(probs, field, heat, off, limbs, part_stride=1)


@pytest.mark.parametrize("width", [117, 118, 119, 120])
def test_maps_of_the_flipped_image_mirror_back_onto_the_maps_of_the_image(width):
    """The target encoders (an independent reference) on the flipped image (mirrored, shifted
    by ``flip_shift`` columns, joints and parts swapped left/right) give maps that
    ``mirror_maps`` turns into the encoders' maps of the image itself."""
    height = 80
    kp, inst = scene((height, width), [(-15, 5), (40, 10)])
    g = torch.Generator().manual_seed(0)
    part_seg = torch.where(inst > 0, torch.randint(1, S.num_parts, inst.shape, generator=g), 0)
    d = flip_shift(width, STRIDE)
    kp_f = kp[:, list(S.keypoint_flip)].clone()
    kp_f[..., 0] = width - 1 + d - kp_f[..., 0]
    inst_f = torch.cat([torch.zeros(height, d, dtype=torch.long), inst.flip(-1)], dim=1)
    part_f = torch.cat([torch.zeros(height, d, dtype=torch.long),
                        torch.tensor(S.part_flip)[part_seg].flip(-1)], dim=1)
    plain = exact_maps(kp, inst, part_seg)
    back = mirror_maps(exact_maps(kp_f, inst_f, part_f), width, STRIDE, width, S.part_flip, S.keypoint_flip, LIMB_FLIP)
    for name in ("part_probs", "heatmaps", "dspf", "offsets", "limb_heatmaps"):
        a, b = getattr(plain, name), getattr(back, name)
        assert a.shape == b.shape, name
        # The last column's centre may lie beyond the image (clamped instance lookup): compare
        # the columns whose centres are inside.
        inside = (width - STRIDE // 2 - 1) // STRIDE + 1 if name != "part_probs" else width
        assert torch.allclose(a[..., :inside], b[..., :inside], atol=1e-4), name


def test_tta_on_exact_maps_changes_nothing():
    size = (96, 160)
    kp, inst = scene(size, [(0, 0), (50, 10), (100, 20)])
    maps = exact_maps(kp, inst, (inst > 0).long())
    d = flip_shift(size[1], STRIDE)
    flipped = mirror_maps(maps, size[1], STRIDE, size[1] + d, S.part_flip, S.keypoint_flip, LIMB_FLIP)
    back = mirror_maps(flipped, size[1], STRIDE, size[1], S.part_flip, S.keypoint_flip, LIMB_FLIP)
    merged = merge_maps([maps, back])
    for name in ("part_probs", "heatmaps", "dspf", "offsets", "limb_heatmaps"):
        assert torch.equal(getattr(merged, name), getattr(maps, name)), name
    settings = DecodingSettings(LIMBS, STRIDE, RADIUS, limb_template_sigma=SIGMA)
    plain, tta = decode_maps(maps, size, size, settings), decode_maps(merged, size, size, settings)
    assert len(plain.scores) == 3
    assert torch.equal(plain.poses, tta.poses) and torch.equal(plain.instance_map, tta.instance_map)


def test_rescale_maps_resamples_positions_and_rescales_vectors():
    """A field linear in the input position, on the grid of a 60x80 input, resampled onto the
    grid of a 90x120 input (same view), equals the field at those positions (interior cells),
    and vectors are scaled by 1.5."""
    small, big = (60, 80), (90, 120)
    ys, xs = grid_coordinates(*small, STRIDE)
    field = lambda x, y: 0.3 * x - 0.2 * y + 5  # noqa: E731  (x, y in pixels of the 60x80 input)
    value = field(xs[None, :], ys[:, None])
    maps = ParsingMaps(value.expand(2, -1, -1), torch.stack([value, value]), value[None], torch.stack([value, value])[None],
                       value[None], part_stride=STRIDE)
    out = rescale_maps(maps, STRIDE, small, big)
    by, bx = grid_coordinates(*big, STRIDE)
    x_small, y_small = (bx + 0.5) * 80 / 120 - 0.5, (by + 0.5) * 60 / 90 - 0.5
    want = field(x_small[None, :], y_small[:, None])
    inner = (slice(2, -2), slice(2, -2))
    assert out.heatmaps.shape == (1, 23, 30)
    assert torch.allclose(out.heatmaps[0][inner], want[inner], atol=1e-4)
    assert torch.allclose(out.dspf[0][inner], 1.5 * want[inner], atol=1e-4)
    assert torch.allclose(out.offsets[0, 1][inner], 1.5 * want[inner], atol=1e-4)


def test_flip_image_shifts_by_the_flip_shift_with_the_fill_value():
    image = torch.arange(2 * 3 * 5, dtype=torch.float32).view(2, 3, 5)
    out = flip_image(image, 4, torch.tensor([7.0, 9.0]))
    assert flip_shift(5, 4) == 0 and torch.equal(out, image.flip(-1))
    out = flip_image(image[..., :4], 4, torch.tensor([7.0, 9.0]))
    assert out.shape == (2, 3, 5) and torch.equal(out[:, :, 0], torch.tensor([[7.0] * 3, [9.0] * 3]))
    assert torch.equal(out[..., 1:], image[..., :4].flip(-1))


def tta_model(**aug):
    cfg = tiny_cfg(**{"MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD": "0.0", **aug})
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    return cfg, model


def test_tta_without_augmentation_equals_the_model():
    cfg, model = tta_model(**{"TEST.AUG.MIN_SIZES": "()", "TEST.AUG.FLIP": "False"})
    x = [{"image": torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8), "height": 100, "width": 140}]
    with torch.no_grad():
        plain, tta = model(x)[0], DSPFParserWithTTA(cfg, model)(x)[0]
    assert torch.equal(plain["sem_seg"], tta["sem_seg"]) and torch.equal(plain["dspf"], tta["dspf"])
    assert torch.equal(plain["instances"].pred_keypoints, tta["instances"].pred_keypoints)


def test_tta_flip_and_scales_give_outputs_at_the_requested_size():
    cfg, model = tta_model(**{"TEST.AUG.MIN_SIZES": "(40, 50, 64)", "TEST.AUG.FLIP": "True"})
    x = [{"image": torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8), "height": 100, "width": 140}]
    calls = []
    tta = DSPFParserWithTTA(cfg, model)
    original = model.predict_maps
    model.predict_maps = lambda inputs: calls.append([tuple(i["image"].shape[-2:]) for i in inputs]) or original(inputs)
    out = tta(x)[0]
    # Shortest edges 40, 50, 64 of the 100x140 original; each with its flip (+ flip_shift cols).
    assert calls == [[(40, 56), (40, 57)], [(50, 70), (50, 73)], [(64, 90), (64, 93)]]
    assert out["sem_seg"].shape == (S.num_parts, 100, 140)
    assert torch.allclose(out["sem_seg"].sum(0), torch.ones(100, 140), atol=1e-5)
    assert len(out["instances"]) == len(out["instances"].scores)
