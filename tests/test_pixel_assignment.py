"""Tests of DSPF pixel-to-person assignment, Eq. 17 (dspf_parser.ops.pixel_assignment)."""
import math

import pytest
import torch

from dspf_parser.ops.pixel_assignment import assign_pixels, assign_projections, person_scales


def _reference_assign(mask, dspf, poses, person_scores, stride):
    """Loops over pixels, people and joints with the documented cost."""
    h, w = mask.shape
    out = torch.zeros(h, w, dtype=torch.long)
    for i in range(h):
        for j in range(w):
            if not mask[i, j]:
                continue
            qx = j * stride + stride // 2 + float(dspf[0, i, j])
            qy = i * stride + stride // 2 + float(dspf[1, i, j])
            best, best_p = math.inf, -1
            for p in range(poses.shape[0]):
                joints = [(float(x), float(y), float(s)) for x, y, s in poses[p] if s > 0]
                if not joints or person_scores[p] <= 0:
                    continue
                xs, ys = [x for x, _, _ in joints], [y for _, y, _ in joints]
                scale = math.sqrt((max(xs) - min(xs) + 1) * (max(ys) - min(ys) + 1))
                for x, y, s in joints:
                    cost = math.hypot(qx - x, qy - y) / (s * float(person_scores[p]) * scale)
                    if cost < best:
                        best, best_p = cost, p
            out[i, j] = best_p + 1
    return out


def test_matches_loop_reference_and_is_chunk_invariant():
    torch.manual_seed(0)
    h, w, stride, num_people, k = 9, 12, 4, 3, 5
    mask = torch.rand(h, w) > 0.3
    dspf = (torch.rand(2, h, w, dtype=torch.float64) - 0.5) * 30
    poses = torch.rand(num_people, k, 3, dtype=torch.float64) * torch.tensor([48.0, 36.0, 1.0])
    poses[0, 1:, 2] = 0  # a single joint: degenerate box, scale 1
    poses[1, 3, 2] = 0
    poses[poses[..., 2] == 0] = 0
    person_scores = torch.tensor([0.3, 0.9, 0.6], dtype=torch.float64)
    expected = _reference_assign(mask, dspf, poses, person_scores, stride)
    assert torch.equal(assign_pixels(mask, dspf, poses, person_scores, stride), expected)
    for tile, budget in ((1, 1), (2, 7), (5, 100), (64, 1 << 20)):
        chunked = assign_pixels(mask, dspf, poses, person_scores, stride, tile=tile, budget=budget)
        assert torch.equal(chunked, expected), (tile, budget)
    assert (expected[~mask] == 0).all() and (expected[mask] > 0).all()


def _dense_assign(mask, dspf, poses, person_scores, stride):
    """The documented cost for every (pixel, person, joint) at once: no tiles, no pruning."""
    h, w = mask.shape
    ys, xs = torch.meshgrid(torch.arange(h) * stride + stride // 2, torch.arange(w) * stride + stride // 2,
                            indexing="ij")
    q = torch.stack([xs + dspf[0], ys + dspf[1]], -1).reshape(-1, 1, 1, 2)  # [N, 1, 1, 2]
    dist = (q - poses[None, :, :, :2]).norm(dim=-1)  # [N, P, K]
    scale = person_scales(poses)
    cost = dist / (poses[None, :, :, 2] * person_scores[None, :, None] * scale[None, :, None])
    usable = (poses[..., 2] > 0) & (person_scores > 0)[:, None]
    cost = torch.where(usable[None], cost, torch.full_like(cost, math.inf)).amin(dim=2)  # [N, P]
    best, arg = cost.min(dim=1)
    out = torch.where(torch.isfinite(best), arg + 1, torch.zeros_like(arg)).view(h, w)
    return torch.where(mask, out, torch.zeros_like(out))


def test_tile_pruning_is_exact_in_a_crowd():
    """60 people over a 96x128 grid: the tile bounds prune most people and change no pixel."""
    g = torch.Generator().manual_seed(3)
    h, w, stride, num_people, k = 96, 128, 4, 60, 16
    centres = torch.rand(num_people, 1, 2, generator=g, dtype=torch.float64) * torch.tensor([512.0, 384.0])
    poses = torch.cat([centres + torch.randn(num_people, k, 2, generator=g, dtype=torch.float64) * 20,
                       torch.rand(num_people, k, 1, generator=g, dtype=torch.float64) * 0.9 + 0.1], dim=-1)
    poses[..., 2][torch.rand(num_people, k, generator=g) < 0.2] = 0  # missing joints
    poses[poses[..., 2] == 0] = 0
    poses[7] = 0  # a person without joints
    scores = torch.rand(num_people, generator=g, dtype=torch.float64) + 0.05
    scores[11] = 0.0  # and one with score 0
    mask = torch.rand(h, w, generator=g) > 0.2
    dspf = torch.randn(2, h, w, generator=g, dtype=torch.float64) * 15
    expected = _dense_assign(mask, dspf, poses, scores, stride)
    got = assign_pixels(mask, dspf, poses, scores, stride, tile=8, budget=1 << 15)
    assert torch.equal(got, expected)
    assert not ((got == 8) | (got == 12)).any() and len(got.unique()) > 30


@pytest.mark.parametrize("tiles", ["squares", "random", "one"])
def test_assign_projections_is_exact_for_any_tiling(tiles):
    """``assign_projections`` on projected points: equal to the dense cost for every pixel
    whatever the tiling (compact squares prune well, random groups and one tile barely)."""
    g = torch.Generator().manual_seed(5)
    h, w, stride, num_people, k = 40, 56, 4, 25, 16
    centres = torch.rand(num_people, 1, 2, generator=g, dtype=torch.float64) * torch.tensor([224.0, 160.0])
    poses = torch.cat([centres + torch.randn(num_people, k, 2, generator=g, dtype=torch.float64) * 15,
                       torch.rand(num_people, k, 1, generator=g, dtype=torch.float64) * 0.9 + 0.1], dim=-1)
    poses[..., 2][torch.rand(num_people, k, generator=g) < 0.3] = 0
    poses[poses[..., 2] == 0] = 0
    poses[3] = 0
    scores = torch.rand(num_people, generator=g, dtype=torch.float64) + 0.05
    scores[4] = 0.0
    mask = torch.rand(h, w, generator=g) > 0.3
    dspf = torch.randn(2, h, w, generator=g, dtype=torch.float64) * 10
    expected = _dense_assign(mask, dspf, poses, scores, stride).reshape(-1)
    pixels = mask.reshape(-1).nonzero().squeeze(1)
    rows, cols = pixels // w, pixels % w
    targets = torch.stack([cols * stride + stride // 2 + dspf[0].reshape(-1)[pixels],
                           rows * stride + stride // 2 + dspf[1].reshape(-1)[pixels]], dim=1)
    if tiles == "squares":
        tile_of, num_tiles = (rows // 4) * 14 + cols // 4, 10 * 14
    elif tiles == "random":
        tile_of, num_tiles = torch.randint(0, 37, (pixels.numel(),), generator=g), 37
    else:
        tile_of, num_tiles = torch.zeros_like(pixels), 1
    got = assign_projections(targets, tile_of, num_tiles, poses, scores, budget=97)
    assert torch.equal(got, expected[pixels])
    assert not ((got == 4) | (got == 5)).any() and len(got.unique()) > 15


def test_dspf_overrides_geometric_proximity():
    # Person A on the left, person B on the right; a pixel next to B whose DSPF vector points
    # to A's hand belongs to A. Equal scores and scales.
    stride = 4
    poses = torch.tensor([
        [[10.0, 10.0, 1.0], [10.0, 50.0, 1.0], [30.0, 30.0, 1.0]],  # A, hand at (30, 30)
        [[70.0, 10.0, 1.0], [70.0, 50.0, 1.0], [90.0, 30.0, 1.0]],  # B
    ])
    scores = torch.tensor([0.8, 0.8])
    mask = torch.zeros(16, 25, dtype=torch.bool)
    mask[7, 16] = mask[7, 17] = True  # cells at x = 66 and 70, y = 30: right next to B
    dspf = torch.zeros(2, 16, 25)
    dspf[:, 7, 16] = torch.tensor([30.0 - 66.0, 0.0])  # points to A's hand
    dspf[:, 7, 17] = torch.tensor([0.0, 50.0 - 30.0])  # points to B's (70, 50)
    instance = assign_pixels(mask, dspf, poses, scores, stride)
    assert instance[7, 16] == 1 and instance[7, 17] == 2
    assert int((instance > 0).sum()) == 2
    # Normalisation: with a much lower score B still wins pixels projected right onto its joint.
    instance = assign_pixels(mask, dspf, poses, torch.tensor([0.9, 0.1]), stride)
    assert instance[7, 17] == 2


def test_scale_normalisation_prefers_the_larger_person_at_equal_distance():
    # Projection (50, 0) is 10 px from a joint of each person; the large person (scale ~ 101)
    # costs less than the small one (scale ~ 11).
    poses = torch.tensor([
        [[40.0, 0.0, 1.0], [40.0, 10.0, 1.0], [30.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
        [[60.0, 0.0, 1.0], [160.0, 100.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    ])
    torch.testing.assert_close(person_scales(poses), torch.tensor([math.sqrt(11 * 11), 101.0]))
    mask = torch.ones(1, 1, dtype=torch.bool)
    dspf = torch.tensor([50.0, 0.0]).view(2, 1, 1)  # cell centre (0, 0) at stride 1
    assert assign_pixels(mask, dspf, poses, torch.ones(2), stride=1).item() == 2


def test_empty_cases():
    mask = torch.ones(5, 6, dtype=torch.bool)
    dspf = torch.randn(2, 5, 6)
    no_people = assign_pixels(mask, dspf, torch.zeros(0, 16, 3), torch.zeros(0), 4)
    assert no_people.shape == (5, 6) and no_people.dtype == torch.long and (no_people == 0).all()
    poses = torch.rand(2, 4, 3) + 0.1
    no_pixels = assign_pixels(torch.zeros(5, 6, dtype=torch.bool), dspf, poses, torch.ones(2), 4)
    assert (no_pixels == 0).all()
    # People without joints or with score 0 never get pixels.
    poses[0, :, 2] = 0
    assert (assign_pixels(mask, dspf, poses, torch.ones(2), 4) == 2).all()
    assert (assign_pixels(mask, dspf, poses, torch.tensor([1.0, 0.0]), 4) == 0).all()
    assert person_scales(torch.zeros(0, 4, 3)).shape == (0,)


def test_assign_projections_returns_each_pixel_argmin_joint():
    """``return_joints``: the joint type of each pixel's least cost, as a dense loop over
    (pixel, person, joint) finds it (0 where the pixel has no person)."""
    g = torch.Generator().manual_seed(11)
    num_pixels, num_people, k = 300, 7, 16
    poses = torch.cat([torch.rand(num_people, k, 2, generator=g, dtype=torch.float64) * 100,
                       torch.rand(num_people, k, 1, generator=g, dtype=torch.float64) * 0.9 + 0.1], dim=-1)
    poses[..., 2][torch.rand(num_people, k, generator=g) < 0.3] = 0
    poses[poses[..., 2] == 0] = 0
    scores = torch.rand(num_people, generator=g, dtype=torch.float64) + 0.05
    targets = torch.rand(num_pixels, 2, generator=g, dtype=torch.float64) * 100
    tile_of = torch.randint(0, 9, (num_pixels,), generator=g)
    owner, joint = assign_projections(targets, tile_of, 9, poses, scores, budget=53, return_joints=True)
    scale = person_scales(poses)
    for i in range(num_pixels):
        best, arg = math.inf, (0, 0)
        for p in range(num_people):
            for j in range(k):
                if poses[p, j, 2] <= 0:
                    continue
                cost = float((targets[i] - poses[p, j, :2]).norm()) / float(poses[p, j, 2] * scores[p] * scale[p])
                if cost < best:
                    best, arg = cost, (p + 1, j)
        assert (int(owner[i]), int(joint[i])) == arg
    assert torch.equal(owner, assign_projections(targets, tile_of, 9, poses, scores, budget=53))
    empty = assign_projections(targets, tile_of, 9, poses[:0], scores[:0], return_joints=True)
    assert all(torch.equal(t, torch.zeros(num_pixels, dtype=torch.long)) for t in empty)
