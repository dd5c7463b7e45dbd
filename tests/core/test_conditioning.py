import numpy as np
import pandas as pd
import pytest
import torch

from multidiff.core.conditioning import interpolate_masked, pchip_masked


def _pandas_reference(values: np.ndarray, mask: np.ndarray, fill: float) -> np.ndarray:
    """pandas' linear interpolation along the last axis, edges held (limit_direction="both")."""
    flat_v, flat_m = values.reshape(-1, values.shape[-1]), mask.reshape(-1, values.shape[-1])
    rows = []
    for v, m in zip(flat_v, flat_m):
        s = pd.Series(np.where(m, v, np.nan)).interpolate(method="linear", limit_direction="both")
        rows.append(s.fillna(fill).to_numpy())
    return np.stack(rows).reshape(values.shape)


@pytest.mark.parametrize("p_known", [0.1, 0.3, 0.7])
def test_matches_pandas_linear_interpolation_on_random_batched_masks(p_known):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 4, 20))
    mask = rng.random((3, 4, 20)) < p_known
    mask[0, 0] = False  # a row with nothing known
    mask[0, 1] = False
    mask[0, 1, 7] = True  # a row with one known entry
    out = interpolate_masked(torch.tensor(values), torch.tensor(mask, dtype=torch.float64), fill=-3.0).numpy()
    np.testing.assert_allclose(out, _pandas_reference(values, mask, -3.0), rtol=0, atol=1e-12)


def test_hand_computed_small_example():
    values = torch.tensor([[9.0, 1.0, 9.0, 9.0, 4.0, 9.0, 2.0, 9.0]])
    mask = torch.tensor([[0, 1, 0, 0, 1, 0, 1, 0]])
    out = interpolate_masked(values, mask)
    assert torch.equal(out, torch.tensor([[1.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 2.0]]))


def test_edge_cases_one_known_none_known_all_known():
    values = torch.tensor([[5.0, -2.0, 7.0, 0.5], [5.0, -2.0, 7.0, 0.5], [5.0, -2.0, 7.0, 0.5]])
    mask = torch.tensor([[0, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    out = interpolate_masked(values, mask, fill=11.0)
    assert torch.equal(out[0], torch.full((4,), 7.0))    # one known entry -> constant
    assert torch.equal(out[1], torch.full((4,), 11.0))   # none known -> fill
    assert torch.equal(out[2], values[2])                # all known -> identity
    assert torch.equal(interpolate_masked(values, torch.zeros_like(mask)), torch.zeros_like(values))  # fill=0


def test_known_entries_come_back_unchanged_and_unknown_values_are_ignored():
    g = torch.Generator().manual_seed(1)
    values = torch.randn(2, 3, 15, generator=g)
    mask = (torch.rand(2, 3, 15, generator=g) < 0.4).float()
    out = interpolate_masked(values, mask)
    assert torch.equal(out[mask.bool()], values[mask.bool()])
    # whatever sits at the unknown entries (even NaN) does not change the result
    scrambled = torch.where(mask.bool(), values, torch.full_like(values, float("nan")))
    assert torch.equal(interpolate_masked(scrambled, mask), out)


def test_pchip_matches_scipy_between_interior_known_entries():
    from scipy.interpolate import PchipInterpolator
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = np.cumsum(rng.standard_normal(60))
        known = rng.random(60) < 0.4
        known[[0, -1]] = True
        ours = pchip_masked(torch.tensor(y)[None], torch.tensor(known)[None])[0].numpy()
        x = np.flatnonzero(known)
        ref = PchipInterpolator(x, y[known])(np.arange(60))
        inner = (np.arange(60) > x[1]) & (np.arange(60) < x[-2])  # scipy's end slopes differ from ours
        np.testing.assert_allclose(ours[inner], ref[inner], atol=1e-10)
        assert np.array_equal(ours[known], y[known])


def test_pchip_holds_edges_keeps_monotone_data_monotone_and_fills_empty_rows():
    v = torch.tensor([[0.0, 9.0, 1.0, 9.0, 2.0, 9.0, 10.0, 9.0], [5.0] * 8])
    m = torch.tensor([[0, 1, 0, 1, 1, 0, 1, 0], [0] * 8]).bool()
    out = pchip_masked(v, m, fill=-1.0)
    assert out[0, 0] == 9.0 and out[0, 7] == 10.0          # nearest value held past the ends
    assert torch.equal(out[1], torch.full((8,), -1.0))       # no known entry: fill
    mono = pchip_masked(torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 5.0]), torch.tensor([1, 0, 1, 0, 0, 1]).bool())
    assert (mono.diff() >= 0).all()                           # shape-preserving: no overshoot on monotone data
