"""Write a PNG sheet with samples of every toy-world class and their part masks overlaid.

    python experiments/toyworld_sheet.py --out docs/toyworld_sheet.png
"""

from __future__ import annotations

import argparse
import sys

from jaxaware.errors import JaxawareError
from jaxaware.toyworld.sheet import write_sheet


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/toyworld_sheet.png", help="PNG path to write")
    ap.add_argument("--samples", type=int, default=6, help="samples per class (default 6)")
    ap.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    ap.add_argument("--resolution", type=int, default=64, help="32 or 64 (default 64)")
    ap.add_argument("--zoom", type=int, default=2,
                    help="integer upscaling of each tile (default 2)")
    args = ap.parse_args(argv)
    try:
        path = write_sheet(args.out, samples=args.samples, seed=args.seed,
                           resolution=args.resolution, zoom=args.zoom)
    except JaxawareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
