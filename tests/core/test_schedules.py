import math

import pytest
import torch

from multidiff.core import schedules as S


@pytest.mark.parametrize("kind", ["linear", "quad", "cosine"])
def test_betas_in_range_and_alpha_bar_decreasing(kind):
    b = S.make_betas(kind, 50, 1e-4, 0.5) if kind != "cosine" else S.make_betas(kind, 50)
    assert b.shape == (50,) and b.dtype == torch.float64
    assert (b > 0).all() and (b < 1).all()
    ab = S.alpha_bars(b)
    assert (ab[1:] < ab[:-1]).all() and ab[0] < 1 and ab[-1] > 0


def test_quad_matches_csdi_definition():
    b = S.quad_betas(50, 1e-4, 0.5)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.5)
    roots = b.sqrt()
    assert torch.allclose(roots[1:] - roots[:-1], (roots[1] - roots[0]).expand(49), atol=1e-12)


def test_cosine_alpha_bar_closed_form():
    n, s = 100, 0.008
    ab = S.alpha_bars(S.cosine_betas(n))
    t = torch.arange(1, n + 1, dtype=torch.float64) / n
    f = torch.cos((t + s) / (1 + s) * torch.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    assert torch.allclose(ab[:-1], f[:-1], rtol=1e-9)


def test_vp_alpha_bar_integrates_beta():
    t = torch.linspace(0, 1, 2001, dtype=torch.float64)
    beta = S.vp_beta(t, 0.05, 20.0)
    integral = torch.cumulative_trapezoid(beta, t)
    assert torch.allclose(S.vp_alpha_bar(t[1:], 0.05, 20.0), torch.exp(-integral), rtol=1e-6)
    disc = S.alpha_bars(S.vp_discrete_betas(1000, 0.1, 20.0))
    assert torch.allclose(disc, S.vp_alpha_bar(torch.arange(1, 1001, dtype=torch.float64) / 1000, 0.1, 20.0), rtol=1e-9)


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="the number of schedule steps must be a whole number >= 1, got 0"):
        S.linear_betas(0)
    with pytest.raises(ValueError, match="the number of schedule steps must be a whole number >= 1, got 2.5"):
        S.cosine_betas(2.5)
    with pytest.raises(ValueError, match="0 < start <= end < 1"):
        S.quad_betas(10, 0.5, 0.1)
    with pytest.raises(ValueError, match="unknown schedule"):
        S.make_betas("sigmoid", 10)
