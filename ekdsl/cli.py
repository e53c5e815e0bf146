"""``python -m ekdsl``: export, check, run and dev sub-commands.

Only this module turns :class:`~ekdsl.errors.EkdslError` into exit codes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from .errors import EkdslError

__all__ = ["main"]

_DEV_MODES = ("source", "sink", "function", "serve")  # the modes of 'dev' (ekdsl.host.dev)


def _export(args: argparse.Namespace) -> int:
    from .metadata import EXECUTABLE
    from .package import diff_export, export
    from .plugin import load_target
    from .wheels import read_wheel

    model = load_target(args.target).model()
    wheels = [read_wheel(path) for path in args.wheel]
    executable = args.executable or EXECUTABLE
    if args.check:
        report = diff_export(model, args.output, make_zip=args.zip, vendor=not args.no_vendor, wheels=wheels,
                             executable=executable)
        if report:
            print("\n".join(report))
            flags = "".join(f" {flag}" for flag, on in (("--zip", args.zip), ("--no-vendor", args.no_vendor)) if on)
            flags += "".join(f" --wheel {w}" for w in args.wheel)
            flags += f" --executable {executable}" if args.executable else ""
            print(f"ekdsl: export of '{model.name}' in {args.output} is out of date: "
                  f"run 'python -m ekdsl export {args.target} -o {args.output}{flags}'", file=sys.stderr)
            return 1
        print(f"{model.name}: export in {args.output} is up to date")
        return 0
    result = export(model, args.output, make_zip=args.zip, vendor=not args.no_vendor, wheels=wheels,
                    executable=executable)
    counts = ", ".join(f"{len(model.of_kind(k))} {k}s" for k in ("source", "sink", "function"))
    print(f"exported plugin '{model.name}' {model.version} ({counts}) to {result.directory}")
    for wheel in wheels:
        where = "any platform" if wheel.pure else f"{wheel.tags} only"
        print(f"carries {wheel.dist} {wheel.version} ({len(wheel.files)} files) for {where}")
    if result.zip_path:
        print(f"zip: {result.zip_path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .checks import check_package

    report = check_package(args.package, args.name)
    for finding in report.findings:
        print(f"{report.name}: {finding}")
    if not report.ok:
        return 1
    info = report.info
    print(f"{report.name}: ok ({len(info['sources'])} sources, {len(info['sinks'])} sinks, "
          f"{len(info['functions'])} functions)")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .runtime import main as run_main

    return run_main(args.target, args.argv)


def _dev(args: argparse.Namespace) -> int:
    from .host.dev import run as run_dev

    return run_dev(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ekdsl", description="Build, check and run eKuiper portable plugins.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"ekdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("export", help="write the plugin's files (and zip) from its code")
    p.add_argument("target", help="module, module:attr, or path to a .py file")
    p.add_argument("-o", "--output", default="dist", help="output folder (default: dist)")
    p.add_argument("--zip", action="store_true", help="also write <output>/<name>.zip")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff if out of date")
    p.add_argument("--no-vendor", action="store_true",
                   help="do not copy ekdsl into the package (it must then be installed where eKuiper runs)")
    p.add_argument("--wheel", action="append", default=[], metavar="WHL",
                   help="carry this wheel's library in the package (repeatable), e.g. orjson for the "
                        "platform eKuiper runs on")
    p.add_argument("--executable", metavar="NAME",
                   help="file name of the script eKuiper launches (default: main.py), e.g. <plugin>.py as the "
                        "official SDK's plugins name it")
    p.set_defaults(handler=_export)

    p = sub.add_parser("check", help="run eKuiper's install checks and metadata lint on a package")
    p.add_argument("package", help="a plugin .zip or an exported folder")
    p.add_argument("--name", help="install name (default: the zip's or folder's base name)")
    p.set_defaults(handler=_check)

    p = sub.add_parser("run", help="serve the plugin to eKuiper (what the generated main script does)")
    p.add_argument("target", help="module, module:attr, or path to a .py file")
    p.add_argument("argv", nargs="*", help='the argument eKuiper passes, e.g. \'{"sendTimeout":1000}\'')
    p.set_defaults(handler=_run)

    from .host.dev import add_arguments

    p = sub.add_parser("dev", help="run a plugin against the eKuiper emulator: a tour, or one symbol")
    add_arguments(p)
    p.set_defaults(handler=_dev)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) > 2 and argv[0] == "dev" and argv[1] in _DEV_MODES and {"-h", "--help"} & set(argv[2:]):
        argv.insert(1, "TARGET")  # 'dev source --help': the mode's help, not dev's
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except EkdslError as exc:
        print(f"ekdsl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130

