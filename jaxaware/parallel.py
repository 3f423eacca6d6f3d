"""Mesh helpers: the only module that names devices; everything else names the axis.

jaxaware's parallel work is a *map*: awareness over classes, sampling over images, sweeps
over edits. Each is a pure function ``fn(rows, *shared)`` whose output row ``i`` depends only
on input row ``i`` (and on arguments shared by every row). :func:`map_rows` runs such a
function on a 1-D :class:`~jax.sharding.Mesh` with :func:`jax.shard_map`: the rows are cut
into steps of ``d x block`` rows (``d`` devices, ``block`` rows per device), the leading
axis is sharded over the mesh axis :data:`AXIS` (:class:`~jax.sharding.NamedSharding` with
``PartitionSpec(AXIS)``), the shared arguments are replicated, and the results come back
to the host as NumPy arrays, in order, padding removed. A row count that does not divide
is padded with copies of the last row (valid input, results dropped), never an error.

Why ``shard_map`` rather than ``jit`` with shardings: each device runs ``fn`` itself on
its own ``[block, ...]`` rows, the very program a 1-device run compiles for a block of
that shape. So a function whose rows do not depend on the block size (an elementwise
kernel such as awareness) gives bit-identical rows on any number of devices, and any
function gives bit-identical rows when the block is held fixed (``shrink=False``: what
:func:`jaxaware.sample` does, since convolutions may sum in another order at another
batch size). No collectives run inside ``fn``; the compiler partitions nothing.

Devices. ``devices=None`` uses every device JAX sees (in a multi-process run: every
process's devices); an int ``N`` uses the first ``N`` local devices of each process; a
1-D :class:`~jax.sharding.Mesh` is used as given. Multi-process runs (one process per
host, or several on one machine for testing) start with :func:`initialize` before any JAX
computation; every process then runs the same code on the same host inputs, each computes
its devices' rows, and :func:`gather` hands every process the full result
(:func:`jax.experimental.multihost_utils.process_allgather`), so only the writing of
files needs :func:`is_main_process`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxaware.checks import is_int
from jaxaware.errors import JaxawareError

__all__ = ["AXIS", "add_arguments", "check_devices", "gather", "initialize",
           "initialize_from_args", "is_main_process", "make_mesh", "map_rows", "pad_rows",
           "process_count", "put", "same_on_all_processes"]

#: The name of the one mesh axis that jaxaware's maps shard their leading axis over.
AXIS = "rows"

#: Seconds a process waits for the others at :func:`initialize` (``--init-timeout``).
INIT_TIMEOUT = 120


# -- devices and meshes -------------------------------------------------------------------


def process_count() -> int:
    """Processes in this run (1 unless :func:`initialize` joined several)."""
    return jax.process_count()


def is_main_process() -> bool:
    """Whether this is process 0, the one that writes files and prints."""
    return jax.process_index() == 0


def check_devices(devices, flag: str | None = None):
    """``devices`` checked: None (all), an int in ``1..local devices``, or a 1-D Mesh.

    ``flag`` names the option in messages (``"--devices"``); without it the message names
    the argument ``devices=``. A count is per process: ``N`` takes the first ``N`` local
    devices of every process.
    """
    if devices is None or isinstance(devices, Mesh):
        if isinstance(devices, Mesh) and len(devices.axis_names) != 1:
            raise JaxawareError(f"devices must be a 1-D Mesh; got axes {devices.axis_names}")
        return devices
    shown = f"{flag} {devices}" if flag else f"devices={devices!r}"
    have = jax.local_device_count()
    where = "" if process_count() == 1 else (f" in this process ({jax.device_count()} in "
                                              f"{process_count()} processes)")
    noun = "device" if have == 1 else "devices"
    if not is_int(devices):
        raise JaxawareError(f"{shown} is not a device count; give an integer 1..{have}"
                            f"{'' if flag else ' or None (all)'}")
    if devices < 1:
        raise JaxawareError(f"{shown} must be at least 1; give 1..{have}")
    if devices > have:
        raise JaxawareError(f"{shown} is more than the {have} {noun} JAX sees{where}; "
                            f"give 1..{have}")
    return int(devices)


@functools.lru_cache(maxsize=None)
def _mesh(count: int | None, axis: str) -> Mesh:
    chosen = []
    for p in range(jax.process_count()):
        local = sorted(jax.local_devices(process_index=p), key=lambda d: d.id)
        chosen += local if count is None else local[:count]
    return Mesh(np.array(chosen), (axis,))


def make_mesh(devices=None, axis: str = AXIS) -> Mesh:
    """A 1-D mesh named ``axis``: every device (None), the first ``N`` local devices of
    each process (an int), or ``devices`` itself (a 1-D Mesh). Cached, so the jitted
    maps over it compile once."""
    devices = check_devices(devices)
    if isinstance(devices, Mesh):
        return devices
    return _mesh(devices, axis)


# -- moving rows --------------------------------------------------------------------------


def pad_rows(tree, multiple: int):
    """``(padded, n)``: every leaf of ``tree`` (same leading length ``n >= 1``) padded
    along axis 0 to a multiple of ``multiple`` with copies of its last row (valid input
    for any function that takes the rows; the extra results are dropped)."""
    leaves = jax.tree.leaves(tree)
    n = _rows(leaves)
    total = -(-n // multiple) * multiple
    if total == n:
        return tree, n
    index = np.minimum(np.arange(total), n - 1)
    return jax.tree.map(lambda x: np.asarray(x)[index], tree), n


def _rows(leaves) -> int:
    if not leaves:
        raise JaxawareError("map_rows needs at least one array of rows")
    lengths = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if len(lengths) != 1 or None in lengths or 0 in lengths:
        raise JaxawareError(f"the mapped arrays must share one non-zero leading length; got "
                            f"{sorted(map(str, lengths))}")
    return lengths.pop()


def put(tree, mesh: Mesh, spec: PartitionSpec = PartitionSpec()):
    """``tree`` placed on ``mesh`` with ``NamedSharding(mesh, spec)`` (default: replicated).

    Single process: :func:`jax.device_put`. Several processes: every process holds the
    same host values and builds the global array from its own shards
    (:func:`jax.make_array_from_callback`)."""
    sharding = NamedSharding(mesh, spec)
    if mesh.is_multi_process:
        def one(x):
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])

        return jax.tree.map(one, tree)
    if all(isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim)
           for x in jax.tree.leaves(tree)):
        return tree  # already there (e.g. one device): no copy
    return jax.device_put(tree, sharding)


def gather(tree):
    """Every leaf as a full NumPy array on the host of every process (multi-process:
    :func:`~jax.experimental.multihost_utils.process_allgather`, a collective: every
    process must call it, in the same order)."""
    leaves = jax.tree.leaves(tree)
    if any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in leaves):
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, tree)


def same_on_all_processes(x):
    """``x`` as process 0 has it, on every process (a no-op with one process): for host
    values drawn from fresh entropy, which would otherwise differ between processes."""
    if process_count() == 1:
        return x
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(x))


# -- the sharded map ----------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _sharded(fn: Callable, mesh: Mesh, num_shared: int):
    """``jit(shard_map(fn))``: rows split over the mesh axis, shared arguments replicated.
    Cached per ``(fn, mesh)``, so repeated calls with the same function object compile
    once. ``check_vma=False``: ``fn`` runs no collectives, and loops whose carry starts
    from a constant (the awareness kernel's) would otherwise be refused."""
    (axis,) = mesh.axis_names
    spec = PartitionSpec(axis)
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=(spec,) + (PartitionSpec(),) * num_shared,
                           out_specs=spec, check_vma=False)
    return jax.jit(mapped)


def map_rows(fn: Callable, rows, *shared, block: int, shrink: bool = True, devices=None,
             progress: Callable[[int], object] | None = None):
    """``fn`` mapped over the leading axis of ``rows``, sharded over the devices.

    Args:
      fn: pure ``fn(rows_block, *shared) -> pytree of arrays``, each with leading axis
        ``len(rows_block)``; output row ``i`` may depend only on input row ``i`` and
        ``shared``. Keep one function object (module level, or cached) so it compiles once.
      rows: a pytree of arrays with one leading length ``M >= 1`` (host or device arrays;
        they pass through the host to be cut into steps).
      shared: arguments every row sees (replicated on every device once per call).
      block: rows per device per step (the memory bound of one step).
      shrink: when ``M < d x block``, use ``ceil(M / d)`` rows per device (less padding).
        Give False when ``fn``'s rows may depend on the block size in the last bits
        (convolutions, matmuls): every device then runs the same ``[block, ...]`` program
        as a 1-device run, and the rows are bit-identical on any number of devices.
      devices: None (all), an int (first ``N`` local devices per process) or a 1-D Mesh.
      progress: called with the number of real rows each step finished.

    Returns:
      ``fn``'s pytree as NumPy arrays with leading axis ``M``, on every process. Step ``s +
      1`` is dispatched before step ``s`` is copied out, so the host copy overlaps compute.
    """
    mesh = make_mesh(devices)
    d = mesh.size
    if not is_int(block) or block < 1:
        raise JaxawareError(f"block must be a positive integer; got {block!r}")
    host = jax.tree.map(np.asarray, rows)
    m = _rows(jax.tree.leaves(host))
    if shrink:
        block = min(block, math.ceil(m / d))
    step = d * block
    host, _ = pad_rows(host, step)
    run = _sharded(fn, mesh, len(shared))
    shared = put(shared, mesh)
    spec = PartitionSpec(mesh.axis_names[0])

    def launch(start):
        part = jax.tree.map(lambda x: x[start : start + step], host)
        if mesh.is_multi_process:
            part = put(part, mesh, spec)
        return run(part, *shared)  # one process: jit places host rows as its specs say

    starts = list(range(0, m, step))
    outs = []
    pending = launch(starts[0])
    for i, start in enumerate(starts):
        current = pending
        if i + 1 < len(starts):  # dispatch the next step before copying this one out
            pending = launch(starts[i + 1])
        real = min(step, m - start)
        outs.append(jax.tree.map(lambda x: x[:real], gather(current)))
        if progress is not None:
            progress(real)
    if len(outs) == 1:
        return outs[0]
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


# -- several processes --------------------------------------------------------------------


def initialize(coordinator: str, num_processes: int | None = None,
               process_id: int | None = None, timeout: int = INIT_TIMEOUT) -> None:
    """Joins a multi-process run (:func:`jax.distributed.initialize`); call it before any
    JAX computation, in every process, with the same ``coordinator`` and ``num_processes``.

    ``coordinator`` is ``HOST:PORT`` of process 0 (``localhost:1234`` for processes on one
    machine), or ``"auto"``: JAX detects all three from the cluster it runs on (Cloud TPU,
    Slurm, Open MPI, Kubernetes; ``JAX_COORDINATOR_ADDRESS`` overrides the address). On
    CPU the processes exchange data through JAX's default CPU collectives (gloo over TCP,
    ``jax_cpu_collectives_implementation``).

    With ``HOST:PORT``, the processes first meet in :func:`_rendezvous` (plain TCP on that
    port, then handed to JAX): a process that is missing, a second process with the same
    id or a process started with another count fails every process within ``timeout``
    seconds with one line, where JAX's own client would abort the process with a C++
    stack trace.
    """
    from jax._src import distributed, xla_bridge

    if distributed.global_state.client is not None:
        return  # already joined (e.g. a second command in the same process)
    auto = coordinator == "auto"
    if not auto:
        host, _, port = (coordinator.rpartition(":") if isinstance(coordinator, str)
                         else ("", "", ""))
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise JaxawareError(f"--coordinator {coordinator!r} is not HOST:PORT (e.g. "
                                "localhost:1234), nor auto")
        if num_processes is None or process_id is None:
            raise JaxawareError("--coordinator HOST:PORT needs --num-processes and "
                                "--process-id (or --coordinator auto on a cluster JAX "
                                "detects)")
    if num_processes is not None and (not is_int(num_processes) or num_processes < 1):
        raise JaxawareError(f"--num-processes {num_processes} must be at least 1")
    if process_id is not None and num_processes is not None and not (
            is_int(process_id) and 0 <= process_id < num_processes):
        raise JaxawareError(f"--process-id {process_id} is not in 0..{num_processes - 1} "
                            f"(--num-processes {num_processes})")
    if xla_bridge.backends_are_initialized():
        raise JaxawareError("JAX already ran a computation in this process; join the "
                            "multi-process run first (start a fresh process)")
    if not auto:
        _rendezvous(host.strip("[]"), int(port), num_processes, process_id, timeout)
    try:
        jax.distributed.initialize(coordinator_address=None if auto else coordinator,
                                   num_processes=num_processes, process_id=process_id,
                                   initialization_timeout=int(timeout))
    except (RuntimeError, ValueError, TypeError) as e:
        text = str(e).strip()
        first = text.splitlines()[0][:200] if text else type(e).__name__
        hint = ("; --coordinator auto needs a cluster JAX detects (Cloud TPU, Slurm, Open "
                "MPI), elsewhere give HOST:PORT") if auto else ""
        raise JaxawareError(f"could not join the multi-process run at "
                            f"{'the cluster' if auto else coordinator} ({first}){hint}") from None


_HELLO = "jaxaware-rendezvous/1"


def _rendezvous(host: str, port: int, num_processes: int, process_id: int,
                timeout: float) -> None:
    """Every process checks in with process 0 over plain TCP on the coordinator's port
    before JAX's coordination service takes the port over: process 0 listens, each other
    process sends ``(id, count)``, and process 0 answers all of them at once: ``OK`` when
    ids ``1..P-1`` have all arrived with its own count, else the reason, which every
    process raises as one line. Bounded: process 0 waits ``timeout`` seconds for the
    others; the others wait ``2 * timeout`` (process 0 may start later) for its answer."""
    import socket
    import time

    if num_processes == 1:
        return
    deadline = time.monotonic() + timeout
    where = f"{host}:{port}"
    if process_id != 0:
        _check_in(host, port, num_processes, process_id, deadline + timeout, where, timeout)
        return
    try:
        if socket.has_dualstack_ipv6():
            server = socket.create_server(("", port), family=socket.AF_INET6,
                                          dualstack_ipv6=True)
        else:
            server = socket.create_server(("", port))
    except OSError as e:
        raise JaxawareError(f"process 0 cannot listen on port {port} ({e.strerror or e}); "
                            "give --coordinator a free port") from None
    joined: dict[int, socket.socket] = {}
    problem = None
    try:
        while len(joined) < num_processes - 1 and problem is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            server.settimeout(left)
            try:
                conn, _ = server.accept()
            except (socket.timeout, OSError):
                break
            conn.settimeout(max(left, 1.0))
            words = _read_line(conn).split()
            if len(words) != 3 or words[0] != _HELLO or not all(w.isdigit() for w in words[1:]):
                conn.close()  # not one of ours
                continue
            pid, count = int(words[1]), int(words[2])
            joined_before = pid in joined
            joined.setdefault(pid, conn)
            if joined_before or pid == 0:
                problem = (f"two processes were started with --process-id {pid}; give each "
                           f"process its own id 0..{num_processes - 1}")
                _send(conn, "ERR " + problem)
                conn.close()
            elif count != num_processes:
                problem = (f"process {pid} was started with --num-processes {count} but "
                           f"process 0 with {num_processes}; give every process the same "
                           "count")
        if problem is None and len(joined) < num_processes - 1:
            missing = sorted(set(range(1, num_processes)) - set(joined))
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            problem = (f"only {len(joined) + 1} of {num_processes} processes joined {where} "
                       f"within {timeout:g} s (missing --process-id {shown}); start all "
                       f"{num_processes} with the same --coordinator and --num-processes")
        for conn in joined.values():
            _send(conn, "OK" if problem is None else "ERR " + problem)
        for conn in joined.values():  # let the others close first (their side keeps
            _read_line(conn)          # TIME_WAIT, so the port is free for JAX at once)
    finally:
        for conn in joined.values():
            conn.close()
        server.close()
    if problem is not None:
        raise JaxawareError(problem)


def _check_in(host, port, num_processes, process_id, deadline, where, timeout) -> None:
    import socket
    import time

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise JaxawareError(f"process 0 did not answer at {where} within "
                                f"{2 * timeout:g} s; start process 0 with the same "
                                "--coordinator (its host and a free port)")
        try:
            conn = socket.create_connection((host, port), timeout=min(left, 5.0))
            break
        except OSError:
            time.sleep(min(0.2, max(left, 0)))
    try:
        conn.settimeout(max(deadline - time.monotonic(), 1.0))
        _send(conn, f"{_HELLO} {process_id} {num_processes}")
        answer = _read_line(conn)
    finally:
        conn.close()
    if answer == "OK":
        return
    if answer.startswith("ERR "):
        raise JaxawareError(answer[4:])
    raise JaxawareError(f"process 0 at {where} did not confirm the {num_processes} processes "
                        f"within {2 * timeout:g} s; start every process with the same "
                        "--coordinator and --num-processes")


def _send(conn, line: str) -> None:
    try:
        conn.sendall((line + "\n").encode())
    except OSError:
        pass


def _read_line(conn) -> str:
    """One ``\n``-terminated line (at most 4 kB), or what arrived before the peer closed
    or the socket's timeout passed."""
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < 4096:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data.decode(errors="replace").strip()


def add_arguments(parser) -> None:
    """Adds ``--devices`` and the multi-process options to a command's argparse parser."""
    parser.add_argument("--devices", type=_int_arg, default=None, metavar="N",
                        help="use the first N local devices (default: all JAX sees)")
    group = parser.add_argument_group(
        "several processes", "run one process per host (or several on one machine); each "
        "computes its share, process 0 writes the files")
    group.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="process 0's address and a free port, the same for every "
                       "process; 'auto' lets JAX detect a TPU, Slurm or MPI cluster")
    group.add_argument("--num-processes", type=_int_arg, default=None, metavar="P")
    group.add_argument("--process-id", type=_int_arg, default=None, metavar="I",
                       help="this process's id, 0..P-1")
    group.add_argument("--init-timeout", type=_int_arg, default=INIT_TIMEOUT, metavar="S",
                       help=f"seconds to wait for the other processes (default "
                       f"{INIT_TIMEOUT})")


def _int_arg(text: str) -> int:
    import argparse

    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None


def initialize_from_args(args) -> None:
    """Joins the multi-process run an :func:`add_arguments` command line asks for (none
    without ``--coordinator``), then checks ``--devices``; before any JAX computation."""
    coordinator = getattr(args, "coordinator", None)
    if coordinator is None:
        if getattr(args, "num_processes", None) is not None or getattr(
                args, "process_id", None) is not None:
            raise JaxawareError("--num-processes and --process-id need --coordinator "
                                "HOST:PORT")
    else:
        if args.init_timeout < 1:
            raise JaxawareError(f"--init-timeout {args.init_timeout} must be at least 1 s")
        initialize(coordinator, args.num_processes, args.process_id, args.init_timeout)
    if hasattr(args, "devices"):
        check_devices(args.devices, flag="--devices")
