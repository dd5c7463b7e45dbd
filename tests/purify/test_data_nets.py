import pytest
import torch

from multidiff.datasets.digits import load_digits
from multidiff.datasets.labelled import load_dataset
from multidiff.nets.classifiers import ConvClassifier
from multidiff.nets.unet_small import SmallUNet


def test_digits_are_real_scaled_and_stratified():
    d = load_digits(test_fraction=0.25, seed=0)
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert d.x_train.min() == 0 and d.x_train.max() == 1 and d.x_train.dtype == torch.float32
    assert torch.allclose(d.x_train * 16, (d.x_train * 16).round())  # 17 grey levels 0..16
    assert torch.bincount(d.y_test).min() >= 43 and d.classes[3] == "3"
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.5)


def test_etth1_season_windows(data_dir):
    d = load_dataset("etth1", path=data_dir / "ett")
    assert d.x_train.shape[1:] == (7, 24) and len(d.x_train) + len(d.x_test) == 725 and len(d.x_test) == 179
    assert d.y_train[0] == 2 and d.classes[2] == "summer"  # 2016-07-01 is in summer
    assert d.x_train.min() == 0 and d.x_train.max() == 1 and d.x_test.max() <= 1
    assert set(d.y_test.tolist()) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("cifar10")


@pytest.mark.parametrize("dims,shape", [(2, (3, 2, 8, 8)), (1, (3, 7, 24))])
def test_nets_shapes(dims, shape):
    unet = SmallUNet(shape[1], base=8, mults=(1, 2), dims=dims, time_dim=16)
    assert unet(torch.randn(shape), torch.rand(3)).shape == shape
    assert unet(torch.randn(shape), torch.rand(1)).shape == shape
    clf = ConvClassifier(shape[1], 4, dims=dims, width=8)
    assert clf(torch.rand(shape)).shape == (3, 4)
    with pytest.raises(ValueError, match="divisible by 2"):
        unet(torch.randn(*shape[:2], *([7] * dims)), torch.rand(3))
    with pytest.raises(ValueError, match="dimensions"):
        clf(torch.rand(shape[1:]))
    with pytest.raises(ValueError, match="dims must be"):
        SmallUNet(1, dims=3)
