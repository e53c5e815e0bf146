"""``python -m ekdsl``: export, check, run and dev sub-commands.

Only this module turns :class:`~ekdsl.errors.EkdslError` into exit codes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional, Sequence

from .errors import EkdslError

__all__ = ["main"]


def _export(args: argparse.Namespace) -> int:
    from .package import diff_export, export
    from .plugin import load_target
    from .wheels import read_wheel

    model = load_target(args.target).model()
    if args.service:
        return _export_service(model, args)
    wheels = [read_wheel(path) for path in args.wheel]
    if args.check:
        report = diff_export(model, args.output, make_zip=args.zip, vendor=not args.no_vendor, wheels=wheels)
        if report:
            print("\n".join(report))
            print(f"ekdsl: export of '{model.name}' in {args.output} is out of date: "
                  f"run 'python -m ekdsl export {args.target} -o {args.output}'"
                  f"{' --zip' if args.zip else ''}", file=sys.stderr)
            return 1
        print(f"{model.name}: export in {args.output} is up to date")
        return 0
    result = export(model, args.output, make_zip=args.zip, vendor=not args.no_vendor, wheels=wheels)
    counts = ", ".join(f"{len(model.of_kind(k))} {k}s" for k in ("source", "sink", "function"))
    print(f"exported plugin '{model.name}' {model.version} ({counts}) to {result.directory}")
    for wheel in wheels:
        where = "any platform" if wheel.pure else f"{wheel.tags} only"
        print(f"carries {wheel.dist} {wheel.version} ({len(wheel.files)} files) for {where}")
    if result.zip_path:
        print(f"zip: {result.zip_path}")
    return 0


def _export_service(model: Any, args: argparse.Namespace) -> int:
    from .service.export import export_service

    result = export_service(model, args.output, args.service, args.protocol)
    for skipped in result.skipped:
        print(f"not served: {skipped}")
    print(f"exported service '{model.name}' ({args.protocol}, {args.service}): {', '.join(result.files)}")
    print(f"zip: {result.zip_path}")
    return 0


def _service(args: argparse.Namespace) -> int:
    from .service.serve import serve

    return serve(args.target, args.listen, args.protocol, args.workers)


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
    p.add_argument("--service", metavar="ADDRESS",
                   help="write instead the external-service description, proto schema and zip for eKuiper's "
                        "POST /services, the functions being served at ADDRESS (HOST:PORT or a URL)")
    p.add_argument("--protocol", choices=("rest", "msgpack-rpc"), default="rest",
                   help="the service protocol, with --service (default: rest)")
    p.set_defaults(handler=_export)

    p = sub.add_parser("check", help="run eKuiper's install checks and metadata lint on a package")
    p.add_argument("package", help="a plugin .zip or an exported folder")
    p.add_argument("--name", help="install name (default: the zip's or folder's base name)")
    p.set_defaults(handler=_check)

    p = sub.add_parser("run", help="serve the plugin to eKuiper (what the generated main script does)")
    p.add_argument("target", help="module, module:attr, or path to a .py file")
    p.add_argument("argv", nargs="*", help='the argument eKuiper passes, e.g. \'{"sendTimeout":1000}\'')
    p.set_defaults(handler=_run)

    p = sub.add_parser("service", help="serve the plugin's functions to eKuiper as an external service")
    p.add_argument("target", help="module, module:attr, or path to a .py file")
    p.add_argument("--listen", default="127.0.0.1:8000", metavar="HOST:PORT",
                   help="address to listen on (default: 127.0.0.1:8000; port 0 picks a free one)")
    p.add_argument("--protocol", choices=("rest", "msgpack-rpc"), default="rest", help="wire protocol")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="run calls in N processes (for CPU-bound functions; default 1: threads in this one)")
    p.set_defaults(handler=_service)

    from .host.dev import add_arguments

    p = sub.add_parser("dev", help="run a plugin against the eKuiper emulator: a tour, or one symbol")
    add_arguments(p)
    p.set_defaults(handler=_dev)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except EkdslError as exc:
        print(f"ekdsl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130

