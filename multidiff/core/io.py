"""Atomic file writers: a reader sees the old file or the new one, never a half-written one.

Every file multidiff writes (checkpoint sidecars, JSON results, reports, plots, audio, CSV)
goes through :func:`write_atomic`: the content is written to a temporary sibling that is then
renamed onto the target, and a failed write leaves no temporary file behind.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["write_atomic", "write_text_atomic", "write_json_atomic"]


def write_atomic(path: str | os.PathLike, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path`` (whose folder is
    created if needed). The file gets the usual permissions (0666 minus the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: readers see the old file or the new one,
    never a half-written one, and a failed write leaves no temporary file behind."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any, **json_kwargs) -> None:
    """``json.dumps(obj, **json_kwargs)`` written to ``path`` atomically (see :func:`write_text_atomic`).

    The object is serialised before the file is touched, so an object that is not JSON-able
    raises ``TypeError`` and leaves an existing ``path`` as it was."""
    write_text_atomic(path, json.dumps(obj, **json_kwargs))
