"""Where recordings live. ``RecordingStore`` is the interface (an S3-compatible store can be added
beside ``LocalStore`` without touching the jobs); a file only becomes visible under its key once
it is complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

PARTIAL_SUFFIX = ".partial"


class RecordingStore(Protocol):
    def writer(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A file to write; published under ``key`` only when the block ends without an error."""

    def open(self, key: str) -> BinaryIO:
        """The stored bytes (``FileNotFoundError`` when absent)."""

    def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None:
        """A file on this machine to serve the recording from (None for remote stores, which
        would serve through presigned links instead)."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens when it is absent)."""


class LocalStore:
    """Files under a directory (``RECORDINGS_DIR``), written to a temporary name and renamed."""

    def __init__(self, root: str | Path):
        self.root = Path(root).absolute()  # Flask's send_file reads relative paths from the app's package

    def path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError("a recording key is a plain file name")
        return self.root / key

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        target = self.path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=f".{key}.", suffix=PARTIAL_SUFFIX)
        try:
            with os.fdopen(handle, "wb") as sink:
                yield sink
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temporary, target)  # atomic: readers see the whole file or none
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def local_path(self, key: str) -> Path | None:
        path = self.path(key)
        return path if path.is_file() else None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def remove_abandoned(self, older_than: float = 3600) -> int:
        """Delete partial files left by a process killed mid-download; returns how many."""
        removed = 0
        for partial in self.root.glob(f".*{PARTIAL_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if time.time() - partial.stat().st_mtime > older_than:
                    partial.unlink()
                    removed += 1
        return removed
