"""The ``jaxaware`` command: convert, sample, awareness, sites.

Every bad input ends in one line ``error: ...`` on stderr and exit status 2; outputs are
written to a temporary file and renamed, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from jaxaware.checks import check_fits_in_memory, check_seed
from jaxaware.atomic import (
    atomic_write,
    check_output_path,
    check_outputs_distinct,
    sigterm_unwinds,
)
from jaxaware.errors import JaxawareError


def _write_png(path: str, array: np.ndarray) -> None:
    from PIL import Image

    with atomic_write(path) as f:
        Image.fromarray(array).save(f, format="PNG")


def image_grid(images: np.ndarray, rows: int, pad: int = 2) -> np.ndarray:
    """uint8 images ``[rows * cols, H, W, 3]`` laid out row by row with a white gap."""
    n, h, w, _ = images.shape
    cols = n // rows
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        top, left = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        grid[top : top + h, left : left + w] = images[i]
    return grid


def _load_model(path: str):
    from jaxaware.model import load

    return load(path)


def check_outputs(args, *names: str) -> None:
    """Every output path of a model command (the ``args`` attributes ``names``; None is
    skipped), before any work: each writable as a file and not inside the weights
    directory being read, and no two the same file. Plugin commands call it too."""
    from jaxaware.model import resolve_weights_path

    weights = resolve_weights_path(args.weights)
    reads = [(weights, "the weights directory")]
    outputs = [(f"--{name}", getattr(args, name)) for name in names]
    for _, path in outputs:
        if path is not None:
            check_output_path(path, reads=reads)
    check_outputs_distinct(outputs)


def grid_bytes(config, num_images: int, zoom: int) -> int:
    """Bytes ``jaxaware sample`` holds at its peak for a grid of ``num_images`` images:
    what :func:`~jaxaware.generate.sample` holds, the uint8 images, zoomed, and the grid
    (counted twice: the PNG encoder's buffers)."""
    from jaxaware.generate import sample_bytes

    side = config.resolution * zoom
    return (sample_bytes(config, num_images) + num_images * config.resolution ** 2 * 3
            + num_images * config.resolution * side * 3 + 3 * num_images * (side + 2) ** 2 * 3)


def cmd_convert(args) -> None:
    from jaxaware.weights_io import check_weights_destination

    check_weights_destination(args.out, force=args.force)
    try:
        from convert import convert

        out = convert(args.source, args.out, preset=args.preset, config_file=args.config,
                      force=args.force)
    except ImportError as e:  # torch or the reference package missing
        raise JaxawareError(
            f"jaxaware convert needs PyTorch and pytorch-pretrained-biggan ({e.name} is missing);"
            " install torch==2.13.0 first, then pip install 'jaxaware[torch]'"
        ) from None
    print(f"wrote {out}")


def cmd_sample(args) -> None:
    from jaxaware.generate import sample, to_uint8

    check_outputs(args, "out")
    model = _load_model(args.weights)
    classes = model.resolve_classes(args.classes)
    res = model.config.resolution
    check_fits_in_memory(grid_bytes(model.config, len(classes) * args.per_class, args.zoom),
                         f"a grid of {len(classes)} x {args.per_class} images of {res}x{res} at "
                         f"zoom {args.zoom}")
    images, _ = sample(model, classes, args.truncation, args.seed, args.per_class,
                       progress=not args.quiet, devices=args.devices)
    if not _writes():
        return
    pixels = to_uint8(images)
    if args.zoom > 1:
        pixels = pixels.repeat(args.zoom, axis=1).repeat(args.zoom, axis=2)
    grid = image_grid(pixels, rows=len(classes))
    _write_png(args.out, grid)
    print(f"wrote {args.out}: {len(classes)} classes x {args.per_class} samples")


def cmd_awareness(args) -> None:
    from jaxaware.awareness import compute_awareness

    check_outputs(args, "out", "figure")
    model = _load_model(args.weights)
    classes = model.resolve_classes(args.classes)
    aw = compute_awareness(
        model,
        classes=classes,
        num_latents=args.num_latents,
        truncation=args.truncation,
        seed=args.seed,
        progress=not args.quiet,
        devices=args.devices,
    )
    if not _writes():
        return
    aw.save(args.out)
    print(
        f"wrote {args.out}: {len(classes)} classes x {aw.category.shape[1]} channels "
        f"({len(aw.site_names)} sites), N={aw.num_latents}, truncation={aw.truncation}"
    )
    if args.figure:
        from jaxaware.figures import awareness_figure

        awareness_figure(aw, args.figure, model.class_names)
        print(f"wrote {args.figure}")


def _writes() -> bool:
    """Whether this process writes the outputs: in a multi-process run (``--coordinator``)
    every process computes the whole result and only process 0 writes and prints."""
    from jaxaware.parallel import is_main_process

    return is_main_process()


def cmd_sites(args) -> None:
    from jaxaware.models import PRESETS
    from jaxaware.sites import format_site_table

    if args.weights in PRESETS:
        config = PRESETS[args.weights]
    else:
        # The table needs only the architecture, but loading verifies the file too.
        config = _load_model(args.weights).config
    print(format_site_table(config))


def cmd_standing_stats(args) -> None:
    from jaxaware.model import SHIPPED_MODELS, resolve_weights_path
    from jaxaware.train.standing import with_standing_rows
    from jaxaware.truncation import check_truncation
    from jaxaware.weights_io import check_weights_destination, load_weights

    if args.out is None and args.weights in SHIPPED_MODELS:
        raise JaxawareError("give --out DIR: shipped models are not changed in place")
    source = resolve_weights_path(args.weights)
    truncations = [check_truncation(t) for t in args.truncation.split(",") if t.strip()]
    if not truncations:
        raise JaxawareError(f"--truncation {args.truncation!r} names no truncation; give one "
                            "or more numbers in (0, 1], e.g. 0.5 or 0.25,0.5,1.0")
    if args.out is not None:  # in place (no --out) replaces the directory it reads, on purpose
        in_place = os.path.realpath(args.out) == os.path.realpath(source)
        check_weights_destination(
            args.out, reads=() if in_place else [(source, "the weights directory")])
    model = _load_model(source)
    updated = with_standing_rows(model, truncations, args.batches, args.batch_size, args.seed,
                                 progress=not args.quiet)
    extra = dict(load_weights(source)[1].get("extra") or {})
    extra["standing_stats"] = {"truncations": list(updated.config.stats_truncations),
                               "batches": args.batches, "batch_size": args.batch_size,
                               "seed": args.seed}
    out = args.out or source
    updated.save(out, extra=extra)
    rows = ", ".join(str(t) for t in updated.config.stats_truncations)
    print(f"wrote {out}: standing statistics at truncation {rows} (and the stored row 0)")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (shared by the plugin subcommands)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = text
    try:
        return check_seed(value)
    except JaxawareError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _truncation(text: str) -> float:
    from jaxaware.truncation import check_truncation

    try:
        return check_truncation(text)
    except JaxawareError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _Parser(argparse.ArgumentParser):
    """Bad arguments end in one ``error:`` line (no usage dump) and exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from jaxaware import parallel

    p = _Parser(
        prog="jaxaware",
        description="Channel awareness for class-conditional BigGAN and BigGAN-deep in JAX.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("convert", help="convert a BigGAN-deep or BigGAN PyTorch checkpoint")
    c.add_argument("source", help="a pytorch_pretrained_biggan directory (pytorch_model.bin + "
                   "config.json), a BigGAN-PyTorch directory (G_ema.pth or G.pth, with "
                   "state_dict.pth), or a name (biggan-deep-128/256/512; downloads, needs "
                   "internet)")
    c.add_argument("out", help="output weights directory")
    c.add_argument("--preset", default=None, help="architecture by name when the directory "
                   "does not say it (biggan-128-138k, biggan-128/256/512, biggan-deep-*)")
    c.add_argument("--config", default=None, help="a JSON file with the architecture's keys "
                   "(BigGAN-PyTorch training arguments) instead of state_dict.pth")
    c.add_argument("--force", action="store_true", help="replace an existing weights directory "
                   "even if it holds files jaxaware did not write")
    c.set_defaults(run=cmd_convert)

    def model_command(name, help, classes, out, run):
        """A command that runs a model: weights, classes, truncation, seed, output."""
        cmd = sub.add_parser(name, help=help)
        cmd.add_argument("weights", nargs="?", default=None,
                         help="weights directory or a shipped model's name (default: the "
                         "shipped toy-world model)")
        cmd.add_argument("--classes", default=classes,
                         help=f'indices or names, e.g. 207,"golden retriever", or all '
                         f"(default: {classes})")
        cmd.add_argument("--truncation", type=_truncation, default=1.0)
        cmd.add_argument("--seed", type=_seed, default=0)
        cmd.add_argument("--out", default=out)
        cmd.add_argument("--quiet", action="store_true", help="no progress bar")
        cmd.set_defaults(run=run)
        return cmd

    s = model_command("sample", "write a grid of samples (rows: classes)", "0", "samples.png",
                      cmd_sample)
    s.add_argument("--per-class", type=positive_int, default=4)
    s.add_argument("--zoom", type=positive_int, default=1, help="integer upscaling of each image")
    parallel.add_arguments(s)

    a = model_command("awareness", "category/latent awareness of every CCBN channel", "all",
                      "awareness.npz", cmd_awareness)
    a.add_argument("--num-latents", type=positive_int, default=1000)
    a.add_argument("--figure", default=None, help="also write a PNG overview here")
    parallel.add_arguments(a)

    st = sub.add_parser("standing-stats", help="re-estimate BigGAN batch-norm statistics at "
                        "truncations and store them as extra rows")
    st.add_argument("weights", help="an original BigGAN weights directory")
    st.add_argument("--truncation", required=True, help="one or more truncations, e.g. 0.5 "
                    "or 0.25,0.5,1.0")
    st.add_argument("--batches", type=positive_int, default=16,
                    help="batches averaged per truncation (default 16, as BigGAN-PyTorch)")
    st.add_argument("--batch-size", type=positive_int, default=64)
    st.add_argument("--seed", type=_seed, default=0)
    st.add_argument("--out", default=None, help="output weights directory (default: in place)")
    st.add_argument("--quiet", action="store_true", help="no progress bar")
    st.set_defaults(run=cmd_standing_stats)

    t = sub.add_parser("sites", help="table of probe/intervention sites")
    t.add_argument("weights", nargs="?", default=None,
                   help="weights directory, a shipped model or an architecture name such "
                   "as biggan-256 or biggan-deep-256 "
                   "(default: the shipped toy-world model)")
    t.set_defaults(run=cmd_sites)
    for module in PLUGINS:
        _register(module, sub, model_command)
    return p


#: Modules that add subcommands: each has ``register(sub, model_command)``, where ``sub`` is
#: the subparsers object and ``model_command(name, help, classes, out, run)`` adds a command
#: taking the usual weights / --classes / --truncation / --seed / --out / --quiet. Modules
#: that are not there yet (or fail to import for a missing optional package) are skipped.
PLUGINS = ("jaxaware.analysis.cli", "jaxaware.applications.cli", "jaxaware.evaluation")


def _register(module: str, sub, model_command) -> None:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            return  # the plugin module itself is absent
        raise
    mod.register(sub, model_command)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with sigterm_unwinds():  # SIGTERM removes temporary files too, then exits with 143
            if hasattr(args, "devices"):  # --devices, --coordinator: before any computation
                from jaxaware.parallel import initialize_from_args

                initialize_from_args(args)
            args.run(args)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except MemoryError:  # the checks refuse what can never fit; this is memory in use elsewhere
        print("error: out of memory; ask for less, or free memory and try again",
              file=sys.stderr)
        return 1
    except OSError as e:  # the system failed a read or write (disk full, I/O error)
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or type(e).__name__}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
