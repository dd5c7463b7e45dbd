"""LatentCompleter (issue 12): completion linear in points. The training draws come from the right
rows, the completion keeps the scan and follows its units and axes, persistence and the command line
round-trip, errors are clear, the protocol scores at the data's distinct points, and it learns."""
import numpy as np
import pytest
import torch

from multidiff.cli import main
from multidiff.core.checkpoint import CheckpointKindError
from multidiff.metrics import points as metrics
from multidiff.metrics.points import chamfer
from multidiff.tasks import points
from multidiff.tasks.points import latent_completion
from multidiff.tasks.points.latent_completion import ScanCompletionDiffusion, _rows

TINY = dict(num_points=64, latent_dim=8, num_train_steps=20, train_points=16, encoder_points=16, encoder_widths=(16,),
            decoder_widths=(16,), batch_size=4, progress=False, device="cpu", views=1)


def _spheres(n, m=64, seed=0):
    """Spheres of radius 1..2 about the origin: what a scan misses is the rest of its sphere."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, m, 3, generator=g)
    return x / x.norm(dim=-1, keepdim=True) * (1 + torch.rand(n, 1, 1, generator=g))


@pytest.fixture(scope="module")
def completer():
    return points.LatentCompleter(max_steps=2, **TINY).fit(_spheres(4))


def test_training_draws_the_scan_and_the_missing_points_from_their_own_rows(monkeypatch):
    n = 10
    x = torch.arange(n, dtype=torch.float32).repeat(3, 1).unsqueeze(-1).expand(-1, -1, 3)  # row i holds i
    known = torch.tensor([2, 5, 9])
    scan = _rows(x, torch.zeros(3, dtype=torch.long), known, 400)[..., 0]
    missing = _rows(x, known, torch.full((3,), n), 400)[..., 0]
    for b, m in enumerate(known.tolist()):
        assert set(scan[b].long().tolist()) == set(range(m))  # every scan row, no other
        assert set(missing[b].long().tolist()) == set(range(m, n))
    # the loss codes the scan rows and denoises the others
    seen = {}
    model = ScanCompletionDiffusion(latent_dim=4, num_train_steps=5, encoder_widths=(8,), decoder_widths=(8,))
    model.encoder.register_forward_pre_hook(lambda mod, args: seen.update(scan=args[0]))
    monkeypatch.setattr(latent_completion, "eps_mse", lambda net, x0, *a, **k: seen.update(missing=x0) or x0.sum())
    flags = (torch.arange(n) < known[:, None]).float().unsqueeze(-1)
    model.loss(x, flags, train_points=300, encoder_points=300)
    for b, m in enumerate(known.tolist()):
        assert set(seen["scan"][b, :, 0].long().tolist()) == set(range(m))
        assert set(seen["missing"][b, :, 0].long().tolist()) == set(range(m, n))


def test_completion_keeps_the_scan_and_follows_its_units_and_axes(completer):
    cloud = _spheres(1, 64, seed=3)[0].double()
    scan = cloud[:20]
    done = completer.complete(scan, sampler_steps=5, seed=1)
    assert done.shape == (64, 3) and done.dtype == torch.float64 and torch.isfinite(done).all()
    assert torch.equal(done[:20], scan)
    # the scan's frame is its own: units and offset carry through, the drawn points move with them
    moved = completer.complete(scan * 1000 + 7, sampler_steps=5, seed=1)
    torch.testing.assert_close(moved, done * 1000 + 7, rtol=1e-6, atol=1e-6)
    r = points.up_rotation("-y")
    turned = completer.complete(scan.numpy() @ r, sampler_steps=5, seed=1, up_axis="-y")
    torch.testing.assert_close(turned, done @ torch.from_numpy(r), rtol=1e-9, atol=1e-9)
    # scans of other sizes in one batch; a scan longer than max_known is cut to a seeded subset
    long = _spheres(1, 50, seed=4)[0]
    many = completer.complete([scan, long], sampler_steps=5, seed=1)
    assert many.shape == (2, 64, 3) and torch.equal(many[0, :20], scan)
    kept = many[1, : completer.max_known].float()
    assert completer.max_known == 32 and (kept[:, None] == long[None]).all(-1).any(1).all()  # scan rows
    assert len({tuple(p) for p in kept.tolist()}) == 32  # distinct scan points, not repeats
    # the drawn points differ between scans and seeds
    assert not torch.allclose(completer.complete(scan, sampler_steps=5, seed=2), done)


def test_on_epoch_end_snapshots_complete_as_the_fitted_model(completer):
    """The snapshot of the last epoch (EMA weights, the training clip) completes as fit's model."""
    seen = []
    comp = points.LatentCompleter(max_steps=2, **TINY).fit(_spheres(4), on_epoch_end=lambda s, info: seen.append(s))
    assert len(seen) == 2 and seen[-1].clip == comp.clip == completer.clip
    scan = _spheres(1, seed=5)[0, :20]
    assert torch.equal(seen[-1].complete(scan, sampler_steps=3, seed=0), comp.complete(scan, sampler_steps=3, seed=0))
    assert torch.equal(comp.complete(scan, sampler_steps=3, seed=0), completer.complete(scan, sampler_steps=3, seed=0))


def test_save_load_and_the_command_line(completer, tmp_path, capsys):
    completer.save(tmp_path / "lc")
    again = points.LatentCompleter.load(tmp_path / "lc", device="cpu")
    scan = _spheres(1, 64, seed=3)[0][:20]
    assert torch.equal(again.complete(scan, sampler_steps=4, seed=0), completer.complete(scan, sampler_steps=4, seed=0))
    with pytest.raises(CheckpointKindError, match=r"'points.latent_completer' checkpoint.*LatentCompleter.load"):
        points.Completer.load(tmp_path / "lc")
    np.save(tmp_path / "scan.npy", scan.numpy())
    assert main(["points", "complete", str(tmp_path / "lc"), str(tmp_path / "scan.npy"), "--out", str(tmp_path / "o"),
                 "--sampler-steps", "4", "--format", "npy", "--device", "cpu"]) == 0
    assert np.load(tmp_path / "o" / "000.npy").shape == (64, 3)
    assert main(["points", "sample", str(tmp_path / "lc"), str(tmp_path / "o2"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'points.latent_completer' checkpoint" in err and "multidiff points complete" in err


def test_the_command_line_trains_the_latent_models(modelnet, tmp_path, capsys):
    base = ["points", "train", str(modelnet), "--classes", "chair", "--num-points", "64", "--max-steps", "1",
            "--batch-size", "2", "--max-shapes", "2", "--views", "1", "--device", "cpu", "--model", "latent"]
    assert main(base[:2] + base[2:3] + [str(tmp_path / "lc")] + base[3:] + ["--task", "complete"]) == 0
    assert isinstance(points.LatentCompleter.load(tmp_path / "lc"), points.LatentCompleter)
    assert main(base[:3] + [str(tmp_path / "lg")] + base[3:]) == 0
    assert isinstance(points.LatentGenerator.load(tmp_path / "lg"), points.LatentGenerator)
    capsys.readouterr()
    assert main(base[:3] + [str(tmp_path / "x")] + base[3:] + ["--channels", "8"]) == 2
    assert "--channels and --layers size the dgcnn model" in capsys.readouterr().err


def test_errors(completer):
    with pytest.raises(RuntimeError, match="LatentCompleter is not fitted"):
        points.LatentCompleter(**TINY).complete(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"max_known must lie in \[1, num_points - 1\] = \[1, 63\], got 64"):
        points.LatentCompleter(**{**TINY, "max_known": 64})
    with pytest.raises(ValueError, match=r"got an array of shape \(6,\)"):
        completer.complete(np.arange(6.0))
    with pytest.raises(ValueError, match="no partial clouds"):
        completer.complete([])
    with pytest.raises(ValueError, match="sampler"):
        completer.complete(np.ones((5, 3)) + np.arange(5)[:, None], sampler="euler_maruyama_typo")
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        points.LatentCompleter(**TINY).fit(_spheres(2), resume=True)


def test_the_protocol_scores_a_2048_point_completion_at_the_files_distinct_points(modelnet, monkeypatch):
    comp = points.LatentCompleter(max_steps=1, **{**TINY, "num_points": 2048})
    comp.fit(modelnet, ["chair"], max_shapes=2)
    library = points.completion_pairs(comp.read_clouds(modelnet, ["chair"], "train", 2), 1, comp.max_known)
    scored = []
    chamfer_of = metrics.chamfer
    monkeypatch.setattr(metrics, "chamfer", lambda p, g: scored.append((p, g)) or chamfer_of(p, g))
    rep = points.evaluate(comp, modelnet, ["chair"], "test", sampler_steps=2, max_shapes=2, emd_points=32,
                          baseline=library)
    assert rep["eval_points"] == 1024 and "1024 distinct points" in rep["note"]
    for pred, truth in scored:  # both sets at 1024 points, the truth without the files' repeats
        assert pred.shape == truth.shape == (2, 1024, 3)
        assert all(len(torch.unique(t, dim=0)) == 1024 for t in truth)
    assert rep["n_shapes"] == 2 and set(rep["model"]) == set(rep["nn_retrieval"]) == {"CD", "EMD", "F@0.05"}
    assert all(np.isfinite(v) for r in (rep["model"], rep["nn_retrieval"]) for v in r.values())


@pytest.mark.slow
def test_training_brings_the_drawn_points_onto_the_shape():
    """After 300 steps on spheres the drawn points lie about half as far (Chamfer) from the points the
    scan missed as those of an untrained model (0.99 against 1.92; with the time features zeroed in
    training, 1.15, which fails). On spheres this sparse the scans see most points, so it checks that
    the model learns the shape's scale and place, not that it finds the hidden side: the ModelNet
    benchmark measures that."""
    train, test = _spheres(64, 128), _spheres(8, 128, seed=9)
    settings = {**TINY, "num_points": 128, "latent_dim": 16, "num_train_steps": 50, "train_points": 64,
                "encoder_points": 64, "encoder_widths": (32, 64), "decoder_widths": (64, 64), "batch_size": 16,
                "views": 2}
    folder = points.LatentCompleter(**settings).read_clouds(test, None, "test", None)
    pairs = points.completion_pairs(folder, 1, 64, seed=3)
    truth = pairs["frame"].invert(pairs["x0"])
    scans = [t[: int(k.sum())] for t, k in zip(truth, pairs["known"])]

    def missing_cd(steps):
        done = points.LatentCompleter(max_steps=steps, **settings).fit(train).complete(scans, sampler_steps=20)
        return np.mean([chamfer(d[len(s):].float()[None], t[len(s):][None]).item()
                        for d, s, t in zip(done, scans, truth)])

    untrained, trained = missing_cd(1), missing_cd(300)
    assert trained < 0.55 * untrained, (trained, untrained)
