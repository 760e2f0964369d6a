"""Test image files made by hand: decompression bombs (tiny on disk, huge when decoded) and multi-frame files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import PIL.Image


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black 1-bit PNG of width x height pixels, a few hundred kB on disk whatever its size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    compressor = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    rows_per_block = max(1, (1 << 22) // len(row))
    data = bytearray()
    for start in range(0, height, rows_per_block):
        data += compressor.compress(row * min(rows_per_block, height - start))
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(data)) + chunk(b"IEND", b""))
    return path


def frames_file(path: Path, frames: list[np.ndarray], **save_args) -> Path:
    """An animated GIF / multi-page TIFF (by `path`'s suffix) of uint8 frames; the first frame is frames[0]."""
    images = [PIL.Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], **save_args)
    return path
