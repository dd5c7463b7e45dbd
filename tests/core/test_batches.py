import pytest
import torch

from multidiff.core.training import Batches, batches, n_batches


@pytest.mark.parametrize("n, size, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, True, [3, 3, 3]),
    (2, 3, True, [2]),  # a short batch that is the only one is kept
    (0, 3, False, []),
])
def test_batches_cover_every_item_once_in_chunks(n, size, drop_last, sizes):
    out = list(batches(n, size, shuffle=False, drop_last=drop_last))
    assert [len(b) for b in out] == sizes == [size] * (len(sizes) - 1) + sizes[-1:] and n_batches(n, size, drop_last) == len(sizes)
    if sizes:
        assert torch.equal(torch.cat(out), torch.arange(sum(sizes)))


def test_shuffled_batches_draw_one_permutation_per_pass_from_the_generator():
    g = torch.Generator().manual_seed(5)
    first, second = torch.cat(list(batches(10, 4, True, g))), torch.cat(list(batches(10, 4, True, g)))
    ref = torch.Generator().manual_seed(5)
    assert torch.equal(first, torch.randperm(10, generator=ref)) and torch.equal(second, torch.randperm(10, generator=ref))
    assert not torch.equal(first, second) and sorted(first.tolist()) == list(range(10))


def test_batches_object_is_reiterable_with_a_length_and_gathers():
    data = {"x": torch.arange(7.0), "y": -torch.arange(7)}
    b = Batches(7, 3, lambda i: {k: v[i] for k, v in data.items()}, shuffle=True,
                generator=torch.Generator().manual_seed(0), drop_last=True)
    passes = [list(b), list(b)]
    assert len(b) == 2 and all(len(p) == 2 for p in passes)
    for p in passes:
        for batch in p:
            assert torch.equal(batch["y"], -batch["x"].long())
    assert not torch.equal(passes[0][0]["x"], passes[1][0]["x"])
    with pytest.raises(ValueError, match="batch_size must be"):
        Batches(3, 0, lambda i: i)
