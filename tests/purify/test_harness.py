"""The robustness harness a reviewer can trust (issue 13): shared purification draws (an honest
worst case), the convergence of the attack, the torchattacks cross-check, radii checked against
the data range."""
import json
import sys

import numpy as np
import pytest
import torch

from multidiff.metrics.robustness import correct, mean_interval
from multidiff.tasks.purify import Convergence, Defended, Purifier, RobustnessReport, evaluate, save_convergence_plot
from multidiff.tasks.purify.attacks import check_eps, make_attack, pgd
from multidiff.tasks.purify.reference import reference_attack

from .helpers import GaussianEps, LinearClassifier, digits_gaussian_setup


@pytest.fixture(scope="module")
def setup():
    return digits_gaussian_setup()


def data(setup, n):
    d = setup[0]
    return d.x_test[:n], d.y_test[:n]


# bad input ------------------------------------------------------------------------------------

def test_eps_beyond_the_data_range_is_rejected_with_the_range(setup):
    _, model, clf = setup
    with pytest.raises(ValueError, match=r"eps=8 \(linf\) spans the whole data range \[0, 1\].*pass 0.0313725"):
        make_attack("pgd", 8, data_range=(0.0, 1.0))
    pur = Purifier(model, t_start=0.1, sampler_steps=2)
    with pytest.raises(ValueError, match=r"whole data range \[0, 1\]"):
        evaluate(clf, pur, data(setup, 4), attacks=["fgsm"], eps=8, device="cpu")
    with pytest.raises(ValueError, match=r"whole data range \[-1, 1\] \(width 2\)"):
        check_eps(2.0, "linf", (-1, 1))
    check_eps(1.9, "linf", (-1, 1))  # inside the range: fine
    with pytest.raises(ValueError, match=r"diagonal 8 of the data range \[0, 1\]\^64"):
        check_eps(8.0, "l2", (0, 1), n_features=64)
    check_eps(7.9, "l2", (0, 1), n_features=64)
    x, y = data(setup, 2)
    with pytest.raises(ValueError, match="spans the whole data range"):  # the attack itself checks too
        pgd(clf, x, y, make_attack("pgd", 1.5), data_range=(0.0, 1.0))


@pytest.mark.parametrize("kwargs,msg", [
    ({"eps": 0}, "eps must be a finite number > 0"), ({"eps": True}, "eps must be"), ({"eps": float("inf")}, "eps must be"),
    ({"norm": "l1"}, "norm must be 'linf' or 'l2'"), ({"attacks": ["cw"]}, "unknown attack.*torchattacks-apgd"),
    ({"attack_steps": 2.5}, "attack_steps must be a whole number"), ({"eot": 0}, "eot must be a whole number >= 1"),
    ({"step_size": -1.0}, "step_size must be"), ({"n_draws": 0}, "n_draws must be a whole number >= 1"),
    ({"converge": Convergence(), "step_size": 0.01}, "converge needs the automatic step size"),
])
def test_bad_evaluation_settings(setup, kwargs, msg):
    _, model, clf = setup
    args = {"attacks": ["pgd"], "eps": 0.1, "device": "cpu", **kwargs}
    with pytest.raises(ValueError, match=msg):
        evaluate(clf, Purifier(model, t_start=0.1, sampler_steps=2), data(setup, 4), **args)


@pytest.mark.parametrize("kwargs,msg", [
    ({"attack_steps": (20, 10)}, "increasing"), ({"attack_steps": ()}, "non-empty"), ({"eot": (0, 2)}, "whole number >= 1"),
    ({"tol": 1.5}, r"in \[0, 1\)"), ({"attack": "pgd"}, "must be an EOT attack"), ({"max_gradients": 0}, "max_gradients"),
])
def test_bad_convergence_settings(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Convergence(**kwargs)


# shared purification draws: the honest worst case ----------------------------------------------

def test_every_attack_sees_the_same_draw_so_the_worst_case_is_a_per_input_min(setup):
    _, model, clf = setup
    pur = Purifier(model, t_start=0.5, sampler_steps=3)  # much noise: predictions change from draw to draw
    x, y = data(setup, 120)
    # attacks too weak to move anything: under a shared draw every row repeats the clean defended
    # predictions, so the worst case equals the clean accuracy. Under independent draws per attack it
    # would count the defence's own randomness as attack success and fall below it.
    rep = evaluate(clf, pur, (x, y), attacks=["fgsm", "pgd", "pgd-eot"], eps=1e-7, attack_steps=1, eot=1, device="cpu")
    clean = rep.predictions["clean"]["defended"]
    assert all(rep.predictions[a]["defended"] == clean for a in ("fgsm", "pgd", "pgd-eot"))
    assert rep.accuracy("worst-case", "defended") == rep.accuracy("clean", "defended")
    other = evaluate(clf, pur, (x, y), attacks=["fgsm"], eps=1e-7, device="cpu", seed=1)
    assert other.predictions["clean"]["defended"] != clean  # another seed, another draw: the draw matters here
    # the draw belongs to the input, not to the batch it is purified in
    rebatched = evaluate(clf, pur, (x, y), attacks=["fgsm"], eps=1e-7, device="cpu", batch_size=7)
    assert rebatched.predictions["clean"]["defended"] == clean


def test_worst_case_counts_an_input_only_if_it_survives_every_run(setup):
    _, model, clf = setup
    rep = evaluate(clf, Purifier(model, t_start=0.1, sampler_steps=2), data(setup, 60), attacks=["fgsm", "pgd"],
                   eps=0.15, device="cpu", n_draws=2, converge=Convergence(attack_steps=(1, 2), eot=(1, 2), tol=0.0))
    for target in ("defended", "defended@1", "undefended"):
        runs = [r["predictions"][target] for r in rep.convergence["runs"]]
        every = [rep.predictions[a][target] for a in ("fgsm", "pgd", "pgd-eot")] + runs
        by_hand = np.logical_and.reduce([correct(p, rep.labels) for p in every])
        assert rep.correct("worst-case", target).tolist() == by_hand.tolist()
    assert rep.accuracy("worst-case", "defended") <= min(rep.accuracy(a, "defended") for a in ("fgsm", "pgd", "pgd-eot"))


def test_mean_over_draws_is_the_mean_of_each_draws_accuracy(setup):
    _, model, clf = setup
    pur = Purifier(model, t_start=0.3, sampler_steps=3)
    one = evaluate(clf, pur, data(setup, 80), attacks=["fgsm", "pgd"], eps=0.1, attack_steps=2, device="cpu")
    rep = evaluate(clf, pur, data(setup, 80), attacks=["fgsm", "pgd"], eps=0.1, attack_steps=2, device="cpu", n_draws=4)
    assert rep.n_draws == 4 and one.n_draws == 1
    assert rep.predictions["pgd"]["defended"] == one.predictions["pgd"]["defended"]  # draw 0 unchanged by more draws
    assert rep.predictions["clean"]["defended@1"] != rep.predictions["clean"]["defended"]
    rows = {(r["attack"], r["target"]): r for r in rep.rows()}
    for name in ("clean", "pgd", "worst-case"):
        accs = [float(rep.correct(name, "defended" if k == 0 else f"defended@{k}").mean()) for k in range(4)]
        m, lo, hi = mean_interval(accs)
        r = rows[(name, "defended")]
        assert r["draws_mean"] == pytest.approx(m) and r["draws_low"] == pytest.approx(max(0, lo))
        assert r["n_draws"] == 4 and "draws_mean" not in rows[(name, "undefended")]
    assert "mean of 4 draws" in rep.to_markdown()


# convergence --------------------------------------------------------------------------------

def test_convergence_raises_steps_then_eot_and_stops_by_the_rule(setup, tmp_path):
    _, model, clf = setup
    conv = Convergence(attack_steps=(1, 2, 4, 8), eot=(1, 2, 4), tol=0.01)
    rep = evaluate(clf, Purifier(model, t_start=0.1, sampler_steps=2), data(setup, 100), attacks=["fgsm", "pgd", "pgd-eot"],
                   eps=0.1, device="cpu", converge=conv, n_draws=2)
    runs = rep.convergence["runs"]
    acc = lambda r: float(correct(r["predictions"]["defended"], rep.labels).mean())
    by_steps = [r for r in runs if r["phase"] == "attack_steps"]
    assert [r["attack_steps"] for r in by_steps] == list(conv.attack_steps[:len(by_steps)])
    assert all(r["eot"] == 1 for r in by_steps)
    gaps = [abs(acc(b) - acc(a)) for a, b in zip(by_steps, by_steps[1:])]
    assert all(g > conv.tol for g in gaps[:-1])  # it went on only while the accuracy still moved
    converged = bool(gaps) and gaps[-1] <= conv.tol + 1e-12
    assert converged or len(by_steps) == len(conv.attack_steps)
    chosen = by_steps[-2] if converged else by_steps[-1]  # the smaller of the pair; the larger checked it
    assert rep.headline()["attack_steps_converged"] == converged
    by_eot = [chosen] + [r for r in runs if r["phase"] == "eot"]
    assert [r["eot"] for r in by_eot] == list(conv.eot[:len(by_eot)])
    assert all(r["attack_steps"] == chosen["attack_steps"] for r in by_eot)
    assert rep.convergence_curve("eot")[0]["attack_steps"] == chosen["attack_steps"]
    gaps = [abs(acc(b) - acc(a)) for a, b in zip(by_eot, by_eot[1:])]
    assert all(g > conv.tol for g in gaps[:-1])
    assert (gaps and gaps[-1] <= conv.tol + 1e-12) or len(by_eot) == len(conv.eot)
    # every attack of the table ran at the converged setting; pgd-eot's row is the last run raising EOT
    h = rep.headline()
    assert (h["attack_steps"], h["eot"]) == (by_eot[-1]["attack_steps"], by_eot[-1]["eot"])
    assert rep.predictions["pgd-eot"] == by_eot[-1]["predictions"] and h["accuracy"] == acc(by_eot[-1])
    assert rep.settings["attacks"]["pgd"]["attack_steps"] == h["attack_steps"]
    assert rep.settings["attacks"]["pgd"]["step_size"] == pytest.approx(2.5 * 0.1 / h["attack_steps"])
    assert rep.settings["attacks"]["pgd-eot"]["eot"] == h["eot"]
    # the report keeps the curve, recomputes it from the predictions, and draws it
    js, md = rep.save(tmp_path)
    back = RobustnessReport.load(js)
    assert back.headline() == h and back.convergence_curve("eot") == rep.convergence_curve("eot")
    assert json.loads(js.read_text())["headline"]["accuracy"] == h["accuracy"]
    assert "**Headline:** pgd-eot with" in md.read_text() and "| attack steps | 1 | 1 |" in md.read_text()
    png = save_convergence_plot(rep, tmp_path / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_loose_tolerance_stops_at_the_second_setting_and_the_budget_caps_the_runs(setup):
    _, model, clf = setup
    pur = Purifier(model, t_start=0.1, sampler_steps=2)
    loose = evaluate(clf, pur, data(setup, 30), attacks=["pgd"], eps=0.1, device="cpu",
                     converge=Convergence(attack_steps=(1, 2, 4), eot=(1, 2, 4), tol=0.99))
    # 1 -> 2 steps moves by <= 0.99: 1 step is the converged count (2 checked it); EOT is raised at 1 step
    assert [(r["attack_steps"], r["eot"]) for r in loose.convergence["runs"]] == [(1, 1), (2, 1), (1, 2)]
    assert loose.headline()["attack_steps_converged"] and loose.headline()["eot_converged"]
    assert (loose.headline()["attack_steps"], loose.headline()["eot"]) == (1, 2)
    assert "pgd-eot" in loose.predictions  # the converged attack joins the table
    capped = evaluate(clf, pur, data(setup, 30), attacks=["pgd"], eps=0.1, device="cpu",
                      converge=Convergence(attack_steps=(1, 2, 4), eot=(1, 2, 4), tol=0.0, max_gradients=5))
    # 1 x 1 + 2 x 1 = 3 gradients; 4 x 1 or 2 x 2 more would exceed 5 (whichever steps were chosen,
    # unless 1 step was: then 1 x 2 fits and 1 x 4 does not)
    setting = [(r["attack_steps"], r["eot"]) for r in capped.convergence["runs"]]
    assert setting in ([(1, 1), (2, 1)], [(1, 1), (2, 1), (1, 2)])
    assert sum(s * e for s, e in setting) <= 5
    if len(setting) == 2:
        assert capped.headline()["eot_converged"] is False and "EOT NO" in capped.to_markdown()
    single = evaluate(clf, pur, data(setup, 10), attacks=["pgd"], eps=0.1, device="cpu",
                      converge=Convergence(attack_steps=(1, 2), eot=(3,), tol=0.99))
    assert single.headline()["eot_converged"] is None and "EOT untested" in single.to_markdown()


# the torchattacks cross-check -------------------------------------------------------------

def test_multidiff_pgd_eot_is_at_least_as_strong_as_torchattacks(setup):
    pytest.importorskip("torchattacks")
    _, model, clf = setup
    pur = Purifier(model, t_start=0.1, sampler_steps=4)
    rep = evaluate(clf, pur, data(setup, 300), attacks=["pgd-eot", "torchattacks-eotpgd", "torchattacks-apgd"],
                   eps=0.1, attack_steps=10, eot=4, batch_size=150, device="cpu")
    ours = rep.accuracy("pgd-eot", "defended")
    clean = rep.accuracy("clean", "defended")
    assert 0.2 < ours < clean - 0.15  # a meaningful setting: the attack works, but not on everything
    for ref in ("torchattacks-eotpgd", "torchattacks-apgd"):
        assert ours <= rep.accuracy(ref, "defended") + 0.02, ref
    s = rep.settings["attacks"]["torchattacks-eotpgd"]
    assert s["library"].startswith("torchattacks ") and s["attack_steps"] == 10 and s["eot"] == 4


def test_defended_is_a_plain_classifier_for_an_attack_library(setup):
    torchattacks = pytest.importorskip("torchattacks")
    _, model, clf = setup
    clf.train()
    defended = Defended(clf, Purifier(model, t_start=0.1, sampler_steps=2))
    assert not defended.training and not clf.training and defended.data_range == (0.0, 1.0)
    x, y = data(setup, 8)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(defended(xg), y), xg)
    assert grad.abs().sum() > 0  # gradients flow through every purification step
    adv = torchattacks.EOTPGD(defended, eps=0.1, alpha=0.05, steps=2, eot_iter=2)(x, y)
    assert adv.shape == x.shape and (adv - x).abs().max() <= 0.1 + 1e-6 and not torch.equal(adv, x)


@pytest.mark.parametrize("name,norm,eps", [("torchattacks-eotpgd", "linf", 0.2), ("torchattacks-apgd", "linf", 0.2),
                                           ("torchattacks-apgd", "l2", 1.0)])
def test_reference_attacks_on_1d_signals_in_another_range(name, norm, eps):
    pytest.importorskip("torchattacks")
    g = torch.Generator().manual_seed(0)
    x = (2 * torch.rand(6, 3, 16, generator=g) - 1) * 0.9
    y = torch.randint(0, 3, (6,), generator=g)
    pur = Purifier(GaussianEps(torch.zeros(1, 3, 16), torch.ones(1, 3, 16)), t_start=0.1, sampler_steps=2,
                   data_range=(-1.0, 1.0))
    defended = Defended(LinearClassifier(48), pur)
    before, rng = x.clone(), torch.get_rng_state()
    adv = reference_attack(name, defended, x, y, eps, norm, attack_steps=3, eot=2, seed=1)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's global RNG is left alone (APGD reseeds it)
    d = (adv - x).flatten(1)
    size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
    assert (size <= eps + 1e-6).all() and adv.min() >= -1 and adv.max() <= 1 and d.abs().sum() > 0
    assert torch.equal(x, before)
    again = reference_attack(name, defended, x, y, eps, norm, attack_steps=3, eot=2, seed=1)
    assert torch.equal(adv, again)  # seeded: reproducible


def test_reference_attack_errors(monkeypatch):
    pur = Purifier(GaussianEps(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)), t_start=0.1, sampler_steps=2)
    defended, x, y = Defended(LinearClassifier(16), pur), torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="EOTPGD is Linf only"):
        reference_attack("torchattacks-eotpgd", defended, x, y, 0.5, "l2")
    with pytest.raises(ValueError, match="unknown reference attack"):
        reference_attack("torchattacks-cw", defended, x, y, 0.1)
    with pytest.raises(ValueError, match="spans the whole data range"):
        reference_attack("torchattacks-apgd", defended, x, y, 8.0)
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # as if it were not installed
    with pytest.raises(ImportError, match="pip install --no-deps torchattacks"):
        reference_attack("torchattacks-apgd", defended, x, y, 0.1)
    clf = LinearClassifier(16)
    with pytest.raises(ImportError, match="--no-deps"):  # evaluate says so before any attack runs
        evaluate(clf, pur, (x, y), attacks=["torchattacks-apgd"], eps=0.1, device="cpu")
