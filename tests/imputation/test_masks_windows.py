import numpy as np
import torch

from multidiff.tasks.imputation.masks import historical_cond_mask, random_cond_mask, training_cond_mask
from multidiff.tasks.imputation.windows import stitch, window_starts


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
