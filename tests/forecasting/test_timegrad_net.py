"""TimeGrad's eps-network and model: shapes, masked loss, one batched network call per sampler step."""
import pytest
import torch

from multidiff.nets.timegrad import EpsilonTheta
from multidiff.tasks.forecasting.timegrad_model import TimeGradModel

B, D, C, H, F = 3, 5, 6, 4, 2
LAGS = [1, 3]


def _model(**kw):
    torch.manual_seed(0)
    args = dict(target_dim=D, context_length=C, prediction_length=H, num_time_features=F, lags_seq=LAGS,
                hidden_size=8, num_layers=1, residual_layers=2, residual_channels=4, num_train_steps=20,
                num_parallel_samples=7, sampler="ddim", sampler_steps=3)
    return TimeGradModel(**{**args, **kw})


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    past = C + max(LAGS)
    return dict(past_target=torch.rand(B, past, D, generator=g) + 1, past_observed_values=torch.ones(B, past, D),
                past_time_feat=torch.randn(B, past, F, generator=g), future_time_feat=torch.randn(B, H, F, generator=g))


def test_epsilon_theta_shapes_and_paper_layout():
    net = EpsilonTheta(target_dim=8, cond_dim=40)
    assert len(net.blocks) == 8 and [b.dilated_conv.dilation[0] for b in net.blocks] == [1, 2] * 4
    out = net(torch.randn(10, 8), torch.randint(0, 100, (10,)), torch.randn(10, 40))
    assert out.shape == (10, 8) and out.dtype == torch.float32


def test_forward_shape_and_scale():
    model = _model().eval()
    batch = _batch()
    out = model(**batch)
    assert out.shape == (B, 7, H, D) and torch.isfinite(out).all()
    # mean scaling: multiplying the history by 1000 multiplies the samples by 1000 (same noise)
    torch.manual_seed(1)
    a = model(**batch)
    torch.manual_seed(1)
    b = model(**{**batch, "past_target": batch["past_target"] * 1000})
    torch.testing.assert_close(b, a * 1000, rtol=1e-3, atol=1e-3)


def test_one_network_call_per_step_with_all_samples_and_series():
    model = _model().eval()
    calls = []
    model.eps_net.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape))
    model(**_batch())
    assert len(calls) == H * len(model.grid())
    assert set(calls) == {(7 * B, D)}


def test_ddpm_reference_uses_the_full_grid():
    model = _model(sampler="ddpm", sampler_steps=None)
    assert len(model.grid()) == 20
    with pytest.raises(ValueError, match="sampler must be one of"):
        model.set_sampler("euler_ode")


def test_loss_ignores_unobserved_values():
    model = _model()
    batch = _batch()
    fut = dict(future_target=torch.rand(B, H, D) + 1, future_observed_values=torch.ones(B, H, D))
    fut["future_observed_values"][0, 1, 2] = 0
    batch["past_observed_values"][1, -2, 0] = 0
    torch.manual_seed(3)
    ref = model.loss(**batch, **fut)
    changed = {k: v.clone() for k, v in {**batch, **fut}.items()}
    changed["past_target"][1, -2, 0] = 1e6
    changed["future_target"][0, 1, 2] = 0.0  # as GluonTS imputes NaN; the mask must hide the value
    torch.manual_seed(3)
    assert torch.isfinite(ref)
    torch.testing.assert_close(model.loss(**changed), ref)
    ref.backward()
    assert all(p.grad is not None for p in model.eps_net.parameters() if p.requires_grad)


def test_circular_conv_is_torchs_where_torch_can_pad_and_wraps_for_one_series():
    """Issue 15: torch's circular padding refuses to wrap more than once, so target_dim=1 crashed."""
    from torch import nn

    from multidiff.nets.timegrad import CircularConv1d

    torch.manual_seed(0)
    conv = CircularConv1d(4, 6, 3, pad=2, dilation=2)
    ref = nn.Conv1d(4, 6, 3, padding=2, dilation=2, padding_mode="circular")
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(5, 4, 7)
    assert torch.equal(conv(x), ref(x))  # multivariate: exactly torch's computation
    one = torch.randn(5, 4, 1)  # one series: the periodic extension of a single value is that value
    torch.testing.assert_close(conv(one), nn.functional.conv1d(one.expand(-1, -1, 5), conv.weight, conv.bias,
                                                               dilation=2))
    wide = CircularConv1d(4, 6, 3, pad=4, dilation=4)  # pad 4 around [a b c]: c a b c | a b c | a b c a
    three = torch.randn(5, 4, 3)
    torch.testing.assert_close(wide(three), nn.functional.conv1d(three[..., [2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]],
                                                                 wide.weight, wide.bias, dilation=4))


def test_univariate_model_trains_and_samples():
    """Adam steps on one batch lower the loss (the same diffusion times and noise before and after) and move
    every weight: encoder, series embedding and noise network all get their share of the gradient."""
    model = _model(target_dim=1)
    g = torch.Generator().manual_seed(0)
    past = C + max(LAGS)
    batch = dict(past_target=torch.rand(B, past, 1, generator=g) + 1, past_observed_values=torch.ones(B, past, 1),
                 past_time_feat=torch.randn(B, past, F, generator=g),
                 future_time_feat=torch.randn(B, H, F, generator=g))
    fut = dict(future_target=torch.rand(B, H, 1, generator=g) + 1, future_observed_values=torch.ones(B, H, 1))

    def loss(seed):
        torch.manual_seed(seed)
        return model.loss(**batch, **fut)

    with torch.no_grad():
        before = sum(float(loss(s)) for s in range(4))
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(30):
        opt.zero_grad()
        value = loss(100 + step)
        value.backward()
        opt.step()
    assert torch.isfinite(value)
    with torch.no_grad():
        after = sum(float(loss(s)) for s in range(4))
    assert after < 0.7 * before, (before, after)
    unchanged = [name for name, p in model.named_parameters() if torch.equal(p, start[name])]
    assert not unchanged, unchanged
    out = model.eval()(**batch)
    assert out.shape == (B, 7, H, 1) and torch.isfinite(out).all()
    assert EpsilonTheta(target_dim=1, cond_dim=8, dilation_cycle=4)(torch.randn(3, 1), torch.tensor([0, 5, 9]),
                                                                    torch.randn(3, 8)).shape == (3, 1)


def test_series_with_unobserved_context_takes_the_batch_scale():
    """Issue 15: a series with nothing observed in its context was scaled by 1 whatever the data.
    Now (GluonTS MeanScaler) it takes its batch-wide scale, or the mean scale of the observed series."""
    model = _model()
    batch = _batch()
    target, obs = batch["past_target"], batch["past_observed_values"]
    obs[0, -C:, 1] = 0          # series 1: unobserved in item 0's context, observed in the others
    obs[:, -C:, 3] = 0          # series 3: unobserved in every context of the batch
    target[0, -C:, 1] = 1e6     # unobserved values must not count
    scale = model._scale(target, obs)[:, 0]
    ctx = target[:, -C:]
    torch.testing.assert_close(scale[0, 1], ctx[1:, :, 1].abs().mean())
    per_series = torch.stack([ctx[:, :, d].abs().mean() for d in (0, 1, 2, 4)])
    per_series[1] = ctx[1:, :, 1].abs().mean()
    torch.testing.assert_close(scale[:, 3], per_series.mean().expand(B))
    torch.testing.assert_close(scale[:, 0], ctx[:, :, 0].abs().mean(1))  # observed series: as before
    # behaviour: samples of the unobserved series follow the scale of the data like the others
    model.eval()
    torch.manual_seed(1)
    a = model(**batch)
    torch.manual_seed(1)
    b = model(**{**batch, "past_target": target * 1000})
    torch.testing.assert_close(b, a * 1000, rtol=1e-3, atol=1e-2)
    nothing = torch.zeros_like(obs)  # nothing observed at all: scale 1
    assert torch.equal(model._scale(target, nothing), torch.ones(B, 1, D))


def test_the_network_module_holds_the_network_only():
    import multidiff.nets.timegrad as nets_timegrad

    assert not any(hasattr(EpsilonTheta, a) for a in ("loss", "alpha_bars", "grid"))
    assert set(nets_timegrad.__all__) == {"EpsilonTheta", "CircularConv1d"}
    assert not hasattr(nets_timegrad, "TimeGradModel")
