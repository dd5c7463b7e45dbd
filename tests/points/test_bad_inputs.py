"""Bad and edge inputs to the point-cloud entry points, one table per entry point (row format:
docs/gen_refusals.py; docs/refusals.md is built from these tables). Nothing is trained."""
import numpy as np
import pytest
import torch

import multidiff.tasks.tts  # noqa: F401  (registers the kind whose loader the message names)
from multidiff.core.checkpoint import CheckpointKindError, save_checkpoint
from multidiff.datasets.pointclouds import read_cloud
from multidiff.tasks.points import Completer, Generator, save_clouds


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A folder of small point files, good and bad."""
    tmp = tmp_path_factory.mktemp("points_bad")
    files = {"xy.txt": "0 0\n1 0\n0 1\n", "mixed.txt": "0 0 0\n1 0\n0 1 0\n", "empty.txt": "# header only\n",
             "xyz.txt": "# x y z nx ny nz\n0 0 0 0 0 1\n1 0 0 0 0 1\n0 1 0 0 0 1\n",
             "words.txt": "x y z\n0 0 0\n", "nan.txt": "0 0 0\nnan 0 0\n", "cloud.xyz": "0 0 0\n"}
    for name, text in files.items():
        (tmp / name).write_text(text)
    np.save(tmp / "xy.npy", np.zeros((4, 2)))
    save_checkpoint(tmp / "tts", {"w": torch.zeros(1)}, {}, kind="tts")
    return tmp


def _xyz(arr):
    assert arr.shape == (3, 3) and arr.dtype == np.float64
    assert np.array_equal(arr, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])


CASES = {
    "read_cloud(path)": [
        dict(id="six-columns", given="a .txt with x y z and normals (6 columns)", run=lambda d: read_cloud(d / "xyz.txt"),
             returns="the x y z columns, (3, 3)", check=_xyz),
        dict(id="two-columns", given="a .txt of x y pairs (2 columns); was read as 'empty (0 points)'",
             run=lambda d: read_cloud(d / "xy.txt"), raises=ValueError,
             words=["line 1 has 2 values", "x y z on every line"]),
        dict(id="short-line", given="a .txt with one line of 2 values among x y z lines",
             run=lambda d: read_cloud(d / "mixed.txt"), raises=ValueError, words=["line 2 has 2 values"]),
        dict(id="empty", given="a .txt with only a comment", run=lambda d: read_cloud(d / "empty.txt"),
             raises=ValueError, words=["empty (0 points)"]),
        dict(id="header-words", given="a .txt whose first line is 'x y z'", run=lambda d: read_cloud(d / "words.txt"),
             raises=ValueError, words=["expected x y z numbers"]),
        dict(id="nan", given="a point with NaN coordinates", run=lambda d: read_cloud(d / "nan.txt"),
             raises=ValueError, words=["1 points with NaN or inf", "remove them"]),
        dict(id="npy-two-columns", given="a .npy of shape (4, 2)", run=lambda d: read_cloud(d / "xy.npy"),
             raises=ValueError, words=["shape (N, 3)", "(4, 2)"]),
        dict(id="missing", given="a path that does not exist", run=lambda d: read_cloud(d / "nope.ply"),
             raises=FileNotFoundError, words=["no such file"]),
        dict(id="suffix", given="an unsupported suffix (.xyz)", run=lambda d: read_cloud(d / "cloud.xyz"),
             raises=ValueError, words=["unsupported point-cloud file type", ".ply"]),
    ],
    "save_clouds(cloud, path)": [
        dict(id="two-d", given="an (N, 2) array", run=lambda d: save_clouds(np.zeros((4, 2)), d / "out.npy"),
             raises=ValueError, words=["shape (N, 3)"]),
        dict(id="suffix", given="a .csv path", run=lambda d: save_clouds(np.zeros((4, 3)), d / "out.csv"),
             raises=ValueError, words=["cannot save", ".ply"]),
    ],
    "Completer.complete(partial) / Generator.sample(n)": [
        dict(id="not-fitted", given="a Completer that was never fitted",
             run=lambda d: Completer(num_points=64).complete(np.zeros((8, 3))), raises=RuntimeError,
             words=["not fitted", "fit(", "load("]),
        dict(id="not-fitted-sample", given="a Generator that was never fitted", run=lambda d: Generator(num_points=64).sample(2),
             raises=RuntimeError, words=["not fitted"]),
        dict(id="num-points-1", given="num_points=1", run=lambda d: Generator(num_points=1), raises=ValueError,
             words=["num_points", ">= 2"]),
        dict(id="other-kind", given="Generator.load of a TTS checkpoint", run=lambda d: Generator.load(d / "tts"),
             raises=CheckpointKindError, words=["'tts' checkpoint", "multidiff.tasks.tts.load"]),
    ],
}


def test_bad_input(bad_input, check_case, ctx):
    check_case(bad_input, ctx)
