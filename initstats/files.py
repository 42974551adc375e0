"""Saving files: the one helper every writer of initstats uses (results, figures, reports, benchmarks).

A file is written to a temporary file beside it, flushed to disk and renamed over the target, so
a reader never sees half a file and an interrupted run leaves the previous version intact.  The
file gets the permissions a plain ``open(path, "w")`` would give it: those of the file it
replaces, else ``0o666`` less the umask (``mkstemp`` alone would make it owner-only).

This module sits at the bottom of the package: it imports only the standard library.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def _new_file_mode(p: Path) -> int:
    """The permissions ``open()`` would give: those of the file being replaced, else 0o666 less the umask."""
    try:
        return p.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: str | os.PathLike, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8 with the newlines given, or bytes) to ``path`` atomically.

    Missing parent directories are created.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out" / "table.csv"
    >>> write_atomic(target, "a,b\\n1,2\\n")
    >>> target.read_text()
    'a,b\\n1,2\\n'
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content if isinstance(content, bytes) else content.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(p))
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
