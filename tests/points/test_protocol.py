"""issue 12: the published generation protocol (Luo & Hu 2021) on real ModelNet10 shapes, the
reference rows that calibrate it, and scoring at the points the data really holds."""
import numpy as np
import pytest
import torch

from multidiff.datasets.pointclouds import load_folder, resample
from multidiff.tasks import points
from multidiff.tasks.points.evaluate import distinct_references, reference_rows, score_generated


def test_real_train_shapes_score_near_50_percent_and_noise_100(modelnet):
    """The sanity rows: real chairs of the training split are indistinguishable from the test
    chairs (1-NNA near 50 %), Gaussian noise is always told apart (100 %)."""
    rows = reference_rows(modelnet, ["chair"], num_points=128, max_shapes=40, metrics=("cd",))
    assert rows["n_ref"] == rows["n_train"] == 40 and rows["protocol"] == "luo_hu"
    assert 0.35 <= rows["train_vs_test"]["1-NNA-CD"] <= 0.65, rows
    assert rows["noise"]["1-NNA-CD"] == 1.0
    assert rows["train_vs_test"]["MMD-CD"] < rows["noise"]["MMD-CD"]
    assert rows["train_vs_test"]["COV-CD"] > rows["noise"]["COV-CD"]


def test_real_chairs_vs_real_tables_are_told_apart(modelnet):
    """A generator of the wrong class scores badly: 1-NNA of tables against chairs is far above 50 %."""
    chairs = load_folder(modelnet, ["chair"], "test", 128, max_shapes=30).points
    tables = load_folder(modelnet, ["table"], "test", 128, max_shapes=30).points
    assert score_generated(tables, chairs, ("cd",))["1-NNA-CD"] > 0.8


def test_resample_repeats_every_point_when_the_file_has_fewer():
    pts = np.arange(30.0).reshape(10, 3)
    out = resample(pts, 25, np.random.default_rng(0))
    counts = np.unique(out[:, 0], return_counts=True)[1]
    assert len(counts) == 10 and set(counts) <= {2, 3} and counts.sum() == 25
    assert len(np.unique(resample(pts, 6, np.random.default_rng(0))[:, 0])) == 6  # fewer: no repeats


def test_modelnet_at_2048_points_is_scored_at_its_1024_distinct_points(modelnet):
    folder = load_folder(modelnet, ["chair"], "test", 2048, max_shapes=2)
    assert folder.points.shape == (2, 2048, 3) and folder.distinct_points() == 1024
    ref = distinct_references(folder, 1024)
    for cloud in ref:
        assert len(torch.unique(cloud, dim=0)) == 1024
    rows = reference_rows(modelnet, ["chair"], num_points=2048, max_shapes=3, metrics=("cd",))
    assert rows["eval_points"] == 1024 and "1024 distinct points" in rows["note"]


def test_evaluate_scores_generated_clouds_at_the_distinct_points_of_the_data():
    """Clouds of 16 points, a 32-point model: samples are scored on 16-point subsets, as the data."""
    g = torch.Generator().manual_seed(0)
    clouds = torch.randn(6, 16, 3, generator=g)
    gen = points.Generator(num_points=32, channels=8, layers=1, k=4, num_train_steps=20, max_steps=1, batch_size=6,
                           progress=False, device="cpu").fit(clouds)
    rep = points.evaluate(gen, clouds, sampler_steps=2, metrics=("cd", "emd"))
    assert rep["eval_points"] == 16 and "16 distinct points" in rep["note"] and rep["protocol"] == "luo_hu"
    assert rep["n_gen"] == rep["n_ref"] == 6 and 0 <= rep["1-NNA-EMD"] <= 1
    pf = points.evaluate(gen, clouds, sampler_steps=2, metrics=("cd",), protocol="pointflow")
    assert pf["MMD-CD"] != rep["MMD-CD"]
    with pytest.raises(ValueError, match="protocol must be one of"):
        points.evaluate(gen, clouds, protocol="bbox")
    with pytest.raises(ValueError, match="equal points per cloud"):
        score_generated(torch.randn(2, 8, 3), torch.randn(2, 9, 3))


def test_a_run_in_progress_can_be_read_and_resumed(tmp_path):
    """The learning curve reads ``last/`` of a running fit; the same fit with resume=True goes on."""
    clouds = torch.randn(4, 16, 3, generator=torch.Generator().manual_seed(0))
    small = dict(num_points=16, channels=8, layers=1, k=4, num_train_steps=20, batch_size=2, progress=False,
                 device="cpu", checkpoint_dir=tmp_path / "ck")
    gen = points.Generator(max_steps=4, **small).fit(clouds)
    snap, loop = points.Generator.load_snapshot(tmp_path / "ck", device="cpu")
    assert loop["steps"] == 4 and loop["seconds"] > 0
    assert torch.equal(snap.sample(2, 3, "ddim", seed=1), gen.sample(2, 3, "ddim", seed=1))  # the EMA weights
    again = points.Generator(max_steps=6, **small).fit(clouds, resume=True)
    assert again.train_result.optimizer_steps == 6 and len(again.train_result.history) == 3  # 2 epochs before, 1 more
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        points.Generator(num_points=16, channels=8, layers=1, k=4, max_steps=1, progress=False).fit(clouds, resume=True)


def test_on_epoch_end_gets_the_sampling_weights_and_leaves_the_run_alone():
    """fit(on_epoch_end=) hands a fitted copy with the EMA weights after every epoch: the last one samples
    as the model fit returns, and the run is the one without the callback."""
    clouds = torch.randn(4, 16, 3, generator=torch.Generator().manual_seed(0))
    small = dict(num_points=16, channels=8, layers=1, k=4, num_train_steps=20, batch_size=2, progress=False,
                 device="cpu", max_steps=4)
    seen = []
    torch.manual_seed(0)  # the Generator's initial weights come from torch's global generator
    gen = points.Generator(**small).fit(clouds, on_epoch_end=lambda snap, info: seen.append((snap, info)))
    torch.manual_seed(0)
    plain = points.Generator(**small).fit(clouds)
    assert gen.train_result.history == plain.train_result.history
    assert [(info["epoch"], info["steps"]) for _, info in seen] == [(1, 2), (2, 4)]
    assert all(isinstance(snap, points.Generator) and snap.net is not gen.net for snap, _ in seen)
    assert torch.equal(seen[-1][0].sample(2, 3, "ddim", seed=1), gen.sample(2, 3, "ddim", seed=1))
    assert not torch.equal(seen[0][0].sample(2, 3, "ddim", seed=1), gen.sample(2, 3, "ddim", seed=1))
