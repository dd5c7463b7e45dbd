import numpy as np
import torch

from multidiff.tasks.imputation.masks import historical_cond_mask, random_cond_mask, training_cond_mask
import pytest

from multidiff.core.conditioning import interpolate_masked
from multidiff.tasks.imputation.windows import interpolate_series, stitch, window_owners, window_starts


def test_random_mask_only_conditions_on_observed_and_hides_a_uniform_fraction():
    g = torch.Generator().manual_seed(0)
    observed = (torch.rand(4000, 5, 8, generator=g) > 0.3).float()
    cond = random_cond_mask(observed, g)
    assert ((cond == 1) <= (observed == 1)).all()
    hidden = (observed - cond).sum((1, 2)) / observed.sum((1, 2))
    assert abs(hidden.mean().item() - 0.5) < 0.02  # ratio ~ U(0, 1)
    assert hidden.min() < 0.05 and hidden.max() > 0.95


def test_historical_mask_uses_previous_samples_pattern():
    observed = torch.tensor([[[1.0, 1, 0]], [[1.0, 0, 1]], [[0.0, 1, 1]]])
    cond = historical_cond_mask(observed)
    assert torch.equal(cond, observed * observed[[2, 0, 1]])
    mix = training_cond_mask(observed, "mix", torch.Generator().manual_seed(1))
    assert ((mix == 1) <= (observed == 1)).all()


def test_window_starts_cover_the_series_and_end_at_last_row():
    assert window_starts(100, 36, 36).tolist() == [0, 36, 64]
    assert window_starts(10, 36, 18).tolist() == [0]


def test_stitch_takes_each_row_from_the_nearest_window_centre():
    n, length = 10, 4
    starts = window_starts(n, length, 2)  # 0, 2, 4, 6
    # window w reports its own id at every position
    ws = np.stack([np.full((1, length, 1), w, dtype=float) for w in range(len(starts))])
    owner = stitch(ws, starts, n)[0, :, 0]
    centres = starts + 1.5
    for row in range(n):
        ok = [w for w, s in enumerate(starts) if s <= row < s + length]
        best = min(abs(row - centres[w]) for w in ok)
        assert abs(row - centres[int(owner[row])]) == best
    # and values come from the right position inside the window
    rows = np.stack([np.arange(s, s + length, dtype=float)[None, :, None] for s in starts])
    assert np.array_equal(stitch(rows, starts, n)[0, :, 0], np.arange(n))


def test_window_owners_are_the_nearest_centres_first_on_ties_without_a_rows_by_windows_matrix():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 80))
        length = int(rng.integers(1, n + 1))
        starts = window_starts(n, length, int(rng.integers(1, length + 1)))
        rows = np.arange(n)
        centres = starts + (length - 1) / 2.0
        inside = (rows[:, None] >= starts[None]) & (rows[:, None] < starts[None] + length)
        dense = np.where(inside, np.abs(rows[:, None] - centres[None]), np.inf).argmin(axis=1)  # the first minimum
        np.testing.assert_array_equal(window_owners(rows, starts, length), dense)
    # windows of 4 rows at 0, 2, 4, 6 (centres 1.5, 3.5, 5.5, 7.5): row 3 is nearer window 1's centre
    np.testing.assert_array_equal(window_owners(np.arange(10), np.array([0, 2, 4, 6]), 4),
                                  [0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
    # windows of 3 rows at 0 and 2 (centres 1 and 3): row 2 is 1 from both, and goes to the first
    np.testing.assert_array_equal(window_owners(np.arange(5), np.array([0, 2]), 3), [0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="no window"):
        window_owners(np.array([9]), np.array([0]), 4)


def _core_base(z):
    return interpolate_masked(torch.as_tensor(np.nan_to_num(z).T), torch.as_tensor(~np.isnan(z).T)).T.numpy()


def test_interpolate_series_is_the_core_interpolation_bit_for_bit_and_a_piece_told_its_edges_agrees():
    z = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [np.nan, np.nan], [8.0, 4.0], [np.nan, np.nan]],
                 dtype=np.float32)
    expected = [[2, 1], [2, 1.75], [4, 2.5], [6, 3.25], [8, 4], [8, 4]]  # held at the ends, linear between
    np.testing.assert_array_equal(interpolate_series(z), np.array(expected, dtype=np.float32))
    # rows 2..3 alone: the observations before are 1 row (col 0) and 2 rows (col 1) away, those after 1 row
    piece = interpolate_series(z[2:4], before=(np.array([1, 2]), np.array([2.0, 1.0])),
                               after=(np.array([1, 1]), np.array([8.0, 4.0])))
    np.testing.assert_array_equal(piece, np.array(expected[2:4], dtype=np.float32))
    np.testing.assert_array_equal(interpolate_series(np.full((3, 1), np.nan, np.float32)), np.zeros((3, 1)))
    rng = np.random.default_rng(1)
    for _ in range(200):
        n, k = int(rng.integers(1, 60)), int(rng.integers(1, 4))
        z = (rng.normal(size=(n, k)) * 10).astype(np.float32)
        z[rng.random((n, k)) < rng.random()] = np.nan
        whole = _core_base(z)
        np.testing.assert_array_equal(interpolate_series(z), whole)
        a = int(rng.integers(0, n))
        b = int(rng.integers(a + 1, n + 1))
        gaps_before, vals_before, gaps_after, vals_after = (np.zeros(k, int), np.zeros(k), np.zeros(k, int),
                                                            np.zeros(k))
        for j in range(k):
            seen = np.flatnonzero(~np.isnan(z[:a, j]))
            if len(seen):
                gaps_before[j], vals_before[j] = a - seen[-1], z[seen[-1], j]
            seen = np.flatnonzero(~np.isnan(z[b:, j]))
            if len(seen):
                gaps_after[j], vals_after[j] = seen[0] + 1, z[b + seen[0], j]
        piece = interpolate_series(z[a:b], (gaps_before, vals_before), (gaps_after, vals_after))
        np.testing.assert_array_equal(piece, whole[a:b])
