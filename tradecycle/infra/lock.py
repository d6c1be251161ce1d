"""The run lock: an exclusive ``flock`` on ``<database>.lock``.

The kernel releases it when the process ends, however it ends (SIGKILL, OOM),
so a lock is never left stale and a ``running`` cycle row found by the lock
holder is known dead. It is a separate file from the database, so holding it
never blocks ``killswitch`` or the read commands.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FileLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_path_for(database_path: Path) -> Path:
    """Beside the real file (links resolved): two paths to one database share one lock."""
    real = Path(database_path).resolve()
    return real.with_name(real.name + ".lock")
