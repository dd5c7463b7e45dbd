"""Tiny models shared by the purification tests."""
import torch
from torch import nn

from multidiff.core.schedules import vp_alpha_bar


class OracleEps(nn.Module):
    """The exact eps-model when all data is one point ``x0`` (in the model's [-1, 1] space)."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.register_buffer("x0", x0)
        self.dummy = nn.Parameter(torch.zeros((), dtype=x0.dtype))

    def forward(self, x, t):
        ab = vp_alpha_bar(t.double()).to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return (x - ab.sqrt() * self.x0) / (1 - ab).sqrt() + 0 * self.dummy


class LinearClassifier(nn.Module):
    def __init__(self, n_in: int, n_classes: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(n_in, n_classes)

    def forward(self, x):
        return self.lin(x.flatten(1))


class GaussianEps(nn.Module):
    """The exact eps-model when the data (in the model's [-1, 1] space) is N(mean, diag(var)):
    eps(x_t, t) = sqrt(1 - ab) (x_t - sqrt(ab) mean) / (ab var + 1 - ab). A purifier built on it
    shrinks towards the mean and adds noise: cheap, differentiable and stochastic, like DiffPure."""

    def __init__(self, mean: torch.Tensor, var: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("var", var)
        self.dummy = nn.Parameter(torch.zeros((), dtype=mean.dtype))

    def forward(self, x, t):
        ab = vp_alpha_bar(t.double()).to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return (1 - ab).sqrt() * (x - ab.sqrt() * self.mean) / (ab * self.var + 1 - ab) + 0 * self.dummy


def digits_gaussian_setup():
    """Real digits, a logistic-regression classifier (LBFGS, well under a second) and the Gaussian
    eps-model of the training pixels: a defence whose robust accuracy is far from 0 and from clean."""
    from multidiff.datasets.digits import load_digits

    d = load_digits()
    z = d.x_train * 2 - 1
    model = GaussianEps(z.mean(0, keepdim=True), z.var(0, keepdim=True) + 1e-2)
    g = torch.Generator().manual_seed(0)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():
        for p in clf.parameters():
            p.copy_(0.01 * torch.randn(p.shape, generator=g))
    opt = torch.optim.LBFGS(clf.parameters(), max_iter=100)

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(clf(d.x_train), d.y_train) + 1e-3 * clf[1].weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return d, model, clf.eval().requires_grad_(False)
