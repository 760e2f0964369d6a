"""Free text people type (names, comments, metadata fields): control characters removed, spaces trimmed, length
capped, so that it is safe to store, show and log."""

from __future__ import annotations

import re
from typing import Any

CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # the one pattern of characters no stored text keeps


def clean_text(value: Any, limit: int = 200) -> str:
    """`value` as text without control characters, trimmed, at most `limit` characters."""
    return CONTROL.sub("", str(value if value is not None else "")).strip()[:limit]


def clean_value(value: Any, limit: int = 200) -> Any:
    """A metadata value as stored: text cleaned (`clean_text`); numbers, booleans and None as they are; anything else
    as its text."""
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return clean_text(value, limit)
