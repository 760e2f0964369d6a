"""Safe file names: turn any user-supplied name into a plain stem that cannot leave its folder."""

from __future__ import annotations

import os
import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(name: str | os.PathLike | None, fallback: str = "image", max_length: int = 80) -> str:
    """A file stem of letters, digits, '.', '_' and '-' only: no separators, no leading dots, never empty.

    ``"../../etc/passwd"`` → ``"passwd"``; ``"C:\\x\\ünïcode name.png"`` → ``"unicode_name"``.
    """
    text = os.fspath(name) if name is not None else ""
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    stem, dot, ext = text.rpartition(".")
    text = stem if dot and stem and len(ext) <= 5 else text
    text = _UNSAFE.sub("_", text).strip("._-")[:max_length].strip("._-")
    return text or fallback
