"""The IDX file format of MNIST-style datasets (unsigned-byte arrays only).

An IDX file holds two zero bytes, a type code (``0x08``: unsigned byte), the number of
dimensions, each dimension as a big-endian 32-bit integer, then the values in C order.
Reading them here keeps torchvision optional: its wheels are built against one torch build.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> write_idx(path, torch.tensor([3, 1, 4], dtype=torch.uint8))
    >>> read_idx(path)
    tensor([3, 1, 4], dtype=torch.uint8)
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import torch

UBYTE = 0x08


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an unsigned-byte IDX file (plain or ``.gz``) into a ``uint8`` tensor.

    Args:
        path: The file.

    Returns:
        A tensor of the shape the header gives.

    Raises:
        ValueError: If the header is not an unsigned-byte IDX header or the value count does not
            match it (a truncated download, say: delete the file and prepare the data again).
    """
    path = Path(path)
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != UBYTE:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (header {data[:4]!r}).")
    ndim = data[3]
    start = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:start])
    if len(data) - start != math.prod(shape):
        raise ValueError(
            f"{path} holds {len(data) - start} values but its header says {shape}; the file is damaged or "
            "truncated: delete it and prepare the data again."
        )
    return torch.frombuffer(bytearray(data[start:]), dtype=torch.uint8).reshape(shape)


def write_idx(path: str | Path, values: torch.Tensor) -> None:
    """Write ``values`` (cast to ``uint8``) as an IDX file, gzip-compressed if ``path`` ends in ``.gz``.

    Args:
        path: The file.
        values: Any shape; values outside 0..255 wrap as in ``Tensor.to(torch.uint8)``.
    """
    path = Path(path)
    header = struct.pack(f">BBBB{values.dim()}I", 0, 0, UBYTE, values.dim(), *values.shape)
    data = header + values.to(torch.uint8).contiguous().numpy().tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
