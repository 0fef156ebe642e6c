"""Small file helpers used everywhere: atomic writes and sha256 digests."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["FITS_MAGIC", "CARD_HASH", "atomic_write", "sha256_file", "card_digest"]

FITS_MAGIC = b"SIMPLE  ="
"""The first bytes of every FITS file (a cheap ``identify`` check)."""


def atomic_write(path, write) -> Path:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then move it into place.

    ``os.replace`` is atomic on one file system, so a killed process never
    leaves half a file under ``path``.
    """
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


CARD_HASH = "card_sha256"
"""The model card's entry holding the sha256 of the rest of the card."""


def card_digest(card: dict) -> str:
    """sha256 of a model card's canonical JSON without its own hash entry (keys sorted, no spaces).

    Here (no torch import) so that a catalog run can fingerprint model folders without loading them.
    """
    body = {k: v for k, v in card.items() if k != CARD_HASH}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
