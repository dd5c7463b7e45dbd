import math

import pytest
import torch

from multidiff.core.schedules import VPSDE, DiscreteSchedule
from multidiff.nets.unet_small import SmallUNet
from multidiff.tasks.purify import Defended, Purifier

from .helpers import LinearClassifier, OracleEps


def tiny_unet(dims=2, ch=1):
    torch.manual_seed(0)
    return SmallUNet(ch, base=8, mults=(1, 2), dims=dims, time_dim=16).eval()


@pytest.mark.parametrize("sampler", ["euler_sde", "ddpm", "ddim"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_purifier_keeps_shape_dtype_and_input(sampler, dtype):
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0)).to(dtype)
    before = x.clone()
    p = Purifier(tiny_unet(), t_start=0.3, sampler_steps=3, sampler=sampler)
    with torch.no_grad():
        out = p(x)
    assert out.shape == x.shape and out.dtype == dtype and torch.isfinite(out).all()
    assert torch.equal(x, before)
    assert not torch.equal(out, x)


@pytest.mark.parametrize("sampler", ["euler_sde", "ddpm", "ddim"])
@pytest.mark.parametrize("data_range, shape", [((0.0, 1.0), (4, 1, 4, 4)), ((-1.0, 1.0), (4, 3, 6)),
                                               ((0.0, 255.0), (2, 2, 4, 4))])
def test_output_is_clamped_to_the_data_range(sampler, data_range, shape):
    # the exact eps-model of data at one point outside the range (+-3 in the model's [-1, 1] space): every
    # sampler carries the input there (within 1e-2, see the oracle test below), so only the clamp brings
    # the output back: to the high end where the point is +3, to the low end where it is -3
    lo, hi = data_range
    sign = (torch.arange(math.prod(shape[1:])) % 2 * 2 - 1).reshape(1, *shape[1:]).double()
    x = lo + (hi - lo) * torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = Purifier(OracleEps(3 * sign), t_start=0.5, sampler_steps=50, sampler=sampler, data_range=data_range)
    out = p(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, torch.where(sign > 0, hi, lo).expand(shape).double())


@pytest.mark.parametrize("t_start", [0.02, 0.05])
@pytest.mark.parametrize("data_range", [(0.0, 1.0), (0.0, 255.0)])
def test_the_noise_added_matches_t_start(t_start, data_range):
    # with a zero eps-model DDIM's steps only rescale, so purification returns z + sqrt(1/ab(t*) - 1) e in the
    # model's [-1, 1] space: the output differs from the input by (hi - lo) / 2 times that std (VP-SDE, DiffPure)
    lo, hi = data_range
    x = torch.full((64, 1, 16, 16), (lo + hi) / 2, dtype=torch.float64)
    p = Purifier(lambda x_t, t: torch.zeros_like(x_t), t_start=t_start, sampler_steps=5, sampler="ddim",
                 data_range=data_range)
    diff = p(x, generator=torch.Generator().manual_seed(0)) - x
    alpha_bar = math.exp(-(0.1 * t_start + 0.5 * (20.0 - 0.1) * t_start ** 2))
    std = (hi - lo) / 2 * math.sqrt(1 / alpha_bar - 1)
    assert abs(float(diff.std()) / std - 1) < 0.02 and abs(float(diff.mean())) < 0.02 * std


def test_other_range_and_1d_signals():
    x = 2 * torch.rand(3, 7, 24) - 1
    p = Purifier(tiny_unet(dims=1, ch=7), t_start=0.2, sampler_steps=2, data_range=(-1, 1))
    with torch.no_grad():
        out = p(x)
    assert out.shape == x.shape and torch.isfinite(out).all() and not torch.equal(out, x)


def test_t_start_zero_is_identity():
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(Purifier(tiny_unet(), t_start=0.0)(x), x)


@pytest.mark.parametrize("sampler", ["ddim", "euler_sde"])
def test_oracle_denoiser_returns_the_only_data_point(sampler):
    # with all data at one point the exact eps-model is closed-form; purification must land on it
    x0 = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(1)).double()
    model = OracleEps(x0 * 2 - 1)
    x = (x0 + 0.05 * torch.randn(6, 1, 4, 4, dtype=torch.float64)).clamp(0, 1)
    out = Purifier(model, t_start=0.5, sampler_steps=50, sampler=sampler)(x, generator=torch.Generator().manual_seed(0))
    tol = 1e-6 if sampler == "ddim" else 2e-2  # DDIM is exact for this model; Euler-Maruyama is not
    assert (out - x0).abs().max() < tol


def test_noise_level_and_grid_match_t_start():
    p = Purifier(tiny_unet(), t_start=0.1, sampler="sde")
    assert p.sampler == "euler_sde"  # stored by the core registry's name, not the alias
    assert p.sampler_steps == 100  # DiffPure's dt = 1e-3
    assert math.isclose(p.level, math.exp(-(0.1 * 0.1 + 0.5 * 19.9 * 0.01)), rel_tol=1e-9)
    assert p.grid.times[0] == 0.1 and len(p.grid) == 100
    # every sampler walks the core's continuous grid of the VP-SDE from t* (before issue 10, ddpm/ddim
    # walked the SDE discretised into 1000 steps: step indices 99 .. 0)
    d = Purifier(tiny_unet(), t_start=0.1, sampler_steps=10, sampler="ddpm")
    assert d.grid.times[0] == 0.1 and len(d.grid) == 10 and d.grid.sde is not None
    assert math.isclose(d.level, p.level, rel_tol=1e-9)


def test_discrete_model_gets_step_indices():
    seen = []

    def model(x, t):
        seen.append(t)
        return torch.zeros_like(x)

    table = DiscreteSchedule("linear", 100)
    Purifier(model, t_start=0.2, sampler_steps=4, sampler="ddim", schedule=table)(torch.rand(2, 1, 4, 4))
    assert all(not t.is_floating_point() for t in seen) and int(seen[0][0]) == 19
    # a table's default is ddpm, its reverse process; the VP-SDE's Euler steps need a continuous model
    assert Purifier(model, t_start=0.2, schedule=table).sampler == "ddpm"
    with pytest.raises(ValueError, match=r"'sde' needs a continuous-time model; .* must be one of \('ddpm'"):
        Purifier(model, t_start=0.2, sampler="sde", schedule=table)
    with pytest.raises(TypeError, match="schedule must be a VPSDE or a DiscreteSchedule"):
        Purifier(model, t_start=0.2, schedule=table.alpha_bars)  # a bare table is no schedule


def test_the_schedule_sets_the_level_the_input_is_diffused_to():
    """DiffPure's VP-SDE (0.1, 20) by default: alpha_bar(t*) = exp(-(0.1 t + 9.95 t^2)); another VP-SDE moves it."""
    zero = lambda x, t: torch.zeros_like(x)
    assert Purifier(zero, t_start=0.1).level == pytest.approx(math.exp(-(0.01 + 9.95 * 0.01)), rel=1e-12)
    assert Purifier(zero, t_start=0.1, schedule=VPSDE(0.05, 20.0)).level == pytest.approx(
        math.exp(-(0.005 + 9.975 * 0.01)), rel=1e-12)


def test_seeded_runs_repeat_and_fresh_runs_differ():
    x = torch.rand(3, 1, 8, 8)
    p = Purifier(tiny_unet(), t_start=0.2, sampler_steps=3)
    with torch.no_grad():
        a = p(x, generator=torch.Generator().manual_seed(5))
        b = p(x, generator=torch.Generator().manual_seed(5))
        c = p(x)
        many = p.purify_many(x, 4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert many.shape == (4, 3, 1, 8, 8) and not torch.equal(many[0], many[1])


@pytest.mark.parametrize("t_start", [-0.1, 1.5, float("nan")])
def test_t_start_outside_unit_interval_is_rejected(t_start):
    with pytest.raises(ValueError, match="t_start must lie in"):
        Purifier(tiny_unet(), t_start=t_start)


def test_bad_inputs_are_rejected():
    p = Purifier(tiny_unet(), t_start=0.1, sampler_steps=2)
    with pytest.raises(ValueError, match="outside the declared data_range"):
        p(torch.rand(2, 1, 8, 8) * 255)
    with pytest.raises(ValueError, match="NaN"):
        p(torch.full((2, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="sampler must be"):
        Purifier(tiny_unet(), sampler="heun")
    with pytest.raises(ValueError, match="data_range"):
        Purifier(tiny_unet(), data_range=(1, 0))


def test_defended_vote_and_logits():
    x = torch.rand(4, 1, 8, 8)
    clf = LinearClassifier(64, 3)
    d = Defended(clf, Purifier(tiny_unet(), t_start=0.1, sampler_steps=2), n_votes=5)
    with torch.no_grad():
        logp = d(x)
        pred = d.predict(x)
    assert logp.shape == (4, 3) and torch.allclose(logp.exp().sum(-1), torch.ones(4), atol=1e-5)
    assert pred.shape == (4,) and pred.dtype == torch.long
    same = Defended(clf, Purifier(tiny_unet(), t_start=0.0), n_votes=3)
    assert torch.equal(same.predict(x), clf(x).argmax(-1))  # no purification: the vote is the classifier


def test_a_saved_purification_model_records_its_schedule_and_load_rebuilds_it(tmp_path):
    import json

    from multidiff.nets.classifiers import ConvClassifier
    from multidiff.tasks.purify import PurificationModel

    model = PurificationModel()
    model.denoiser, model.classifier = tiny_unet(), ConvClassifier(1, 3, width=4)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["config"]["schedule"] == {"family": "vp_sde", "beta0": 0.1, "beta1": 20.0}  # DiffPure's
    config["config"]["schedule"] = VPSDE(0.05, 20.0).to_config()  # the record, not a default, decides
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = PurificationModel.load(tmp_path / "m", device="cpu")
    assert loaded.schedule == VPSDE(0.05, 20.0) and loaded.purifier(0.1).schedule == VPSDE(0.05, 20.0)
    assert "schedule" not in loaded.meta
