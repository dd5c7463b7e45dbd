"""issue 12: a partial scan the user brings (a .ply/.pcd from a depth sensor, in its own units and
axes) completes without retraining; bad input names its real shape."""
import numpy as np
import pytest
import torch

from multidiff.cli import main
from multidiff.datasets.pointclouds import partial_scan, read_cloud
from multidiff.tasks import points

SMALL = dict(num_points=64, channels=8, layers=1, k=4, num_train_steps=20, max_steps=1, batch_size=4, progress=False,
             device="cpu")


@pytest.fixture(scope="module")
def completer():
    clouds = torch.randn(4, 64, 3, generator=torch.Generator().manual_seed(0))
    return points.Completer(views=1, **SMALL).fit(clouds)


@pytest.mark.parametrize("bad", [np.arange(6.0), torch.arange(6.0), np.zeros((2, 2, 2, 3))])
def test_a_flat_array_reports_its_real_shape(completer, bad):
    with pytest.raises(ValueError, match=r"got an array of shape \((6,|2, 2, 2, 3)\)"):
        completer.complete(bad, sampler_steps=2)
    with pytest.raises(ValueError, match=r"must have shape \(N, 3\), got \(6,\)"):
        completer.complete([np.arange(6.0)], sampler_steps=2)


def test_up_axis_turns_the_scan_upright_and_the_result_back(completer):
    """A scan seen in a camera frame (y down) with up_axis="-y" completes exactly as the same scan
    given upright, turned back into the camera's axes."""
    rng = np.random.default_rng(1)
    upright = rng.normal(size=(20, 3)) * [1.0, 0.5, 2.0] + [0, 0, 3]
    r = points.up_rotation("-y")
    assert np.allclose(r @ [0, -1, 0], [0, 0, 1])
    camera = upright @ r  # rows turned by R^-1 = R^T: the camera's axes
    expected = completer.complete(upright, sampler_steps=3, seed=0) @ torch.from_numpy(r)
    got = completer.complete(camera, sampler_steps=3, seed=0, up_axis="-y")
    assert torch.allclose(got, expected, atol=1e-9)
    assert torch.equal(got[:20], torch.from_numpy(camera))  # the scan points themselves
    # the wrong axis gives another completion: the orientation matters to the model
    assert not torch.allclose(completer.complete(camera, sampler_steps=3, seed=0), expected, atol=1e-3)
    with pytest.raises(ValueError, match="up_axis must be one of"):
        completer.complete(camera, up_axis="up")


LATENT = dict(num_points=64, latent_dim=8, num_train_steps=20, train_points=16, encoder_points=16,
              encoder_widths=(16,), decoder_widths=(16,), max_steps=1, batch_size=4, progress=False, device="cpu")


@pytest.mark.parametrize("kind", ["Completer", "LatentCompleter"])
def test_a_ply_written_by_open3d_completes_through_the_api_and_the_cli(kind, completer, modelnet, tmp_path):
    o3d = pytest.importorskip("open3d")
    if kind == "LatentCompleter":  # the same contract (scan_list, up_axis, units) for the linear-in-points model
        clouds = torch.randn(4, 64, 3, generator=torch.Generator().manual_seed(0))
        completer = points.LatentCompleter(views=1, **LATENT).fit(clouds)
    chair = read_cloud(modelnet / "chair" / "test" / "chair_0890.pcd")
    scan = chair[partial_scan(chair, seed=0)] * 1e-3 @ points.up_rotation("-y")  # raw units / 1000, camera axes
    path = tmp_path / "scan.ply"
    assert o3d.io.write_point_cloud(str(path), o3d.geometry.PointCloud(o3d.utility.Vector3dVector(scan)))
    done = completer.complete(path, sampler_steps=2, up_axis="-y")
    assert done.shape == (64, 3) and torch.isfinite(done).all()
    kept = min(len(scan), completer.max_known)
    on_scan = torch.cdist(done[:kept], torch.from_numpy(scan)).min(1).values
    assert on_scan.max() < 1e-9  # the first rows are scan points (a seeded subset), in the scan's units
    ck = tmp_path / "comp"
    completer.save(ck)
    assert main(["points", "complete", str(ck), str(path), "--out", str(tmp_path / "o"), "--up-axis=-y",
                 "--sampler-steps", "2", "--format", "npy", "--device", "cpu"]) == 0
    out = np.load(tmp_path / "o" / "000.npy")
    assert out.shape == (64, 3)
    assert np.abs(out).max() < 50 * np.abs(scan).max()  # the scan's units (metres here), not ModelNet's raw ones
