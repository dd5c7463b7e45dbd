import json

from multidiff.cli import main


def test_cli_train_sample_complete_evaluate(modelnet, tmp_path, capsys):
    ck = tmp_path / "comp"
    assert main(["points", "train", str(modelnet), str(ck), "--task", "complete", "--classes", "chair",
                 "--num-points", "64", "--channels", "8", "--layers", "1", "--max-steps", "2", "--batch-size", "2",
                 "--max-shapes", "2", "--views", "1", "--device", "cpu"]) == 0
    partial = modelnet / "chair" / "test" / "chair_0890.pcd"
    assert main(["points", "complete", str(ck), str(partial), "--out", str(tmp_path / "o"), "--steps", "3",
                 "--format", "npy", "--png", str(tmp_path / "o.png"), "--device", "cpu"]) == 0
    assert (tmp_path / "o" / "000.npy").is_file() and (tmp_path / "o.png").is_file()
    capsys.readouterr()
    assert main(["points", "evaluate", str(ck), str(modelnet), "--classes", "chair", "--max-shapes", "1",
                 "--steps", "2", "--emd-points", "16", "--device", "cpu"]) == 0
    assert "model" in json.loads(capsys.readouterr().out)
    # a bad class gives exit code 2 and a clear message
    assert main(["points", "evaluate", str(ck), str(modelnet), "--classes", "unicorn", "--device", "cpu"]) == 2
    assert "unknown class" in capsys.readouterr().err
