"""Tests for jaxaware.atomic: the file and directory writers under bad destinations, errors,
kills at every step, signals and concurrent writers.

Writers that must die are child processes that import only ``jaxaware.atomic`` (through a
stub ``jaxaware`` package, so a child starts in a few tens of milliseconds instead of
importing JAX) and replace its no-op ``_fault_point`` hook with one that SIGKILLs the
process at the n-th step boundary.
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxaware import atomic
from jaxaware.atomic import (
    OLD_PREFIX,
    STALE_AFTER_S,
    TEMP_PREFIX,
    atomic_directory,
    atomic_write,
    clean_stale,
)
from jaxaware.errors import JaxawareError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="kills, FIFOs and RENAME_EXCHANGE: Linux")

PACKAGE_DIR = str(Path(atomic.__file__).parent)
OLD_FILE = b"old version\n" * 1000
NEW_FILE = b"new version\n" * 5000
OLD_DIR = {"params.npz": b"old params " * 300, "config.json": b'{"version": "old"}'}
NEW_DIR = {"params.npz": b"new params " * 900, "config.json": b'{"version": "new"}'}
TEMP_NAME = re.compile(r"\.jaxaware-(tmp|old)-[0-9a-f]{12}\Z")


def raises(message):
    """pytest.raises for a JaxawareError with exactly this message."""
    return pytest.raises(JaxawareError, match="^" + re.escape(message) + "$")


def refusal_message(path, kind):
    return f"{path} is {kind}; refusing to replace it; choose a regular file path"


def temp_entries(folder):
    return sorted(name for name in os.listdir(folder) if TEMP_NAME.match(name))


def age(folder, seconds=2 * STALE_AFTER_S):
    """Make every temporary entry in ``folder`` (and what is directly in it) look old."""
    past = time.time() - seconds
    for name in temp_entries(folder):
        path = os.path.join(folder, name)
        if stat.S_ISDIR(os.lstat(path).st_mode):
            for child in os.listdir(path):
                os.utime(os.path.join(path, child), (past, past), follow_symlinks=False)
        os.utime(path, (past, past), follow_symlinks=False)


def read_dir(path):
    """The files of a directory as {name: bytes}, or None if nothing is there."""
    if not os.path.lexists(path):
        return None
    return {name: (Path(path) / name).read_bytes() for name in sorted(os.listdir(path))}


def write_dir(path, files):
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (path / name).write_bytes(data)


def replace_dir(path, files):
    """Write ``files`` as the directory ``path`` with the writer under test."""
    with atomic_directory(path, lambda p: True, ValueError, expected_names=files) as tmp:
        write_dir(tmp, files)


# --------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------

CHILD = r"""
import hashlib, json, os, signal, sys, time, types

package = types.ModuleType("jaxaware")
package.__path__ = [sys.argv[1]]
sys.modules["jaxaware"] = package
from jaxaware import atomic

job, dest, kill_at = sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = sys.argv[5:]
seen = []


def fault(name):
    seen.append(name)
    if len(seen) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


atomic._fault_point = fault
if job.endswith("-fallback"):
    atomic._exchange = lambda a, b: None
spec = json.loads(os.environ.get("ATOMIC_TEST_SPEC", "{}"))
new_file = bytes.fromhex(spec.get("new_file", ""))
new_dir = {k: bytes.fromhex(v) for k, v in spec.get("new_dir", {}).items()}


def fill(tmp, files):
    names = sorted(files)
    for i, name in enumerate(names):
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(files[name])
            f.flush()
            os.fsync(f.fileno())
        if i == 0:
            fault("user:half-filled")


def versioned(writer, i):
    # A file version that can be recognised as complete: a header and its payload's sha256.
    payload = (f"{writer}:{i}:".encode() * 2000)[: 20000 + 37 * i]
    return hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


if job == "file":
    with atomic.atomic_write(dest) as f:
        f.write(new_file[: len(new_file) // 2])
        f.flush()
        fault("user:half-written")
        f.write(new_file[len(new_file) // 2:])
elif job in ("dir", "dir-fallback"):
    with atomic.atomic_directory(dest, lambda p: True, ValueError,
                                 expected_names=new_dir) as tmp:
        fill(tmp, new_dir)
elif job == "clean":
    atomic.clean_stale(dest, older_than=0)
elif job == "file-loop":
    atomic.STALE_AFTER_S = 0.0  # every write cleans aggressively: only the locks protect
    for i in range(int(extra[1])):
        with atomic.atomic_write(dest) as f:
            data = versioned(extra[0], i)
            f.write(data[:1000])
            f.flush()
            f.write(data[1000:])
elif job == "dir-loop":
    atomic.STALE_AFTER_S = 0.0
    for i in range(int(extra[1])):
        data = versioned(extra[0], i)
        files = {"params.npz": data, "config.json": data[:64]}
        with atomic.atomic_directory(dest, lambda p: True, ValueError,
                                     expected_names=files) as tmp:
            fill(tmp, files)
elif job == "sigterm":
    if extra and extra[0] == "ignored":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with atomic.sigterm_unwinds():
        with atomic.atomic_write(dest) as f:
            f.write(b"half of it")
            f.flush()
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            f.write(b" and the rest")
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.SIG_IGN)
elif job == "sigterm-dir":
    with atomic.sigterm_unwinds():
        with atomic.atomic_directory(dest, lambda p: True, ValueError) as tmp:
            fill(tmp, new_dir)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def child_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("child") / "writer.py"
    path.write_text(CHILD)
    return path


def start_child(script, job, dest, kill_at=0, *extra, spec=None):
    env = dict(os.environ, ATOMIC_TEST_SPEC=json.dumps(spec or {}))
    return subprocess.Popen(
        [sys.executable, str(script), PACKAGE_DIR, job, str(dest), str(kill_at), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


@contextlib.contextmanager
def children(procs):
    """The child processes, killed and reaped however the test ends."""
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def run_child(script, job, dest, kill_at=0, *extra, spec=None, returncode=0):
    proc = start_child(script, job, dest, kill_at, *extra, spec=spec)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == returncode, err.decode()
    return json.loads(out) if returncode == 0 else None


FILE_SPEC = {"new_file": NEW_FILE.hex()}
DIR_SPEC = {"new_dir": {k: v.hex() for k, v in NEW_DIR.items()}}


# --------------------------------------------------------------------------------------------
# Kill at every step
# --------------------------------------------------------------------------------------------


def test_file_writer_killed_at_every_step(child_script, tmp_path):
    folder = tmp_path / "out"
    dest = folder / "grid.png"
    write_dir(folder, {"grid.png": OLD_FILE})
    points = run_child(child_script, "file", dest, spec=FILE_SPEC)
    assert points == ["file:created", "user:half-written", "file:synced", "file:renamed",
                      "file:done"]
    assert dest.read_bytes() == NEW_FILE and temp_entries(folder) == []
    renamed = points.index("file:renamed")
    for n in range(1, len(points) + 1):
        dest.write_bytes(OLD_FILE)
        run_child(child_script, "file", dest, n, spec=FILE_SPEC, returncode=-signal.SIGKILL)
        in_place = n > renamed
        assert dest.read_bytes() == (NEW_FILE if in_place else OLD_FILE), points[n - 1]
        left = temp_entries(folder)
        assert len(left) == (0 if in_place else 1), points[n - 1]
        assert all(name.startswith(TEMP_PREFIX) for name in left)
        if left and n == 1:  # a fresh entry may belong to a live writer: it is kept
            with atomic_write(folder / "other.txt") as f:
                f.write(b"x")
            assert temp_entries(folder) == left
        age(folder)
        with atomic_write(folder / "other.txt") as f:  # the next write cleans the folder
            f.write(b"x")
        assert temp_entries(folder) == []
        assert dest.read_bytes() == (NEW_FILE if in_place else OLD_FILE)


@pytest.mark.parametrize("scenario", ["replace", "create", "replace-fallback"])
def test_directory_writer_killed_at_every_step(child_script, tmp_path, scenario):
    folder = tmp_path / "weights"
    dest = folder / "model"
    job = "dir-fallback" if scenario.endswith("fallback") else "dir"
    old = None if scenario == "create" else OLD_DIR

    def reset():
        if dest.exists():
            for name in os.listdir(dest):
                (dest / name).unlink()
            dest.rmdir()
        if old is not None:
            write_dir(dest, old)

    reset()
    points = run_child(child_script, job, dest, spec=DIR_SPEC)
    moved = {"replace": ["dir:exchanged", "dir:old-removed"], "create": ["dir:renamed"],
             "replace-fallback": ["dir:moved-aside", "dir:renamed", "dir:old-removed"]}
    assert points == (["dir:created", "user:half-filled", "dir:synced"] + moved[scenario]
                      + ["dir:done"])
    assert read_dir(dest) == NEW_DIR and temp_entries(folder) == []
    for n in range(1, len(points) + 1):
        reset()
        run_child(child_script, job, dest, n, spec=DIR_SPEC, returncode=-signal.SIGKILL)
        point = points[n - 1]
        left = temp_entries(folder)
        if point == "dir:moved-aside":
            # The documented window of the two-rename fallback: nothing at the destination,
            # both complete versions beside it under a matching pair of names, which no
            # cleanup removes.
            assert read_dir(dest) is None
            assert [name[:len(TEMP_PREFIX)] for name in left] == [OLD_PREFIX, TEMP_PREFIX]
            assert left[0][-12:] == left[1][-12:]
            assert read_dir(folder / left[0]) == OLD_DIR
            assert read_dir(folder / left[1]) == NEW_DIR
            age(folder)
            replace_dir(dest, NEW_DIR)
            assert temp_entries(folder) == left
            for name in left:
                shutil.rmtree(folder / name)
            continue
        in_place = n > points.index(moved[scenario][0])
        assert read_dir(dest) == (NEW_DIR if in_place else old), point
        gone = point in ("dir:old-removed", "dir:done") or (
            scenario == "create" and in_place)
        assert len(left) == (0 if gone else 1), point
        age(folder)
        write_dir(folder / "unrelated", {"keep.txt": b"mine"})
        with atomic_write(folder / "log.txt") as f:  # the next write cleans the folder
            f.write(b"x")
        assert temp_entries(folder) == []
        assert read_dir(dest) == (NEW_DIR if in_place else old)
        assert read_dir(folder / "unrelated") == {"keep.txt": b"mine"}


def test_cleaner_killed_while_removing(child_script, tmp_path):
    stale = tmp_path / (TEMP_PREFIX + "0123456789ab")
    stale.write_bytes(b"left by a killed writer")
    run_child(child_script, "clean", tmp_path, 1, returncode=-signal.SIGKILL)
    assert stale.exists()  # killed after locking it: still there, lock gone with the process
    assert clean_stale(tmp_path, older_than=0) == [stale.name]
    assert not stale.exists()


# --------------------------------------------------------------------------------------------
# Stale entries and locks
# --------------------------------------------------------------------------------------------


def test_clean_stale_keeps_live_young_and_foreign_entries(tmp_path):
    dead = tmp_path / (TEMP_PREFIX + "aaaaaaaaaaaa")
    dead.write_bytes(b"x")
    dead_dir = tmp_path / (OLD_PREFIX + "bbbbbbbbbbbb")
    write_dir(dead_dir, {"params.npz": b"x"})
    link = tmp_path / (TEMP_PREFIX + "dddddddddddd")
    link.symlink_to(tmp_path / "elsewhere")
    lookalike = tmp_path / ".jaxaware-tmp-notours"
    lookalike.write_bytes(b"x")
    age(tmp_path)
    young = tmp_path / (TEMP_PREFIX + "cccccccccccc")
    young.write_bytes(b"x")
    with atomic_write(tmp_path / "out.bin") as f:
        # Starting, the writer removed the dead entries, kept the young one and the symlink.
        [ours] = [n for n in temp_entries(tmp_path) if n not in (young.name, link.name)]
        assert temp_entries(tmp_path) == sorted([ours, young.name, link.name])
        f.write(b"still writing")
        age(tmp_path)
        assert clean_stale(tmp_path) == [young.name]  # old now, and nobody holds it
        assert clean_stale(tmp_path, older_than=0) == []  # ours is locked, however old
        assert (tmp_path / ours).exists()
    assert (tmp_path / "out.bin").read_bytes() == b"still writing"
    assert temp_entries(tmp_path) == [link.name]  # never ours: a symlink is left alone
    assert lookalike.exists()


def test_directory_being_written_is_locked(tmp_path):
    dest = tmp_path / "model"
    with atomic_directory(dest, lambda p: True, ValueError) as tmp:
        write_dir(tmp, NEW_DIR)
        age(tmp_path)
        assert clean_stale(tmp_path, older_than=0) == []
    assert read_dir(dest) == NEW_DIR and temp_entries(tmp_path) == []


def test_concurrent_file_writers(child_script, tmp_path):
    dest = tmp_path / "shared.bin"
    dest.write_bytes(b"0" * 64 + b"\nseed")
    def valid(data):
        header, _, payload = data.partition(b"\n")
        return payload == b"seed" or hashlib.sha256(payload).hexdigest().encode() == header

    with children([start_child(child_script, "file-loop", dest, 0, name, "120")
                   for name in ("A", "B")]) as writers:
        reads = 0
        while any(w.poll() is None for w in writers):
            data = dest.read_bytes()  # always there, always one complete version
            assert valid(data), data[:80]
            reads += 1
        for w in writers:
            out, err = w.communicate()
            assert w.returncode == 0, err.decode()  # a writer whose temp file vanished fails
    assert reads > 0 and valid(dest.read_bytes())
    assert dest.read_bytes().split(b"\n", 1)[1].startswith((b"A:119:", b"B:119:"))
    assert temp_entries(tmp_path) == []
    assert dest.stat().st_mode & 0o777 == 0o644


def test_concurrent_directory_writers(child_script, tmp_path):
    dest = tmp_path / "model"
    replace_dir(dest, {"params.npz": b"seed", "config.json": b"seed"})
    with children([start_child(child_script, "dir-loop", dest, 0, name, "30")
                   for name in "AB"]) as writers:
        for w in writers:
            out, err = w.communicate(timeout=60)
            assert w.returncode == 0, err.decode()
    files = read_dir(dest)
    assert sorted(files) == ["config.json", "params.npz"]
    assert files["params.npz"][:64] == files["config.json"]  # both from one version
    assert files["params.npz"].split(b"\n", 1)[1].startswith((b"A:29:", b"B:29:"))
    assert temp_entries(tmp_path) == []


# --------------------------------------------------------------------------------------------
# Destinations that are not ours
# --------------------------------------------------------------------------------------------


def write_file(path, data=b"new"):
    with atomic_write(path) as f:
        f.write(data)


def test_file_writer_refuses_fifo_symlink_and_directory(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with raises(refusal_message(fifo, "a named pipe (FIFO)")):
        write_file(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)

    real = tmp_path / "real.png"
    real.write_bytes(b"real")
    for link, to in (("link.png", real), ("dangling.png", tmp_path / "nowhere"),
                     ("dirlink", tmp_path)):
        (tmp_path / link).symlink_to(to)
        with raises(refusal_message(tmp_path / link, "a symbolic link")):
            write_file(tmp_path / link)
        assert os.readlink(tmp_path / link) == str(to)
    assert real.read_bytes() == b"real" and not (tmp_path / "nowhere").exists()

    folder = tmp_path / "folder"
    folder.mkdir()
    with raises(refusal_message(folder, "a directory")):
        write_file(folder)
    with raises(refusal_message(str(folder) + "/", "a directory")):
        write_file(str(folder) + "/")
    assert os.listdir(folder) == [] and temp_entries(tmp_path) == []


def test_file_writer_follows_symlinked_folders(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real", target_is_directory=True)
    write_file(tmp_path / "via" / "out.png", b"through the folder link")
    assert (tmp_path / "real" / "out.png").read_bytes() == b"through the folder link"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make or replace device nodes")
def test_file_writer_refuses_device_nodes(tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("no CAP_MKNOD here")
    with raises(refusal_message(node, "a character device")):
        write_file(node)
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    # Only now, with the refusal shown on a copy, the real one (what the tester hit).
    before = os.lstat("/dev/null")
    with raises(refusal_message("/dev/null", "a character device")):
        write_file("/dev/null")
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino
    assert not [name for name in os.listdir("/dev") if name.startswith(".jaxaware-")]


def test_file_writer_errors_are_one_line(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    target = tmp_path / "file" / "sub" / "out.png"
    with raises(f"cannot create folder {tmp_path / 'file' / 'sub'} for {target} (a file is in "
                "the way); choose a path in a folder you can write to"):
        write_file(target)
    long = tmp_path / ("n" * 256)
    with raises(f"{long}: the name is 256 bytes long and this file system allows at most "
                "255; choose a shorter name"):
        write_file(long)
    with raises(f"{long}: the name is 256 bytes long and this file system allows at most "
                "255; choose a shorter name"):
        replace_dir(long, NEW_DIR)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_directory_writer_refuses_file_and_symlink(tmp_path):
    def refusal(p):
        return JaxawareError(f"{p} refused")

    (tmp_path / "file").write_bytes(b"precious")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    for name in ("file", "link"):
        with raises(f"{tmp_path / name} refused"):
            with atomic_directory(tmp_path / name, lambda p: True, refusal) as tmp:
                write_dir(tmp, NEW_DIR)
    assert (tmp_path / "file").read_bytes() == b"precious"
    assert (tmp_path / "link").is_symlink() and os.listdir(tmp_path / "real") == []
    assert temp_entries(tmp_path) == []


# --------------------------------------------------------------------------------------------
# Foreign entries and force
# --------------------------------------------------------------------------------------------


def foreign_message(path, name):
    return (f"{path} holds {name!r}, which is not among the files written there (config.json, "
            "params.npz); replacing the directory would delete it; move it elsewhere, or use "
            "--force (force=True) to replace it anyway")


def test_directory_writer_refuses_foreign_entries_unless_forced(tmp_path):
    dest = tmp_path / "model"
    write_dir(dest, {**OLD_DIR, "notes.txt": b"mine", "a-plot.png": b"mine too"})
    with raises(foreign_message(dest, "a-plot.png")):
        replace_dir(dest, NEW_DIR)
    assert read_dir(dest)["notes.txt"] == b"mine" and temp_entries(tmp_path) == []

    with atomic_directory(dest, lambda p: True, ValueError, expected_names=NEW_DIR,
                          force=True) as tmp:
        write_dir(tmp, NEW_DIR)
    assert read_dir(dest) == NEW_DIR and temp_entries(tmp_path) == []

    # force does not make somebody else's directory replaceable
    with pytest.raises(ValueError, match="refused"):
        with atomic_directory(dest, lambda p: False, lambda p: ValueError("refused"),
                              expected_names=NEW_DIR, force=True) as tmp:
            write_dir(tmp, OLD_DIR)
    assert read_dir(dest) == NEW_DIR


def test_foreign_entry_added_while_writing_is_refused(tmp_path):
    dest = tmp_path / "model"
    write_dir(dest, OLD_DIR)
    with raises(foreign_message(dest, "late.txt")):
        with atomic_directory(dest, lambda p: True, ValueError, expected_names=NEW_DIR) as tmp:
            write_dir(tmp, NEW_DIR)
            (dest / "late.txt").write_bytes(b"added meanwhile")
    assert read_dir(dest) == {**OLD_DIR, "late.txt": b"added meanwhile"}
    assert temp_entries(tmp_path) == []


def test_save_weights_keeps_user_files_unless_forced(tmp_path):
    from jaxaware.weights_io import load_weights, save_weights

    target = tmp_path / "model"
    save_weights(target, {"w": np.zeros(2)}, {}, "old")
    (target / "notes.txt").write_text("kept by the user")
    with raises(foreign_message(target, "notes.txt")):
        save_weights(target, {"w": np.ones(2)}, {}, "new")
    assert load_weights(target)[1]["model_id"] == "old"
    assert (target / "notes.txt").read_text() == "kept by the user"
    save_weights(target, {"w": np.ones(2)}, {}, "new", force=True)
    assert load_weights(target)[1]["model_id"] == "new"
    assert sorted(os.listdir(target)) == ["config.json", "params.npz"]
    assert sorted(os.listdir(tmp_path)) == ["model"]


# --------------------------------------------------------------------------------------------
# Names, errors, permissions, signals, the exchange itself
# --------------------------------------------------------------------------------------------


def test_longest_legal_names(tmp_path):
    name = "x" * 250 + ".png"  # 254 bytes: longer than any temporary name derived from it
    write_file(tmp_path / name, b"one")
    write_file(tmp_path / name, b"two")
    assert (tmp_path / name).read_bytes() == b"two"
    dest = tmp_path / ("d" * 255)
    replace_dir(dest, OLD_DIR)
    replace_dir(dest, NEW_DIR)
    assert read_dir(dest) == NEW_DIR
    assert sorted(os.listdir(tmp_path)) == sorted([name, dest.name])


def test_exception_inside_the_block_leaves_nothing_behind(tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(OLD_FILE)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(dest) as f:
            f.write(NEW_FILE)
            raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "fresh.png") as f:
            f.write(NEW_FILE)
            raise KeyboardInterrupt
    model = tmp_path / "model"
    write_dir(model, OLD_DIR)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_directory(model, lambda p: True, ValueError) as tmp:
            write_dir(tmp, NEW_DIR)
            raise RuntimeError("boom")
    assert dest.read_bytes() == OLD_FILE and read_dir(model) == OLD_DIR
    assert sorted(os.listdir(tmp_path)) == ["model", "out.png"]


def test_caller_may_close_the_file(tmp_path):
    with atomic_write(tmp_path / "a.txt", "w") as f:
        f.write("text mode")
        f.close()
    assert (tmp_path / "a.txt").read_text() == "text mode"
    assert temp_entries(tmp_path) == []


def test_permissions(tmp_path):
    umask = os.umask(0o027)
    try:
        write_file(tmp_path / "a.png")
        replace_dir(tmp_path / "m", NEW_DIR)
        os.umask(0o022)
        replace_dir(tmp_path / "n", NEW_DIR)
    finally:
        os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644  # outputs are for sharing
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o750  # directories honour the umask
    assert (tmp_path / "n").stat().st_mode & 0o777 == 0o755


def test_sigterm_unwinds(child_script, tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(OLD_FILE)
    run_child(child_script, "sigterm", dest, returncode=128 + signal.SIGTERM)
    assert dest.read_bytes() == OLD_FILE and temp_entries(tmp_path) == []
    model = tmp_path / "model"
    write_dir(model, OLD_DIR)
    run_child(child_script, "sigterm-dir", model, spec=DIR_SPEC,
              returncode=128 + signal.SIGTERM)
    assert read_dir(model) == OLD_DIR and temp_entries(tmp_path) == []
    # An application that ignores SIGTERM keeps doing so.
    run_child(child_script, "sigterm", dest, 0, "ignored")
    assert dest.read_bytes() == b"half of it and the rest"


def test_exchange_by_libc_and_by_raw_syscall(tmp_path):
    for wrapper in (True, False):
        renameat2 = atomic._load_renameat2(wrapper=wrapper)
        if renameat2 is None:
            continue  # no wrapper (old glibc) or an architecture without a known number
        a, b = tmp_path / f"a{wrapper}", tmp_path / f"b{wrapper}"
        write_dir(a, OLD_DIR)
        write_dir(b, NEW_DIR)
        assert renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0
        assert read_dir(a) == NEW_DIR and read_dir(b) == OLD_DIR
    with pytest.raises(FileNotFoundError):
        atomic._exchange(str(tmp_path / "missing"), str(tmp_path))


def test_fallback_failure_puts_the_old_directory_back(tmp_path, monkeypatch):
    dest = tmp_path / "model"
    write_dir(dest, OLD_DIR)
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: None)
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append(1)
        if len(calls) == 2:  # the old one went aside; moving the new one in fails
            raise OSError("rename failed (simulated)")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        replace_dir(dest, NEW_DIR)
    monkeypatch.undo()
    assert len(calls) == 3
    assert read_dir(dest) == OLD_DIR and temp_entries(tmp_path) == []


def test_failed_exchange_keeps_the_old_directory(tmp_path, monkeypatch):
    # The exchange itself failing (not "unsupported", which takes the fallback) must leave
    # the old directory in place and no temporary entry behind.
    dest = tmp_path / "model"
    write_dir(dest, OLD_DIR)

    def exchange(a, b):
        raise PermissionError(13, "Permission denied (simulated)")

    monkeypatch.setattr(atomic, "_exchange", exchange)
    with pytest.raises(PermissionError, match="simulated"):
        replace_dir(dest, NEW_DIR)
    monkeypatch.undo()
    assert read_dir(dest) == OLD_DIR and temp_entries(tmp_path) == []
