"""Tests of the DSPF / keypoint / limb target builders (dspf_parser.ops.targets)."""
import math
from typing import List, Tuple

import pytest
import torch

from dspf_parser.ops.targets import (dspf_targets, grid_coordinates, keypoint_targets, limb_targets,
                                     sample_grid_at_pixels)

LIMBS: List[Tuple[int, int]] = [(0, 1), (1, 2), (2, 3), (0, 3), (1, 1)]


def _random_case(seed: int, height: int, width: int, persons: int = 3, joints: int = 4):
    """Random instance map (ids 0..persons, last person has no usable joint) and keypoints."""
    gen = torch.Generator().manual_seed(seed)
    instance_map = torch.randint(0, persons + 1, (height, width), generator=gen)
    keypoints = torch.empty(persons, joints, 3)
    keypoints[..., 0] = torch.rand(persons, joints, generator=gen) * (width + 4) - 2
    keypoints[..., 1] = torch.rand(persons, joints, generator=gen) * (height + 4) - 2
    keypoints[..., 2] = torch.randint(0, 3, (persons, joints), generator=gen).float()
    keypoints[-1, :, 2] = 0
    return instance_map, keypoints


def _cells(height: int, width: int, stride: int):
    """Loop-friendly list of (i, j, x, y) over the output grid."""
    h, w = math.ceil(height / stride), math.ceil(width / stride)
    c = stride // 2
    return [(i, j, j * stride + c, i * stride + c) for i in range(h) for j in range(w)]


def test_grid_coordinates():
    ys, xs = grid_coordinates(10, 7, 4)
    assert ys.tolist() == [2.0, 6.0, 10.0] and xs.tolist() == [2.0, 6.0]
    ys, xs = grid_coordinates(3, 5, 1)
    assert ys.tolist() == [0.0, 1.0, 2.0] and xs.tolist() == list(map(float, range(5)))
    ys, xs = grid_coordinates(7, 6, 3)
    assert ys.tolist() == [1.0, 4.0, 7.0] and xs.tolist() == [1.0, 4.0]
    assert ys.dtype == torch.float32


# --------------------------------------------------------------------------------------- DSPF


def _two_person_case():
    """Person 1 on columns 0..9, person 2 on 10..19, person 3 (no usable joint) on row 0."""
    instance_map = torch.zeros(10, 20, dtype=torch.long)
    instance_map[2:9, 0:10] = 1
    instance_map[2:9, 10:20] = 2
    instance_map[0, 5:15] = 3
    keypoints = torch.zeros(3, 3, 3)
    # Person 1's joint (8, 5) is unusable (v = 0).
    keypoints[0] = torch.tensor([[2.0, 5.0, 2.0], [4.0, 5.0, 1.0], [8.0, 5.0, 0.0]])
    keypoints[1] = torch.tensor([[11.0, 5.0, 2.0], [15.0, 3.0, 2.0], [0.0, 0.0, 0.0]])
    keypoints[2] = torch.tensor([[7.0, 0.0, 0.0], [9.0, 0.0, 0.0], [11.0, 0.0, 0.0]])
    return instance_map, keypoints


def test_dspf_points_to_own_person():
    instance_map, keypoints = _two_person_case()
    field, weight = dspf_targets(instance_map, keypoints, stride=1)
    assert field.shape == (2, 10, 20) and weight.shape == (10, 20)
    assert field.dtype == torch.float32 and weight.dtype == torch.float32
    # Pixel (x=9, y=5) of person 1: person 2's joint (11, 5) is 2 px away, its own unusable
    # joint (8, 5) is ignored, so it points to (4, 5).
    assert field[:, 5, 9].tolist() == [-5.0, 0.0]
    assert field[:, 5, 10].tolist() == [1.0, 0.0]  # person 2 pixel -> (11, 5)
    assert field[:, 3, 18].tolist() == [-3.0, 0.0]  # closer to (15, 3) than (11, 5)
    assert field[:, 8, 0].tolist() == [2.0, -3.0]  # -> (2, 5)
    assert weight[5, 9] == 1 and weight[3, 18] == 1


def test_dspf_weights_zero_on_background_and_jointless_persons():
    instance_map, keypoints = _two_person_case()
    field, weight = dspf_targets(instance_map, keypoints, stride=1)
    expected = ((instance_map == 1) | (instance_map == 2)).float()
    assert torch.equal(weight, expected)
    assert torch.all(field[:, weight == 0] == 0)


@pytest.mark.parametrize("stride", [2, 3, 4])
def test_dspf_stride_consistency(stride):
    instance_map, keypoints = _random_case(seed=stride, height=6 * stride, width=5 * stride)
    field_s, weight_s = dspf_targets(instance_map, keypoints, stride)
    field_1, weight_1 = dspf_targets(instance_map, keypoints, 1)
    c = stride // 2
    torch.testing.assert_close(field_s, field_1[:, c::stride, c::stride])
    torch.testing.assert_close(weight_s, weight_1[c::stride, c::stride])


@pytest.mark.parametrize(
    "seed,height,width,stride", [(0, 9, 11, 1), (1, 13, 10, 4), (2, 17, 15, 3)]
)
def test_dspf_matches_brute_force(seed, height, width, stride):
    instance_map, keypoints = _random_case(seed, height, width)
    field, weight = dspf_targets(instance_map, keypoints, stride)
    ref_field = torch.zeros_like(field)
    ref_weight = torch.zeros_like(weight)
    for i, j, x, y in _cells(height, width, stride):
        pid = int(instance_map[min(y, height - 1), min(x, width - 1)])
        if pid == 0:
            continue
        best = None
        for kx, ky, v in keypoints[pid - 1].tolist():
            d2 = (kx - x) ** 2 + (ky - y) ** 2
            if v > 0 and (best is None or d2 < best[0]):
                best = (d2, kx - x, ky - y)
        if best is not None:
            ref_field[:, i, j] = torch.tensor(best[1:])
            ref_weight[i, j] = 1
    assert ref_weight.sum() > 0
    torch.testing.assert_close(field, ref_field)
    torch.testing.assert_close(weight, ref_weight)


def test_dspf_empty_and_bad_ids():
    field, weight = dspf_targets(torch.zeros(8, 8, dtype=torch.long), torch.zeros(0, 4, 3), 4)
    assert field.shape == (2, 2, 2) and not field.any() and not weight.any()
    with pytest.raises(ValueError):
        dspf_targets(torch.full((4, 4), 2), torch.zeros(1, 4, 3), 1)


# ---------------------------------------------------------------------------------- keypoints


def test_keypoint_disk_boundary():
    keypoints = torch.tensor([[[5.0, 5.0, 1.0], [1.0, 1.0, 0.0]]])
    heatmap, offsets, offset_weight = keypoint_targets(keypoints, (12, 12), stride=1, radius=2.0)
    assert heatmap.shape == (2, 12, 12) and offsets.shape == (2, 2, 12, 12)
    assert heatmap[0, 5, 7] == 1  # distance exactly 2: inside (closed disk)
    assert heatmap[0, 6, 6] == 1  # sqrt(2)
    assert heatmap[0, 6, 7] == 0  # sqrt(5) > 2
    assert heatmap[0, 5, 8] == 0  # 3
    assert heatmap[0].sum() == 13  # lattice points with x^2 + y^2 <= 4
    assert not heatmap[1].any()  # only joint of type 1 is unusable
    assert offsets[0, :, 5, 7].tolist() == [-2.0, 0.0]
    assert offsets[0, :, 4, 6].tolist() == [-1.0, 1.0]
    assert torch.equal(offset_weight, heatmap)
    assert torch.all(offsets[:, :, 1, 1] == 0)


@pytest.mark.parametrize(
    "seed,height,width,stride,radius", [(0, 9, 11, 1, 2.5), (1, 21, 18, 4, 6.0)]
)
def test_keypoints_match_brute_force(seed, height, width, stride, radius):
    _, keypoints = _random_case(seed, height, width, persons=4, joints=3)
    heatmap, offsets, offset_weight = keypoint_targets(keypoints, (height, width), stride, radius)
    ref_heat = torch.zeros_like(heatmap)
    ref_off = torch.zeros_like(offsets)
    for k in range(keypoints.shape[1]):
        for i, j, x, y in _cells(height, width, stride):
            best = None
            for kx, ky, v in keypoints[:, k].tolist():
                d2 = (kx - x) ** 2 + (ky - y) ** 2
                if v > 0 and (best is None or d2 < best[0]):
                    best = (d2, kx - x, ky - y)
            if best is not None and best[0] <= radius**2:
                ref_heat[k, i, j] = 1
                ref_off[k, :, i, j] = torch.tensor(best[1:])
    assert ref_heat.sum() > 0
    torch.testing.assert_close(heatmap, ref_heat)
    torch.testing.assert_close(offsets, ref_off)
    torch.testing.assert_close(offset_weight, ref_heat)


@pytest.mark.parametrize("stride", [2, 4])
def test_keypoints_stride_consistency(stride):
    _, keypoints = _random_case(seed=10 + stride, height=8 * stride, width=7 * stride)
    size = (8 * stride, 7 * stride)
    coarse = keypoint_targets(keypoints, size, stride, radius=3.5)
    fine = keypoint_targets(keypoints, size, 1, radius=3.5)
    c = stride // 2
    for a, b in zip(coarse, fine):
        torch.testing.assert_close(a, b[..., c::stride, c::stride])


# -------------------------------------------------------------------------------------- limbs


def test_limb_gaussian_values():
    sigma = 3.0
    keypoints = torch.tensor([[[10.0, 20.0, 1.0], [30.0, 20.0, 2.0], [0.0, 0.0, 0.0]]])
    target = limb_targets(keypoints, [(0, 1), (1, 2)], (40, 40), stride=1, sigma=sigma)
    assert target.shape == (2, 40, 40) and target.dtype == torch.float32
    assert target[0, 20, 20] == pytest.approx(1.0)  # midpoint
    assert target[0, 23, 20] == pytest.approx(math.exp(-0.5))  # sigma perpendicular
    assert target[0, 17, 20] == pytest.approx(math.exp(-0.5))
    assert target[0, 20, 30] == pytest.approx(math.exp(-0.5))  # endpoint: length/2 along axis
    assert target[0].max() == pytest.approx(1.0)
    assert not target[1].any()  # joint 2 unusable


def test_limb_gaussian_rotated_and_degenerate():
    sigma = math.sqrt(2.0)
    keypoints = torch.tensor([[[10.0, 10.0, 1.0], [20.0, 20.0, 1.0], [5.0, 30.0, 1.0]]])
    target = limb_targets(keypoints, [(0, 1), (2, 2)], (40, 40), stride=1, sigma=sigma)
    assert target[0, 15, 15] == pytest.approx(1.0)
    assert target[0, 16, 14] == pytest.approx(math.exp(-0.5), rel=1e-5)  # sqrt(2) perpendicular
    # Zero-length limb: isotropic Gaussian of std sigma.
    assert target[1, 30, 5] == pytest.approx(1.0)
    assert target[1, 30, 7] == pytest.approx(math.exp(-0.5 * 4 / 2), rel=1e-5)
    assert target[1, 32, 5] == pytest.approx(math.exp(-0.5 * 4 / 2), rel=1e-5)


@pytest.mark.parametrize(
    "seed,height,width,stride,sigma", [(0, 9, 11, 1, 1.5), (1, 22, 19, 4, 2.0)]
)
def test_limbs_match_brute_force(seed, height, width, stride, sigma):
    _, keypoints = _random_case(seed, height, width, persons=4, joints=4)
    target = limb_targets(keypoints, LIMBS, (height, width), stride, sigma)
    ref = torch.zeros_like(target)
    for l, (a, b) in enumerate(LIMBS):
        for i, j, x, y in _cells(height, width, stride):
            best = 0.0
            for pa, pb in zip(keypoints[:, a].tolist(), keypoints[:, b].tolist()):
                if pa[2] <= 0 or pb[2] <= 0:
                    continue
                vx, vy = pb[0] - pa[0], pb[1] - pa[1]
                length = math.hypot(vx, vy)
                ux, uy = (vx / length, vy / length) if length > 0 else (1.0, 0.0)
                dx, dy = x - (pa[0] + pb[0]) / 2, y - (pa[1] + pb[1]) / 2
                major = max(length / 2, sigma)
                along, across = dx * ux + dy * uy, -dx * uy + dy * ux
                best = max(best, math.exp(-0.5 * (along**2 / major**2 + across**2 / sigma**2)))
            ref[l, i, j] = best
    assert ref.sum() > 0
    torch.testing.assert_close(target, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("stride", [2, 4])
def test_limbs_stride_consistency(stride):
    _, keypoints = _random_case(seed=20 + stride, height=6 * stride, width=9 * stride)
    size = (6 * stride, 9 * stride)
    coarse = limb_targets(keypoints, LIMBS, size, stride, sigma=2.0)
    fine = limb_targets(keypoints, LIMBS, size, 1, sigma=2.0)
    c = stride // 2
    torch.testing.assert_close(coarse, fine[..., c::stride, c::stride])


def test_limbs_empty():
    assert limb_targets(torch.zeros(0, 4, 3), LIMBS, (8, 8), 4, 2.0).shape == (len(LIMBS), 2, 2)
    assert limb_targets(torch.zeros(2, 4, 3), [], (8, 8), 4, 2.0).shape == (0, 2, 2)


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_sample_grid_at_pixels_decodes_the_grid_convention(stride):
    """An affine field encoded on the grid (cell value = its centre's coordinates, as the
    targets place them) decodes to each output pixel's own input position, exactly."""
    height, width = 37, 50
    ys, xs = grid_coordinates(height, width, stride)
    cells = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None])).double()  # [2, h, w]
    same = sample_grid_at_pixels(cells, stride, (height, width))
    inner = (slice(None), slice(stride // 2, (len(ys) - 1) * stride + stride // 2 + 1),
             slice(stride // 2, (len(xs) - 1) * stride + stride // 2 + 1))
    py, px = torch.meshgrid(torch.arange(height).double(), torch.arange(width).double(), indexing="ij")
    torch.testing.assert_close(same[inner], torch.stack([px, py])[inner])
    # A half-size output image: pixel x' sits at input x = 2 x' + 0.5.
    half = sample_grid_at_pixels(cells, stride, (height, width), (18, 25))
    hy, hx = torch.meshgrid(torch.arange(18).double(), torch.arange(25).double(), indexing="ij")
    expect = torch.stack([(hx + 0.5) * width / 25 - 0.5, (hy + 0.5) * height / 18 - 0.5])
    lo, hi = stride // 2, torch.tensor([xs[-1], ys[-1]]).double()
    ok = (expect[0] >= lo) & (expect[0] <= hi[0]) & (expect[1] >= lo) & (expect[1] <= hi[1])
    torch.testing.assert_close(half[:, ok], expect[:, ok])
    assert sample_grid_at_pixels(torch.zeros(0, 3, 4), 4, (12, 16)).shape == (0, 12, 16)
