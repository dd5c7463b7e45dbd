"""Bad and edge inputs to the purification entry points, one table per entry point (row format:
docs/gen_refusals.py; docs/refusals.md is built from these tables). Untrained tiny networks."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import multidiff.tasks.tts  # noqa: F401  (registers the kind whose loader the message names)
from multidiff.core.checkpoint import CheckpointKindError, save_checkpoint
from multidiff.core.training import TrainConfig
from multidiff.nets.classifiers import ConvClassifier
from multidiff.nets.unet_small import SmallUNet
from multidiff.tasks.purify import Defended, PurificationModel, Purifier, evaluate, train_classifier


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """A purifier and a defended classifier for 1-channel 8x8 images (untrained), a classifier trained
    on 8x8 images for one epoch (``trained``), and a folder holding checkpoints: of another kind
    (``tts``), of the trained classifier (``purifier``) and as written before the classifier's input
    size was recorded (``older``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        purifier = Purifier(SmallUNet(1, dims=2, time_scale=1000.0, base=8), t_start=0.05, sampler_steps=2)
        defended = Defended(ConvClassifier(1, 10, width=8), purifier)
        x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 2
        trained = train_classifier(x, y, 2, TrainConfig(epochs=1, progress=False, seed=0), batch_size=4, width=8)
    tmp = tmp_path_factory.mktemp("purify_bad")
    save_checkpoint(tmp / "tts", {"w": torch.zeros(1)}, {}, kind="tts")
    # "older": a classifier with no input size, as checkpoints were written before it was saved
    for folder, classifier in (("purifier", trained), ("older", defended.classifier)):
        model = PurificationModel()
        model.denoiser, model.classifier = purifier.model, classifier
        model.save(tmp / folder)
    return SimpleNamespace(purifier=purifier, defended=defended, trained=trained, tmp=tmp)


def _x(*shape, dtype=torch.float32):
    return torch.full(shape, 0.5).to(dtype)


def _same_shape_in_range(out):
    assert out.shape == (2, 1, 8, 8) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def _identity(out):
    assert torch.equal(out, _x(2, 1, 8, 8))


def _loaded_defended(c, folder, x):
    """``Defended`` around the classifier loaded from ``c.tmp / folder``, applied to ``x``."""
    classifier = PurificationModel.load(c.tmp / folder, "cpu").classifier
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return classifier, Defended(classifier, c.purifier)(x)


def _any_size_taken(result):
    classifier, logits = result
    assert getattr(classifier, "input_size", None) is None
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()


_OTHER_SIZE = ["(2, 1, 16, 16)", "images of 16x16", "trained on images of 8x8", "resize", "interpolate",
               "train a classifier on images of 16x16"]


CASES = {
    "Purifier(model)(x)": [
        dict(id="ok", given="a (2, 1, 8, 8) batch in [0, 1]", run=lambda c: c.purifier(_x(2, 1, 8, 8)),
             returns="a purified batch of the same shape and range", check=_same_shape_in_range),
        dict(id="numpy", given="a numpy array", run=lambda c: c.purifier(np.full((2, 1, 8, 8), 0.5, np.float32)),
             raises=TypeError, words=["torch.Tensor", "ndarray", "torch.as_tensor"]),
        dict(id="integers", given="an int64 tensor", run=lambda c: c.purifier(_x(2, 1, 8, 8, dtype=torch.int64)),
             raises=TypeError, words=["floating-point", "int64", "x.float()"]),
        dict(id="channels", given="3 channels to a 1-channel model", run=lambda c: c.purifier(_x(2, 3, 8, 8)),
             raises=ValueError, words=["(2, 3, 8, 8)", "1 channel", "reshape"]),
        dict(id="flat", given="flattened images (2, 64)", run=lambda c: c.purifier(_x(2, 64)),
             raises=ValueError, words=["(2, 64)", "(batch, channels, height, width)"]),
        dict(id="one-image", given="one image without a batch axis (1, 8, 8)", run=lambda c: c.purifier(_x(1, 8, 8)),
             raises=ValueError, words=["(1, 8, 8)"]),
        dict(id="empty", given="an empty batch (0, 1, 8, 8)", run=lambda c: c.purifier(_x(0, 1, 8, 8)),
             raises=ValueError, words=["empty batch"]),
        dict(id="odd-size", given="7x7 images to a U-Net that halves them", run=lambda c: c.purifier(_x(2, 1, 7, 7)),
             raises=ValueError, words=["(7, 7)", "divisible by 2", "pad"]),
        dict(id="pixels-255", given="pixels in [0, 255]", run=lambda c: c.purifier(_x(2, 1, 8, 8) * 255),
             raises=ValueError, words=["outside the declared data_range", "pixels/255"]),
        dict(id="nan", given="NaN in the batch", run=lambda c: c.purifier(_x(2, 1, 8, 8) * float("nan")),
             raises=ValueError, words=["NaN or inf"]),
        dict(id="t-start-0", given="t_start=0 (purification off)",
             run=lambda c: Purifier(c.purifier.model, t_start=0)(_x(2, 1, 8, 8)), returns="the input unchanged",
             check=_identity),
        dict(id="t-start-nan", given="t_start=nan", run=lambda c: Purifier(c.purifier.model, t_start=float("nan")),
             raises=ValueError, words=["t_start", "(0, 1]"]),
        dict(id="data-range", given="data_range=(1, 0)", run=lambda c: Purifier(c.purifier.model, data_range=(1, 0)),
             raises=ValueError, words=["data_range", "high > low"]),
    ],
    "Defended(classifier, purifier)(x)": [
        dict(id="numpy", given="a numpy array", run=lambda c: c.defended(np.full((2, 1, 8, 8), 0.5, np.float32)),
             raises=TypeError, words=["torch.Tensor", "ndarray"]),
        dict(id="channels", given="3-channel images to a 1-channel classifier",
             run=lambda c: c.defended(_x(2, 3, 8, 8)), raises=ValueError,
             words=["(2, 3, 8, 8)", "ConvClassifier", "1 channel"]),
        dict(id="flat", given="flattened images (2, 64)", run=lambda c: c.defended(_x(2, 64)), raises=ValueError,
             words=["(2, 64)", "ConvClassifier"]),
        dict(id="other-size", given="16x16 images to a classifier trained on 8x8 (was classified without a word)",
             run=lambda c: Defended(c.trained, c.purifier)(_x(2, 1, 16, 16)), raises=ValueError, words=_OTHER_SIZE),
        dict(id="n-votes-0", given="n_votes=0", run=lambda c: Defended(c.defended.classifier, c.purifier, n_votes=0),
             raises=ValueError, words=["n_votes", ">= 1"]),
    ],
    "PurificationModel.load(directory)": [
        dict(id="other-kind", given="a TTS checkpoint", run=lambda c: PurificationModel.load(c.tmp / "tts", "cpu"),
             raises=CheckpointKindError, words=["'tts' checkpoint", "multidiff.tasks.tts.load"]),
        dict(id="missing", given="a folder that does not exist", run=lambda c: PurificationModel.load(c.tmp / "nope", "cpu"),
             raises=FileNotFoundError, words=["nope"]),
        dict(id="other-size", given="16x16 images to a loaded classifier saved as trained on 8x8",
             run=lambda c: _loaded_defended(c, "purifier", _x(2, 1, 16, 16)), raises=ValueError, words=_OTHER_SIZE),
        dict(id="older-checkpoint", given="a checkpoint written before the classifier's input size was saved, "
             "16x16 images", run=lambda c: _loaded_defended(c, "older", _x(2, 1, 16, 16)),
             returns="loads, and takes inputs of any size as before", check=_any_size_taken),
    ],
    "train_classifier(x_train, y_train, n_classes)": [
        dict(id="records-size", given="8x8 images", run=lambda c: c.trained.input_size,
             returns="a classifier that records input_size (8, 8)", check=lambda s: s == (8, 8) or pytest.fail(str(s))),
    ],
    "evaluate(classifier, purifier, data)": [
        dict(id="other-size", given="16x16 test images for a classifier trained on 8x8",
             run=lambda c: evaluate(c.trained, c.purifier, (_x(2, 1, 16, 16), torch.zeros(2, dtype=torch.long)),
                                    attacks=["fgsm"], device="cpu"),
             raises=ValueError, words=["data x has shape (2, 1, 16, 16)", "trained on images of 8x8"]),
    ],
}


def test_bad_input(bad_input, check_case, ctx):
    check_case(bad_input, ctx)
