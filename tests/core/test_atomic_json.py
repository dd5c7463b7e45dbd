import json
import os
from pathlib import Path

import pytest

from multidiff.core.io import write_json_atomic, write_text_atomic


def test_write_json_atomic_writes_what_json_dumps_gives(tmp_path):
    path = tmp_path / "new" / "dir" / "out.json"  # missing parents are created
    obj = {"a": [1, 2.5, None], "when": Path("x")}
    write_json_atomic(path, obj, indent=1, default=str)
    assert path.read_text() == json.dumps(obj, indent=1, default=str)
    assert json.loads(path.read_text())["when"] == "x"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_write_json_atomic_replaces_an_existing_file(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"v": 1})
    write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_failure_inside_the_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text('{"old": true}')
    real_write_text = Path.write_text

    def half_then_fail(self, text, *args, **kwargs):  # e.g. the disk fills up half way
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_json_atomic(path, {"new": list(range(100))}, indent=1)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(path, "new text " * 100)
    monkeypatch.undo()
    assert path.read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_an_object_json_cannot_encode_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json_atomic(path, {"x": object()})
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_write_text_atomic_writes_utf8(tmp_path):
    write_text_atomic(tmp_path / "r.md", "± 95 % — ok")
    assert (tmp_path / "r.md").read_bytes() == "± 95 % — ok".encode("utf-8")
