"""Tests of Hough voting and keypoint detection (dspf_parser.ops.hough_voting)."""
import math

import pytest
import torch

from dspf_parser.ops.hough_voting import detect_keypoints, hough_voting


def _reference_voting(heatmaps: torch.Tensor, offsets: torch.Tensor, stride: int) -> torch.Tensor:
    """Eq. 8 with explicit loops: every cell splats its confidence onto 4 cells, raw sums."""
    n, k, h, w = heatmaps.shape
    out = torch.zeros(n, k, h, w, dtype=torch.float64)
    for b in range(n):
        for t in range(k):
            for i in range(h):
                for j in range(w):
                    # Input position of the cell plus the offset, back to grid units.
                    x = j * stride + stride // 2 + float(offsets[b, t, 0, i, j])
                    y = i * stride + stride // 2 + float(offsets[b, t, 1, i, j])
                    u, v = (x - stride // 2) / stride, (y - stride // 2) / stride
                    u0, v0 = math.floor(u), math.floor(v)
                    for cu, cv in ((u0, v0), (u0 + 1, v0), (u0, v0 + 1), (u0 + 1, v0 + 1)):
                        if 0 <= cu < w and 0 <= cv < h:
                            weight = (1 - abs(u - cu)) * (1 - abs(v - cv))
                            out[b, t, cv, cu] += float(heatmaps[b, t, i, j]) * weight
    return out


def _render_disks(joints: torch.Tensor, h: int, w: int, stride: int, radius: float):
    """Perfect heatmaps/offsets on the grid for ``joints [K, P, 2]`` (input px, all present).

    A cell is 1 within ``radius`` input pixels of a joint of its type; its offset points to the
    nearest joint of that type.
    """
    ys = torch.arange(h, dtype=torch.float64) * stride + stride // 2
    xs = torch.arange(w, dtype=torch.float64) * stride + stride // 2
    pos = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [h, w, 2]
    delta = joints[:, :, None, None, :] - pos[None, None]  # [K, P, h, w, 2]
    dist = delta.norm(dim=-1)
    nearest = dist.argmin(dim=1)  # [K, h, w]
    heat = (dist.amin(dim=1) <= radius).double()
    off = torch.gather(delta, 1, nearest[:, None, :, :, None].expand(-1, 1, h, w, 2))[:, 0]
    return heat[None], off.permute(0, 3, 1, 2)[None]  # [1, K, h, w], [1, K, 2, h, w]


def test_voting_matches_loop_reference():
    torch.manual_seed(0)
    heat = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    # Offsets of up to 3 cells: some votes leave the grid, partly or completely.
    offsets = (torch.rand(2, 3, 2, 7, 9, dtype=torch.float64) - 0.5) * 6 * 4
    ours = hough_voting(heat, offsets, stride=4)
    torch.testing.assert_close(ours, _reference_voting(heat, offsets, 4))
    radius = 10.0
    normalised = hough_voting(heat, offsets, stride=4, radius=radius)
    torch.testing.assert_close(normalised, ours / (math.pi * (radius / 4) ** 2))


def test_sparse_voting_keeps_the_votes_above_min_vote():
    """``min_vote``: equal to the loop reference over the cells above it only, and bit-identical
    to dense voting when only zero cells fall below it (``min_vote = 0``)."""
    torch.manual_seed(2)
    heat = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    heat[heat < 0.5] = 0.0  # sparse maps: about half the cells vote
    offsets = (torch.rand(2, 3, 2, 7, 9, dtype=torch.float64) - 0.5) * 6 * 4
    assert torch.equal(hough_voting(heat, offsets, 4, min_vote=0.0), hough_voting(heat, offsets, 4))
    faint = torch.where(heat > 0.7, heat, torch.zeros_like(heat))
    torch.testing.assert_close(hough_voting(heat, offsets, 4, radius=10.0, min_vote=0.7),
                               _reference_voting(faint, offsets, 4) / (math.pi * (10 / 4) ** 2))
    empty = hough_voting(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 2, 3, 4), 4, min_vote=0.0)
    assert empty.shape == (1, 2, 3, 4) and not empty.any()


def test_sparse_voting_is_differentiable():
    torch.manual_seed(3)
    heat = torch.rand(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    offsets = ((torch.rand(1, 2, 2, 4, 5, dtype=torch.float64) - 0.5) * 12).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: hough_voting(a, b, 3, min_vote=0.3), (heat, offsets))


def test_votes_outside_the_grid_are_dropped():
    heat = torch.ones(1, 1, 4, 4)
    offsets = torch.full((1, 1, 2, 4, 4), 100.0)
    assert hough_voting(heat, offsets, stride=8).abs().sum() == 0
    # Exactly on a cell: the whole vote lands there, nothing is lost.
    assert hough_voting(heat, torch.zeros(1, 1, 2, 4, 4), stride=8).sum() == 16


def test_voting_is_differentiable():
    torch.manual_seed(1)
    heat = torch.rand(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    offsets = ((torch.rand(1, 2, 2, 4, 5, dtype=torch.float64) - 0.5) * 12).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: hough_voting(a, b, 3), (heat, offsets))


def test_two_people_peaks_exactly_at_the_joints():
    stride, h, w = 4, 24, 32
    # joints [K=2, P=2, 2] at cell centres, input pixels.
    joints = torch.tensor([[[18.0, 26.0], [90.0, 66.0]], [[30.0, 58.0], [102.0, 22.0]]])
    heat, off = _render_disks(joints.double(), h, w, stride, radius=8.0)
    hough = hough_voting(heat, off, stride, radius=8.0)[0]
    coords, scores, valid = detect_keypoints(hough, stride, threshold=0.5)
    assert coords.shape == (2, 2, 2) and valid.all()
    for k in range(2):
        assert sorted(map(tuple, coords[k].tolist())) == sorted(map(tuple, joints[k].tolist()))
    # Every disk cell voted 1 at its joint: the score is the disk size / (pi (R/s)^2) ~ 1.
    disk_cells = heat[0].sum(dim=(1, 2)) / 2
    expected = disk_cells / (math.pi * (8 / 4) ** 2)
    torch.testing.assert_close(scores, expected[:, None].expand(2, 2))
    assert (scores - 1).abs().max() < 0.1


def test_refinement_recovers_sub_cell_joints():
    stride, h, w = 4, 20, 20
    joints = torch.tensor([[[13.3, 21.7], [55.6, 61.2]]], dtype=torch.float64)
    heat, off = _render_disks(joints, h, w, stride, radius=8.0)
    hough = hough_voting(heat, off, stride)[0]
    coords, scores, valid = detect_keypoints(hough, stride, threshold=0.5)
    assert valid.all()
    order = coords[0, :, 0].argsort()
    torch.testing.assert_close(coords[0, order], joints[0])
    # Raw votes: the score is the whole vote mass, i.e. the number of disk cells of the joint.
    ys = torch.arange(h, dtype=torch.float64) * stride + 2
    xs = torch.arange(w, dtype=torch.float64) * stride + 2
    pos = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
    disk_cells = ((pos[None] - joints[0][:, None, None]).norm(dim=-1) <= 8.0).sum(dim=(1, 2))
    torch.testing.assert_close(scores[0, order], disk_cells.double())
    # Without refinement: the cell centre nearest to each joint.
    coarse, _, _ = detect_keypoints(hough, stride, threshold=0.5, refine=False)
    expected = torch.round((joints[0] - 2) / 4) * 4 + 2
    torch.testing.assert_close(coarse[0, order], expected)


def test_detection_matches_loop_reference():
    torch.manual_seed(2)
    hough = torch.rand(3, 9, 11, dtype=torch.float64)
    hough[1, 2:5, 3:6] = 0.0  # zeros are never peaks
    threshold, stride = 4.5, 8
    for kernel in (3, 5):
        coords, scores, valid = detect_keypoints(hough, stride, threshold, kernel, refine=False)
        r = kernel // 2
        for k in range(3):
            peaks = []
            for i in range(9):
                for j in range(11):
                    window = hough[k, max(i - r, 0):i + r + 1, max(j - r, 0):j + r + 1]
                    mass = float(hough[k, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].sum())
                    value = hough[k, i, j]
                    if value > 0 and value == window.max() and mass > threshold:
                        peaks.append((mass, j * stride + 4, i * stride + 4))
            peaks.sort(reverse=True)
            n = len(peaks)
            assert n > 0 and int(valid[k].sum()) == n and valid[k, :n].all()
            expected = torch.tensor([p[0] for p in peaks], dtype=torch.float64)
            torch.testing.assert_close(scores[k, :n], expected)
            assert coords[k, :n].tolist() == [[p[1], p[2]] for p in peaks]
            assert (scores[k, n:] == 0).all() and (coords[k, n:] == 0).all()


def test_max_per_type_keeps_the_best():
    hough = torch.zeros(2, 10, 10)
    for rank, (i, j) in enumerate([(1, 1), (1, 5), (5, 1), (8, 8), (5, 5)]):
        hough[0, i, j] = 1.0 + rank
    hough[1, 3, 3] = 2.0
    coords, scores, valid = detect_keypoints(hough, 2, threshold=0.5, max_per_type=3)
    assert scores.tolist() == [[5.0, 4.0, 3.0], [2.0, 0.0, 0.0]]
    assert valid.tolist() == [[True, True, True], [True, False, False]]
    assert coords[0].tolist() == [[11.0, 11.0], [17.0, 17.0], [3.0, 11.0]]


def test_nms_kernel_suppresses_weaker_neighbours():
    hough = torch.zeros(1, 9, 9)
    hough[0, 4, 4], hough[0, 4, 6] = 2.0, 1.0
    _, scores3, _ = detect_keypoints(hough, 1, 0.5, nms_kernel=3)
    _, scores5, _ = detect_keypoints(hough, 1, 0.5, nms_kernel=5)
    assert scores3.tolist() == [[2.0, 1.0]] and scores5.tolist() == [[2.0]]
    with pytest.raises(ValueError):
        detect_keypoints(hough, 1, 0.5, nms_kernel=4)


def test_empty_cases():
    heat = torch.zeros(1, 4, 6, 6)
    hough = hough_voting(heat, torch.zeros(1, 4, 2, 6, 6), 4)
    coords, scores, valid = detect_keypoints(hough[0], 4, threshold=0.1)
    assert coords.shape == (4, 0, 2) and scores.shape == (4, 0) and valid.shape == (4, 0)
    coords, scores, valid = detect_keypoints(torch.zeros(0, 6, 6), 4, threshold=0.1)
    assert coords.shape == (0, 0, 2) and scores.shape == (0, 0) and valid.shape == (0, 0)
    no_images = hough_voting(torch.zeros(0, 2, 3, 3), torch.zeros(0, 2, 2, 3, 3), 4)
    assert no_images.shape == (0, 2, 3, 3)
    with pytest.raises(ValueError):
        hough_voting(heat, torch.zeros(1, 4, 2, 5, 6), 4)
    # Documented: max-pool NMS keeps every cell of a plateau.
    assert int(detect_keypoints(torch.ones(1, 3, 3), 1, 0.5)[2].sum()) == 9
