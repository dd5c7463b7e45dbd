"""Samplers against Gaussian data, whose ideal denoiser is closed-form."""
import pytest
import torch

from multidiff.core import samplers as SM
from multidiff.core import schedules as S
from multidiff.core.conditioning import replace_known
from multidiff.core.denoiser import add_noise, as_eps_model, eps_from_v, eps_from_x0, v_from_eps, x0_from_eps

MEAN, STD = 1.5, 0.5


def gaussian_denoiser(alpha_bar_of, mean=MEAN, std=STD):
    """E[eps | x_t] for x0 ~ N(mean, std^2): sqrt(1-ab) (x - sqrt(ab) mean) / (ab std^2 + 1 - ab)."""
    def model(x, t):
        ab = alpha_bar_of(t).to(x).reshape(-1, *([1] * (x.dim() - 1)))
        m = torch.as_tensor(mean, dtype=x.dtype)
        s2 = torch.as_tensor(std, dtype=x.dtype) ** 2
        return (1 - ab).sqrt() * (x - ab.sqrt() * m) / (ab * s2 + 1 - ab)
    return model


AB = S.alpha_bars(S.linear_betas(1000, 1e-4, 0.02))
discrete_model = gaussian_denoiser(lambda t: AB[t.long().cpu()])
vp = lambda t: S.vp_alpha_bar(t.cpu(), 0.1, 20.0)
vp_model = gaussian_denoiser(vp)

CASES = [
    ("ddpm", discrete_model, SM.discrete_grid(AB, 1000), 0.03),
    ("ddim", discrete_model, SM.discrete_grid(AB, 100), 0.03),
    ("dpm_solver", discrete_model, SM.discrete_grid(AB, 20, spacing="logsnr"), 0.03),
    ("euler_ode", vp_model, SM.vp_grid(200, vp), 0.05),
    ("euler_sde", vp_model, SM.vp_grid(500, vp), 0.05),
]


@pytest.mark.parametrize("method,model,grid,tol", CASES, ids=[c[0] for c in CASES])
def test_sampler_recovers_gaussian_mean_and_std(method, model, grid, tol):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 1, generator=g, dtype=torch.float64)
    out = SM.sample(method, model, x, grid, generator=g)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert out.mean().item() == pytest.approx(MEAN, abs=tol)
    assert out.std().item() == pytest.approx(STD, abs=tol)


def test_second_order_solver_beats_ddim_at_few_steps():
    """DDIM under-disperses at few steps (an Euler step shrinks toward the mean); DPM-Solver++(2M)
    is second order, so at 10 log-SNR-spaced steps its std error must be several times smaller."""
    x = torch.randn(20000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grid = SM.discrete_grid(AB, 10, spacing="logsnr")
    err_ddim = abs(SM.ddim(discrete_model, x, grid).std().item() - STD)
    err_dpm = abs(SM.dpm_solver_pp_2m(discrete_model, x, grid).std().item() - STD)
    assert err_dpm < 0.3 * err_ddim


def test_ddim_eta0_is_deterministic_and_ancestral_is_seeded():
    x = torch.randn(64, 3, dtype=torch.float64)
    grid = SM.discrete_grid(AB, 25)
    assert torch.equal(SM.ddim(discrete_model, x, grid), SM.ddim(discrete_model, x, grid))
    a = SM.ddpm(discrete_model, x, grid, generator=torch.Generator().manual_seed(3))
    b = SM.ddpm(discrete_model, x, grid, generator=torch.Generator().manual_seed(3))
    c = SM.ddpm(discrete_model, x, grid, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_conditional_gaussian_posterior_via_replacement():
    """Independent coordinates: holding coordinate 0 fixed must leave coordinate 1 ~ N(MEAN, STD^2)
    and return the known value exactly."""
    g = torch.Generator().manual_seed(1)
    n = 20000
    known = torch.zeros(n, 2, dtype=torch.float64)
    known[:, 0] = 7.0
    mask = torch.zeros(n, 2)
    mask[:, 0] = 1
    grid = SM.discrete_grid(AB, 50)
    out = SM.ddim(discrete_model, torch.randn(n, 2, generator=g, dtype=torch.float64), grid,
                  project=replace_known(known, mask, generator=g))
    assert torch.equal(out[:, 0], known[:, 0])
    assert out[:, 1].mean().item() == pytest.approx(MEAN, abs=0.03)
    assert out[:, 1].std().item() == pytest.approx(STD, abs=0.03)


def test_partial_start_grid_and_identity_at_zero():
    grid = SM.discrete_grid(AB, 10, t_start=99)
    assert grid.times[0] == 99 and grid.times[-1] == 0 and len(grid) == 10
    assert torch.equal(grid.alpha_bars, AB[grid.times])
    with pytest.raises(ValueError, match="t_start"):
        SM.discrete_grid(AB, 10, t_start=1000)
    with pytest.raises(ValueError, match="unknown sampler"):
        SM.sample("heun9", discrete_model, torch.zeros(1, 1), grid)
    # identity at zero: t_start=0 is step 0 itself (not "no t_start", the full chain), for any n_steps
    # and spacing, so a sampler started there takes the one step from alpha_bar[0] = 1 - 1e-4 to the
    # clean level and hands clean data back unchanged, up to that step's noise (|eps| / 100)
    x = MEAN + STD * torch.randn(2000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for spacing in ("uniform", "logsnr"):
        zero = SM.discrete_grid(AB, 10, t_start=0, spacing=spacing)
        assert zero.times.tolist() == [0] and zero.alpha_bars.tolist() == [AB[0].item()]
        for method in ("ddpm", "ddim", "dpm_solver"):
            calls = []
            model = lambda x_t, t: calls.append(t) or discrete_model(x_t, t)
            out = SM.sample(method, model, x, zero, generator=torch.Generator().manual_seed(1))
            assert len(calls) == 1 and (calls[0] == 0).all(), method
            assert (out - x).abs().max() < 2e-3, (method, spacing)
    # while a run from the last step (the default) draws a new sample: far from the input
    assert (SM.ddim(discrete_model, x, SM.discrete_grid(AB, 10)) - x).abs().mean() > 0.3


def test_prediction_conversions_round_trip():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randn(8, 4, generator=g, dtype=torch.float64)
    ab = torch.rand(8, generator=g, dtype=torch.float64) * 0.9 + 0.05
    xt = add_noise(x0, eps, ab)
    assert torch.allclose(x0_from_eps(xt, eps, ab), x0)
    assert torch.allclose(eps_from_x0(xt, x0, ab), eps)
    assert torch.allclose(eps_from_v(xt, v_from_eps(xt, eps, ab), ab), eps)
    x0_net = lambda x, t: x0  # a perfect x0-predictor
    wrapped = as_eps_model(x0_net, "x0", lambda t: ab)
    assert torch.allclose(wrapped(xt, torch.zeros(8)), eps)


def test_clip_denoised_bounds_the_implied_clean_signal():
    from multidiff.core.denoiser import clip_denoised
    wild = lambda x, t: torch.full_like(x, -50.0)  # implies a far too large x0
    ab = lambda t: AB[t.long()]
    model = clip_denoised(wild, ab, -2.0, 2.0)
    x = torch.randn(16, 3, dtype=torch.float64)
    t = torch.full((16,), 500)
    x0 = x0_from_eps(x, model(x, t), AB[500])
    assert x0.max() <= 2.0 + 1e-9 and x0.min() >= -2.0 - 1e-9
    out = SM.ddim(model, x, SM.discrete_grid(AB, 10))
    assert out.abs().max() <= 2.0 + 1e-6


@pytest.mark.parametrize("method", ["ddpm", "ddim", "euler_sde"])
def test_injected_randn_is_the_only_noise_source(method):
    """With ``randn`` given, stochastic samplers take every noise draw from it: neither the
    generator nor the global RNG is touched, and zero noise makes ddpm a deterministic map."""
    model, grid = (vp_model, SM.vp_grid(20, vp)) if method == "euler_sde" else (discrete_model, SM.discrete_grid(AB, 20))
    kwargs = {"eta": 1.0} if method == "ddim" else {}
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shapes = []
    zeros = lambda like: shapes.append(like.shape) or torch.zeros_like(like)
    g, global_state = torch.Generator().manual_seed(5), torch.get_rng_state()
    a = SM.sample(method, model, x, grid, generator=g, randn=zeros, **kwargs)
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(5).get_state())
    assert torch.equal(torch.get_rng_state(), global_state)
    assert len(shapes) == len(grid) - 1 and all(s == x.shape for s in shapes)  # one draw per step but the last
    assert torch.equal(a, SM.sample(method, model, x, grid, randn=zeros, **kwargs))
    assert not torch.equal(a, SM.sample(method, model, x, grid, generator=torch.Generator().manual_seed(5), **kwargs))


def test_rowwise_randn_makes_samples_independent_of_how_items_are_batched():
    """Item b draws only from generators[b], so 5 items sampled in one call or in chunks of 2
    give identical samples (the Gaussian denoiser is elementwise, so equality is exact)."""
    n_samples, grid = 3, SM.discrete_grid(AB, 50)

    def run(chunks):
        gens = [torch.Generator().manual_seed(100 + b) for b in range(5)]
        outs = []
        for lo, hi in chunks:
            randn = SM.rowwise_randn(gens[lo:hi], n_samples)
            x = randn(torch.empty(n_samples * (hi - lo), 4, dtype=torch.float64))  # x_T from the same streams
            outs.append(SM.ddpm(discrete_model, x, grid, randn=randn).reshape(n_samples, hi - lo, 4))
        return torch.cat(outs, dim=1)  # (samples, items, 4)

    whole = run([(0, 5)])
    assert torch.equal(whole, run([(0, 2), (2, 4), (4, 5)]))
    assert torch.equal(whole, run([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]))
    assert not torch.allclose(whole[:, 0], whole[:, 1]) and not torch.allclose(whole[0], whole[1])
    with pytest.raises(ValueError, match="rows"):
        SM.rowwise_randn([torch.Generator()], 3)(torch.empty(4, 2))
