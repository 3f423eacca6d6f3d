"""Writing files and directories so that readers see the old version or the new one, never
half of one, and so that a writer never replaces anything that is not its to replace.

Two writers, both context managers that yield something to fill and then move it into
place:

:func:`atomic_write` (one file)
    The file is written under a temporary name in the destination's folder, flushed to
    disk, made world-readable (0644) and renamed over the destination. Only a regular file
    (or nothing) at the destination is replaced: a symlink, a directory, a device node
    (``/dev/null``), a FIFO or a socket is refused with a :class:`JaxawareError` before
    anything is written, because a rename would swap the thing itself out (a symlink is
    never written through: write to its target's path if that is what you mean). Symlinked
    *folders* above the destination are followed as usual.
:func:`atomic_directory` (a directory of files)
    The directory is filled under a temporary name beside the destination and moved into
    place. An existing directory is replaced only if the caller's ``replaceable`` predicate
    accepts it and (given ``expected_names``, unless ``force``) it holds nothing but the
    names the writer itself puts there, so files a user keeps in it are never deleted
    silently. The replacement is one ``renameat2(RENAME_EXCHANGE)`` on Linux, so at every
    instant the destination holds the complete old or the complete new directory; the old
    one, now under the temporary name, is then removed.

Temporary names are short and fixed-format, whatever the destination's name (so any legal
name works, up to NAME_MAX): ``.jaxaware-tmp-<12 hex>`` for files and directories being
written, and ``.jaxaware-old-<12 hex>`` for an old directory moved aside by the fallback
below. After an exchange the *old* directory sits under the ``.jaxaware-tmp-`` name until it
is removed.

Leftovers. A writer killed outright (SIGKILL, power loss) leaves its temporary entry behind.
Every write first removes from its folder the ``.jaxaware-tmp-*`` / ``.jaxaware-old-*``
entries that are *abandoned*: untouched for :data:`STALE_AFTER_S` seconds (for a directory:
neither it nor anything directly in it) and not locked. Each writer holds an advisory
``flock`` on its temporary file or directory from creation until it is in place, so a
concurrent writer in the same folder (another process, another thread) never removes an
entry that is still being written, however long the write takes; the age rule covers the
instant between creating an entry and locking it (the writer also re-checks that its entry
still exists once locked, and starts over under a new name if not) and file systems without
``flock`` (where only the age protects a live writer). A lock rather than an embedded PID:
it needs no room in the name, is released by the kernel however the writer dies, and is not
fooled by PID reuse or by a writer on another machine of a network file system. On Windows
(no ``fcntl``) only the age applies; Windows refuses to delete open files anyway.

Signals. The library installs no signal handler by itself: that is the application's
choice. SIGINT already raises ``KeyboardInterrupt``, which unwinds the ``with`` blocks and
removes temporary entries. A plain SIGTERM kills the process and leaves an entry for the next
write to clean; an application (the CLI) that wants a clean exit on SIGTERM wraps its work
in :func:`sigterm_unwinds`, which turns SIGTERM into :class:`Terminated` (a ``SystemExit``
with status 143) so every writer's cleanup runs.

Limits, stated honestly:

* Between the last check of the destination and the rename there is an unavoidable instant
  (POSIX has no "rename only over a regular file"): someone who can write to the folder
  could put a device node there in that instant. The check exists to stop mistakes (a
  ``--out /dev/null``), not an adversary in the same folder. Likewise a file added to an
  existing directory in the instant between the last check and the exchange is replaced
  with it.
* Replacing a regular file that has other hard links gives this name the new content and
  leaves the other names with the old one, as any rename does.
* Where ``RENAME_EXCHANGE`` is not available (not Linux, Linux before 3.15, or a file system
  that refuses it with EINVAL/ENOSYS/EOPNOTSUPP, e.g. NFS) an existing directory is replaced
  with two renames: the old one aside to ``.jaxaware-old-X``, the new one (``.jaxaware-tmp-X``,
  same ``X``) in. A process killed between the two renames leaves *no* directory at the
  destination, with both complete versions beside it under that matching pair of names; the
  cleanup never removes such a pair (it may be the only copy of either version): rename one
  of them back by hand. There is no way around this window for an existing plain directory
  (a symlink to versioned directories would work only if the destination were a symlink to
  begin with). Concurrent writers of the same directory are safe only with the exchange.
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import re
import secrets
import shutil
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from jaxaware.errors import JaxawareError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; stale entries are judged by age alone
    fcntl = None

__all__ = [
    "STALE_AFTER_S",
    "TEMP_PREFIX",
    "OLD_PREFIX",
    "Terminated",
    "atomic_write",
    "atomic_directory",
    "check_directory_destination",
    "check_output_path",
    "check_outputs_distinct",
    "clean_stale",
    "fsync_path",
    "sigterm_unwinds",
]

TEMP_PREFIX = ".jaxaware-tmp-"
"""Name prefix of a file or directory being written (or, after an exchange, being removed)."""
OLD_PREFIX = ".jaxaware-old-"
"""Name prefix of an old directory moved aside by the two-rename fallback."""
STALE_AFTER_S = 600.0
"""Seconds without a change after which an unlocked temporary entry counts as abandoned."""

_TOKEN_BYTES = 6  # 12 hex digits: 48 random bits, so names never collide in practice
_OURS = re.compile(r"\.jaxaware-(tmp|old)-([0-9a-f]{12})\Z")
_NAME_MAX = 255  # when the file system does not say
_ATTEMPTS = 20  # tries at a fresh temporary name / at moving a directory into a moving target
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


def _fault_point(name: str) -> None:
    """Marks the boundary between two steps of a writer; does nothing.

    tests/test_atomic.py replaces it in a child process to SIGKILL the writer at each
    boundary in turn, which is how it checks that every instant leaves the destination with
    the complete old or the complete new version."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def fsync_path(path) -> None:
    """Flush a file or directory to disk (directories: where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    except OSError:
        return  # directories cannot be opened on some platforms (Windows)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    for test, words in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return "not a regular file"


def _check_file_destination(target: str, shown: str) -> None:
    """Refuse a destination that is anything but a regular file or nothing."""
    try:
        kind = _kind(os.lstat(target).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing there (or a parent is a file, which creating the folder reports)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return  # reported by the name check, once the folder exists
        raise
    if kind is not None:
        raise JaxawareError(f"{shown} is {kind}; refusing to replace it; choose a regular file "
                            "path")


def _make_folder(folder: str, shown: str) -> None:
    """Create the destination's folder (and its parents), as a one-line error if impossible."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        if os.path.isdir(folder):
            return
        reason = "a file is in the way" if isinstance(e, (FileExistsError,
                                                          NotADirectoryError)) else e.strerror
        raise JaxawareError(f"cannot create folder {folder} for {shown} ({reason}); choose a "
                            "path in a folder you can write to") from None


def _check_name_length(folder: str, name: str, shown: str) -> None:
    """A name longer than the file system allows fails up front, as one line."""
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = _NAME_MAX
    if limit is None or limit <= 0:
        limit = _NAME_MAX
    size = len(os.fsencode(name))
    if size > limit:
        raise JaxawareError(f"{shown}: the name is {size} bytes long and this file system "
                            f"allows at most {limit}; choose a shorter name")


def _create_failed(folder: str, shown: str, e: OSError) -> JaxawareError:
    return JaxawareError(f"cannot write a temporary file in {folder} for {shown} "
                         f"({e.strerror}); choose a path in a folder you can write to")


# --------------------------------------------------------------------------------------------
# Checking an output path before any work
# --------------------------------------------------------------------------------------------


def _shown(path) -> str:
    """``path`` as text, or a one-line error if it is not a path at all."""
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise JaxawareError(f"an output path must be a string or os.PathLike; got "
                            f"{type(path).__name__}")
    return os.fspath(path)


def _nearest_existing(folder: str) -> str:
    """``folder`` or its closest ancestor that exists (as anything)."""
    while not os.path.lexists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


def _check_folder_writable(folder: str, shown: str) -> None:
    """The folder a destination goes in exists and is writable, or can be created: checked
    without creating anything (the writer creates it)."""
    base = _nearest_existing(folder)
    if not os.path.isdir(base):
        raise JaxawareError(f"cannot create folder {folder} for {shown} (a file is in the way); "
                            "choose a path in a folder you can write to")
    if not os.access(base, os.W_OK | os.X_OK):
        if base == folder:
            raise JaxawareError(f"cannot write a temporary file in {folder} for {shown} "
                                f"({os.strerror(errno.EACCES)}); choose a path in a folder you "
                                "can write to")
        raise JaxawareError(f"cannot create folder {folder} for {shown} "
                            f"({os.strerror(errno.EACCES)}); choose a path in a folder you can "
                            "write to")
    missing = os.path.relpath(folder, base).split(os.sep) if base != folder else []
    for name in missing:
        _check_name_length(base, name, shown)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_path(path, *, reads: Iterable = (), directory: bool = False) -> str:
    """Raises a one-line :class:`JaxawareError` unless ``path`` can be written by
    :func:`atomic_write` (or, with ``directory``, by :func:`atomic_directory`); creates
    nothing. Call it before any work, so nothing is computed and then fails to be written.

    Refused: a path that is empty or not a path; for a file, one that ends in a separator
    (``newdir/``) or names a directory, symlink, device, FIFO or socket; for a directory,
    one that names a file or a symlink; a folder that cannot be created (a file is in the
    way) or written to; a name longer than the file system allows; and a path equal to or
    inside one of ``reads``: the files and directories the caller reads (so an output never
    overwrites an input, e.g. ``--out W/params.npz`` while reading the weights directory
    ``W``). ``reads`` holds paths, or ``(path, description)`` pairs for the message.

    Whether an existing directory may be replaced (whose it is, what it holds) is the
    directory writer's own check (:func:`check_directory_destination`).

    Returns:
      ``path`` as a string.
    """
    shown = _shown(path)
    kind = "directory" if directory else "file"
    if not shown:
        raise JaxawareError(f"the output path is empty; give a {kind} path")
    if "\0" in shown:
        raise JaxawareError(f"{shown!r} contains a NUL character; give a {kind} path without it")
    target = os.path.abspath(shown)
    if directory:
        try:
            st = os.lstat(target)
        except OSError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise JaxawareError(f"{shown} is {_kind(st.st_mode)}; refusing to replace it; "
                                "choose a directory path")
    else:
        _check_file_destination(target, shown)
        if shown.endswith((os.sep, "/") + ((os.altsep,) if os.altsep else ())):
            raise JaxawareError(f"{shown} ends in '{shown[-1]}', so it names a directory; give "
                                "a file path")
    folder = os.path.dirname(target)
    _check_folder_writable(folder, shown)
    _check_name_length(_nearest_existing(folder), os.path.basename(target), shown)
    real = os.path.realpath(target)
    for item in reads:
        source, description = item if isinstance(item, tuple) else (item, None)
        if source is None:
            continue
        source = os.fspath(source)
        real_source = os.path.realpath(source)
        if real == real_source or (os.path.isdir(real_source) and _inside(real, real_source)):
            where = "is" if real == real_source else "is inside"
            name = f"{description} {source}" if description else source
            raise JaxawareError(f"{shown} {where} {name}, which this command reads; write "
                                "outputs elsewhere")
    return shown


def check_outputs_distinct(outputs: Iterable[tuple[str, object]]) -> None:
    """Raises if two of ``(label, path)`` (paths None are skipped) name the same file, e.g.
    ``--out same.npz --figure same.npz``: the second write would replace the first."""
    seen: dict[str, str] = {}
    for label, path in outputs:
        if path is None:
            continue
        real = os.path.realpath(os.path.abspath(_shown(path)))
        if real in seen:
            raise JaxawareError(f"{seen[real]} and {label} are the same file {_shown(path)}; "
                                "give each output its own path")
        seen[real] = label


def _claim(fd: int, path: str) -> bool:
    """Lock the open temporary entry ``fd`` and make sure ``path`` still names it.

    False when a cleaner holds the lock (it is removing the entry) or already removed it:
    the caller starts over under a new name."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:
            pass  # no locks on this file system: the age rule alone protects the entry
    try:
        named, opened = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _new_name(folder: str, prefix: str = TEMP_PREFIX) -> str:
    return os.path.join(folder, prefix + secrets.token_hex(_TOKEN_BYTES))


def _new_temp_file(folder: str, shown: str) -> tuple[str, int]:
    """A new, locked, empty temporary file (mode 0600 until it is complete) in ``folder``."""
    for _ in range(_ATTEMPTS):
        tmp = _new_name(folder)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_BINARY,
                         0o600)
        except FileExistsError:
            continue
        except OSError as e:
            raise _create_failed(folder, shown, e) from None
        if _claim(fd, tmp):
            return tmp, fd
        os.close(fd)  # a cleaner took it in the instant before our lock; it removes it
    raise JaxawareError(f"cannot create a temporary file in {folder} for {shown}; "
                        "try again")


def _new_temp_dir(folder: str, shown: str) -> tuple[str, int | None]:
    """A new, locked, empty temporary directory in ``folder``; it honours the umask
    (``tempfile.mkdtemp`` makes 0700, which would become the final directory's mode)."""
    for _ in range(_ATTEMPTS):
        tmp = _new_name(folder)
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        except OSError as e:
            raise _create_failed(folder, shown, e) from None
        try:
            fd = os.open(tmp, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC)
        except FileNotFoundError:
            continue  # a cleaner removed it in the instant before we opened it: start over
        except OSError:
            return tmp, None  # directories cannot be opened here (Windows): age rule only
        if _claim(fd, tmp):
            return tmp, fd
        os.close(fd)
    raise JaxawareError(f"cannot create a temporary directory in {folder} for {shown}; "
                        "try again")


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


# --------------------------------------------------------------------------------------------
# Cleaning up after killed writers
# --------------------------------------------------------------------------------------------


def _last_change(path: str, st: os.stat_result) -> float:
    """When ``path`` last changed: for a directory, itself or anything directly in it
    (writing a big file into a temporary directory does not touch the directory's mtime)."""
    latest = st.st_mtime
    if stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(OSError), os.scandir(path) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    latest = max(latest, entry.stat(follow_symlinks=False).st_mtime)
    return latest


def _remove_if_abandoned(path: str, cutoff: float) -> bool:
    """Remove the temporary entry ``path`` if it is older than ``cutoff`` and unlocked."""
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        flags = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
    elif stat.S_ISDIR(st.st_mode):
        flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
    else:
        return False  # we never make symlinks or special files: not ours to remove
    if _last_change(path, st) > cutoff:
        return False
    try:
        fd = os.open(path, flags)
    except OSError:
        return False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a live writer holds it
            except OSError:
                pass  # no locks on this file system: the age decided
        _fault_point("clean:locked")
        named, opened = os.lstat(path), os.fstat(fd)
        if (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
            return False
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
        return not os.path.lexists(path)
    finally:
        os.close(fd)


def clean_stale(folder, older_than: float | None = None) -> list[str]:
    """Remove abandoned temporary entries of killed writers from ``folder``.

    An entry is removed if its name is ``.jaxaware-tmp-<12 hex>`` or
    ``.jaxaware-old-<12 hex>``, it is a regular file or a directory, nothing in it changed for
    ``older_than`` seconds (default :data:`STALE_AFTER_S`) and no writer holds its lock. A
    ``tmp``/``old`` pair with the same hex digits is kept: it is what the two-rename fallback
    leaves when killed between its renames, and may be the only copy of both versions. Every
    writer calls this on its folder first; errors are ignored (cleaning is a courtesy).

    Returns:
      The names removed.
    """
    limit = STALE_AFTER_S if older_than is None else older_than
    cutoff = time.time() - limit
    try:
        with os.scandir(folder) as it:
            entries = [(e.name, e.path) for e in it if _OURS.match(e.name)]
    except OSError:
        return []
    names = {name for name, _ in entries}
    removed = []
    for name, path in entries:
        kind, token = _OURS.match(name).groups()
        partner = (OLD_PREFIX if kind == "tmp" else TEMP_PREFIX) + token
        if partner in names:
            continue
        with contextlib.suppress(OSError):
            if _remove_if_abandoned(path, cutoff):
                removed.append(name)
    return removed


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb"):
    """Yields a file object for a new temporary file in ``path``'s folder; on success it is
    flushed, fsynced, made world-readable (0644, whatever the umask: these are outputs meant
    to be shared) and renamed over ``path``; on any error it is removed and ``path`` is
    untouched.

    Missing folders are created (and stay). ``path`` must be a regular file or nothing: a
    symlink, directory, device, FIFO or socket there raises :class:`JaxawareError` (checked
    before writing and again before the rename), as do an empty path, one ending in a
    separator, a folder that cannot be created or written to and a name longer than the
    file system allows (:func:`check_output_path`, which callers run before any work).
    Abandoned temporary entries in the folder are removed first (see :func:`clean_stale`).
    """
    shown = check_output_path(path)
    target = os.path.abspath(shown)
    folder = os.path.dirname(target)
    _make_folder(folder, shown)
    _check_name_length(folder, os.path.basename(target), shown)
    clean_stale(folder)
    tmp, fd = _new_temp_file(folder, shown)
    lock_fd = None
    renamed = False
    try:
        lock_fd = os.dup(fd)  # keeps the lock (and fsync access) even if the caller closes f
        f = os.fdopen(fd, mode)
        fd = None
        _fault_point("file:created")
        with f:
            yield f
            if not f.closed:
                f.flush()
        os.fsync(lock_fd)
        if hasattr(os, "fchmod"):
            os.fchmod(lock_fd, 0o644)
        else:
            os.chmod(tmp, 0o644)
        _fault_point("file:synced")
        _check_file_destination(target, shown)  # again: it may have changed while we wrote
        os.replace(tmp, target)
        renamed = True
        _fault_point("file:renamed")
        fsync_path(folder)
        _fault_point("file:done")
    except BaseException:
        if not renamed:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    finally:
        _close(fd)
        _close(lock_fd)


# --------------------------------------------------------------------------------------------
# Directories
# --------------------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # from <linux/fs.h>
_AT_FDCWD = -100
_SYS_RENAMEAT2 = {"x86_64": 316, "amd64": 316, "aarch64": 276, "arm64": 276}
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, getattr(errno, "EOPNOTSUPP", -1),
                getattr(errno, "ENOTSUP", -1)}
_renameat2_cache: list = []


def _load_renameat2(wrapper: bool = True):
    """libc's ``renameat2`` (glibc >= 2.28; ``wrapper=False`` skips it), else the raw system
    call on x86_64 and aarch64, else None. Called as ``f(olddirfd, old, newdirfd, new,
    flags)`` with byte paths; returns 0 or -1 with ``ctypes.get_errno()`` set."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return None
    fn = getattr(libc, "renameat2", None) if wrapper else None
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                       ctypes.c_uint]
        fn.restype = ctypes.c_int
        return fn
    number = _SYS_RENAMEAT2.get(platform.machine().lower())
    syscall = getattr(libc, "syscall", None)
    if number is None or syscall is None:
        return None
    syscall.restype = ctypes.c_long

    def renameat2(olddirfd, old, newdirfd, new, flags):
        return syscall(ctypes.c_long(number), ctypes.c_long(olddirfd), ctypes.c_char_p(old),
                       ctypes.c_long(newdirfd), ctypes.c_char_p(new), ctypes.c_ulong(flags))

    return renameat2


def _exchange(a: str, b: str) -> bool | None:
    """Atomically swap the entries ``a`` and ``b`` (both must exist). True when swapped,
    None when this platform or file system cannot; other failures raise OSError."""
    if not _renameat2_cache:
        _renameat2_cache.append(_load_renameat2())
    renameat2 = _renameat2_cache[0]
    if renameat2 is None:
        return None
    import ctypes

    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return None
    raise OSError(code, os.strerror(code), a, None, b)


def _swap_by_two_renames(tmp: str, target: str, token: str) -> None:
    """The fallback without RENAME_EXCHANGE: old aside, new in, old removed. A kill between
    the two renames leaves no directory at ``target`` (see the module docstring)."""
    old = os.path.join(os.path.dirname(target), OLD_PREFIX + token)
    old_fd = None
    with contextlib.suppress(OSError):  # lock the old one too, while it is the only copy
        old_fd = os.open(target, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC)
        if fcntl is not None:
            fcntl.flock(old_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        try:
            os.rename(target, old)
            _fault_point("dir:moved-aside")
            os.rename(tmp, target)
        except BaseException:
            # Put the old one back if it went aside and the new one did not arrive.
            if os.path.lexists(old) and not os.path.lexists(target):
                with contextlib.suppress(OSError):
                    os.rename(old, target)
            raise
        _fault_point("dir:renamed")
        shutil.rmtree(old, ignore_errors=True)
        _fault_point("dir:old-removed")
    finally:
        _close(old_fd)


def _foreign_entry(path: Path, name: str, expected: frozenset) -> JaxawareError:
    ours = ", ".join(sorted(expected)) or "nothing"
    return JaxawareError(f"{path} holds {name!r}, which is not among the files written there "
                         f"({ours}); replacing the directory would delete it; move it "
                         "elsewhere, or use --force (force=True) to replace it anyway")


def check_directory_destination(
    path,
    replaceable: Callable[[Path], bool],
    refusal: Callable[[Path], Exception],
    *,
    expected_names: Iterable[str] | None = None,
    force: bool = False,
) -> bool:
    """Whether ``path`` holds a directory :func:`atomic_directory` would replace (False for
    nothing or an empty directory); raises ``refusal(path)`` for a file, a symlink or a
    directory ``replaceable`` rejects, and a one-line error for an entry outside
    ``expected_names`` (unless ``force``). The writer's own check, usable before any work."""
    if not _shown(path):
        raise JaxawareError("the output path is empty; give a directory path")
    path = Path(path)
    target = os.path.abspath(path)
    try:
        st = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return False  # reported by the name check
        raise
    if not stat.S_ISDIR(st.st_mode):
        raise refusal(path)
    names = sorted(os.listdir(target))
    if not names:
        return False
    if not replaceable(path):
        raise refusal(path)
    if expected_names is not None and not force:
        expected = frozenset(expected_names)
        foreign = [name for name in names if name not in expected]
        if foreign:
            raise _foreign_entry(path, foreign[0], expected)
    return True


@contextlib.contextmanager
def atomic_directory(
    path,
    replaceable: Callable[[Path], bool],
    refusal: Callable[[Path], Exception],
    *,
    expected_names: Iterable[str] | None = None,
    force: bool = False,
):
    """Yields a new temporary directory beside ``path`` to fill; on success it replaces
    ``path``.

    Nothing (or an empty directory) at ``path``: the temporary directory is renamed to it.
    A non-empty directory is replaced only if ``replaceable(path)`` holds and, when
    ``expected_names`` is given, it holds no entry outside those names (the files this
    writer puts there), unless ``force``; the replacement is an atomic exchange where the
    platform allows it (see the module docstring for the fallback), after which the old
    directory is removed. A file, a symlink or a directory ``replaceable`` rejects raises
    ``refusal(path)`` (also with ``force``); a foreign entry raises a one-line
    :class:`JaxawareError` naming it. Both are checked before and again after filling. On
    any error the temporary directory is removed and ``path`` is left as it was; missing
    parent directories are created (and stay). The new directory honours the umask; the
    caller fsyncs the files it writes, this function the directories.

    Args:
      path: the directory to create or replace.
      replaceable: whether an existing non-empty directory at ``path`` is one this writer
        may replace (e.g. a jaxaware weights directory).
      refusal: the exception for a destination that may not be replaced.
      expected_names: the names this writer puts in the directory; None skips the check.
      force: replace a replaceable directory even if it holds other entries (they are lost).
    """
    raw = path
    path = Path(path)
    shown = str(path)
    target = os.path.abspath(path)
    parent = os.path.dirname(target)
    expected = None if expected_names is None else frozenset(expected_names)

    def occupied() -> bool:
        return check_directory_destination(raw, replaceable, refusal,
                                           expected_names=expected, force=force)

    occupied()
    check_output_path(shown, directory=True)
    _make_folder(parent, shown)
    _check_name_length(parent, os.path.basename(target), shown)
    clean_stale(parent)
    tmp, dir_fd = _new_temp_dir(parent, shown)
    token = os.path.basename(tmp)[len(TEMP_PREFIX):]
    try:
        _fault_point("dir:created")
        yield Path(tmp)
        if dir_fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)
        _fault_point("dir:synced")
        for _ in range(_ATTEMPTS):
            if not occupied():  # again: the target may have changed while we wrote
                try:
                    os.rename(tmp, target)  # POSIX rename replaces an empty directory
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                        continue  # somebody put something there meanwhile: look again
                    raise
                _fault_point("dir:renamed")
                break
            try:
                swapped = _exchange(tmp, target)
            except FileNotFoundError:
                continue  # it vanished meanwhile: look again
            if swapped is None:
                _swap_by_two_renames(tmp, target, token)
                break
            _fault_point("dir:exchanged")
            shutil.rmtree(tmp, ignore_errors=True)  # the old directory, now at our name
            _fault_point("dir:old-removed")
            break
        else:
            raise JaxawareError(f"{shown} kept changing while it was being replaced; make "
                                "sure one writer at a time writes it, then try again")
        fsync_path(parent)
        _fault_point("dir:done")
    except BaseException:
        # Whatever is at our temporary name now is garbage: the unfinished new directory,
        # or the old one after an exchange. (Nothing is there after a rename.)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _close(dir_fd)


# --------------------------------------------------------------------------------------------
# SIGTERM
# --------------------------------------------------------------------------------------------


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread by :func:`sigterm_unwinds` so that ``with`` blocks
    and ``finally`` clauses run; uncaught it ends the process quietly with status 143
    (128 + SIGTERM), like an unhandled SIGTERM but with the temporary files removed."""

    def __init__(self) -> None:
        super().__init__(128 + int(getattr(signal, "SIGTERM", 15)))


@contextlib.contextmanager
def sigterm_unwinds():
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread.

    For applications such as the CLI: a library must not take over signal handling, so
    nothing in jaxaware installs this by itself. The handler is installed only where SIGTERM
    still has its default action (an application's own handler, or SIG_IGN, is respected)
    and only in the main thread (elsewhere the block runs unchanged); the previous handler
    is restored on exit. It is one-shot: a second SIGTERM during the cleanup ends the
    process at once (the next write removes what that leaves). Python runs signal handlers
    between bytecodes, so a SIGTERM during a long native call (a JAX computation, an fsync)
    takes effect when that call returns.
    """
    sigterm = getattr(signal, "SIGTERM", None)
    if (sigterm is None or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(sigterm) is not signal.SIG_DFL):
        yield
        return

    def handler(signum, frame):
        signal.signal(sigterm, signal.SIG_DFL)
        raise Terminated()

    signal.signal(sigterm, handler)
    try:
        yield
    finally:
        if signal.getsignal(sigterm) is handler:
            signal.signal(sigterm, signal.SIG_DFL)
