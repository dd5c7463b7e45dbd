import pytest
import torch

from multidiff.nets.point_denoiser import PointDenoiser


def test_permutation_equivariance():
    torch.manual_seed(0)
    net = PointDenoiser(channels=16, layers=2, k=4, in_features=1).eval()
    for p in net.out.parameters():  # the zero-initialised head would make the test vacuous
        torch.nn.init.normal_(p)
    x, f = torch.randn(2, 40, 3), (torch.rand(2, 40, 1) > 0.5).float()
    t = torch.tensor([3, 700])
    perm = torch.randperm(40)
    with torch.no_grad():
        out, out_p = net(x, t, f), net(x[:, perm], t, f[:, perm])
    assert out.abs().mean() > 1e-3
    assert torch.allclose(out[:, perm], out_p, atol=1e-5)


def test_time_conditioning_changes_output():
    torch.manual_seed(0)
    net = PointDenoiser(channels=16, layers=1, k=4).eval()
    torch.nn.init.normal_(net.out[1].weight)
    x = torch.randn(1, 20, 3)
    with torch.no_grad():
        assert not torch.allclose(net(x, torch.tensor([0])), net(x, torch.tensor([900])))


def test_shape_errors():
    net = PointDenoiser(channels=8, layers=1, k=4, in_features=1)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        net(torch.zeros(1, 5, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match="per-point features"):
        net(torch.zeros(1, 5, 3), torch.tensor([0]))
