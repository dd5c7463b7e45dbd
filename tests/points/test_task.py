import numpy as np
import pytest
import torch

from multidiff.datasets.pointclouds import load_folder, partial_scan
from multidiff.metrics.points import chamfer
from multidiff.tasks import points
from multidiff.tasks.points import api as points_api, model as points_model

TINY = dict(num_points=128, channels=64, layers=3, k=8, batch_size=4, lr=2e-3, ema_decay=0.0,
            progress=False, device="cpu")


@pytest.fixture(scope="module")
def generator(modelnet):
    return points.Generator(epochs=300, **TINY).fit(modelnet, ["chair"], max_shapes=4)


@pytest.fixture(scope="module")
def completer(modelnet):
    return points.Completer(epochs=20, views=2, **TINY).fit(modelnet, ["chair"], max_shapes=4)


def _nearest_cd(clouds, shapes):
    return torch.stack([chamfer(c.expand(len(shapes), -1, -1), shapes).min() for c in clouds])


def test_generator_learns_real_shapes(generator, modelnet):
    train = load_folder(modelnet, ["chair"], "train", 128, max_shapes=4).points
    noise = torch.randn(4, 128, 3, generator=torch.Generator().manual_seed(0))
    base = _nearest_cd(noise, train).mean()
    for sampler, steps, margin in (("ddpm", 50, 0.7), ("ddim", 20, 1.0), ("dpm_solver", 10, 1.0)):
        samples = generator.sample(4, sampler_steps=steps, sampler=sampler, seed=0)
        assert samples.shape == (4, 128, 3) and torch.isfinite(samples).all()
        got = _nearest_cd(samples, train).mean()
        assert got < margin * base, (sampler, float(got), float(base))
    assert torch.equal(generator.sample(2, 5, "ddim", seed=3), generator.sample(2, 5, "ddim", seed=3))


def test_save_load_round_trip(generator, tmp_path):
    generator.save(tmp_path / "gen")
    again = points.Generator.load(tmp_path / "gen", device="cpu")
    assert torch.equal(generator.sample(2, 5, "ddim", seed=1), again.sample(2, 5, "ddim", seed=1))
    with pytest.raises(ValueError, match="holds a 'points.generator' checkpoint, but this loader reads 'points.completer'"):
        points.Completer.load(tmp_path / "gen")


def test_completion_keeps_partial_points(completer, modelnet, monkeypatch):
    # spy on the sampler's state: complete() overwrites the scan rows of its output at the end, and
    # _hold feeds the network the clean scan whatever the state holds there (the free points come out
    # bit-identical without the replace_known hook), so only the state shows that the partial points
    # are held fixed through the reverse process
    states, finals = [], []
    hold, run = points_api._hold, points_model.run_sampler

    def spy_hold(net, known, mask):
        model = hold(net, known, mask)

        def spied(x_t, t):
            states.append((x_t.clone(), known, mask.expand_as(known).bool()))
            return model(x_t, t)
        return spied

    def spy_run(*args, **kwargs):
        finals.append(run(*args, **kwargs))
        return finals[-1]

    monkeypatch.setattr(points_api, "_hold", spy_hold)
    monkeypatch.setattr(points_model, "run_sampler", spy_run)

    def assert_held(n_steps):
        assert len(states) == n_steps and len(finals) == 1
        for x_t, known, mask in states:  # every network call, from the first (x_T) on
            assert mask.any() and not mask.all()
            assert torch.equal(x_t[mask], known[mask])  # the scan points, exactly, in the scan's frame
        _, known, mask = states[-1]
        assert torch.equal(finals[0][mask], known[mask])  # and after the last step
        assert not torch.equal(states[0][0][~mask], states[-1][0][~mask])  # while the free points move
        states.clear()
        finals.clear()

    cloud = points.load_clouds(modelnet / "chair" / "test" / "chair_0890.pcd").double()  # raw units
    idx = partial_scan(cloud, seed=0)
    partial = cloud[idx][:40]
    before = partial.clone()
    full = completer.complete(partial, sampler_steps=10, sampler="ddpm")
    assert_held(10)
    assert full.shape == (128, 3)
    assert torch.equal(full[:40], partial) and torch.equal(partial, before)  # kept exactly, input untouched
    # the generated points land at the scale of the shape, not of the unit-variance noise
    assert full[40:].std() < 3 * cloud.std() and full[40:].std() > 0.1 * cloud.std()
    many = completer.complete([partial, cloud[idx][:60]], sampler_steps=5, sampler="dpm_solver")
    assert_held(5)
    assert many.shape == (2, 128, 3) and torch.equal(many[1, :60], cloud[idx][:60])


def test_completion_report_and_retrieval(completer, modelnet):
    train = completer.read_clouds(modelnet, ["chair"], "train", 4)
    library = points.completion_pairs(train, 1, completer.max_known, seed=5)
    # a scan of a library shape retrieves that very shape
    truth = library["frame"].invert(library["x0"])
    scan = truth[2, : int(library["known"][2].sum())]
    got = points.retrieve([scan], library)[0]
    assert chamfer(got.float(), truth[2]).item() < 1e-6
    rep = points.evaluate(completer, modelnet, ["chair"], "test", sampler_steps=5, max_shapes=2, emd_points=32,
                          baseline=library)
    assert rep["n_shapes"] == 2 and set(rep["model"]) == {"CD", "EMD", "F@0.05"}
    assert all(np.isfinite(v) for v in rep["nn_retrieval"].values())


def test_cloud_files_round_trip(tmp_path):
    cloud = torch.randn(64, 3, dtype=torch.float64) * 1e4
    for suffix in ("ply", "pcd", "npy"):
        path = points.save_clouds(cloud, tmp_path / f"c.{suffix}")
        assert torch.allclose(points.load_clouds(path).double(), cloud, rtol=1e-6)
    with pytest.raises(ValueError, match="cannot save"):
        points.save_clouds(cloud, tmp_path / "c.xyz")
    png = points.render([cloud, cloud], tmp_path / "r.png", titles=["a", "b"])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_task_errors(modelnet):
    with pytest.raises(RuntimeError, match="not fitted"):
        points.Generator(**TINY).sample(2)
    with pytest.raises(ValueError, match="unknown class"):
        points.Generator(**TINY).fit(modelnet, ["unicorn"])
    with pytest.raises(ValueError, match=r"\(S, N, 3\)"):
        points.Generator(**TINY).fit(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN or inf"):
        points.Generator(**TINY).fit(np.full((2, 5, 3), np.nan))


def test_sampler_name_and_empty_partial_errors(completer):
    with pytest.raises(ValueError, match="sampler must be one of"):
        completer.complete(torch.randn(10, 3), sampler="euler_magic")
    with pytest.raises(ValueError, match="empty"):
        completer.complete(torch.zeros(0, 3))


def test_constructor_errors():
    with pytest.raises(ValueError, match="normalization must be one of"):
        points.Generator(normalization="unit_cube")
    with pytest.raises(ValueError, match="max_known"):
        points.Completer(num_points=64, max_known=64)


def test_the_public_classes_live_in_api_and_read_clouds_alike():
    """Issue 28: the four public classes are in api.py (LatentCompleter was in latent_completion.py, which
    imported api.py) and read clouds through their shared base, not through another class's method."""
    classes = [points.Generator, points.Completer, points.LatentGenerator, points.LatentCompleter]
    assert {c.__module__ for c in classes} == {points_api.__name__}
    assert {c.__name__ for c in classes} <= set(points_api.__all__) and "SAMPLER_NAMES" not in points.__all__
    clouds = torch.randn(3, 40, 3, generator=torch.Generator().manual_seed(0))
    read = [c(num_points=32, seed=1).read_clouds(clouds).points for c in classes]
    assert all(c.read_clouds is points_model.PointModel.read_clouds for c in classes)
    assert all(torch.equal(r, read[0]) for r in read) and read[0].shape == (3, 32, 3)



def test_the_initial_weights_follow_seed_not_the_global_generator():
    """A run is fixed by its ``seed``: the initial weights do not depend on torch's global generator
    (seeded at random in each process), and building a model leaves that generator as it was."""
    from multidiff.tasks import points

    def weights(global_seed, seed=0):
        torch.manual_seed(global_seed)
        gen = points.Generator(num_points=32, channels=8, layers=1, k=4, seed=seed, progress=False, device="cpu")
        after = torch.rand(1)
        torch.manual_seed(global_seed)
        assert torch.equal(after, torch.rand(1))  # the caller's sequence is untouched
        return torch.cat([p.detach().flatten() for p in gen.net.parameters()])

    assert torch.equal(weights(1), weights(2))
    assert not torch.equal(weights(1), weights(1, seed=1))
