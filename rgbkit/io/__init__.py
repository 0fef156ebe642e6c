"""Input and output: LAMOST readers, label catalogs."""
from .lamost import LamostFormatError, read_lamost, read_many, write_lamost

__all__ = ["LamostFormatError", "read_lamost", "read_many", "write_lamost"]
