"""A local folder's content fingerprint: what a cache of the folder is named after, so that a folder rewritten in place
(or another folder of the same name) never loads from the cache of what was there before."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def content_fingerprint(folder: str | os.PathLike) -> str:
    """16 hex digits over the folder's resolved path and every file's relative path, size and modification time."""
    root = Path(folder).resolve()
    digest = hashlib.sha256(str(root).encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"\n{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]
