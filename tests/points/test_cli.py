import json
import numpy as np

from multidiff.cli import main


def test_cli_train_sample_complete_evaluate(modelnet, tmp_path, capsys):
    ck = tmp_path / "comp"
    assert main(["points", "train", str(modelnet), str(ck), "--task", "complete", "--classes", "chair",
                 "--num-points", "64", "--channels", "8", "--layers", "1", "--max-steps", "2", "--batch-size", "2",
                 "--max-shapes", "2", "--views", "1", "--device", "cpu"]) == 0
    partial = modelnet / "chair" / "test" / "chair_0890.pcd"
    assert main(["points", "complete", str(ck), str(partial), "--out", str(tmp_path / "o"), "--sampler-steps", "3",
                 "--format", "npy", "--png", str(tmp_path / "o.png"), "--device", "cpu"]) == 0
    assert (tmp_path / "o" / "000.npy").is_file() and (tmp_path / "o.png").is_file()
    capsys.readouterr()
    assert main(["points", "evaluate", str(ck), str(modelnet), "--classes", "chair", "--max-shapes", "1",
                 "--sampler-steps", "2", "--emd-points", "16", "--device", "cpu"]) == 0
    assert "model" in json.loads(capsys.readouterr().out)
    # a bad class gives exit code 2 and a clear message
    assert main(["points", "evaluate", str(ck), str(modelnet), "--classes", "unicorn", "--device", "cpu"]) == 2
    assert "unknown class" in capsys.readouterr().err


def test_cli_on_a_checkpoint_of_the_other_kind_names_the_command_that_fits(tmp_path, capsys):
    """issue 12: `points sample` on a Completer checkpoint ended in a raw AttributeError."""
    import torch

    from multidiff.tasks import points

    clouds = torch.randn(4, 16, 3, generator=torch.Generator().manual_seed(0))
    small = dict(num_points=16, channels=8, layers=1, k=4, num_train_steps=20, max_steps=1, batch_size=4, progress=False,
                 device="cpu")
    points.Completer(views=1, **small).fit(clouds).save(tmp_path / "comp")
    points.Generator(**small).fit(clouds).save(tmp_path / "gen")
    assert main(["points", "sample", str(tmp_path / "comp"), str(tmp_path / "o"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'points.completer' checkpoint" in err and "multidiff points complete" in err
    np.save(tmp_path / "p.npy", clouds[0].numpy())  # a real partial cloud, so only the checkpoint is wrong
    assert main(["points", "complete", str(tmp_path / "gen"), str(tmp_path / "p.npy"), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'points.generator' checkpoint" in err and "multidiff points sample" in err
