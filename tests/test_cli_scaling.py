"""``--accelerator``, ``--devices``, ``--num-nodes`` and ``--strategy`` on every training command,
from one helper (cli/common.py), reaching the training loop (or TimeGrad's Lightning Trainer).
Nothing is launched: Fabric is replaced by a stand-in that records the settings and stops."""
import numpy as np
import pandas as pd
import pytest

from multidiff.cli import build_parser, main

OPTIONS = ["--accelerator", "cpu", "--devices", "2", "--num-nodes", "3", "--strategy", "ddp"]
GIVEN = {"accelerator": "cpu", "devices": 2, "num_nodes": 3, "strategy": "ddp"}
TRAINING = [["impute", "x.csv"], ["forecast", "x.csv"], ["tts", "train", "--out", "o"], ["points", "train", "d", "o"],
            ["purify", "train"]]


class Reached(Exception):
    pass


@pytest.fixture
def fabric(monkeypatch):
    """The TrainConfig each fit would have launched Fabric with."""
    from multidiff.core import training

    seen = []

    def stand_in(config):
        seen.append(config)
        raise Reached
    monkeypatch.setattr(training, "_Fabric", stand_in)
    return seen


@pytest.mark.parametrize("argv", TRAINING, ids=lambda a: " ".join(a[:2]))
def test_training_commands_take_the_options_with_one_device_defaults(argv):
    from multidiff.cli.common import scale_options, scaled

    defaults = build_parser().parse_args(argv)
    assert (defaults.accelerator, defaults.devices, defaults.num_nodes, defaults.strategy) == ("auto", 1, 1, "auto")
    assert scale_options(defaults) == {} and scaled(object(), defaults) is None  # nothing new on one device
    args = build_parser().parse_args(argv + OPTIONS)
    assert scale_options(args) == GIVEN
    assert build_parser().parse_args(argv + ["--devices", "auto"]).devices == "auto"


def test_bad_values_are_refused_by_the_parser(capsys):
    for bad in (["--devices", "two"], ["--strategy", "ddp_spawn"], ["--accelerator", "tpu"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["impute", "x.csv", *bad])
    assert "expected a number of devices, -1 or auto, got 'two'" in capsys.readouterr().err


def _csv(tmp_path, rows=40):
    rng = np.random.default_rng(0)
    values = np.sin(np.arange(rows)[:, None] / 4 + np.arange(2)) + rng.normal(0, 0.1, (rows, 2))
    values[rng.random(values.shape) < 0.1] = np.nan
    df = pd.DataFrame(values, columns=["a", "b"])
    df.insert(0, "date", pd.date_range("2024-01-01", periods=rows, freq="h").astype(str))
    df.to_csv(tmp_path / "x.csv", index=False)
    return str(tmp_path / "x.csv")


def test_impute_passes_them_to_the_loop(tmp_path, fabric):
    with pytest.raises(Reached):
        main(["impute", _csv(tmp_path), "--time-column", "date", "--window", "8", "--channels", "8", "--layers", "1",
              *OPTIONS])
    assert len(fabric) == 1 and {k: getattr(fabric[0], k) for k in GIVEN} == GIVEN
    assert fabric[0].max_time == 120.0  # the command's other settings are still there


def test_forecast_passes_them_to_the_loop(tmp_path, fabric):
    """CSDI forecasting trains through the core loop (the time here is GluonTS' import)."""
    with pytest.raises(Reached):
        main(["forecast", _csv(tmp_path), "--horizon", "4", "--context-length", "8", *OPTIONS])
    assert len(fabric) == 1 and {k: getattr(fabric[0], k) for k in GIVEN} == GIVEN


def test_timegrad_gets_them_as_lightning_trainer_options():
    """TimeGrad takes them, as CSDI does, in its train_config, which Lightning's Trainer then runs."""
    from multidiff.cli.forecast import _estimator

    args = build_parser().parse_args(["forecast", "x.csv", "--forecaster", "timegrad", *OPTIONS])
    assert args.max_time == 40.0  # the command's default budget, passed on as Lightning's max_time
    est = _estimator(args, "h", 4, 2)
    assert {k: getattr(est.train_config, k) for k in GIVEN} == GIVEN
    assert {k: est.trainer_kwargs[k] for k in (*GIVEN, "max_time")} == {**GIVEN, "max_time": {"seconds": 40.0}}
    args = build_parser().parse_args(["forecast", "x.csv", "--forecaster", "timegrad", "--devices", "2"])
    kwargs = _estimator(args, "h", 4, 2).trainer_kwargs
    assert kwargs["devices"] == 2 and "num_nodes" not in kwargs and "strategy" not in kwargs
    plain = _estimator(build_parser().parse_args(["forecast", "x.csv", "--forecaster", "timegrad"]), "h", 4, 2)
    assert not {"devices", "num_nodes", "strategy"} & set(plain.trainer_kwargs)


def test_purify_tts_and_points_pass_them_as_train_config(tmp_path, fabric, monkeypatch):
    from multidiff.tasks import points, tts

    with pytest.raises(Reached):
        main(["purify", "train", "--dataset", "digits", "--out", str(tmp_path / "p"), "--device", "cpu", *OPTIONS])
    assert {k: getattr(fabric[-1], k) for k in GIVEN} == GIVEN and fabric[-1].epochs == 30  # the classifier's first

    given = []

    def train(*args, train_config=None, **kwargs):
        given.append(train_config)
        raise Reached
    monkeypatch.setattr(tts, "train", train)
    with pytest.raises(Reached):
        main(["tts", "train", "--out", str(tmp_path / "v"), *OPTIONS])

    def fit(self, *args, **kwargs):
        given.append(self.train_config)
        raise Reached
    monkeypatch.setattr(points.Generator, "fit", fit)
    with pytest.raises(Reached):
        main(["points", "train", str(tmp_path), str(tmp_path / "g"), *OPTIONS])
    assert given[0] == tts.DEFAULT_TRAIN_CONFIG.__class__(**{**vars(tts.DEFAULT_TRAIN_CONFIG), **GIVEN})
    assert given[1] == points.DEFAULT_TRAIN_CONFIG.__class__(**{**vars(points.DEFAULT_TRAIN_CONFIG), **GIVEN})
