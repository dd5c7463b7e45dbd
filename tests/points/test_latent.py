"""Luo & Hu's latent point-cloud model (issue 12): the networks' contracts (the point-wise
denoiser is Luo & Hu's ConcatSquash stack and treats every point on its own), the schedule's time
features, the seeded train-save-load-sample round trip, resuming, errors, and a learning check."""
import json
import math

import numpy as np

import pytest
import torch

from multidiff.core.checkpoint import CheckpointKindError
from multidiff.core.schedules import linear_betas
from multidiff.metrics.points import chamfer
from multidiff.nets.pointnet import PointNetEncoder
from multidiff.nets.pointwise import ConcatSquashLinear, PointwiseDenoiser
from multidiff.nets.vector_denoiser import VectorDenoiser
from multidiff.tasks import points
from multidiff.tasks.points.latent import LatentPointDiffusion, _subset

TINY = dict(num_points=64, latent_dim=16, num_train_steps=20, train_points=32, encoder_points=32, prior_width=32,
            prior_layers=1, prior_max_steps=4, encoder_widths=(16, 32), decoder_widths=(32, 32), batch_size=4,
            progress=False, device="cpu")


def _clouds(n=8, points=64, seed=0):
    return torch.randn(n, points, 3, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------ networks
def test_pointnet_encoder_gives_a_posterior_that_ignores_point_order():
    torch.manual_seed(0)
    enc = PointNetEncoder(latent_dim=8)
    x = _clouds(2, 50)
    mean, logvar = enc(x)
    assert mean.shape == logvar.shape == (2, 8)
    perm = torch.randperm(50)
    again = enc(x[:, perm])
    torch.testing.assert_close(again[0], mean)
    torch.testing.assert_close(again[1], logvar)
    # one cloud's code does not depend on the others of its batch (no BatchNorm)
    torch.testing.assert_close(enc(x[:1])[0], mean[:1])
    assert not torch.allclose(enc(x.flip(0))[0], mean)  # the comparison can fail
    with pytest.raises(ValueError, match=r"expected clouds of shape \(B, N, 3\) with N >= 1, got \(2, 50, 2\)"):
        enc(x[..., :2])


def _luo_hu_concat_squash(layer: ConcatSquashLinear, x, z, time):
    """Luo & Hu's ConcatSquashLinear, written out: one context ``[time, z]`` per row, gate
    ``sigmoid(G c + g)``, shift ``H c`` (no bias)."""
    ctx = torch.cat([time.expand(-1, x.shape[1], -1), z.expand(-1, x.shape[1], -1)], -1)
    g = torch.cat([layer.gate_t.weight, layer.gate_z.weight], 1)
    h = torch.cat([layer.shift_t.weight, layer.shift_z.weight], 1)
    gate = torch.sigmoid(ctx @ g.t() + layer.gate_z.bias)
    return (x @ layer.layer.weight.t() + layer.layer.bias) * gate + ctx @ h.t()


def test_concat_squash_linear_is_luo_and_hus_layer_per_cloud_and_per_point():
    torch.manual_seed(0)
    layer = ConcatSquashLinear(4, 5, latent_dim=6, time_dim=3)
    x, z = torch.randn(2, 7, 4), torch.randn(2, 1, 6)
    per_cloud = torch.randn(2, 1, 3)
    # one time per cloud takes the folded (per-cloud weights) path
    torch.testing.assert_close(layer(x, z, per_cloud), _luo_hu_concat_squash(layer, x, z, per_cloud))
    # one time per point takes the plain path: same numbers when the times agree
    torch.testing.assert_close(layer(x, z, per_cloud.expand(-1, 7, -1).contiguous()), layer(x, z, per_cloud))
    per_point = torch.randn(2, 7, 3)
    ref = torch.cat([_luo_hu_concat_squash(layer, x[:, i:i + 1], z, per_point[:, i:i + 1]) for i in range(7)], 1)
    torch.testing.assert_close(layer(x, z, per_point), ref)


def test_pointwise_denoiser_treats_every_point_on_its_own():
    torch.manual_seed(0)
    net = PointwiseDenoiser(latent_dim=8)
    x, z, time = _clouds(2, 30), torch.randn(2, 8), torch.rand(2, 3)
    out = net(x, time, z)
    assert out.shape == (2, 30, 3)
    # a subset of the points gets the same outputs as in the whole cloud
    torch.testing.assert_close(net(x[:, 5:9], time, z), out[:, 5:9])
    # changing every other point leaves point 0 as it was
    moved = x.clone()
    moved[:, 1:] += torch.randn_like(moved[:, 1:])
    torch.testing.assert_close(net(moved, time, z)[:, 0], out[:, 0])
    # per-point times: a point's output depends on its own time only
    times = time.unsqueeze(1).expand(-1, 30, -1).clone()
    torch.testing.assert_close(net(x, times, z), out)
    times[:, 1:] = torch.rand(2, 29, 3)
    got = net(x, times, z)
    torch.testing.assert_close(got[:, 0], out[:, 0])
    assert not torch.allclose(got[:, 1:], out[:, 1:])  # the times do reach the output
    assert not torch.allclose(net(x, time, z.flip(0)), out)  # and so does the latent


def test_pointwise_denoiser_rejects_bad_shapes_with_the_expected_ones():
    net = PointwiseDenoiser(latent_dim=8)
    x = _clouds(2, 30)
    with pytest.raises(ValueError, match=r"expected latents of shape \(2, 8\), got \(2, 7\)"):
        net(x, torch.rand(2, 3), torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"expected time features of shape \(2, 3\) or \(2, 30, 3\), got \(2, 29, 3\)"):
        net(x, torch.rand(2, 29, 3), torch.randn(2, 8))
    with pytest.raises(ValueError, match=r"expected points of shape \(B, N, 3\), got \(30, 3\)"):
        net(x[0], torch.rand(2, 3), torch.randn(2, 8))


def test_vector_denoiser_starts_as_the_zero_noise_predictor():
    net = VectorDenoiser(6, width=16, layers=2)
    z, t = torch.randn(5, 6), torch.arange(5)
    assert torch.equal(net(z, t), torch.zeros(5, 6))
    with pytest.raises(ValueError, match=r"expected vectors of shape \(B, 6\), got \(5, 4\)"):
        net(z[:, :4], t)


# ------------------------------------------------------------------ the model
def _fit_prior_on_wide_posteriors(prediction: str, steps: int = 400):
    """The prior of a tiny model fitted on posteriors like those seen on ModelNet chairs (means near
    zero, std 0.9), and the median norm of its DDPM samples against that of the posterior samples."""
    torch.manual_seed(0)
    m = LatentPointDiffusion(latent_dim=32, prior_width=32, prior_layers=2, encoder_widths=(8,), decoder_widths=(8,),
                             prior_prediction=prediction)
    g = torch.Generator().manual_seed(1)
    mean = 0.3 * torch.randn(32, generator=g) + 0.05 * torch.randn(256, 32, generator=g)
    logvar = torch.full((256, 32), 2 * torch.log(torch.tensor(0.9)).item())
    opt = torch.optim.Adam(m.prior.parameters(), lr=1e-3)
    for _ in range(steps):
        idx = torch.randint(0, 256, (64,), generator=g)
        loss = m.prior_loss(mean[idx], logvar[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    z = m.sample_latents(256, "ddpm", 100, torch.Generator().manual_seed(2), "cpu")
    posterior = mean + 0.9 * torch.randn(256, 32, generator=g)
    return z.norm(dim=1).median().item(), posterior.norm(dim=1).median().item()


def test_the_v_predicting_prior_samples_latents_of_the_posteriors_size():
    """The eps-predicting prior drew latents 15-40 times too long (its noise error is amplified
    157-fold at the schedule's end); the v-predicting one (the default) draws them at the right size."""
    sampled, posterior = _fit_prior_on_wide_posteriors("v")
    assert abs(sampled / posterior - 1) < 0.15, (sampled, posterior)
    sampled, posterior = _fit_prior_on_wide_posteriors("eps")
    assert sampled > 5 * posterior  # the failure the default avoids, so this test can tell the two apart
    with pytest.raises(ValueError, match="prior_prediction must be one of eps, x0, v"):
        LatentPointDiffusion(latent_dim=4, prior_prediction="noise")


def test_a_checkpoint_missing_a_setting_is_refused_with_what_it_lacks(tiny, tmp_path):
    import shutil

    gen, path = tiny
    shutil.copytree(path, tmp_path / "m")
    cfg_path = tmp_path / "m" / "config.json"
    raw = json.loads(cfg_path.read_text())
    del raw["config"]["prior_prediction"]  # as an earlier version wrote it (no compatibility reading: never released)
    cfg_path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"lacks \['prior_prediction'\].*train and save it again"):
        points.LatentGenerator.load(tmp_path / "m", device="cpu")


def test_time_features_of_both_kinds():
    model = LatentPointDiffusion(latent_dim=4, num_train_steps=100, beta_end=0.02, time_features="luo_hu",
                                 prior_width=8, prior_layers=1)
    t = torch.tensor([0, 99])
    beta = torch.tensor([1e-4, 0.02])
    torch.testing.assert_close(model.time_features(t), torch.stack([beta, beta.sin(), beta.cos()], -1))
    model = LatentPointDiffusion(latent_dim=4, num_train_steps=100, beta_end=0.02, prior_width=8, prior_layers=1)
    ab = torch.cumprod(1 - linear_betas(100, 1e-4, 0.02), 0)[[0, 99]]
    want = torch.stack([ab.sqrt(), (1 - ab).sqrt(), torch.tensor([0.01, 1.0], dtype=torch.float64)], -1).float()
    torch.testing.assert_close(model.time_features(t), want)
    assert model.time_features(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5, 3)
    with pytest.raises(ValueError, match="time_features must be one of signal, luo_hu, got 'beta'"):
        LatentPointDiffusion(time_features="beta")


def test_subset_draws_points_without_repeats():
    x = torch.arange(2 * 10 * 3, dtype=torch.float32).reshape(2, 10, 3)
    sub = _subset(x, 4, torch.Generator().manual_seed(0))
    assert sub.shape == (2, 4, 3)
    for cloud, picked in zip(x, sub):
        rows = {tuple(r.tolist()) for r in picked}
        assert len(rows) == 4 and rows <= {tuple(r.tolist()) for r in cloud}
    everything = _subset(x, 50)
    assert torch.equal(everything.sort(1).values, x)


def test_loss_is_finite_and_reaches_all_three_nets():
    torch.manual_seed(0)
    model = LatentPointDiffusion(latent_dim=8, num_train_steps=20, prior_width=16, prior_layers=1)
    loss = model.loss(_clouds(4, 40), 1e-3, train_points=16, encoder_points=16)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    for name in ("encoder", "decoder", "prior"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), name


def test_loss_is_its_terms_and_diagnose_reports_them_with_the_posteriors_shape():
    model = LatentPointDiffusion(latent_dim=8, num_train_steps=20, prior_width=16, prior_layers=1)
    x = _clouds(6, 40)
    torch.manual_seed(1)
    terms = model.loss_terms(x, train_points=16, encoder_points=16)
    torch.manual_seed(1)
    loss = model.loss(x, 0.5, train_points=16, encoder_points=16)
    assert torch.allclose(loss, terms["points"] + 0.5 * terms["kl"] + terms["prior"])
    state = torch.get_rng_state()
    report = model.diagnose(x, 16, 16, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is left alone
    assert report == model.diagnose(x, 16, 16, seed=3)
    assert set(report) == {"points", "kl", "prior", "posterior_std", "code_norm", "active_dims"}
    # a posterior mean that ignores the cloud (its last layer zeroed, bias 1): no active dimension,
    # code norm sqrt(8); logvar fixed at log 0.25: posterior std 0.5 and KL 0.5 * 8 * (1 + 0.25 - log 0.25 - 1)
    with torch.no_grad():
        last_mean, last_logvar = model.encoder.mean[-1], model.encoder.logvar[-1]
        last_mean.weight.zero_(), last_mean.bias.fill_(1.0)
        last_logvar.weight.zero_(), last_logvar.bias.fill_(math.log(0.25))
    report = model.diagnose(x, 16, 16)
    assert report["active_dims"] == 0
    assert report["code_norm"] == pytest.approx(math.sqrt(8))
    assert report["posterior_std"] == pytest.approx(0.5)
    assert report["kl"] == pytest.approx(0.5 * 8 * (1 + 0.25 - math.log(0.25) - 1))
    with torch.no_grad():  # a random last layer: the means differ between clouds on all 8 dimensions
        last_mean.weight.normal_()
    assert model.diagnose(x, 16, 16)["active_dims"] == 8


# ------------------------------------------------------------------ LatentGenerator
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    gen = points.LatentGenerator(max_steps=3, **TINY).fit(_clouds())
    path = gen.save(tmp_path_factory.mktemp("latent") / "g")
    return gen, path


def test_train_save_load_gives_the_same_seeded_samples(tiny):
    gen, path = tiny
    assert gen.train_result.optimizer_steps == 3 and gen.prior_result.optimizer_steps == 4
    samples = gen.sample(3, sampler_steps=5, seed=0)
    assert samples.shape == (3, 64, 3) and torch.isfinite(samples).all()
    again = points.LatentGenerator.load(path, device="cpu")
    assert torch.equal(again.sample(3, sampler_steps=5, seed=0), samples)
    assert not torch.equal(again.sample(3, sampler_steps=5, seed=1), samples)
    for sampler in ("ddim", "dpm_solver"):
        assert torch.equal(again.sample(2, 4, sampler, seed=2, prior_sampler=sampler),
                           gen.sample(2, 4, sampler, seed=2, prior_sampler=sampler))
    meta = json.loads((path / "config.json").read_text())
    assert meta["kind"] == "points.latent" and meta["config"]["latent_dim"] == 16
    # both schedules recorded; load checks the record against the settings
    from multidiff.core.schedules import schedule_from_config

    assert schedule_from_config(meta["config"]["schedule"]) == again.schedule == again.model.schedule
    assert schedule_from_config(meta["config"]["prior_schedule"]) == again.prior_schedule
    assert len(again.prior_schedule) == TINY.get("prior_num_train_steps", 1000)


def test_a_checkpoint_whose_recorded_schedule_disagrees_is_refused(tiny, tmp_path):
    import shutil

    _, path = tiny
    shutil.copytree(path, tmp_path / "g")
    meta = json.loads((tmp_path / "g" / "config.json").read_text())
    meta["config"]["prior_schedule"]["num_train_steps"] += 1
    (tmp_path / "g" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="records the schedule"):
        points.LatentGenerator.load(tmp_path / "g", device="cpu")


def test_a_checkpoint_of_the_other_generator_names_its_loader(tiny, tmp_path):
    _, path = tiny
    with pytest.raises(CheckpointKindError, match=r"holds a 'points.latent' checkpoint.*LatentGenerator.load"):
        points.Generator.load(path)
    pvd = points.Generator(num_points=16, channels=8, layers=1, k=2, num_train_steps=10, max_steps=1, batch_size=4,
                           progress=False, device="cpu").fit(_clouds(4, 16))
    pvd.save(tmp_path / "pvd")
    with pytest.raises(CheckpointKindError, match=r"holds a 'points.generator' checkpoint.*Generator.load"):
        points.LatentGenerator.load(tmp_path / "pvd")


def test_sampling_size_and_batching(tiny):
    gen, _ = tiny
    whole = gen.sample(5, sampler_steps=3, sampler="ddim", prior_sampler="ddim", seed=4)
    # deterministic samplers: the batch size does not change the clouds
    torch.testing.assert_close(gen.sample(5, 3, "ddim", seed=4, batch_size=2, prior_sampler="ddim"), whole)
    assert whole.abs().max() <= 1.5 * gen.clip  # clip_denoised keeps few-step samples in range


def test_bad_settings_and_calls_say_what_is_wrong(tiny, tmp_path):
    with pytest.raises(ValueError, match="time_features must be one of signal, luo_hu"):
        points.LatentGenerator(time_features="sin")
    with pytest.raises(ValueError, match="normalization must be one of unit_std, unit_sphere"):
        points.LatentGenerator(normalization="bbox")
    with pytest.raises(ValueError, match="num_points must be a whole number >= 2, got 1"):
        points.LatentGenerator(num_points=1)
    with pytest.raises(ValueError, match="train_points must be a whole number >= 1, got 0"):
        points.LatentGenerator(train_points=0)
    with pytest.raises(RuntimeError, match="not fitted; call fit"):
        points.LatentGenerator(**TINY).sample(2)
    gen, _ = tiny
    with pytest.raises(ValueError, match="unknown sampler 'heun2'"):
        gen.sample(2, sampler="heun2")
    with pytest.raises(ValueError, match=r"'euler' needs a flow-time model; .* must be one of \('ddpm', 'ddim'"):
        gen.sample(2, sampler="euler")  # a sampler of another kind of model says which ones this one takes
    with pytest.raises(ValueError, match="unknown sampler 'heun'"):
        gen.sample(2, prior_sampler="heun")
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir="):
        points.LatentGenerator(**TINY).fit(_clouds(), resume=True)
    with pytest.raises(ValueError, match=r"training clouds must be a folder path or a \(S, N, 3\) array"):
        points.LatentGenerator(**TINY).fit(torch.zeros(4, 3))


def test_resume_continues_the_run_and_rng_is_left_alone(tmp_path):
    clouds = _clouds()  # 8 clouds in batches of 4: 2 steps per epoch
    state = torch.get_rng_state()
    first = points.LatentGenerator(max_steps=2, checkpoint_dir=str(tmp_path), **TINY).fit(clouds)
    assert first.train_result.optimizer_steps == 2
    # another seed: a fresh run would start otherwise, the resumed one keeps the saved epoch
    more = points.LatentGenerator(max_steps=4, checkpoint_dir=str(tmp_path), **{**TINY, "seed": 1})
    more.fit(clouds, resume=True)
    assert more.train_result.optimizer_steps == 4 and len(more.train_result.history) == 2
    assert more.train_result.history[0] == first.train_result.history[0]
    fresh = points.LatentGenerator(max_steps=4, **{**TINY, "seed": 1}).fit(clouds)
    assert fresh.train_result.history[0] != first.train_result.history[0]
    assert torch.equal(torch.get_rng_state(), state)  # library code never moves the caller's generator


def test_a_snapshot_of_a_run_is_the_model_fit_returns(tmp_path):
    """load_snapshot reads training's last/ and refits the prior as fit ends: the same model,
    the same seeded samples, also from a folder of cloud files recorded in the snapshot."""
    import numpy as np

    clouds = _clouds(6)
    for i, c in enumerate(clouds):
        (tmp_path / "data" / "thing" / "train").mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "data" / "thing" / "train" / f"thing_{i}.npy", c.numpy())
    gen = points.LatentGenerator(max_steps=3, checkpoint_dir=str(tmp_path / "run"), **{**TINY, "seed": 3})
    gen.fit(tmp_path / "data", ["thing"])
    snap, loop = points.LatentGenerator.load_snapshot(tmp_path / "run", device="cpu")
    assert loop["steps"] == 3 and snap.prior_result.optimizer_steps == TINY["prior_max_steps"]
    assert torch.equal(snap.sample(2, 4, seed=0), gen.sample(2, 4, seed=0))
    # trained on an array: the snapshot needs the clouds to refit the prior
    arr = points.LatentGenerator(max_steps=3, checkpoint_dir=str(tmp_path / "arr"), **TINY).fit(clouds)
    with pytest.raises(ValueError, match="trained on an array of clouds: pass them as data="):
        points.LatentGenerator.load_snapshot(tmp_path / "arr", device="cpu")
    snap, _ = points.LatentGenerator.load_snapshot(tmp_path / "arr", device="cpu", data=clouds)
    assert torch.equal(snap.sample(2, 4, seed=0), arr.sample(2, 4, seed=0))


def test_fit_prior_refits_the_prior_alone(tiny):
    """fit_prior trains the latent prior for prior_max_steps steps and leaves the encoder and the point
    denoiser as they are; with prior_max_steps=0 it changes nothing."""
    _, path = tiny
    gen = points.LatentGenerator.load(path, device="cpu")
    before = {k: v.clone() for k, v in gen.model.state_dict().items()}
    assert gen.fit_prior(_clouds()) is gen and gen.prior_result.optimizer_steps == TINY["prior_max_steps"]
    changed = {k for k, v in gen.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("prior.") for k in changed), changed
    still = points.LatentGenerator(max_steps=1, **{**TINY, "prior_max_steps": 0}).fit(_clouds())
    before = {k: v.clone() for k, v in still.model.state_dict().items()}
    still.fit_prior(_clouds())
    assert all(torch.equal(v, before[k]) for k, v in still.model.state_dict().items())


def test_on_epoch_end_hands_a_snapshot_and_leaves_the_run_alone():
    """After every epoch on_epoch_end gets a fitted copy with the EMA weights and the prior as trained so
    far: the last one, its prior refitted by fit_prior, is the model fit returns; the run is the same
    as without the callback."""
    clouds = _clouds()  # 8 clouds in batches of 4: 2 steps per epoch
    seen = []
    gen = points.LatentGenerator(max_steps=4, **TINY).fit(clouds, on_epoch_end=lambda s, info: seen.append((s, info)))
    plain = points.LatentGenerator(max_steps=4, **TINY).fit(clouds)
    assert gen.train_result.history == plain.train_result.history
    assert torch.equal(gen.sample(2, 4, seed=0), plain.sample(2, 4, seed=0))
    assert [(info["epoch"], info["steps"]) for _, info in seen] == [(1, 2), (2, 4)]
    snap = seen[-1][0]
    assert isinstance(snap, points.LatentGenerator) and snap.fitted and snap.model is not gen.model
    assert snap.clip == gen.clip
    assert not torch.equal(snap.sample(2, 4, seed=0), gen.sample(2, 4, seed=0))  # the prior is not refitted yet
    assert torch.equal(snap.fit_prior(clouds).sample(2, 4, seed=0), gen.sample(2, 4, seed=0))


def _shape(kind: str, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` random points on the unit sphere or on the flat square [-1, 1]^2 x {0}."""
    p = torch.randn(n, 3, generator=gen)
    if kind == "sphere":
        return p / p.norm(dim=1, keepdim=True)
    return torch.cat([2 * torch.rand(n, 2, generator=gen) - 1, torch.zeros(n, 1)], 1)


@pytest.mark.slow
def test_learns_a_sphere_and_a_square():
    """Two shapes and a few hundred fast steps: samples lie near one of them, on average three times
    nearer than noise, every one nearer than any noise cloud, and both shapes come out (the latent prior
    keeps both modes). At 256 points two draws of one sphere are 0.14 apart (CD), noise is 0.6-1.4 from
    either shape. (One sample per 16 may land at half the noise's mean distance: 0.34 against 0.67 on one
    machine, which a per-sample bound of half the mean made a coin toss between CPUs.)"""
    g = torch.Generator().manual_seed(0)
    kinds = ("sphere", "square")
    clouds = torch.stack([_shape(kind, 256, g) for kind in kinds for _ in range(4)])
    gen = points.LatentGenerator(num_points=256, latent_dim=8, train_points=64, encoder_points=64, prior_width=64,
                                 prior_layers=2, prior_max_steps=400, num_train_steps=100, encoder_widths=(32, 64),
                                 decoder_widths=(64, 128, 64), batch_size=8, epochs=800, lr=3e-3, ema_decay=0.98,
                                 progress=False, device="cpu").fit(clouds)
    # the two shapes, drawn afresh, in the training normalisation
    templates = gen.read_clouds(torch.stack([_shape(k, 256, torch.Generator().manual_seed(1)) for k in kinds]),
                                None, "train", None).points

    def nearest(x):
        return torch.stack([chamfer(x, t.expand(len(x), -1, -1)) for t in templates], 1).min(1)

    samples = gen.sample(16, sampler_steps=50, seed=0)
    noise = torch.randn(16, 256, 3, generator=torch.Generator().manual_seed(2))
    got, base = nearest(samples), nearest(noise).values
    assert got.values.mean() < 0.3 * base.mean() and got.values.max() < base.min(), (got.values, base)
    assert set(got.indices.tolist()) == {0, 1}


def test_command_line_samples_a_latent_checkpoint_and_names_the_command_that_fits(tiny, tmp_path, capsys):
    from multidiff.cli import main

    _, path = tiny
    assert main(["points", "sample", str(path), str(tmp_path / "out"), "-n", "2", "--sampler-steps", "3",
                 "--format", "npy", "--device", "cpu"]) == 0
    written = sorted((tmp_path / "out").glob("*.npy"))
    assert [p.name for p in written] == ["000.npy", "001.npy"]
    assert points.load_clouds(written[0]).shape == (64, 3)
    capsys.readouterr()
    np.save(tmp_path / "p.npy", np.zeros((32, 3), np.float32))  # a real partial cloud: only the checkpoint is wrong
    assert main(["points", "complete", str(path), str(tmp_path / "p.npy"), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a 'points.latent' checkpoint" in err and "multidiff points sample" in err


def test_evaluate_scores_a_latent_generator(tiny):
    gen, _ = tiny
    # protocol "none": three optimizer steps leave samples too degenerate for a bounding box
    report = points.evaluate(gen, _clouds(3, 64, seed=5), sampler_steps=3, metrics=("cd",), protocol="none")
    assert report["n_gen"] == report["n_ref"] == 3 and 0 <= report["1-NNA-CD"] <= 1
