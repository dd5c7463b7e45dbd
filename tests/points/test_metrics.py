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
