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


def gaussian_velocity(flow, mean=MEAN, std=STD):
    """E[u | x_t] on the OT path from N(0, 1) to N(mean, std^2): x_t = a x0 + t x1 with a = 1 - (1 - sigma_min) t,
    u = x1 - (1 - sigma_min) x0, so E[u | x_t] = mean + Cov(u, x_t) / Var(x_t) (x_t - t mean)."""
    def model(x, t):
        t = t.to(x).reshape(-1, *([1] * (x.dim() - 1)))
        a = 1 - (1 - flow.sigma_min) * t
        cov = t * std ** 2 - (1 - flow.sigma_min) * a
        return mean + cov / (a ** 2 + t ** 2 * std ** 2) * (x - t * mean)
    return model


TABLE = S.DiscreteSchedule("linear", 1000, 1e-4, 0.02)
AB = TABLE.alpha_bars
discrete_model = gaussian_denoiser(lambda t: AB[t.long().cpu()])
VP = S.VPSDE(0.1, 20.0)
vp = lambda t: VP.alpha_bar_of(t.cpu())
vp_model = gaussian_denoiser(vp)

CASES = [
    ("ddpm", discrete_model, SM.discrete_grid(AB, 1000), 0.03),
    ("ddim", discrete_model, SM.discrete_grid(AB, 100), 0.03),
    ("dpm_solver", discrete_model, SM.discrete_grid(AB, 20, spacing="logsnr"), 0.03),
    ("euler_ode", vp_model, SM.continuous_grid(VP, 200), 0.05),
    ("euler_sde", vp_model, SM.continuous_grid(VP, 500), 0.05),
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
    model, grid = (vp_model, SM.continuous_grid(VP, 20)) if method == "euler_sde" else (discrete_model, SM.discrete_grid(AB, 20))
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


# -- Grad-TTS' continuous-time sampler (issue 14) ------------------------------------------------

GRADTTS = S.VPSDE(0.05, 20.0)


def _unit_normal(n=100_000, seed=0):
    """Standard normal draws rescaled to mean 0, std 1 exactly: a linear sampler's output std is then its gain."""
    x = torch.randn(n, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x - x.mean()) / x.std()


@pytest.mark.parametrize("method,expected", [
    # Popov et al. 2021: x += beta(t) h / 2 (x + score), t the mid-point of each step of a uniform grid
    # from 1 to 0. The scheme before issue 14 (beta integrated between mid-points, last step over
    # [0, 0.5/n] only) gave 0.724 / 0.605 / 0.521; issue 14 measured 0.340 / 0.464 / 0.494 for this one.
    ("euler_ode", (0.3402, 0.4634, 0.4942)),
    # the same steps with sqrt(beta h) noise (none in the last step), the score at the step start; seeded,
    # so +-0.005. With the score at the mid-point, as Grad-TTS' code, 0.700 / 0.426 / 0.503
    ("euler_sde", (0.363, 0.537, 0.520)),
    # DPM-Solver++(2M) on the same grid; it ends on its data prediction at t = 0
    ("dpm_solver", (0.2231, 0.4073, 0.5018)),
])
def test_continuous_grid_output_std_per_step_count_is_pinned(method, expected):
    """Gaussian data (std 0.5) with the exact score under Grad-TTS' VP-SDE (beta 0.05..20), started
    from N(0, 1) as the TTS decoder at temperature 1: the output std at 4 / 10 / 50 steps."""
    model = gaussian_denoiser(GRADTTS.alpha_bar_of, mean=0.0)
    x = _unit_normal()
    got = [SM.sample(method, model, x, SM.continuous_grid(GRADTTS, n), generator=torch.Generator().manual_seed(1))
           .std().item() for n in (4, 10, 50)]
    tol = 5e-3 if SM.METHODS[method].stochastic else 1e-4
    assert got == pytest.approx(list(expected), abs=tol)


def test_euler_steps_are_grad_tts_mid_points():
    grid = SM.continuous_grid(GRADTTS, 4)
    times, levels, beta_h = grid.euler_steps()
    assert grid.times.tolist() == [1.0, 0.75, 0.5, 0.25]
    assert times.tolist() == [0.875, 0.625, 0.375, 0.125]
    torch.testing.assert_close(beta_h, GRADTTS.beta(times) * 0.25)
    torch.testing.assert_close(levels, GRADTTS.alpha_bar_of(times))
    with pytest.raises(ValueError, match="continuous-time grid"):
        SM.euler_ode(discrete_model, torch.zeros(2, 1), SM.discrete_grid(AB, 4))


# -- registry-level contract, in the style of diffusers' SchedulerCommonTest -----------------------

FLOW = S.OTFlow()
KINDS = {"discrete": (discrete_model, TABLE), "continuous": (vp_model, VP), "flow": (gaussian_velocity(FLOW), FLOW)}
REGISTERED = [(name, kind) for kind in KINDS for name in SM.names(kind)]
IDS = [f"{n}-{k}" for n, k in REGISTERED]


def test_registry_lists_every_method_once_with_its_properties():
    assert SM.names() == tuple(SM.METHODS) == ("ddpm", "ddim", "dpm_solver", "euler_ode", "euler_sde", "euler",
                                               "midpoint")
    assert SM.names("discrete") == ("ddpm", "ddim", "dpm_solver")
    assert SM.names("continuous") == ("ddpm", "ddim", "dpm_solver", "euler_ode", "euler_sde")
    assert SM.names("flow") == ("euler", "midpoint")
    assert {n for n, m in SM.METHODS.items() if m.stochastic} == {"ddpm", "euler_sde"}
    assert {n: m.spacing for n, m in SM.METHODS.items() if "discrete" in m.times} == \
        {"ddpm": "uniform", "ddim": "logsnr", "dpm_solver": "logsnr"}
    for alias, name in SM.ALIASES.items():
        assert SM.resolve(alias) == name and name in SM.METHODS
    with pytest.raises(ValueError, match=r"unknown sampler 'heun9': sampler must be one of \('ddpm'"):
        SM.resolve("heun9")
    with pytest.raises(ValueError, match=r"'euler_ode' needs a continuous-time model; .*sampler must be one of "
                                         r"\('ddpm', 'ddim', 'dpm_solver'\)$"):
        SM.resolve("euler_ode", "discrete")
    with pytest.raises(TypeError, match="DiscreteSchedule.from_alpha_bars"):
        SM.run(discrete_model, sampler="ddim", schedule=AB, shape=(2, 1))  # a bare table is no schedule


@pytest.mark.parametrize("name,kind", REGISTERED, ids=IDS)
def test_every_method_samples_the_gaussian_through_run(name, kind):
    model, schedule = KINDS[kind]
    out = SM.run(model, sampler=name, sampler_steps=200, shape=(20000, 1), dtype=torch.float64,
                 generator=torch.Generator().manual_seed(0), schedule=schedule)
    assert out.shape == (20000, 1) and out.dtype == torch.float64 and torch.isfinite(out).all()
    assert out.mean().item() == pytest.approx(MEAN, abs=0.03)
    assert out.std().item() == pytest.approx(STD, abs=0.03)


@pytest.mark.parametrize("name,kind", REGISTERED, ids=IDS)
def test_deterministic_methods_repeat_and_stochastic_ones_follow_the_generator(name, kind):
    model, schedule = KINDS[kind]
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    grid = SM.make_grid(name, 8, schedule=schedule)
    a, b, c = (SM.sample(name, model, x, grid, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2))
    assert torch.equal(a, b)  # reproducible
    assert torch.equal(a, c) is not SM.METHODS[name].stochastic  # only stochastic methods see the generator
    # through run(), which draws the start from the generator too: a seed gives one sample
    go = lambda seed: SM.run(model, sampler=name, sampler_steps=8, shape=(64, 2), dtype=torch.float64,
                             generator=torch.Generator().manual_seed(seed), schedule=schedule)
    assert torch.equal(go(3), go(3)) and not torch.equal(go(3), go(4))


@pytest.mark.parametrize("name,kind", REGISTERED, ids=IDS)
def test_partial_start_at_zero_returns_the_input_and_near_zero_stays_close(name, kind):
    model, schedule = KINDS[kind]
    calls = []
    counted = lambda x_t, t: calls.append(t) or model(x_t, t)
    x = MEAN + STD * torch.randn(2000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    state = g.get_state()
    out = SM.run(counted, sampler=name, sampler_steps=10, x_start=x, t_start=0.0, generator=g, schedule=schedule)
    assert out is x and not calls and torch.equal(g.get_state(), state)  # no model call, no noise drawn
    # a small t* diffuses a little and denoises back: close to the input, not equal to it
    near = SM.run(counted, sampler=name, sampler_steps=10, x_start=x, t_start=1e-3, generator=g, schedule=schedule)
    assert 0 < (near - x).abs().mean() < 0.02


@pytest.mark.parametrize("name,kind", REGISTERED, ids=IDS)
@pytest.mark.parametrize("t_start", [1.0, 0.3])
def test_grids_are_monotone_and_end_at_the_clean_level(name, kind, t_start):
    _, schedule = KINDS[kind]
    grid = SM.make_grid(name, 10, t_start=t_start, schedule=schedule)
    assert len(grid) == 10
    ab = grid.alpha_bars
    if kind == "flow":  # flow time runs from noise (0) to data (1); its level is the time itself
        assert (grid.times[1:] > grid.times[:-1]).all() and torch.equal(ab, grid.times) and grid.flow == FLOW
        torch.testing.assert_close(ab[0], torch.tensor(1 - t_start, dtype=torch.float64))
        torch.testing.assert_close(ab[-1], torch.tensor(1 - t_start / 10, dtype=torch.float64))
        assert grid.next_level(len(grid) - 1) == 1
        return
    assert (grid.times[1:] < grid.times[:-1]).all()  # noisiest first
    assert ab.dtype == torch.float64 and (ab[1:] > ab[:-1]).all() and 0 < ab[0] and ab[-1] < 1
    assert grid.next_level(len(grid) - 1) == 1  # every run ends on the clean level
    if kind == "discrete":
        assert int(grid.times[0]) == round(t_start * len(AB)) - 1 and int(grid.times[-1]) == 0
        assert torch.equal(ab, AB[grid.times])
        spacing = SM.METHODS[name].spacing
        assert torch.equal(grid.times, SM.discrete_grid(AB, 10, t_start=int(grid.times[0]), spacing=spacing).times)
    else:
        assert grid.times[0] == t_start and grid.sde == VP
        mid, _, _ = grid.euler_steps()
        torch.testing.assert_close(grid.times - mid, torch.full((10,), t_start / 20, dtype=torch.float64))
        torch.testing.assert_close(grid.times[-1], torch.tensor(t_start / 10, dtype=torch.float64))


def test_run_draws_every_noise_from_randn_and_runs_the_hook_on_the_start_and_each_step():
    levels, draws = [], []
    project = lambda x, ab: levels.append(float(ab)) or x
    randn = lambda like: draws.append(like.shape) or torch.ones_like(like)
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    out = SM.run(discrete_model, sampler="ddpm", sampler_steps=5, schedule=TABLE, shape=(4, 2), dtype=torch.float64,
                 generator=g, randn=randn, project=project, temperature=2.0)
    grid = SM.make_grid("ddpm", 5, schedule=TABLE)
    assert torch.equal(g.get_state(), state) and draws == [(4, 2)] * 5  # the start and 4 steps, none from g
    assert levels == [float(grid.alpha_bars[0])] + [float(grid.next_level(i)) for i in range(5)]
    x = 0.5 * torch.ones(4, 2, dtype=torch.float64)  # the start is N(0, I) / temperature; the steps' noise is not
    assert torch.equal(out, SM.ddpm(discrete_model, x, grid, randn=lambda like: torch.ones_like(like)))
    # a partial start forward-noises x_start with a draw of its own: sqrt(ab) x + sqrt(1 - ab) eps
    part = SM.make_grid("ddim", 3, schedule=TABLE, t_start=0.2)
    x0 = torch.full((4, 2), 2.0, dtype=torch.float64)
    got = SM.run(discrete_model, sampler="ddim", sampler_steps=3, schedule=TABLE, x_start=x0, t_start=0.2,
                 randn=torch.ones_like)
    assert torch.equal(got, SM.ddim(discrete_model, add_noise(x0, torch.ones_like(x0), part.alpha_bars[0]), part))
    assert int(part.times[0]) == 199
    with pytest.raises(ValueError, match="starts at t_start=1"):
        SM.run(discrete_model, sampler="ddim", schedule=TABLE, shape=(2, 1), t_start=0.5)
    with pytest.raises(ValueError, match="needs a continuous-time model"):
        SM.run(discrete_model, sampler="euler_ode", sampler_steps=3, schedule=TABLE, shape=(2, 1))
    with pytest.raises(ValueError, match="sampler_steps must be a whole number"):
        SM.run(vp_model, sampler="euler_ode", schedule=VP, shape=(2, 1))  # a continuous grid has no "every step"


def test_default_steps_walk_the_whole_table_and_aliases_run():
    assert len(SM.make_grid("ddpm", None, schedule=TABLE)) == 1000
    assert SM.make_grid("ddpm", None, schedule=TABLE, t_start=0.1).times.tolist() == list(range(99, -1, -1))
    a = SM.run(vp_model, sampler="sde", sampler_steps=5, schedule=VP, shape=(8, 1), generator=torch.Generator().manual_seed(0))
    b = SM.run(vp_model, sampler="euler_sde", sampler_steps=5, schedule=VP, shape=(8, 1),
               generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


@pytest.mark.parametrize("method", ["euler_ode", "euler_sde"])
def test_euler_steps_land_on_one_point_data(method):
    """All data at one point (DiffPure's purification regime near t = 0): the last step must remove
    the remaining noise. An SDE step taking the score at the mid-point would flip it instead (the
    residual std here would be 0.11, not < 0.01), which is why euler_sde scores at the step start."""
    point = gaussian_denoiser(VP.alpha_bar_of, mean=0.3, std=0.0)
    x0 = torch.full((5000, 1), 0.3, dtype=torch.float64)
    out = SM.run(point, sampler=method, sampler_steps=50, schedule=VP, x_start=x0, t_start=0.5,
                 generator=torch.Generator().manual_seed(0))
    assert (out - x0).std().item() < 0.01 and (out - x0).mean().abs().item() < 0.01


# -- flow matching (Lipman et al. 2023), the second objective ---------------------------------------

@pytest.mark.parametrize("method", ["euler", "midpoint"])
def test_flow_output_std_per_step_count_is_the_closed_form_gain(method):
    """The exact OT velocity from N(0, 1) to N(0, s^2) is linear, v = c(t) x with c(t) = (t s^2 - (1 - t)) /
    ((1 - t)^2 + t^2 s^2), so a step multiplies the std by 1 + h c(t) (Euler) or 1 + h c(t + h/2) (1 + h/2 c(t))
    (mid-point): the output std at 4 / 10 / 50 steps is that product (Euler at 4 steps: 0.3405, hand-computed)."""
    c = lambda t: (t * STD ** 2 - (1 - t)) / ((1 - t) ** 2 + t ** 2 * STD ** 2)
    model = gaussian_velocity(S.OTFlow(0.0), mean=0.0)
    x = _unit_normal()
    for n in (4, 10, 50):
        h, gain = 1 / n, 1.0
        for k in range(n):
            t = k * h
            gain *= 1 + h * c(t) if method == "euler" else 1 + h * c(t + h / 2) * (1 + h / 2 * c(t))
        got = SM.sample(method, model, x, SM.flow_grid(S.OTFlow(0.0), n)).std().item()
        assert got == pytest.approx(gain, abs=1e-9)
        assert abs(got - STD) < (0.16 if method == "euler" else 0.005)  # mid-point: near the data's std at 4 steps
    assert SM.sample("euler", model, x, SM.flow_grid(S.OTFlow(0.0), 4)).std().item() == pytest.approx(0.3405, abs=1e-4)


def test_flow_loss_is_smallest_at_the_closed_form_velocity():
    """At t = 0.5 the loss of the exact conditional velocity is the conditional variance of u,
    Var(u) - Cov(u, x_t)^2 / Var(x_t); any other velocity scores higher."""
    from multidiff.core.losses import flow_mse

    flow = S.OTFlow(0.0)
    g = torch.Generator().manual_seed(0)
    x1 = MEAN + STD * torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    x0 = torch.randn(200_000, 1, generator=g, dtype=torch.float64)
    t = torch.full((200_000,), 0.5, dtype=torch.float64)
    exact = gaussian_velocity(flow)
    var_u, cov, var_x = STD ** 2 + 1, 0.5 * STD ** 2 - 0.5, 0.25 + 0.25 * STD ** 2
    assert flow_mse(exact, x1, t, flow, x0=x0).item() == pytest.approx(var_u - cov ** 2 / var_x, rel=0.01)
    worse = lambda x, tt: exact(x, tt) + 0.1
    assert flow_mse(worse, x1, t, flow, x0=x0) > flow_mse(exact, x1, t, flow, x0=x0) + 0.009
    mask = torch.zeros_like(x1)
    mask[:10] = 1
    assert flow_mse(exact, x1, t, flow, mask=mask, x0=x0) == ((exact(flow.path(x0, x1, t), t) - flow.velocity(x0, x1))
                                                             [:10] ** 2).mean()


def test_flow_samplers_need_a_flow_grid_and_a_flow_needs_a_valid_sigma():
    with pytest.raises(ValueError, match="need a flow grid"):
        SM.flow_euler(vp_model, torch.zeros(2, 1), SM.continuous_grid(VP, 4))
    with pytest.raises(ValueError, match="'euler' needs a flow-time model"):
        SM.run(vp_model, sampler="euler", sampler_steps=4, schedule=VP, shape=(2, 1))
    with pytest.raises(ValueError, match="0 <= sigma_min < 1"):
        S.OTFlow(1.0)
