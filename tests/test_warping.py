"""Tests of the learnable feature warping op (dspf_parser.ops.warping)."""
import math

import pytest
import torch
import torch.nn.functional as F

from dspf_parser.ops.warping import flow_warp


def _reference_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Eq. 6 with explicit loops: 4-neighbour bilinear sampling, border clamping."""
    n, c, h, w = x.shape
    height, width = flow.shape[-2:]
    out = torch.zeros(n, c, height, width, dtype=torch.float64)
    xd = x.double()
    for b in range(n):
        for i in range(height):
            for j in range(width):
                u = (j + float(flow[b, 0, i, j]) + 0.5) * w / width - 0.5
                v = (i + float(flow[b, 1, i, j]) + 0.5) * h / height - 0.5
                u = min(max(u, 0.0), w - 1.0)
                v = min(max(v, 0.0), h - 1.0)
                u0, v0 = int(math.floor(u)), int(math.floor(v))
                u1, v1 = min(u0 + 1, w - 1), min(v0 + 1, h - 1)
                au, av = u - u0, v - v0
                out[b, :, i, j] = (
                    (1 - au) * (1 - av) * xd[b, :, v0, u0]
                    + au * (1 - av) * xd[b, :, v0, u1]
                    + (1 - au) * av * xd[b, :, v1, u0]
                    + au * av * xd[b, :, v1, u1]
                )
    return out


@pytest.mark.parametrize("coarse,fine", [((3, 4), (6, 8)), ((5, 3), (9, 7)), ((4, 4), (4, 4))])
def test_matches_loop_reference(coarse, fine):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *coarse, generator=gen)
    flow = torch.randn(2, 2, *fine, generator=gen) * 2.0  # some samples fall outside
    y = flow_warp(x, flow)
    assert y.shape == (2, 3, *fine)
    torch.testing.assert_close(y.double(), _reference_warp(x, flow), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("coarse,fine", [((4, 5), (8, 10)), ((3, 7), (13, 11)), ((8, 8), (4, 4))])
def test_zero_flow_is_bilinear_upsampling(coarse, fine):
    x = torch.randn(2, 4, *coarse, generator=torch.Generator().manual_seed(1))
    flow = torch.zeros(2, 2, *fine)
    expected = F.interpolate(x, size=fine, mode="bilinear", align_corners=False)
    torch.testing.assert_close(flow_warp(x, flow, out_size=fine), expected, atol=1e-6, rtol=1e-5)


def test_integer_flow_shifts_result():
    x = torch.randn(1, 2, 5, 6, generator=torch.Generator().manual_seed(2))
    # Same resolution: zero flow is the identity and an integer flow is a plain shift.
    flow = torch.zeros(1, 2, 5, 6)
    torch.testing.assert_close(flow_warp(x, flow), x)
    flow[:, 0] = 2.0  # dx = +2
    flow[:, 1] = -1.0  # dy = -1
    y = flow_warp(x, flow)
    torch.testing.assert_close(y[:, :, 1:, :4], x[:, :, :4, 2:])
    torch.testing.assert_close(y[:, :, 0, :4], x[:, :, 0, 2:])  # border padding in y
    torch.testing.assert_close(y[:, :, 1:, 4], x[:, :, :4, 5])  # border padding in x
    # Upsampling: an integer flow shifts the bilinear upsampling on the fine grid.
    up = flow_warp(x, torch.zeros(1, 2, 10, 12))
    shifted = flow_warp(x, torch.full((1, 2, 10, 12), 3.0))
    torch.testing.assert_close(shifted[:, :, :7, :9], up[:, :, 3:, 3:], atol=1e-6, rtol=1e-5)


def test_out_size_mismatch_raises():
    with pytest.raises(ValueError):
        flow_warp(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 4, 4), out_size=(4, 5))


def test_gradcheck():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    # Seeded flow: every sample coordinate is > 0.02 px from an integer (bilinear or clamping
    # kink), far beyond the finite-difference step.
    flow = (torch.rand(1, 2, 5, 6, generator=gen, dtype=torch.float64) - 0.5) * 0.8
    flow.requires_grad_(True)
    assert torch.autograd.gradcheck(flow_warp, (x, flow), eps=1e-6, atol=1e-5)
