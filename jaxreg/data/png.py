"""A tiny PNG codec for 8-bit grey images (filter 0, no interlace): what the TFDS builder needs
to hand images to TFDS without TensorFlow or Pillow."""
from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["png_encode", "png_decode"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_encode(images: np.ndarray) -> list[bytes]:
    """PNG bytes (8-bit grey, filter 0) of each image in ``(n, h, w)`` uint8.

    TFDS encodes numpy images with TensorFlow; handing it PNG bytes made
    here needs neither TensorFlow nor Pillow.
    """
    n, h, w = images.shape
    rows = np.zeros((n, h, w + 1), np.uint8)  # a 0 ("None") filter byte per row
    rows[:, :, 1:] = images
    head = _PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    tail = _chunk(b"IEND", b"")
    return [head + _chunk(b"IDAT", zlib.compress(r.tobytes(), 6)) + tail for r in rows]


def png_decode(data: bytes) -> np.ndarray | None:
    """Inverse of :func:`png_encode`: ``(h, w)`` uint8, or ``None`` for any
    PNG that is not 8-bit grey, non-interlaced, with only filter 0."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    pos, idat, ihdr = 8, [], None
    while pos + 8 <= len(data):
        (length,), tag = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
    if ihdr is None or ihdr[2:] != (8, 0, 0, 0, 0):
        return None
    w, h = ihdr[:2]
    try:
        rows = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    except zlib.error:
        return None
    if rows.size != h * (w + 1) or rows.reshape(h, w + 1)[:, 0].any():
        return None
    return rows.reshape(h, w + 1)[:, 1:]
