"""Tests of limb scoring (dspf_parser.ops.limb_scoring)."""
import math

import pytest
import torch
from scipy.optimize import linear_sum_assignment

from dspf_parser.ops.limb_scoring import score_limbs
from dspf_parser.ops.targets import limb_targets


def _bilinear_zero(img: torch.Tensor, x: float, y: float, stride: int) -> float:
    """Bilinear value of a grid map at input position (x, y); cells outside count as 0."""
    h, w = img.shape
    u, v = (x - stride // 2) / stride, (y - stride // 2) / stride
    u0, v0 = math.floor(u), math.floor(v)
    total = 0.0
    for cu, cv in ((u0, v0), (u0 + 1, v0), (u0, v0 + 1), (u0 + 1, v0 + 1)):
        if 0 <= cu < w and 0 <= cv < h:
            total += float(img[cv, cu]) * (1 - abs(u - cu)) * (1 - abs(v - cv))
    return total


def _reference_scores(heat, coords, valid, limbs, stride, num_samples, num_across, width):
    """Loop version: sample rows along AB, columns across it inside the ellipse, mean."""
    num_limbs, nmax = len(limbs), coords.shape[1]
    out = torch.zeros(num_limbs, nmax, nmax, dtype=torch.float64)
    for l, (a, b) in enumerate(limbs):
        for n in range(nmax):
            for m in range(nmax):
                if not (valid[a, n] and valid[b, m]):
                    continue
                ax, ay = coords[a, n].tolist()
                bx, by = coords[b, m].tolist()
                length = math.hypot(bx - ax, by - ay)
                nx, ny = ((ay - by) / length, (bx - ax) / length) if length > 0 else (0.0, 0.0)
                values = []
                for i in range(num_samples):
                    t = (i + 0.5) / num_samples
                    half = width * math.sqrt(1 - (2 * t - 1) ** 2)
                    for c in range(num_across):
                        frac = (2 * c + 1) / num_across - 1
                        x = ax + t * (bx - ax) + frac * half * nx
                        y = ay + t * (by - ay) + frac * half * ny
                        values.append(_bilinear_zero(heat[l], x, y, stride))
                out[l, n, m] = sum(values) / len(values)
    return out


def _render_limbs(people: torch.Tensor, limbs, h: int, w: int, stride: int, sigma: float):
    """Unnormalised Gaussian of the distance to each limb segment, max over people: [L, h, w].

    ``people`` is ``[P, K, 2]`` (input pixels).
    """
    ys = torch.arange(h, dtype=torch.float64) * stride + stride // 2
    xs = torch.arange(w, dtype=torch.float64) * stride + stride // 2
    pos = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [h, w, 2]
    maps = []
    for a, b in limbs:
        start, end = people[:, a], people[:, b]  # [P, 2]
        axis = end - start
        t = ((pos[None] - start[:, None, None]) * axis[:, None, None]).sum(-1)
        t = (t / (axis * axis).sum(-1)[:, None, None]).clamp(0, 1)  # [P, h, w]
        closest = start[:, None, None] + t[..., None] * axis[:, None, None]
        dist2 = ((pos[None] - closest) ** 2).sum(-1)
        maps.append(torch.exp(-dist2 / (2 * sigma**2)).amax(dim=0))
    return torch.stack(maps)


def test_scores_match_loop_reference():
    torch.manual_seed(0)
    limbs = [(0, 1), (1, 2), (2, 0), (1, 1)]
    heat = torch.rand(4, 9, 11, dtype=torch.float64)
    coords = torch.rand(3, 4, 2, dtype=torch.float64) * torch.tensor([50.0, 42.0]) - 4
    coords[1, 2] = coords[1, 1]  # a degenerate limb (1, 1) with equal endpoints
    valid = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 1, 1]], dtype=torch.bool)
    for samples, across, width in ((10, 3, 4.0), (5, 1, 0.0), (7, 4, 6.5)):
        scores, pair_valid = score_limbs(heat, coords, valid, limbs, 4, samples, across, width)
        expected = _reference_scores(heat, coords, valid, limbs, 4, samples, across, width)
        torch.testing.assert_close(scores, expected)
        for l, (a, b) in enumerate(limbs):
            assert torch.equal(pair_valid[l], valid[a][:, None] & valid[b][None, :])
    assert torch.isfinite(scores).all()


def test_perfect_limb_heatmap_ranks_true_pairs_first():
    # Three people side by side (a head-to-foot chain of 4 joints), candidates shuffled per type.
    stride, h, w = 4, 48, 64
    limbs = [(0, 1), (1, 2), (2, 3)]
    base = torch.tensor([[0.0, 0.0], [4.0, 30.0], [-6.0, 70.0], [10.0, 120.0]], dtype=torch.float64)
    people = torch.stack([base + torch.tensor([40.0 + 70 * p, 30.0 + 8 * p]) for p in range(3)])
    heat = _render_limbs(people, limbs, h, w, stride, sigma=4.0)
    gen = torch.Generator().manual_seed(3)
    perms = [torch.randperm(3, generator=gen) for _ in range(4)]  # candidate n of type k
    coords = torch.stack([people[perms[k], k] for k in range(4)])  # [K, 3, 2]
    valid = torch.ones(4, 3, dtype=torch.bool)
    scores, _ = score_limbs(heat, coords, valid, limbs, stride)
    for l, (a, b) in enumerate(limbs):
        # True pair: same person. perms[k][n] is the person of candidate n of type k.
        truth = perms[a][:, None] == perms[b][None, :]
        true_scores = scores[l][truth]
        assert (true_scores > 0.6).all()
        assert (scores[l][~truth] < 0.3).all()
        rows, cols = linear_sum_assignment(scores[l].numpy(), maximize=True)
        assert truth[rows, cols].all()
        # Also per row: the true partner has the highest score.
        assert torch.equal(scores[l].argmax(dim=1), truth.float().argmax(dim=1))


def test_scores_are_differentiable_wrt_heatmaps():
    heat = torch.rand(1, 8, 8, dtype=torch.float64, requires_grad=True)
    coords = torch.tensor([[[5.0, 6.0], [20.0, 10.0]], [[25.0, 28.0], [3.0, 30.0]]])
    valid = torch.ones(2, 2, dtype=torch.bool)
    scores, _ = score_limbs(heat, coords.double(), valid, [(0, 1)], 4)
    scores.sum().backward()
    assert heat.grad is not None and heat.grad.abs().sum() > 0


def test_empty_cases():
    heat = torch.rand(2, 6, 6)
    limbs = [(0, 1), (1, 2)]
    no_candidates = torch.zeros(3, 0, dtype=torch.bool)
    scores, pair_valid = score_limbs(heat, torch.zeros(3, 0, 2), no_candidates, limbs, 4)
    assert scores.shape == (2, 0, 0) and pair_valid.shape == (2, 0, 0)
    scores, pair_valid = score_limbs(torch.zeros(0, 6, 6), torch.rand(3, 2, 2) * 20,
                                     torch.ones(3, 2, dtype=torch.bool), [], 4)
    assert scores.shape == (0, 2, 2) and pair_valid.shape == (0, 2, 2)
    # A joint type without candidates: its limbs have no valid pair and score 0.
    valid = torch.tensor([[True, True], [False, False], [True, False]])
    scores, pair_valid = score_limbs(heat, torch.rand(3, 2, 2) * 20, valid, limbs, 4)
    assert not pair_valid.any() and (scores == 0).all()
    with pytest.raises(ValueError):
        score_limbs(heat, torch.zeros(3, 2, 2), valid, [(0, 1)], 4)


def test_template_score_is_one_on_its_own_target_and_prefers_the_true_pair():
    """A shin drawn by ``limb_targets``: the pair that drew it scores 1 with the template score,
    while a knee paired with a point inside the shin (a shorter chord through the bright
    middle) beats the true pair under the plain mean but not under the template score."""
    stride, sigma, size = 1, 3.0, (80, 40)
    kp = torch.tensor([[[20.0, 10.0, 2.0], [20.0, 60.0, 2.0]]])
    heat = limb_targets(kp, [(0, 1)], size, stride, sigma)
    coords = torch.tensor([[[20.0, 10.0], [0.0, 0.0]], [[20.0, 60.0], [20.0, 48.0]]])
    valid = torch.tensor([[True, False], [True, True]])
    template, _ = score_limbs(heat, coords, valid, [(0, 1)], stride, template_sigma=sigma)
    assert template[0, 0, 0].item() == pytest.approx(1.0, abs=0.02)
    assert template[0, 0, 0] > template[0, 0, 1] + 0.05
    mean, _ = score_limbs(heat, coords, valid, [(0, 1)], stride)
    assert mean[0, 0, 1] > mean[0, 0, 0]
    assert template[0, 1].abs().sum() == 0  # padded candidate


@pytest.mark.parametrize("stride", [4, 8])
def test_template_reads_like_the_heatmap_on_coarse_grids(stride):
    """Limbs drawn by ``limb_targets`` on a stride-4/8 grid (sigma = 3 px, under one cell) at
    sub-cell positions, one per map: the pair that drew each scores 1 (the template is the
    target drawn on the same grid and read by the same bilinear sampling), up to float rounding.
    The analytic Gaussian read at the samples would miss it by about 12 % (score ~0.88)."""
    g = torch.Generator().manual_seed(stride)
    size, sigma = (96, 128), 3.0
    starts = torch.rand(6, 2, generator=g) * torch.tensor([100.0, 60.0]) + 10
    ends = starts + (torch.rand(6, 2, generator=g) - 0.5) * 40
    for a, b in zip(starts, ends):
        kp = torch.tensor([[[a[0], a[1], 2.0], [b[0], b[1], 2.0]]])
        heat = limb_targets(kp, [(0, 1)], size, stride, sigma)
        coords = kp[0, :, None, :2]  # [K=2, N=1, 2]
        score, _ = score_limbs(heat, coords, torch.ones(2, 1, dtype=torch.bool), [(0, 1)], stride,
                               template_sigma=sigma)
        assert score.item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("template_sigma", [None, 6.0])
def test_pruned_scoring_is_the_dense_scoring_on_kept_pairs(template_sigma):
    """Pruning scores as the dense computation does (up to float rounding) the pairs whose
    midpoint reads >= the threshold and whose axis reads >= it at 8 of its 10 points
    ``t = (i + 1/2) / 10``, and only those; threshold 0 keeps every valid pair."""
    gen = torch.Generator().manual_seed(3)
    limbs = [(0, 1), (1, 2), (2, 3), (0, 3)]
    heat = torch.rand(4, 20, 24, generator=gen) ** 0.5
    coords = torch.rand(4, 9, 2, generator=gen) * torch.tensor([96.0, 80.0])
    valid = torch.rand(4, 9, generator=gen) > 0.25
    dense, dense_valid = score_limbs(heat, coords, valid, limbs, 4, template_sigma=template_sigma)
    everything, _ = score_limbs(heat, coords, valid, limbs, 4, template_sigma=template_sigma, prune_below=0.0)
    torch.testing.assert_close(everything, dense, rtol=0, atol=1e-6)
    threshold = 0.3
    pruned, pruned_valid = score_limbs(heat, coords, valid, limbs, 4, template_sigma=template_sigma,
                                       prune_below=threshold)
    assert torch.equal(pruned_valid, dense_valid)
    # Independent readings: the bilinear loop reference of this file.
    kept = torch.zeros_like(dense_valid)
    clear = torch.ones_like(dense_valid)  # no reading within rounding of the threshold
    for l, (a, b) in enumerate(limbs):
        for n in range(9):
            for m in range(9):
                if not dense_valid[l, n, m]:
                    continue
                start, end = coords[a, n], coords[b, m]
                readings = [_bilinear_zero(heat[l], *((start + end) / 2).tolist(), 4)]
                readings += [_bilinear_zero(heat[l], *(start + (i + 0.5) / 10 * (end - start)).tolist(), 4)
                             for i in range(10)]
                clear[l, n, m] = all(abs(r - threshold) > 1e-5 for r in readings)
                kept[l, n, m] = readings[0] >= threshold and sum(r >= threshold for r in readings[1:]) >= 8
    assert 0 < int(kept.sum()) < int(dense_valid.sum()) and int(clear.sum()) > 0.9 * int(dense_valid.sum())
    torch.testing.assert_close(pruned[kept & clear], dense[kept & clear], rtol=0, atol=1e-6)
    assert (pruned[~kept & clear] == 0).all()


def test_pruning_that_keeps_no_pair_scores_zero():
    """Every midpoint below the threshold (an empty heatmap): no pair is scored, all scores 0."""
    coords = torch.tensor([[[10.0, 10.0], [30.0, 12.0]], [[12.0, 40.0], [28.0, 44.0]]])
    valid = torch.ones(2, 2, dtype=torch.bool)
    scores, pair_valid = score_limbs(torch.zeros(1, 16, 16), coords, valid, [(0, 1)], 4, template_sigma=3.0,
                                     prune_below=0.1)
    assert scores.shape == (1, 2, 2) and scores.abs().sum() == 0 and bool(pair_valid.all())


@pytest.mark.parametrize("num_limbs,size", [(1, (7, 9)), (5, (20, 24)), (19, (128, 128))])
def test_atlas_reads_every_limb_map_with_zero_padding(num_limbs, size):
    """The mosaic of the pruned path reads each limb's own map, bilinearly, with zeros outside it
    (points within its margin, here 1.5 cells, the configs' ``0.5 + ellipse_width / stride``, and
    far outside it, which are clamped): against the
    loop reference of this file, within 5e-5 (the mosaic's coordinates are larger, so their
    rounding is coarser)."""
    from dspf_parser.ops.limb_scoring import _Atlas

    gen = torch.Generator().manual_seed(num_limbs)
    h, w = size
    heat = torch.rand(num_limbs, h, w, generator=gen)
    margin = 1.5
    atlas = _Atlas(heat, margin)
    limb = torch.randint(num_limbs, (400,), generator=gen)
    x = torch.rand(400, generator=gen) * (w - 1 + 2 * margin) - margin  # grid cells, within the margin
    y = torch.rand(400, generator=gen) * (h - 1 + 2 * margin) - margin
    x[:40] = torch.rand(40, generator=gen) * 3 * w - w  # and far outside it
    y[20:60] = torch.rand(40, generator=gen) * 3 * h - h
    got = atlas.sample(x, y, atlas.x[limb], atlas.y[limb])
    # _bilinear_zero takes input pixels at stride 1 (cell j at x = j).
    want = torch.tensor([_bilinear_zero(heat[l], float(u), float(v), 1) for l, u, v in zip(limb, x, y)])
    torch.testing.assert_close(got, want, rtol=0, atol=5e-5)
