import pandas as pd

from multidiff.cli import main


def test_cli_round_trips_a_csv(tmp_path, aqi_week):
    src = tmp_path / "week.csv"
    aqi_week.rename_axis("date").reset_index().to_csv(src, index=False)
    out = tmp_path / "filled.csv"
    code = main(["impute", str(src), "-o", str(out), "--time-column", "date", "--samples", "3",
                 "--quantiles", "0.05,0.95", "--window", "12", "--channels", "8", "--layers", "1",
                 "--epochs", "1", "--max-steps", "4", "--device", "cpu", "--sampler", "ddim", "--sampler-steps", "3", "--save-model", str(tmp_path / "m")])
    assert code == 0
    filled = pd.read_csv(out)
    assert list(filled.columns) == ["date"] + list(aqi_week.columns)
    assert len(filled) == len(aqi_week) and not filled.isna().any().any()
    lo, hi = pd.read_csv(tmp_path / "filled_q0.05.csv"), pd.read_csv(tmp_path / "filled_q0.95.csv")
    assert (lo[aqi_week.columns].to_numpy() <= hi[aqi_week.columns].to_numpy() + 1e-9).all()
    # the saved model is reused
    code = main(["impute", str(src), "-o", str(tmp_path / "again.csv"), "--time-column", "date",
                 "--model", str(tmp_path / "m"), "--samples", "2"])
    assert code == 0 and len(pd.read_csv(tmp_path / "again.csv")) == len(aqi_week)


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main(["impute", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_model_of_another_kind_names_its_loader(tmp_path, capsys):
    import torch

    import multidiff.tasks.tts  # noqa: F401  (registers the kind whose loader the message names)
    from multidiff.core.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "voice", {"model": {"w": torch.ones(1)}}, {}, kind="tts")
    src = tmp_path / "x.csv"
    pd.DataFrame({"a": [1.0, None, 3.0]}).to_csv(src, index=False)
    assert main(["impute", str(src), "--model", str(tmp_path / "voice"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'tts' checkpoint, but this loader reads 'imputer'" in err and "multidiff tts synthesize" in err


def test_cli_zero_shot_and_from_scratch(tmp_path, aqi_week, capsys):
    src = tmp_path / "week.csv"
    aqi_week.to_csv(src)
    assert main(["impute", str(src), "-o", str(tmp_path / "zs.csv"), "--max-time", "0", "--samples", "2",
                 "--sampler-steps", "2"]) == 0
    assert "self-check" in capsys.readouterr().out and not pd.read_csv(tmp_path / "zs.csv").isna().any().any()
    assert main(["impute", str(src), "-o", str(tmp_path / "csdi.csv"), "--pretrained", "none", "--window", "12",
                 "--channels", "8", "--layers", "1", "--max-steps", "2", "--samples", "2", "--sampler-steps", "2"]) == 0
    assert not pd.read_csv(tmp_path / "csdi.csv").isna().any().any()
