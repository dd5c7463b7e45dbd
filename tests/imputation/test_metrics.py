import numpy as np
import pytest
import torch

from multidiff.metrics.imputation import CSDI_QUANTILES, crps_quantile, masked_mae, masked_rmse


def test_mae_rmse_by_hand():
    target = np.array([[1.0, 2.0], [3.0, np.nan]])
    point = np.array([[2.0, 2.0], [1.0, 100.0]])
    mask = np.array([[1, 1], [1, 0]])
    assert masked_mae(point, target, mask) == pytest.approx((1 + 0 + 2) / 3)
    assert masked_rmse(point, target, mask) == pytest.approx(np.sqrt((1 + 0 + 4) / 3))


def test_crps_of_a_point_mass_by_hand():
    # every quantile of samples equal to 3 is 3; pinball 2 (1 - q) for target 2; mean(1 - q) = 0.5; / |2|
    samples = np.full((10, 1), 3.0)
    assert crps_quantile(samples, np.array([2.0]), np.array([True])) == pytest.approx(0.5)


def _csdi_reference(target, forecast, eval_points):
    """CSDI's calc_quantile_CRPS (official code, torch), for comparison."""
    quantiles = np.arange(0.05, 1.0, 0.05)
    denom = torch.sum(torch.abs(target * eval_points))
    crps = 0
    for q in quantiles:
        q_pred = torch.quantile(forecast, q, dim=1)
        crps += 2 * torch.sum(torch.abs((q_pred - target) * eval_points * ((target <= q_pred) * 1.0 - q))) / denom
    return crps.item() / len(quantiles)


def test_crps_matches_csdi_reference_code():
    g = np.random.default_rng(0)
    target = g.normal(5, 2, size=(4, 7, 3))
    samples = target[None] + g.normal(0, 1, size=(50, 4, 7, 3))
    mask = g.random((4, 7, 3)) < 0.4
    ref = _csdi_reference(torch.tensor(target), torch.tensor(samples).permute(1, 0, 2, 3), torch.tensor(mask * 1.0))
    assert crps_quantile(samples, target, mask) == pytest.approx(ref, rel=1e-6)  # CSDI builds its levels with np.arange(0.05, 1, 0.05)
    assert len(CSDI_QUANTILES) == 19


def test_metric_errors():
    with pytest.raises(ValueError, match="selects no entries"):
        masked_mae(np.zeros(3), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        masked_mae(np.zeros(3), np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="samples must have shape"):
        crps_quantile(np.zeros((5, 2)), np.ones(3), np.ones(3))
