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


@pytest.mark.parametrize("n, world, even", [(12, 2, True), (10, 3, True), (10, 3, False), (2, 4, True), (2, 4, False)])
def test_shards_split_each_batch_of_the_global_batch(n, world, even):
    """Process r's batch i is its part of batch i of one process with world x the batch size: the
    same permutation, every world-th item; ``even`` pads by wrapping around so all take as many steps."""
    per = 2
    whole = [b.tolist() for b in batches(n, per * world, True, torch.Generator().manual_seed(3))]
    seeded = lambda: Batches(n, per, lambda i: i.tolist(), generator=torch.Generator().manual_seed(3))
    shards = [list(seeded().shard(r, world, even=even)) for r in range(world)]
    padded = -(-n // world) * world if even else n
    order = [x for b in whole for x in b]
    order = [order[i % n] for i in range(padded)]
    for r, shard in enumerate(shards):
        assert [x for b in shard for x in b] == order[r::world]
        assert len(Batches(n, per, lambda i: i, generator=torch.Generator()).shard(r, world, even=even)) == len(shard)
    if even:
        assert len({len(s) for s in shards}) == 1  # as many steps on every process
    else:
        assert sorted(x for s in shards for b in s for x in b) == list(range(n))  # each item once


def test_sharding_needs_one_permutation_for_all_processes():
    b = Batches(8, 2, lambda i: i, shuffle=True)
    with pytest.raises(ValueError, match="without a generator cannot be sharded"):
        b.shard(0, 2)
    shards = [list(b.shard(r, 2, generator=torch.Generator().manual_seed(1))) for r in (0, 1)]
    assert sorted(torch.cat([x for s in shards for x in s]).tolist()) == list(range(8))
    assert Batches(8, 2, lambda i: i, shuffle=False).shard(1, 2).rank == 1 and b.world_size == 1  # a copy
    with pytest.raises(ValueError, match="rank must be a whole number in \\[0, 1\\]"):
        b.shard(2, 2, torch.Generator())


def test_fabric_shards_lists_and_rejects_what_it_cannot_split():
    from multidiff.core.training import _Fabric

    engine = object.__new__(_Fabric)  # the sharding alone, without launching processes
    engine.rank, engine.world_size = 1, 2
    assert list(engine.shard([0, 1, 2, 3, 4], 0, "train_batches", even=True)) == [1, 3, 0]
    assert list(engine.shard([0, 1, 2, 3, 4], 0, "val_batches", even=False)) == [1, 3]
    with pytest.raises(TypeError, match="train_batches must be a Batches .* split over 2 processes, got generator"):
        engine.shard((i for i in range(3)), 0, "train_batches", even=True)
