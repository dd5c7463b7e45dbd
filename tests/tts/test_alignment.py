import itertools

import pytest
import torch

from multidiff.audio.alignment import durations_to_path, maximum_path


def brute_force(value):
    """Best monotonic surjective path by enumerating every duration split of the frames."""
    n_tok, n_fr = value.shape
    best, best_path = -float("inf"), None
    for cuts in itertools.combinations(range(1, n_fr), n_tok - 1):
        bounds = (0,) + cuts + (n_fr,)
        path = torch.zeros(n_tok, n_fr)
        for i in range(n_tok):
            path[i, bounds[i]:bounds[i + 1]] = 1
        score = float((value * path).sum())
        if score > best:
            best, best_path = score, path
    return best, best_path


@pytest.mark.parametrize("seed", range(6))
def test_mas_matches_brute_force_on_a_padded_batch(seed):
    g = torch.Generator().manual_seed(seed)
    lengths = [(3, 7), (4, 6), (1, 5), (2, 2)]
    value = torch.randn(len(lengths), 4, 7, generator=g)
    mask = torch.zeros_like(value)
    for b, (tx, ty) in enumerate(lengths):
        mask[b, :tx, :ty] = 1
    path = maximum_path(value, mask)
    for b, (tx, ty) in enumerate(lengths):
        best, ref = brute_force(value[b, :tx, :ty])
        assert torch.equal(path[b, :tx, :ty], ref)
        assert float((value[b] * path[b]).sum()) == pytest.approx(best, rel=1e-6)
        assert path[b, tx:].sum() == 0 and path[b, :, ty:].sum() == 0
        assert torch.equal(path[b, :tx, :ty].sum(0), torch.ones(ty))  # each frame on exactly one token


def test_mas_recovers_a_planted_alignment_and_keeps_inputs():
    durations = torch.tensor([[3, 1, 4, 2]])
    truth = durations_to_path(durations)
    value = truth * 5.0 + 0.1 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))
    before = value.clone()
    assert torch.equal(maximum_path(value, torch.ones_like(value)), truth)
    assert torch.equal(value, before)


def test_mas_rejects_too_few_frames():
    with pytest.raises(ValueError, match="at least as many mel frames"):
        maximum_path(torch.zeros(1, 5, 3), torch.ones(1, 5, 3))


def test_durations_to_path_handles_zero_durations():
    path = durations_to_path(torch.tensor([[2, 0, 1]]), n_frames=4)
    assert path.tolist() == [[[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]]
