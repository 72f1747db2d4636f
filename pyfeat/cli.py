"""The ``pyfeat`` command line (also ``python -m pyfeat``)."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_info(args):
    from pyfeat.backend import format_info, info

    d = info()
    print(json.dumps(d, indent=2, default=str) if args.json else format_info(d))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="pyfeat", description="Feature learning vs kernels, at scale.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="backends, devices, build facts, BLAS kernels and threads")
    p.add_argument("--json", action="store_true", help="print the facts as JSON")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
