import json

import pytest
import torch
from torch import nn

from multidiff.core import checkpoint
from multidiff.core.checkpoint import (FORMAT_VERSION, CheckpointKindError, checkpoint_identity, decode_labels,
                                       encode_labels, load_checkpoint, load_state_strict, register_kind,
                                       registered_kinds, save_checkpoint)


def _save(path):
    return save_checkpoint(path, {"net": {"w": torch.arange(4096.0), "b": torch.ones(3)}}, {"kind": "test"})


def test_checkpoint_records_version_and_checksum_and_loads(tmp_path):
    _save(tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION == 2 and len(meta["weights_sha256"]) == 64
    assert (meta["kind"], meta["kind_version"]) == ("states", 1) == checkpoint_identity(tmp_path / "ck")
    states, config = load_checkpoint(tmp_path / "ck")
    assert config == {"kind": "test"} and torch.equal(states["net"]["w"], torch.arange(4096.0))


def test_corrupted_weights_fail_the_checksum(tmp_path):
    weights = _save(tmp_path / "ck") / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="weights.safetensors does not match the checksum in config.json: "
                                         "the file is corrupted or was modified"):
        load_checkpoint(tmp_path / "ck")


def test_unreadable_weights_give_a_clear_error(tmp_path):
    d = _save(tmp_path / "ck")
    meta = json.loads((d / "config.json").read_text())
    garbage = b"not a safetensors file at all"
    (d / "weights.safetensors").write_bytes(garbage)
    meta["weights_sha256"] = __import__("hashlib").sha256(garbage).hexdigest()  # passes the checksum
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="weights.safetensors cannot be read as safetensors"):
        load_checkpoint(d)


@pytest.mark.parametrize("version", [None, 0, 1])
def test_checkpoints_from_before_kinds_are_refused(tmp_path, version):
    """Development versions wrote format 0 (no version key, no checksum) and 1 (no kind): they
    are not read (the package was never released with them)."""
    d = _save(tmp_path / "ck")
    meta = json.loads((d / "config.json").read_text())
    del meta["kind"], meta["kind_version"], meta["format_version"]
    if version is not None:
        meta["format_version"] = version
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="from before checkpoint kinds; .*re-save or re-train"):
        load_checkpoint(d)
    with pytest.raises(ValueError, match="from before checkpoint kinds"):
        checkpoint_identity(d)


def test_broken_or_newer_config_gives_a_clear_error(tmp_path):
    d = _save(tmp_path / "ck")
    text = (d / "config.json").read_text()
    (d / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON.*truncated or corrupted"):
        load_checkpoint(d)
    (d / "config.json").write_text(json.dumps({"config": {}}))
    with pytest.raises(ValueError, match=r"config\.json is not a multidiff checkpoint config.*'states'"):
        load_checkpoint(d)
    meta = json.loads(text)
    meta["format_version"] = FORMAT_VERSION + 1
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="written by a newer multidiff; upgrade"):
        load_checkpoint(d)


def test_labels_round_trip_through_json():
    labels = ["a", 3, 2.5, True, None, ("pm25", "station 1"), ("x", ("nested", 1))]
    back = decode_labels(json.loads(json.dumps(encode_labels(labels))))
    assert back == labels and isinstance(back[5], tuple) and isinstance(back[6][1], tuple)
    import numpy as np
    import pandas as pd
    assert decode_labels(encode_labels(pd.Index([np.int64(4)]))) == [4]
    with pytest.raises(ValueError, match="Timestamp cannot be stored"):
        encode_labels([pd.Timestamp("2020-01-01")])
    with pytest.raises(ValueError, match="invalid encoded column label"):
        decode_labels([{"oops": 1}])


def test_load_state_strict_names_the_mismatch():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    good = {k: v.clone() + 1 for k, v in net.state_dict().items()}
    load_state_strict(net, good, "checkpoint a")
    assert torch.equal(net[0].bias, good["0.bias"])
    bad = {k: v + 5 for k, v in good.items()}
    del bad["1.bias"]
    bad["2.weight"] = torch.zeros(1)
    bad["0.weight"] = torch.zeros(5, 2)
    with pytest.raises(ValueError) as err:
        load_state_strict(net, bad, "checkpoint a")
    msg = str(err.value)
    assert "checkpoint a does not match this Sequential" in msg
    assert "missing parameters: 1.bias" in msg and "unknown parameters: 2.weight" in msg
    assert "0.weight (5, 2) vs (3, 2)" in msg and "version" in msg
    assert torch.equal(net[0].bias, good["0.bias"])  # nothing was loaded


def test_kind_is_written_and_checked(tmp_path):
    import multidiff.tasks.points  # noqa: F401  (registers the points kinds)
    d = save_checkpoint(tmp_path / "ck", {"net": {"w": torch.ones(2)}}, {"a": 1}, kind="points.completer",
                        kind_version=3)
    assert checkpoint_identity(d) == ("points.completer", 3)
    assert load_checkpoint(d, kind=("points.generator", "points.completer"))[1] == {"a": 1}
    with pytest.raises(CheckpointKindError) as err:
        load_checkpoint(d, kind="points.generator")
    msg = str(err.value)  # names the kind found and the loader that fits, with the path filled in
    assert "holds a 'points.completer' checkpoint" in msg and "reads 'points.generator'" in msg
    assert f"Completer.load({d})" in msg and "multidiff points complete" in msg
    with pytest.raises(ValueError, match="version 3, but this multidiff reads up to version 2"):
        load_checkpoint(d, kind="points.completer", max_kind_version=2)
    with pytest.raises(ValueError, match="unknown checkpoint kind 'nope': the module that saves it registers it"):
        save_checkpoint(tmp_path / "x", {}, {}, kind="nope")
    assert all(isinstance(v, str) and "DIR" in v for v in registered_kinds().values())


@pytest.fixture
def toy_kind(monkeypatch):
    """A kind registered for one test only."""
    monkeypatch.setattr(checkpoint, "_KINDS", dict(checkpoint._KINDS))
    register_kind("toy", "toy.load(DIR) (command line: toy DIR)")
    return "toy"


def test_each_task_registers_the_kinds_it_saves():
    import multidiff.tasks.forecasting  # noqa: F401
    import multidiff.tasks.imputation  # noqa: F401
    import multidiff.tasks.points  # noqa: F401
    import multidiff.tasks.purify  # noqa: F401
    import multidiff.tasks.tts  # noqa: F401
    # a subset: tests may register kinds of their own in the same process (the contract's toy task)
    assert {"states", "training", "imputer", "imputation.network", "points.generator", "points.completer",
            "points.latent", "points.latent_completer", "tts", "purifier", "forecasting.timegrad",
            "forecasting.csdi"} <= set(registered_kinds())


def test_a_registered_kind_names_its_loader_and_an_unregistered_one_its_task(tmp_path, toy_kind):
    d = save_checkpoint(tmp_path / "ck", {"net": {"w": torch.ones(2)}}, {}, kind=toy_kind)
    with pytest.raises(CheckpointKindError, match=rf"holds a 'toy' checkpoint.*load it with toy\.load\({d}\) "
                                                  rf"\(command line: toy {d}\)"):
        load_checkpoint(d, kind="states")
    del checkpoint._KINDS["toy"]  # as when the task that registers it is not imported
    with pytest.raises(CheckpointKindError) as err:
        load_checkpoint(d, kind="states")
    msg = str(err.value)
    assert "holds a 'toy' checkpoint, but this loader reads 'states'" in msg
    assert "the task package (multidiff.tasks.<task>) that saves 'toy' checkpoints" in msg
    assert "not registered here (its task is not imported" in msg


def test_register_kind_refuses_a_second_owner_and_a_text_without_dir(toy_kind):
    register_kind("toy", "toy.load(DIR) (command line: toy DIR)")  # the same text again: nothing happens
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_kind("toy", "other.load(DIR)")
    with pytest.raises(ValueError, match="with DIR for the checkpoint's folder"):
        register_kind("toy2", "toy.load(path)")
    assert registered_kinds()["toy"] == "toy.load(DIR) (command line: toy DIR)"
