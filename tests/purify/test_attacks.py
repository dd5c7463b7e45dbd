import pytest
import torch
from torch import nn

from multidiff.nets.unet_small import SmallUNet
from multidiff.tasks.purify import Purifier
from multidiff.tasks.purify.attacks import check_perturbation, input_gradient, make_attack, run_attack

from .helpers import LinearClassifier


def data(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def loss(clf, x, y):
    with torch.no_grad():
        return nn.functional.cross_entropy(clf(x), y).item()


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_attacks_raise_loss_and_stay_in_ball(name, norm):
    clf = LinearClassifier(16)
    x, y = data()
    before = x.clone()
    for eps in (0.05, 0.3):
        cfg = make_attack(name, eps, norm, attack_steps=5)
        adv = run_attack(cfg, clf, x, y, generator=torch.Generator().manual_seed(0))
        d = (adv - x).flatten(1)
        size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
        assert (size <= eps + 1e-6).all() and adv.min() >= 0 and adv.max() <= 1
        assert loss(clf, adv, y) > loss(clf, x, y)
    assert torch.equal(x, before)


def test_pgd_beats_fgsm_and_random_start_is_used():
    clf = LinearClassifier(16)
    x, y = data(12)
    f = run_attack(make_attack("fgsm", 0.1), clf, x, y)
    p = run_attack(make_attack("pgd", 0.1, attack_steps=10), clf, x, y, generator=torch.Generator().manual_seed(0))
    assert loss(clf, p, y) >= loss(clf, f, y) - 1e-4  # FGSM is near-optimal for a linear model
    assert make_attack("fgsm", 0.1, attack_steps=50).attack_steps == 1 and not make_attack("fgsm", 0.1).random_start


@pytest.fixture(scope="module")
def tiny_purifier():
    torch.manual_seed(0)
    net = SmallUNet(1, base=4, mults=(1, 2), dims=2, time_dim=8).double().eval()
    return Purifier(net, t_start=0.05, sampler_steps=2, sampler="sde")


@pytest.mark.parametrize("name", ["bpda-eot", "pgd-eot", "transfer"])
def test_purifier_attacks_stay_in_ball(tiny_purifier, name):
    clf = LinearClassifier(16).double()
    x, y = data(4)
    x = x.double()
    adv = run_attack(make_attack(name, 0.1, attack_steps=2, eot=2), clf, x, y, tiny_purifier, generator=torch.Generator().manual_seed(1))
    check_perturbation(x, adv, 0.1, "linf", (0, 1))
    assert not torch.equal(adv, x)


def test_full_gradient_matches_finite_differences(tiny_purifier):
    clf = LinearClassifier(16).double()
    x, y = data(2, seed=3)
    x = 0.3 + 0.4 * x.double()  # away from the range bounds, where clamping would cut the gradient
    seeded = lambda: torch.Generator().manual_seed(7)
    grad = input_gradient(clf, x, y, tiny_purifier, "full", 1, seeded())

    def f(z):
        with torch.no_grad():
            return nn.functional.cross_entropy(clf(tiny_purifier(z, generator=seeded())), y, reduction="sum").item()

    h = 1e-6
    for idx in [(0, 0, 0, 0), (0, 0, 2, 1), (1, 0, 3, 3), (1, 0, 1, 2)]:
        e = torch.zeros_like(x)
        e[idx] = h
        fd = (f(x + e) - f(x - e)) / (2 * h)
        assert abs(grad[idx].item() - fd) < 1e-6 * max(1.0, abs(fd))
    bpda = input_gradient(clf, x, y, tiny_purifier, "bpda", 1, seeded())
    assert not torch.allclose(bpda, grad)  # BPDA is an approximation, the full gradient is exact


def test_checkpointing_gives_the_same_gradient(tiny_purifier):
    clf = LinearClassifier(16).double()
    x, y = data(2, seed=4)
    x = x.double()
    g1 = input_gradient(clf, x, y, tiny_purifier, "full", 2, torch.Generator().manual_seed(0))
    plain = Purifier(tiny_purifier.model, t_start=0.05, sampler_steps=2, gradient_checkpointing=False)
    g2 = input_gradient(clf, x, y, plain, "full", 2, torch.Generator().manual_seed(0))
    assert torch.allclose(g1, g2, atol=1e-12)


@pytest.mark.parametrize("kwargs,msg", [
    ({"eps": 0.0}, "eps must be"), ({"eps": -0.1}, "eps must be"), ({"eps": float("nan")}, "eps must be"),
    ({"name": "cw"}, "unknown attack"), ({"norm": "l1"}, "norm must be"), ({"attack_steps": 0}, "attack_steps must be a whole number >= 1"),
    ({"eot": 1.5}, "eot must be a whole number"), ({"step_size": float("nan")}, "step_size must be"),
    ({"eps": 8, "data_range": (0.0, 1.0)}, r"spans the whole data range \[0, 1\]"),
])
def test_bad_attack_settings(kwargs, msg):
    args = {"name": "pgd", "eps": 0.1, **kwargs}
    with pytest.raises(ValueError, match=msg):
        make_attack(**args)


def test_check_perturbation_flags_escapes():
    x = torch.full((2, 4), 0.5)
    with pytest.raises(RuntimeError, match="ball"):
        check_perturbation(x, x + 0.2, 0.1, "linf", (0, 1))
    with pytest.raises(RuntimeError, match="data range"):
        check_perturbation(x, x + 0.6, 2.0, "l2", (0, 1))


def test_full_gradient_pgd_eot_raises_the_defended_loss(tiny_purifier):
    clf = LinearClassifier(16).double()
    x, y = data(8, seed=5)
    x = x.double()
    adv = run_attack(make_attack("pgd-eot", 0.2, attack_steps=3, eot=4), clf, x, y, tiny_purifier,
                     generator=torch.Generator().manual_seed(2))

    def expected_loss(z):  # over fresh purification noise, the same draws for both inputs
        with torch.no_grad():
            zs = z.repeat(16, 1, 1, 1)
            return nn.functional.cross_entropy(clf(tiny_purifier(zs, generator=torch.Generator().manual_seed(9))),
                                               y.repeat(16)).item()

    assert expected_loss(adv) > expected_loss(x) + 0.05
