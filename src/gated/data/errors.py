"""Errors that tell a user which file (and which line of it) to fix.

A loader that meets bad data raises :class:`DataError`, whose message starts
with ``path:line:`` like a compiler's, so editors and terminals can jump to it.
A loader whose optional package is not installed raises the ImportError that
:func:`missing_package` builds, which says what to install.
"""

from __future__ import annotations

import os


class DataError(ValueError):
    """Bad data in ``path``, at 1-based ``line`` when one can be named.

    ``str(error)`` is ``"path:line: reason"``, or ``"path: reason"`` when
    ``line`` is None. The parts stay available as ``path``, ``line`` and
    ``reason`` for callers that format errors their own way.
    """

    def __init__(self, path: str | os.PathLike, reason: str, line: int | None = None):
        self.path = os.fspath(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):
        # The default pickling would call DataError(message) and lose the parts;
        # worker processes (DataLoader, torchrun) send errors back pickled.
        return (type(self), (self.path, self.reason, self.line))


def missing_package(package: str, extra: str) -> ImportError:
    """The ImportError to raise when optional ``package`` is absent.

    ``extra`` names the optional-dependency group of gated that brings it in,
    so the message offers both ``pip install "gated[extra]"`` and the package alone.
    """
    message = (
        f"this needs the Python package '{package}', which is not installed; "
        f'install it with: pip install "gated[{extra}]" (or: pip install {package})'
    )
    return ImportError(message, name=package)
