import itertools

import pytest
import torch

from multidiff.metrics import points as M


def brute_chamfer(a, b):
    da = [min(float(((p - q) ** 2).sum()) for q in b) for p in a]
    db = [min(float(((p - q) ** 2).sum()) for p in a) for q in b]
    return sum(da) / len(da) + sum(db) / len(db)


def brute_emd(a, b):
    n = len(a)
    return min(sum(float((a[i] - b[j]).norm()) for i, j in enumerate(perm)) / n
               for perm in itertools.permutations(range(n)))


def test_chamfer_hand_case():
    a = torch.tensor([[0.0, 0, 0], [1, 0, 0]])
    b = torch.tensor([[0.0, 0, 0], [0, 2, 0], [1, 0, 0]])
    # a->b: 0, 0 ; b->a: 0, 4, 0  => 0 + 4/3 (squared distances, mean per direction, summed)
    assert M.chamfer(a, b).item() == pytest.approx(4 / 3)
    assert M.chamfer(a, a).item() == 0


def test_chamfer_and_emd_match_brute_force():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, 3, generator=g), torch.randn(3, 5, 3, generator=g)
    cd = M.chamfer(a, b)
    emd = M.emd_exact(a, b)
    for i in range(3):
        assert cd[i].item() == pytest.approx(brute_chamfer(a[i], b[i]), rel=1e-5)
        assert emd[i].item() == pytest.approx(brute_emd(a[i], b[i]), rel=1e-5)
    assert M.chamfer(a, b, reduction="mean").item() == pytest.approx(cd.mean().item())


def test_sinkhorn_emd_close_to_exact_upper_bound():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(2, 48, 3, generator=g) * 0.3
    b = torch.randn(2, 48, 3, generator=g) * 0.3 + 0.1
    exact, approx = M.emd_exact(a, b), M.emd_sinkhorn(a, b)
    assert (approx >= exact - 1e-6).all()  # cost of a feasible plan
    assert ((approx - exact) / exact).max() < 0.05
    assert M.emd_sinkhorn(a, a).max() < 0.02  # identical clouds: near zero


def test_fscore_hand_case():
    gt = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])
    pred = torch.tensor([[0.0, 0, 0], [1.005, 0, 0], [10, 0, 0], [11, 0, 0]])
    # precision 2/4, recall 2/4 -> F = 0.5
    assert M.fscore(pred, gt, threshold=0.01).item() == pytest.approx(0.5)
    assert M.fscore(gt, gt, threshold=0.01).item() == pytest.approx(1.0)


def test_mmd_cov_1nna_hand_case():
    d = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.3, 0.8]])  # (gen=2, ref=3)
    mmd, cov = M.mmd_cov(d)
    assert mmd == pytest.approx((0.1 + 0.3 + 0.8) / 3)
    assert cov == pytest.approx(1 / 3)  # both generated clouds are nearest to reference 0
    # two well separated sets: every cloud's nearest neighbour has its own label -> 1-NNA 100 %
    d_rr = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    d_gg = d_rr.clone()
    d_rg = torch.full((2, 2), 5.0)
    assert M.one_nna(d_rr, d_rg, d_gg) == 1.0
    # identical sets: each cloud's nearest other cloud is its twin of the other set -> 0 %
    d_rg = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert M.one_nna(d_rr, d_rg, d_gg) == 0.0


def test_generation_metrics_and_pairwise_match_loops():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(3, 8, 3, generator=g), torch.randn(4, 8, 3, generator=g)
    d = M.pairwise_distances(x, y, "cd", batch=2)
    assert d.shape == (3, 4)
    assert d[1, 2].item() == pytest.approx(M.chamfer(x[1], y[2]).item(), rel=1e-5)
    out = M.generation_metrics(x, y, metrics=("cd", "emd_exact"))
    assert set(out) == {"MMD-CD", "COV-CD", "1-NNA-CD", "MMD-EMD", "COV-EMD", "1-NNA-EMD"}
    assert 0 <= out["1-NNA-CD"] <= 1


@pytest.mark.parametrize("bad, msg", [
    (torch.zeros(1, 0, 3), "empty"),
    (torch.tensor([[[0.0, float("nan"), 0]]]), "NaN"),
    (torch.zeros(2, 5, 2), "shape"),
])
def test_metric_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        M.chamfer(bad, torch.zeros(1, 4, 3))


def test_emd_needs_equal_sizes():
    with pytest.raises(ValueError, match="equal size"):
        M.emd_exact(torch.zeros(1, 4, 3), torch.zeros(1, 5, 3))


# --- issue 12: the published protocol, exact EMD by default, point-cloud-utils cross-checks

def test_chamfer_matches_point_cloud_utils():
    """pcu's chamfer_distance is the Euclidean variant; its nearest-neighbour indices give the squared one."""
    pcu = pytest.importorskip("point_cloud_utils")
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(250, 3)) * 0.7 + 0.2
    ta, tb = torch.tensor(a), torch.tensor(b)
    assert M.chamfer(ta, tb, squared=False).item() == pytest.approx(pcu.chamfer_distance(a, b), rel=1e-10)
    _, a_to_b, b_to_a = pcu.chamfer_distance(a, b, return_index=True)
    squared = ((a - b[a_to_b]) ** 2).sum(1).mean() + ((b - a[b_to_a]) ** 2).sum(1).mean()
    assert M.chamfer(ta, tb).item() == pytest.approx(squared, rel=1e-10)
    # the k-d tree matrix of pairwise_distances gives pcu's numbers too
    x = rng.normal(size=(3, 200, 3))
    d = M.pairwise_distances(torch.tensor(x), torch.tensor(x[[2, 0]]), "cd")
    for i in range(3):
        for j, k in enumerate([2, 0]):
            _, ij, ji = pcu.chamfer_distance(x[i], x[k], return_index=True)
            sq = ((x[i] - x[k][ij]) ** 2).sum(1).mean() + ((x[k] - x[i][ji]) ** 2).sum(1).mean()
            assert d[i, j].item() == pytest.approx(sq, rel=1e-10, abs=1e-12)


def test_emd_exact_matches_point_cloud_utils_sinkhorn():
    """pcu's Sinkhorn EMD, run long with a small blur, converges to the exact assignment cost."""
    pcu = pytest.importorskip("point_cloud_utils")
    import numpy as np

    rng = np.random.default_rng(1)
    for _ in range(2):
        a, b = rng.normal(size=(64, 3)), rng.normal(size=(64, 3)) * 0.8 + 0.3
        ref, _ = pcu.earth_movers_distance(a, b, eps=1e-2, max_iters=1000, stop_thresh=1e-12)
        assert M.emd_exact(torch.tensor(a), torch.tensor(b)).item() == pytest.approx(ref, rel=5e-3)


def test_emd_is_exact_by_default():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(3, 12, 3, generator=g), torch.randn(2, 12, 3, generator=g)
    d = M.pairwise_distances(x, y, "emd")
    assert d[2, 1].item() == pytest.approx(brute_emd_fast(x[2], y[1]), rel=1e-6)
    out = M.generation_metrics(x, y, metrics=("emd",), protocol="none")
    exact = M.generation_metrics(x, y, metrics=("emd_exact",), protocol="none")
    assert out == exact


def brute_emd_fast(a, b):
    from scipy.optimize import linear_sum_assignment

    c = torch.cdist(a.double(), b.double()).numpy()
    return c[linear_sum_assignment(c)].mean()


def test_symmetric_pairwise_matrix_equals_full_computation():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 10, 3, generator=g)
    for metric in ("cd", "emd"):
        sym = M.pairwise_distances(x, None, metric)
        full = M.pairwise_distances(x, x.clone(), metric)
        assert torch.allclose(sym, full, atol=1e-6) and torch.equal(sym, sym.t())
        assert (sym.diag() == 0).all()


def test_shape_bbox_hand_case():
    cloud = torch.tensor([[[0.0, 0, 0], [4, 0, 0], [0, 2, 0], [0, 0, 1]]])
    # box [0,4]x[0,2]x[0,1]: midpoint (2, 1, 0.5), half of the longest side 2
    expected = (cloud - torch.tensor([2.0, 1, 0.5])) / 2
    assert torch.allclose(M.shape_bbox(cloud), expected)
    with pytest.raises(ValueError, match="one location"):
        M.shape_bbox(torch.ones(1, 5, 3))
    # a generator that collapses some samples: the set and the clouds are named
    gen = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0))
    gen[[1, 3]] = 2.0
    with pytest.raises(ValueError, match=r"generated clouds \[1, 3\] \(2 of 4\) have all their points at one location"):
        M.protocol_normalize(gen, torch.randn(2, 5, 3))


def test_luo_hu_protocol_ignores_each_clouds_position_and_size_pointflow_does_not():
    g = torch.Generator().manual_seed(5)
    ref = torch.randn(6, 32, 3, generator=g)
    gen = torch.randn(6, 32, 3, generator=g) * torch.tensor([1.0, 0.5, 0.3])
    moved = gen * torch.linspace(0.5, 3, 6).view(6, 1, 1) + torch.randn(6, 1, 3, generator=g) * 4
    kept = moved.clone()
    base = M.generation_metrics(gen, ref, metrics=("cd",))
    assert M.generation_metrics(moved, ref, metrics=("cd",)) == pytest.approx(base)  # default: luo_hu
    assert torch.equal(moved, kept)  # inputs are not modified
    assert M.generation_metrics(moved, ref, metrics=("cd",), protocol="pointflow")["MMD-CD"] > 2 * base["MMD-CD"]
    # pointflow: one affine map for both sets, so a global change of units changes nothing
    pf = M.generation_metrics(gen, ref, metrics=("cd",), protocol="pointflow")
    assert M.generation_metrics(gen * 7 + 1, ref * 7 + 1, metrics=("cd",), protocol="pointflow") == pytest.approx(pf)
    with pytest.raises(ValueError, match="protocol must be one of"):
        M.protocol_normalize(gen, ref, "shapenet")


def test_reference_distances_are_reused():
    g = torch.Generator().manual_seed(6)
    ref, gen = torch.randn(4, 16, 3, generator=g), torch.randn(5, 16, 3, generator=g)
    normalized_ref = M.shape_bbox(ref)
    cache = M.reference_distances(normalized_ref, ("cd",))
    assert M.generation_metrics(gen, ref, ("cd",), ref_distances=cache) == M.generation_metrics(gen, ref, ("cd",))
    # the cached matrix is the one 1-NNA reads: references all at distance 0 of each other find each other
    fake = torch.rand(4, 4, generator=g)
    gn, rn = M.shape_bbox(gen), M.shape_bbox(ref)
    expected = M.one_nna(fake, M.pairwise_distances(rn, gn), M.pairwise_distances(gn, None))
    assert M.generation_metrics(gen, ref, ("cd",), ref_distances={"cd": fake})["1-NNA-CD"] == expected


def test_chamfer_of_large_batches_is_computed_in_chunks(monkeypatch):
    g = torch.Generator().manual_seed(7)
    a, b = torch.randn(6, 40, 3, generator=g), torch.randn(6, 50, 3, generator=g)
    whole = M.chamfer(a, b)
    monkeypatch.setattr(M, "_CHUNK_BYTES", 1)  # one pair per chunk
    assert torch.allclose(M.chamfer(a, b), whole) and torch.allclose(M.fscore(a, b, 0.5), M.fscore(a, b, 0.5))
