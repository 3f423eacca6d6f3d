"""Writing files and directories so that readers see the old version or the new one,
never half of one."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Yields a file object for a temporary file in ``path``'s folder (created if needed);
    on success it is flushed, fsynced, made world-readable (mkstemp makes 0600) and renamed
    over ``path``; on any error it is removed and ``path`` is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fsync_path(path) -> None:
    """Flush a file or directory to disk (directories: where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # directories cannot be opened on some platforms (Windows)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sibling_name(path: Path, tag: str) -> Path:
    """An unused hidden name beside ``path``, e.g. ``.biggan-128.tmp-3f9a0c2b1e7d``."""
    while True:
        candidate = path.parent / f".{path.name}.{tag}-{secrets.token_hex(6)}"
        if not os.path.lexists(candidate):
            return candidate


def _make_sibling_dir(path: Path, tag: str) -> Path:
    """A new empty directory beside ``path``. Unlike ``tempfile.mkdtemp`` it honours the
    umask (mkdtemp makes 0700 directories, which would become the final directory)."""
    while True:
        candidate = sibling_name(path, tag)
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        return candidate


@contextlib.contextmanager
def atomic_directory(
    path,
    replaceable: Callable[[Path], bool],
    refusal: Callable[[Path], Exception],
):
    """Yields a temporary directory beside ``path`` to fill; on success it replaces ``path``.

    Nothing (or an empty directory) at ``path``: the temporary directory is renamed to it.
    A non-empty directory for which ``replaceable(path)`` holds is swapped out (renamed
    aside, the new one renamed in, the old one removed). A file, a symlink or another
    directory raises ``refusal(path)``, checked before and again after filling. On any
    error the temporary directory is removed and ``path`` is left as it was; missing
    parent directories are created (and stay).
    """
    path = Path(path)

    def occupied() -> bool:
        if not os.path.lexists(path):
            return False
        if path.is_symlink() or not path.is_dir():
            raise refusal(path)
        if not any(path.iterdir()):
            return False
        if not replaceable(path):
            raise refusal(path)
        return True

    occupied()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _make_sibling_dir(path, "tmp")
    try:
        yield tmp
        fsync_path(tmp)
        if occupied():  # again: the target may have changed while we wrote
            aside = sibling_name(path, "old")
            os.rename(path, aside)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(aside, path)
                raise
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(tmp, path)  # POSIX rename replaces an empty directory
        fsync_path(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
