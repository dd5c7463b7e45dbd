import math

import pytest
import torch

from multidiff.core.denoiser import as_eps_model
from multidiff.core.losses import denoising_mse, eps_mse

# two rows at signal levels 0.64 and 0.36: sqrt(ab) = 0.8 / 0.6, sqrt(1 - ab) = 0.6 / 0.8
AB = torch.tensor([0.64, 0.36], dtype=torch.float64)
ab_of = lambda t: AB[t]
T = torch.tensor([0, 1])
X0 = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
EPS = torch.tensor([[0.5, -1.0], [2.0, 3.0]], dtype=torch.float64)
MASK = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
S = torch.tensor([[0.8], [0.6]], dtype=torch.float64)  # sqrt(ab) per row
N = torch.tensor([[0.6], [0.8]], dtype=torch.float64)  # sqrt(1 - ab) per row
# v = sqrt(ab) eps - sqrt(1 - ab) x0, by hand: row 0 0.8*eps - 0.6*x0, row 1 0.6*eps - 0.8*x0
V = torch.tensor([[-0.2, -2.0], [2.0, 1.4]], dtype=torch.float64)


def _oracle(prediction):
    """A net that reads x_t = sqrt(ab) x0 + sqrt(1-ab) eps and returns the exact target."""
    def net(x_t, t):
        assert torch.equal(t, T)
        assert torch.allclose(x_t, S * X0 + N * EPS, rtol=0, atol=1e-15)  # noised as the forward process
        eps = (x_t - S * X0) / N  # the noise that must be in x_t if the loss noised x0 correctly
        return {"eps": eps, "x0": (x_t - N * eps) / S, "v": S * eps - N * X0}[prediction]
    return net


def test_hand_computed_v_target():
    assert torch.allclose(S * EPS - N * X0, V, atol=1e-15)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_a_net_predicting_the_exact_target_has_zero_loss(prediction):
    for mask in (None, MASK):
        loss = denoising_mse(_oracle(prediction), X0, T, ab_of, prediction, mask=mask, eps=EPS)
        assert loss.item() < 1e-28


@pytest.mark.parametrize("prediction,full,masked", [
    ("eps", (0.25 + 1 + 4 + 9) / 4, (0.25 + 9) / 2),
    ("x0", (1 + 4 + 1 + 0.25) / 4, (1 + 0.25) / 2),
    ("v", (0.04 + 4 + 4 + 1.96) / 4, (0.04 + 1.96) / 2),
])
def test_a_zero_net_scores_the_mean_square_of_its_target(prediction, full, masked):
    zero = lambda x_t, t: torch.zeros_like(x_t)
    assert math.isclose(denoising_mse(zero, X0, T, ab_of, prediction, eps=EPS).item(), full, rel_tol=1e-12)
    assert math.isclose(denoising_mse(zero, X0, T, ab_of, prediction, mask=MASK, eps=EPS).item(), masked,
                        rel_tol=1e-12)


def test_eps_prediction_is_the_existing_eps_mse():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 2, 5, generator=g), torch.randn(3, 2, 5, generator=g)
    mask = (torch.rand(3, 2, 5, generator=g) > 0.5).float()
    ab = torch.tensor([0.9, 0.5, 0.1])
    t = torch.tensor([0, 1, 2])
    net = lambda x_t, t: 0.3 * x_t + t[:, None, None].float()
    for m in (None, mask):
        assert torch.equal(denoising_mse(net, x0, t, lambda t: ab[t], "eps", mask=m, eps=eps),
                           eps_mse(net, x0, t, lambda t: ab[t], mask=m, eps=eps))


def test_unknown_prediction_is_rejected():
    with pytest.raises(ValueError, match="prediction"):
        denoising_mse(_oracle("eps"), X0, T, ab_of, "score", eps=EPS)


@pytest.mark.parametrize("prediction", ["x0", "v"])
def test_as_eps_model_turns_the_exact_loss_target_back_into_the_noise(prediction):
    x_t = S * X0 + N * EPS
    model = as_eps_model(_oracle(prediction), prediction, ab_of)
    assert torch.allclose(model(x_t, T), EPS, rtol=0, atol=1e-14)
