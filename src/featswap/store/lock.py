"""One writer at a time: a lock file `<store>.lock` beside the store, naming its holder."""

from __future__ import annotations

import os
import socket

from fsspec.implementations.local import LocalFileSystem

from featswap.errors import StoreError, os_error_advice
from featswap.store.location import store_filesystem


class StoreLock:
    """A lock file `<store>.lock` beside the store (not inside it, where zarr would list it as a member).

    On a local or shared filesystem the lock file is created atomically (O_EXCL). Object stores have no
    create-if-absent through fsspec, so there the lock is written and read back: it refuses a store that is
    being written, but two writers starting in the same instant could both pass. A lock left by a process
    that no longer runs on this host is taken over; any other is refused.
    """

    def __init__(self, location: str) -> None:
        self.store = location
        self.fs, on_fs = store_filesystem(location)
        self.path = on_fs + ".lock"
        self.held = False

    def acquire(self) -> None:
        holder = f"{socket.gethostname()} pid {os.getpid()}"
        try:
            for _ in range(2):
                if self._create(holder):
                    self.held = True
                    return
                if self._stale():
                    self.fs.rm_file(self.path)
                    continue
                raise StoreError(
                    f"The store {self.store} is being written by {self._holder()} (lock file {self.path}). Wait for "
                    "it to finish; if that process is gone, delete the lock file."
                )
        except OSError as err:
            raise StoreError(
                f"Cannot write the store {self.store}: creating its lock file {self.path} failed "
                f"({err.strerror or err}). {os_error_advice(err)}"
            ) from None

    def _create(self, holder: str) -> bool:
        """Create the lock file naming `holder`; False when it exists already."""
        if isinstance(self.fs, LocalFileSystem):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(holder)
            return True
        if self.fs.exists(self.path):
            return False
        self.fs.pipe_file(self.path, holder.encode())
        return self._holder() == holder

    def release(self) -> None:
        if self.held:
            if self.fs.exists(self.path):
                self.fs.rm_file(self.path)
            self.held = False

    def _holder(self) -> str:
        try:
            return bytes(self.fs.cat_file(self.path)).decode().strip() or "another process"
        except (OSError, UnicodeDecodeError):
            return "another process"

    def _stale(self) -> bool:
        host, _, pid = self._holder().partition(" pid ")
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
