"""rgbkit's errors: one base class, and one for "this file (or folder) cannot be used, because ...".

Every error names the thing and the reason, so a bulk run can record
``(path, reason)`` per file and go on. They stay ``ValueError`` subclasses
(as before), so existing ``except ValueError`` code keeps working.
"""
from __future__ import annotations

__all__ = ["RgbkitError", "FileFormatError"]


class RgbkitError(Exception):
    """Base class of every error rgbkit raises on purpose."""


class FileFormatError(RgbkitError, ValueError):
    """A file or folder that cannot be used; ``path`` and ``reason`` say which and why."""

    what = ""  # how the message names the path, e.g. "model folder"

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.what + ' ' if self.what else ''}{self.path}: {reason}")

    def __reduce__(self):  # rebuilt from (path, reason) when it crosses a process boundary
        return type(self), (self.path, self.reason)
