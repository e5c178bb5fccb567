"""Is a dataset image file whole? A cheap check of its header and end marker, or a full decode."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

VERIFY = ("header", "full")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: empty, constant CRC
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
# Start-of-frame markers (baseline, progressive, ...): they carry the image's height and width.
JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
HEAD_BYTES = 2048  # PNG's IHDR ends at byte 33; our JPEGs carry no EXIF, so their frame header comes early
MAX_HEAD_BYTES = 65536  # a JPEG with long APP segments before its frame header
NO_FRAME = "JPEG without a frame header"


def image_problem(path: str | Path, size: int, verify: str = "header") -> str | None:
    """What is wrong with the S x S RGB image file at `path` (missing, not a PNG/JPEG, other size, truncated,
    undecodable), or None. `verify="header"` reads the signature, the size in the header and the end marker;
    "full" also decodes the pixels."""
    if verify not in VERIFY:
        raise ValueError(f"verify must be one of {VERIFY}, got {verify!r}")
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
            if head.startswith(JPEG_START) and len(head) == HEAD_BYTES and _jpeg_problem(head, JPEG_END, 0) == NO_FRAME:
                head += handle.read(MAX_HEAD_BYTES - HEAD_BYTES)
            handle.seek(max(0, handle.seek(0, 2) - len(PNG_END)))
            tail = handle.read()
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    if head.startswith(PNG_SIGNATURE):
        problem = _png_problem(head, tail, size)
    elif head.startswith(JPEG_START):
        problem = _jpeg_problem(head, tail, size)
    else:
        problem = "neither a PNG nor a JPEG file"
    if problem is None and verify == "full":
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None or image.shape != (size, size, 3):
            problem = "cannot be decoded" if image is None else f"decodes to shape {image.shape}"
    return problem


def _png_problem(head: bytes, tail: bytes, size: int) -> str | None:
    if len(head) < 33 or head[12:16] != b"IHDR":
        return "PNG without its IHDR header"
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    if (width, height) != (size, size):
        return f"PNG is {width}x{height}, expected {size}x{size}"
    if (depth, colour) != (8, 2):
        return f"PNG has bit depth {depth} and colour type {colour}, expected 8-bit RGB (8, 2)"
    if tail != PNG_END:
        return "PNG truncated (no IEND chunk at its end)"
    return None


def _jpeg_problem(head: bytes, tail: bytes, size: int) -> str | None:
    position = 2
    while position + 4 <= len(head):
        if head[position] != 0xFF:
            return "JPEG with a broken marker sequence"
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        (length,) = struct.unpack(">H", head[position + 2 : position + 4])
        if marker in JPEG_FRAMES:
            if position + 10 > len(head):
                break
            height, width, channels = struct.unpack(">HHB", head[position + 5 : position + 10])
            if (width, height, channels) != (size, size, 3):
                return f"JPEG is {width}x{height} with {channels} channels, expected {size}x{size} RGB"
            return None if tail.endswith(JPEG_END) else "JPEG truncated (no end-of-image marker)"
        if marker == 0xDA or length < 2:  # scan data before any frame header
            break
        position += 2 + length
    return NO_FRAME
