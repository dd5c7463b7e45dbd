import json

import pytest
import torch
from torch import nn

from multidiff.datasets.digits import load_digits
from multidiff.nets.classifiers import ConvClassifier
from multidiff.nets.unet_small import SmallUNet
from multidiff.tasks.purify import Purifier, RobustnessReport, evaluate, save_grid


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    d = load_digits()
    clf = ConvClassifier(1, 10, width=8).eval()
    pur = Purifier(SmallUNet(1, base=8, time_dim=16).eval(), t_start=0.1, sampler_steps=2)
    return clf, pur, (d.x_test[:6], d.y_test[:6])


@pytest.fixture(scope="module")
def report(setup):
    clf, pur, data = setup
    return evaluate(clf, pur, data, attacks=["fgsm", "pgd", "bpda-eot", "pgd-eot", "transfer"], eps=0.1,
                    attack_steps=1, eot=2, n_votes=2, batch_size=4, device="cpu", n_examples_kept=3)


def test_report_numbers_come_from_predictions(report, setup):
    clf, _, (x, y) = setup
    rows = {(r["attack"], r["target"]): r for r in report.rows()}
    assert set(a for a, _ in rows) == {"clean", "fgsm", "pgd", "bpda-eot", "pgd-eot", "transfer", "worst-case"}
    with torch.no_grad():
        assert report.predictions["clean"]["undefended"] == clf(x).argmax(-1).tolist()
    for (name, target), r in rows.items():
        if name == "worst-case":
            continue
        hand = sum(p == t for p, t in zip(report.predictions[name][target], y.tolist())) / len(y)
        assert r["accuracy"] == hand and r["ci_low"] <= hand <= r["ci_high"]
    # the undefended classifier is deterministic: every PGD-type attack against it is the same PGD
    assert report.predictions["pgd"]["undefended"] == report.predictions["pgd-eot"]["undefended"]
    worst = rows[("worst-case", "defended")]["accuracy"]
    assert worst <= min(r["accuracy"] for (n, t), r in rows.items() if t == "defended" and n not in ("clean", "worst-case"))
    s = report.settings
    assert s["attacks"]["pgd-eot"]["eot"] == 2 and s["attacks"]["fgsm"]["attack_steps"] == 1
    assert s["attacks"]["pgd"]["step_size"] == pytest.approx(2.5 * 0.1 / 1) and s["purifier"]["t_start"] == 0.1
    assert report.timings["purify_and_classify_per_input"] > 0


def test_report_files_roundtrip_and_recompute(report, tmp_path):
    js, md = report.save(tmp_path)
    raw = json.loads(js.read_text())
    raw["table"][0]["accuracy"] = 0.123  # a stale table is never trusted
    raw["predictions"]["clean"]["undefended"] = list(raw["labels"])
    back = RobustnessReport.from_dict(raw)
    assert back.accuracy("clean", "undefended") == 1.0
    assert back.rows()[1:] == report.rows()[1:]
    assert "| pgd-eot |" in md.read_text() and "Wilson" in md.read_text()
    assert not list(tmp_path.glob(".*tmp"))
    png = save_grid(report, tmp_path / "grid.png", "pgd-eot", [str(i) for i in range(10)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_rejects_ragged_predictions():
    with pytest.raises(ValueError, match="entries for 3 labels"):
        RobustnessReport([0, 1, 2], {"clean": {"undefended": [0, 1]}})


def test_clear_errors(setup):
    clf, pur, (x, y) = setup
    with pytest.raises(ValueError, match="eps must be"):
        evaluate(clf, pur, (x, y), attacks=["pgd"], eps=0.0, device="cpu")
    with pytest.raises(ValueError, match="outputs 3 classes"):
        evaluate(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), pur, (x, y + 5), attacks=["fgsm"], device="cpu")
    with pytest.raises(ValueError, match=r"logits of shape \(batch, n_classes\)"):
        evaluate(lambda_module(), pur, (x, y), attacks=["fgsm"], device="cpu")
    with pytest.raises(ValueError, match="outside the declared data_range"):
        evaluate(clf, pur, (x * 16, y), attacks=["fgsm"], device="cpu")
    with pytest.raises(ValueError, match="y of shape"):
        evaluate(clf, pur, (x, y[:2]), attacks=["fgsm"], device="cpu")


class lambda_module(nn.Module):
    def forward(self, x):
        return x.flatten(1).sum(1)
