"""Argument checks shared by every task, so a bad count reads the same everywhere."""
from __future__ import annotations

import numbers
from typing import Optional

__all__ = ["check_whole"]


def check_whole(name: str, value, low: int = 1, high: Optional[int] = None,
                none: Optional[str] = None) -> Optional[int]:
    """``value`` as an ``int`` when it is a whole number in ``[low, high]`` (``>= low`` without
    ``high``); otherwise ``ValueError`` naming ``name``, the bad value and what is allowed, e.g.
    ``"sampler_steps must be a whole number >= 1, got 0"``.

    Python and NumPy integers pass; bools, floats (``5.0`` too), strings and ``None`` do not.
    With ``none`` given, ``None`` is allowed as well and returned as is; ``none`` says what it
    means in the message (``"max_steps must be None (no limit) or a whole number >= 1"``).
    """
    if none is not None and value is None:
        return None
    if (isinstance(value, numbers.Integral) and not isinstance(value, bool)
            and value >= low and (high is None or value <= high)):
        return int(value)
    span = f">= {low}" if high is None else f"in [{low}, {high}]"
    allowed = f"None ({none}) or a whole number" if none is not None else "a whole number"
    raise ValueError(f"{name} must be {allowed} {span}, got {value!r}")
