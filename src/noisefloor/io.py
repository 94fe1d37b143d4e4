"""Atomic file output.

Every file the pipeline produces is written to a temporary name in the same
directory and renamed into place, so a reader (a person, Snakemake, DVC or an
interrupted rerun) sees either the old complete file or the new complete one,
never a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file is removed if the body raises, so a failure leaves the
    previous version of ``path`` (if any) untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the file the permissions a plain open() would.
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            # Data must be on disk before the rename makes it visible.
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame to ``path`` as CSV (no index) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_figure(path: str | os.PathLike, fig, **kwargs) -> None:
    """Save a matplotlib figure to ``path`` atomically (format from the suffix)."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip(".") or "png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)


def files_under(path: str | os.PathLike) -> list[Path]:
    """``path`` itself, or every file below the folder ``path`` (sorted; no ``__pycache__``, no ``.pyc``)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return [path]


def fingerprint(root: str | os.PathLike, files) -> str:
    """A content hash of ``files`` in the given order (16 hex digits): each one's path relative to ``root`` and bytes.

    What a run records as the code that shaped it: the built-in model's
    modules (``pipeline.code_fingerprint``) or a user's declared deps
    (``program.deps_fingerprint``). It changes exactly when a file is edited,
    added, removed or renamed, and is the same on every machine.
    """
    digest = hashlib.sha256()
    for path in files:
        name = Path(os.path.relpath(path, root)).as_posix()      # a user's dep may lie outside the folder
        digest.update(name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
