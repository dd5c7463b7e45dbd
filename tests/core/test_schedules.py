import json
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


# -- the schedule objects: DiscreteSchedule beside VPSDE and OTFlow ---------------------------------

@pytest.mark.parametrize("schedule,betas,alpha_bars", [
    (S.DiscreteSchedule("linear", 3, 0.1, 0.3), [0.1, 0.2, 0.3], [0.9, 0.72, 0.504]),  # 0.9, 0.9 * 0.8, 0.72 * 0.7
    (S.DiscreteSchedule("quad", 3, 0.01, 0.25), [0.01, 0.09, 0.25], [0.99, 0.9009, 0.675675]),  # sqrt: 0.1, 0.3, 0.5
    (S.DiscreteSchedule.from_betas(torch.tensor([0.1, 0.2, 0.5], dtype=torch.float64)), [0.1, 0.2, 0.5], [0.9, 0.72, 0.36]),
    (S.DiscreteSchedule.from_alpha_bars(torch.tensor([0.9, 0.72, 0.36], dtype=torch.float64)), [0.1, 0.2, 0.5],
     [0.9, 0.72, 0.36]),
], ids=["linear", "quad", "from-betas", "from-alpha-bars"])
def test_a_three_step_table_by_hand(schedule, betas, alpha_bars):
    want = torch.tensor(alpha_bars, dtype=torch.float64)
    assert len(schedule) == 3 and schedule.alpha_bars.dtype == torch.float64
    torch.testing.assert_close(schedule.betas, torch.tensor(betas, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(schedule.alpha_bars, want, rtol=1e-12, atol=1e-12)
    t = torch.tensor([[2, 0], [1, 1]])
    torch.testing.assert_close(schedule.alpha_bar_of(t), want[t])  # indexed by step, any shape


def test_a_named_schedule_is_the_make_betas_table_in_its_dtype():
    s = S.DiscreteSchedule("quad", 50, 1e-4, 0.5, dtype="float32")  # CSDI keeps its table in float32
    assert torch.equal(s.betas, S.make_betas("quad", 50, 1e-4, 0.5))
    assert s.alpha_bars.dtype == torch.float32 and torch.equal(s.alpha_bars, S.alpha_bars(s.betas).float())
    assert torch.equal(S.DiscreteSchedule("cosine", 20).alpha_bars, S.alpha_bars(S.cosine_betas(20)))
    assert S.DiscreteSchedule("cosine", 20).beta_start is None  # the cosine table has no start or end


def test_alpha_bar_of_moves_the_table_to_the_device_of_t():
    s = S.DiscreteSchedule("linear", 10)
    t = torch.tensor([[0, 9]], device="meta")  # a device the table is not on
    out = s.alpha_bar_of(t)
    assert out.device == t.device and out.shape == (1, 2) and s.alpha_bars.device.type == "cpu"
    assert s.alpha_bar_of(torch.tensor([9.0])).item() == s.alpha_bars[9].item()  # float step indices index too


@pytest.mark.parametrize("schedule", [S.DiscreteSchedule("quad", 50, 1e-4, 0.5, dtype="float32"),
                                      S.DiscreteSchedule("cosine", 30),
                                      S.DiscreteSchedule.from_betas(S.vp_discrete_betas(100)),
                                      S.VPSDE(0.05, 20.0), S.OTFlow(1e-4)],
                         ids=["quad", "cosine", "table", "vpsde", "otflow"])
def test_to_config_is_plain_json_and_rebuilds_the_same_schedule(schedule):
    cfg = json.loads(json.dumps(schedule.to_config()))
    back = S.schedule_from_config(cfg)
    assert back == schedule and type(back) is type(schedule) and type(schedule).from_config(cfg) == schedule
    if isinstance(schedule, S.DiscreteSchedule):
        assert torch.equal(back.alpha_bars, schedule.alpha_bars) and back.alpha_bars.dtype == schedule.alpha_bars.dtype


def test_bad_schedule_objects_and_configs_are_refused():
    with pytest.raises(ValueError, match="unknown schedule 'sigmoid'"):
        S.DiscreteSchedule("sigmoid", 10)
    with pytest.raises(ValueError, match="dtype must be one of"):
        S.DiscreteSchedule("linear", 10, dtype="float16")
    with pytest.raises(ValueError, match="decrease strictly"):
        S.DiscreteSchedule.from_alpha_bars(torch.tensor([0.5, 0.7]))
    with pytest.raises(ValueError, match="needs a family"):
        S.schedule_from_config({"kind": "linear"})
    with pytest.raises(ValueError, match="unknown VPSDE field"):
        S.schedule_from_config({"family": "vp_sde", "beta0": 0.1, "beta2": 3.0})
    with pytest.raises(ValueError, match="family 'vp_sde'"):
        S.VPSDE.from_config(S.OTFlow().to_config())


def test_recorded_schedule_checks_a_checkpoint_against_its_settings():
    built = S.DiscreteSchedule("linear", 100)
    assert S.recorded_schedule({"schedule": built.to_config()}, built) == built
    assert S.recorded_schedule({}, built) is built  # a config without one: its settings are the record
    with pytest.raises(ValueError, match="run/x records the schedule"):
        S.recorded_schedule({"schedule": S.DiscreteSchedule("linear", 50).to_config()}, built, "run/x")
