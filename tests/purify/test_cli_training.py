import json

import torch

from multidiff.cli import main
from multidiff.core.training import TrainConfig
from multidiff.datasets.digits import load_digits
from multidiff.tasks import purify


def test_train_save_load_roundtrip(tmp_path):
    d = load_digits()
    x, y = d.x_train[:64], d.y_train[:64]
    cfg = TrainConfig(epochs=1, max_steps=2, progress=False, device="cpu")
    model = purify.PurificationModel(d.data_range, cfg, cfg, batch_size=32, classifier_batch_size=32,
                                     denoiser_net=dict(base=8, time_dim=16), classifier_net=dict(width=8),
                                     meta={"dataset": "digits"}).fit(x, y, 10)
    model.save(tmp_path / "m")
    loaded = purify.PurificationModel.load(tmp_path / "m", device="cpu")
    (den, clf), (den2, clf2) = (model.denoiser, model.classifier), (loaded.denoiser, loaded.classifier)
    t = torch.rand(4)
    with torch.no_grad():
        assert torch.equal(den(x[:4], t), den2(x[:4], t)) and torch.equal(clf(x[:4]), clf2(x[:4]))
    assert loaded.meta == {"dataset": "digits", "data_range": [0.0, 1.0]} and loaded.data_range == (0.0, 1.0)
    assert clf2.input_size == (8, 8)


def test_cli_train_and_evaluate(tmp_path, capsys):
    ck, out = tmp_path / "ck", tmp_path / "rep"
    assert main(["purify", "train", "--dataset", "digits", "--out", str(ck), "--epochs", "1",
                 "--classifier-epochs", "1", "--width", "8", "--device", "cpu"]) == 0
    assert main(["purify", "evaluate", "--checkpoint", str(ck), "--out", str(out), "--eps", "0.1",
                 "--attacks", "fgsm,pgd-eot", "--attack-steps", "1", "--eot", "1", "--sampler-steps", "2",
                 "--n-examples", "4", "--device", "cpu"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert len(rep["labels"]) == 4 and set(rep["predictions"]) == {"clean", "fgsm", "pgd-eot"}
    assert (out / "report.md").exists() and (out / "grid.png").stat().st_size > 0
    assert main(["purify", "evaluate", "--checkpoint", str(ck), "--eps", "-1", "--device", "cpu"]) == 2
    assert "eps must be" in capsys.readouterr().err
    assert main(["purify", "evaluate", "--checkpoint", str(ck), "--eps", "8", "--device", "cpu"]) == 2
    assert "spans the whole data range [0, 1]" in capsys.readouterr().err
    conv = tmp_path / "conv"
    assert main(["purify", "evaluate", "--checkpoint", str(ck), "--out", str(conv), "--eps", "0.1", "--attacks", "pgd",
                 "--converge", "--converge-attack-steps", "1,2", "--converge-eot", "1,2", "--tol", "0.5",
                 "--sampler-steps", "2", "--n-examples", "4", "--device", "cpu"]) == 0
    rep = json.loads((conv / "report.json").read_text())
    runs = [(r["attack_steps"], r["eot"]) for r in rep["convergence"]["runs"]]
    assert runs[:2] == [(1, 1), (2, 1)] and rep["settings"]["attacks"]["pgd"]["attack_steps"] == runs[-1][0]
    assert (conv / "convergence.png").stat().st_size > 0
