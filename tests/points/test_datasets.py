import numpy as np
import pytest
import torch

from multidiff.datasets import pointclouds as P


def test_reads_real_modelnet_pcd(modelnet):
    arr = P.read_cloud(modelnet / "chair" / "train" / "chair_0001.pcd")
    assert arr.shape == (1024, 3) and arr.dtype == np.float64
    assert np.abs(arr).max() > 1  # raw ModelNet units, not normalised


def test_load_folder_normalisation_is_invertible(modelnet):
    f = P.load_folder(modelnet, ["chair"], "test", num_points=512, max_shapes=3)
    assert f.points.shape == (3, 512, 3) and f.labels == ["chair"] * 3
    assert f.points.mean(1).abs().max() < 1e-4
    assert torch.allclose(f.points.flatten(1).std(1), torch.ones(3), atol=1e-3)  # Luo & Hu shape_unit
    again = P.load_folder(modelnet, ["chair"], "test", num_points=512, max_shapes=3)
    assert torch.equal(f.points, again.points)  # resampling seeded by file name
    raw = P.read_cloud(f.paths[0])
    got = f.raw()[0].double().numpy()
    d = ((got[:, None] - raw[None]) ** 2).sum(-1).min(1)  # each point comes back onto the file's points
    assert d.max() < 1e-6 * (raw ** 2).sum(1).max()


def test_unit_sphere_normalisation():
    x = torch.tensor([[0.0, 0, 0], [2, 0, 0], [4, 0, 0]])
    z, norm = P.normalize(x, "unit_sphere")
    assert torch.allclose(z, torch.tensor([[-1.0, 0, 0], [0, 0, 0], [1, 0, 0]]))
    assert torch.allclose(norm.invert(z), x)


def test_other_formats_and_meshes(tmp_path):
    pts = np.random.default_rng(0).normal(size=(50, 3))
    np.save(tmp_path / "a.npy", pts)
    np.savetxt(tmp_path / "a.txt", np.hstack([pts, np.ones((50, 2))]), delimiter=",")
    np.testing.assert_allclose(P.read_cloud(tmp_path / "a.npy"), pts)
    np.testing.assert_allclose(P.read_cloud(tmp_path / "a.txt"), pts, rtol=1e-6)
    o3d = P.require_open3d()
    o3d.io.write_triangle_mesh(str(tmp_path / "box.off"), o3d.geometry.TriangleMesh.create_box(2.0, 1.0, 1.0))
    mesh_pts = P.read_cloud(tmp_path / "box.off", num_points=200, sampling="uniform")
    assert mesh_pts.shape == (200, 3)
    assert mesh_pts.min() >= -1e-9 and mesh_pts[:, 0].max() <= 2 + 1e-9


def test_partial_scan_is_seeded_and_partial(modelnet):
    cloud = P.read_cloud(modelnet / "chair" / "test" / "chair_0890.pcd")
    a, b = P.partial_scan(cloud, seed=3), P.partial_scan(cloud, seed=3)
    assert np.array_equal(a, b)
    assert 16 <= len(a) < len(cloud)
    c = P.partial_scan(cloud, seed=3, crop=0.5)
    assert len(c) < len(a) and np.isin(c, a).all()


def test_errors(tmp_path, modelnet):
    with pytest.raises(ValueError, match="unknown class"):
        P.list_shapes(modelnet, ["unicorn"])
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "notes.doc").write_text("x")
    with pytest.raises(ValueError, match="unsupported files: .doc"):
        P.list_shapes(tmp_path, ["empty"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        P.list_shapes(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unsupported point-cloud file type"):
        P.read_cloud(tmp_path / "empty" / "train" / "notes.doc")
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="NaN or inf"):
        P.read_cloud(tmp_path / "nan.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(ValueError, match="empty"):
        P.read_cloud(tmp_path / "empty.npy")
    np.save(tmp_path / "flat.npy", np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        P.read_cloud(tmp_path / "flat.npy")
