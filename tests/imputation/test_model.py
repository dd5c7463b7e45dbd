import pytest
import torch

from multidiff.core.conditioning import interpolate_masked
from multidiff.tasks.imputation.model import CSDIModel

K, L, C = 3, 10, 2
SMALL = dict(num_train_steps=10, channels=8, layers=1, heads=2)


def _model(**kw):
    torch.manual_seed(0)
    return CSDIModel(K, **SMALL, **kw)


def _batch(b=4, length=L + 2 * C, seed=0):
    g = torch.Generator().manual_seed(seed)
    observed = (torch.rand(b, K, length, generator=g) > 0.3).float()
    values = torch.randn(b, K, length, generator=g) * observed
    return {"values": values, "observed": observed, "positions": torch.arange(L).float().expand(b, -1)}


@pytest.mark.parametrize("kw,message", [({"prediction": "score"}, "prediction"), ({"base": "mean"}, "base"),
                                        ({"base": "none"}, "base")])
def test_invalid_prediction_or_base_is_rejected(kw, message):
    with pytest.raises(ValueError, match=message):
        CSDIModel(K, **SMALL, **kw)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("base", ["interpolation", None])
def test_loss_on_a_batch_with_context_is_finite_and_trains_every_weight(prediction, base):
    model = _model(prediction=prediction, base=base, context=C)
    with torch.no_grad():  # the fresh output layer is zero, which blocks the gradient to the layers below
        model.net.output_proj.weight.normal_(0, 0.1)
    loss = model.loss(_batch(), torch.Generator().manual_seed(1))
    assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    for name, p in model.net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.net.input_proj.weight.grad.abs().sum() > 0
    assert model.net.output_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("base", ["interpolation", None])
def test_an_untrained_x0_model_scores_the_mean_square_of_the_hidden_targets(base):
    # fresh zero output layer -> predicted x0 is 0; "historical" hides what the previous window lacks
    model = _model(prediction="x0", base=base, context=C, mask_strategy="historical")
    batch = _batch()
    values, observed = batch["values"], batch["observed"]
    cond = observed * observed.roll(1, dims=0)
    target = values - interpolate_masked(values, cond) if base else values  # interpolated over the padded window
    hidden = (observed - cond)[..., C:-C]
    expect = ((target[..., C:-C] ** 2) * hidden).sum() / hidden.sum()
    assert torch.allclose(model.loss(batch, torch.Generator().manual_seed(0)), expect, rtol=1e-6, atol=0)


def _loss(model, batch):
    torch.manual_seed(5)  # the loss's own noise draw comes from the global generator
    return model.loss(batch, torch.Generator().manual_seed(2)).item()


def test_the_network_sees_the_centre_only_and_context_enters_through_the_interpolation():
    batch = _batch()
    changed = {k: v.clone() for k, v in batch.items()}
    changed["values"][..., :C] += 3.0  # other values in the left context rows
    changed["values"][..., -C:] -= 2.0
    for base in (None, "interpolation"):
        model = _model(base=base, context=C, mask_strategy="historical", prediction="x0")
        with torch.no_grad():
            model.net.output_proj.weight.normal_(0, 0.1)
        if base is None:  # CSDI: the context rows are cropped before the network and the loss
            assert _loss(model, batch) == _loss(model, changed)
        else:  # the interpolation bridges from the context into the window
            assert abs(_loss(model, batch) - _loss(model, changed)) > 1e-3


def _impute_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(2, K, L, generator=g)
    cond = (torch.rand(2, K, L, generator=g) > 0.4).float()
    cond[0, 0] = 0.0
    cond[0, 0, 4] = 1.0  # a feature with one observed entry
    return values, cond, torch.arange(L).float().expand(2, -1)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("base", ["interpolation", None])
@pytest.mark.parametrize("sampler,steps", [("ddpm", None), ("ddim", 3), ("dpm_solver", 3)])
def test_impute_shape_and_conditioning_entries_come_back_exactly(prediction, base, sampler, steps):
    model = _model(prediction=prediction, base=base).eval()
    with torch.no_grad():
        model.net.output_proj.weight.normal_(0, 0.1)  # a non-trivial network
    values, cond, pos = _impute_inputs()
    out = model.impute(values, cond, pos, n_samples=3, sampler=sampler, sampler_steps=steps,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 2, K, L) and torch.isfinite(out).all()
    known = cond.bool().expand_as(out)
    assert torch.equal(out[known], values.expand_as(out)[known])
    assert not torch.equal(out[0], out[1])  # samples differ where nothing is known


def test_an_untrained_residual_x0_model_starts_where_interpolation_ends():
    model = _model(prediction="x0", base="interpolation").eval()
    assert torch.count_nonzero(model.net.output_proj.weight) == 0  # fresh: zero output layer
    values, cond, pos = _impute_inputs()
    values = torch.where(cond.bool(), values, torch.full_like(values, 1e3))  # hidden values must not leak
    out = model.impute(values, cond, pos, n_samples=2, sampler="ddim", sampler_steps=1,
                       generator=torch.Generator().manual_seed(0))
    expect = interpolate_masked(values, cond)
    # x0 = 0 is predicted for the residual (exact here; allow float32 rounding of the eps round trip)
    assert torch.allclose(out, expect.expand_as(out), rtol=0, atol=1e-6)
    # by hand for the feature with one observed entry: held constant
    assert torch.allclose(out[:, 0, 0], values[0, 0, 4].expand(2, L), rtol=0, atol=1e-6)


def test_an_explicit_base_overrides_the_per_window_interpolation():
    model = _model(prediction="x0", base="interpolation").eval()
    values, cond, pos = _impute_inputs()
    base = torch.linspace(-2, 5, L).expand(2, K, L).clone()
    out = model.impute(values, cond, pos, n_samples=2, sampler="ddim", sampler_steps=1, base=base,
                       generator=torch.Generator().manual_seed(0))
    expect = torch.where(cond.bool(), values, base)
    assert torch.allclose(out, expect.expand_as(out), rtol=0, atol=1e-6)
    assert not torch.allclose(out, interpolate_masked(values, cond).expand_as(out), atol=1e-2)
