"""Blob storage behind a small interface: local files now, Supabase Storage can implement it later."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class BlobStorage(Protocol):
    """Where asset bytes live. Keys are made by us (`org/project/asset.ext`), never by users."""

    def put(self, key: str, data: bytes, mime: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def local_path(self, key: str) -> Path | None:
        """A path on this machine to the blob, when the backend has one (for serving files)."""
        ...

    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Blobs as files under one directory, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not _SAFE_KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"unsafe storage key: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes, mime: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
