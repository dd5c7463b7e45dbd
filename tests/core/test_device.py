"""core.device.seeded: seeded work inside, the caller's generators untouched outside."""
import random

import numpy as np
import torch

from multidiff.core.device import seeded


def _draws():
    return random.random(), float(np.random.random()), float(torch.rand(1))


def test_seeded_is_reproducible_and_restores_the_global_generators():
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        expected = _draws()
        random.setstate(states[0]), np.random.set_state(states[1]), torch.set_rng_state(states[2])
        with seeded(3):
            inside = _draws()
        with seeded(3):
            assert _draws() == inside
        assert _draws() == expected  # the caller's sequences continue as if nothing had run
        random.setstate(states[0]), np.random.set_state(states[1]), torch.set_rng_state(states[2])
        with seeded(None):  # no seed: the body draws from the caller's generators, which move on
            assert _draws() == expected
        assert _draws() != expected
    finally:
        random.setstate(states[0]), np.random.set_state(states[1]), torch.set_rng_state(states[2])
