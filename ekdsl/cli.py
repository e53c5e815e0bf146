"""``python -m ekdsl``: export, check, run, dev, deploy, service and state sub-commands.

Only this module turns :class:`~ekdsl.errors.EkdslError` into exit codes.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, NamedTuple, Optional, Sequence

from .errors import EkdslError, UsageError
from .kinds import Kind

if TYPE_CHECKING:
    from .deploy.bundle import Bundle
    from .model import PluginModel

__all__ = ["main"]

_DEV_MODES = ("source", "sink", "function", "serve")  # the modes of 'dev' (ekdsl.host.dev)


def _export(args: argparse.Namespace) -> int:
    from .metadata import EXECUTABLE
    from .package import diff_export, export
    from .plugin import load_target
    from .wheels import read_wheel

    _layout_usage(args)
    if args.output is None:
        args.output = "dist"
    model = load_target(args.target).model()
    if args.service:
        return _export_service(model, args)
    wheels = [read_wheel(path) for path in args.wheel]
    executable = args.executable or EXECUTABLE
    bundle = _bundle(model, args)
    if args.layout:
        return _export_layout(model, args, wheels, bundle, executable)
    if args.check:
        report = diff_export(model, args.output, make_zip=args.zip, vendor=not args.no_vendor, wheels=wheels,
                             bundle=bundle, executable=executable)
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
                    bundle=bundle, executable=executable)
    counts = ", ".join(f"{len(model.of_kind(k))} {k}s" for k in Kind)
    print(f"exported plugin '{model.name}' {model.version} ({counts}) to {result.directory}")
    _print_notes(model)
    for wheel in wheels:
        where = "any platform" if wheel.pure else f"{wheel.tags} only"
        print(f"carries {wheel.dist} {wheel.version} ({len(wheel.files)} files) for {where}")
    _print_requirements(model, bundle)
    if result.zip_path:
        print(f"zip: {result.zip_path}")
    return 0


def _layout_usage(args: argparse.Namespace) -> None:
    """Refuse options that do not go with ``--layout``, or that only go with it."""
    if args.layout:
        clash = [flag for flag, on in (("-o", args.output is not None), ("--zip", args.zip), ("--check", args.check),
                                       ("--service", args.service)) if on]
        if clash:
            raise UsageError(f"--layout writes the plugin into an eKuiper root instead of an export folder, so "
                             f"{clash[0]} does not apply: drop it, or export twice")
        return
    alone = [flag for flag, on in (("--provision", args.provision), ("--python", args.python),
                                   ("--no-install", args.no_install)) if on]
    if alone:
        raise UsageError(f"{alone[0]} is an option of --layout ROOT: add --layout")


def _export_layout(model: PluginModel, args: argparse.Namespace, wheels: Any, bundle: Optional[Bundle],
                   executable: str) -> int:
    from .deploy.provision import load
    from .package import layout

    provision = load(args.provision) if args.provision else None
    done = layout(model, args.layout, vendor=not args.no_vendor, wheels=wheels, bundle=bundle,
                  executable=executable, provision=provision, install=not args.no_install, python=args.python)
    counts = ", ".join(f"{len(model.of_kind(k))} {k}s" for k in Kind)
    print(f"laid out plugin '{model.name}' {model.version} ({counts}) in {done.root} for eKuiper to load at boot:")
    for path in done.written:
        print(f"  {path}")
    _print_notes(model)
    for path in done.removed:
        print(f"  removed {path} (a symbol the plugin no longer has)")
    _print_requirements(model, bundle)
    if done.install_output:
        print(done.install_output.rstrip())
    elif done.install_script:
        print(f"install.sh not run (--no-install): run 'sh {done.install_script}' with the Python eKuiper runs "
              "plugins with before eKuiper starts")
    for change in done.init_changes:
        print(f"etc/init.json: {change}")
    return 0


def _print_notes(model: PluginModel) -> None:
    from .notes import definition_notes

    for note in definition_notes(model):
        print(f"note: {note}")


def _bundle(model: PluginModel, args: argparse.Namespace) -> Optional[Bundle]:
    from .deploy.bundle import download
    from .deploy.requirements import collect

    if not args.vendor:
        if args.platform or args.python_version or args.find_links or args.no_index:
            raise UsageError("--platform, --python-version, --find-links and --no-index choose what --vendor "
                             "downloads: add --vendor")
        return None
    return download(collect(model.requirements, model.module_file), args.platform, args.python_version,
                    find_links=args.find_links, no_index=args.no_index)


def _print_requirements(model: PluginModel, bundle: Optional[Bundle]) -> None:
    from .deploy.requirements import collect

    reqs = collect(model.requirements, model.module_file)
    if not reqs:
        return
    where = f"conda environment '{model.conda_env}'" if model.conda_env else "the plugin's own .venv"
    print(f"requirements: {', '.join(r.text for r in reqs)} (install.sh installs them into {where})")
    if bundle is None:
        print("install.sh downloads them from pip's index when eKuiper installs the plugin "
              "(export with --vendor to carry the wheels instead)")
        return
    for platform, names in bundle.platforms.items():
        print(f"wheels for {platform}, Python {bundle.python_version}: {', '.join(names)}")


def _export_service(model: Any, args: argparse.Namespace) -> int:
    from .service.export import export_service

    result = export_service(model, args.output, args.service, args.protocol)
    for skipped in result.skipped:
        print(f"not served: {skipped}")
    print(f"exported service '{model.name}' ({args.protocol}, {args.service}): {', '.join(result.files)}")
    print(f"zip: {result.zip_path}")
    return 0


def _service(args: argparse.Namespace) -> int:
    from .service.options import Options
    from .service.serve import serve

    options = Options(**{name: getattr(args, name) for name in Options._fields})
    return serve(args.target, options)


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


def _deploy(args: argparse.Namespace) -> int:
    from .deploy.cli import run as run_deploy

    return run_deploy(args)


def _state(args: argparse.Namespace) -> int:
    from .state.cli import run as run_state

    return run_state(args)


def _state_arguments(p: argparse.ArgumentParser) -> None:
    from .state.cli import add_arguments

    add_arguments(p)


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="module, module:attr, or path to a .py file")
    p.add_argument("-o", "--output", help="output folder (default: dist)")
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
    p.add_argument("--vendor", action="store_true",
                   help="download the wheels of the plugin's requirements into the package, for an install "
                        "without network")
    p.add_argument("--platform", action="append", default=[], metavar="TAG",
                   help="with --vendor: a platform eKuiper runs on (repeatable), e.g. manylinux2014_x86_64, "
                        "manylinux2014_aarch64, musllinux_1_2_x86_64 (default: this machine)")
    p.add_argument("--python-version", default="", metavar="X.Y",
                   help="with --vendor: the Python eKuiper runs plugins with (default: this one's)")
    p.add_argument("--find-links", action="append", default=[], metavar="DIR",
                   help="with --vendor: also look for wheels in DIR (repeatable)")
    p.add_argument("--no-index", action="store_true", help="with --vendor: use --find-links folders only")
    p.add_argument("--service", metavar="ADDRESS",
                   help="write instead the external-service description, proto schema and zip for eKuiper's "
                        "POST /services, the functions being served at ADDRESS (HOST:PORT or a URL)")
    p.add_argument("--protocol", choices=("rest", "grpc", "msgpack-rpc"), default="rest",
                   help="the service protocol, with --service (default: rest)")
    p.add_argument("--layout", metavar="ROOT",
                   help="write the plugin into the eKuiper root ROOT (its etc/, data/ and plugins/) as eKuiper "
                        "loads it at boot, instead of -o DIR: plugins/portable/<name>/, etc/sources|sinks|functions/")
    p.add_argument("--provision", metavar="FILE",
                   help="with --layout: add the streams, tables and rules of FILE (as deploy --provision reads "
                        "it) to ROOT/etc/init.json, which eKuiper imports at boot")
    p.add_argument("--python", metavar="BIN",
                   help="with --layout: the Python eKuiper runs plugins with (its portable.pythonBin); install.sh "
                        "builds the plugin's .venv from it (default: $KUIPER__PORTABLE__PYTHONBIN, python, python3)")
    p.add_argument("--no-install", action="store_true",
                   help="with --layout: do not run install.sh; run 'sh ROOT/plugins/portable/<name>/install.sh' "
                        "yourself before eKuiper starts")


def _check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("package", help="a plugin .zip or an exported folder")
    p.add_argument("--name", help="install name (default: the zip's or folder's base name)")


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="module, module:attr, or path to a .py file")
    p.add_argument("argv", nargs="*", help='the argument eKuiper passes, e.g. \'{"sendTimeout":1000}\'')


def _service_arguments(p: argparse.ArgumentParser) -> None:
    from .service.options import PROTOCOLS, Options

    d = Options()
    p.add_argument("target", help="module, module:attr, or path to a .py file")
    p.add_argument("--listen", default=d.listen, metavar="HOST:PORT",
                   help=f"address to listen on (default: {d.listen}; port 0 picks a free one)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=d.protocol, help="wire protocol (default: rest)")
    p.add_argument("--workers", type=int, default=d.workers, metavar="N",
                   help="run calls in N processes, a process whose call passes its deadline being replaced "
                        "(default 0: threads of this one)")
    p.add_argument("--call-timeout", type=float, default=d.call_timeout, metavar="S",
                   help=f"each call's deadline in seconds (default {d.call_timeout:g}: under the 5 s eKuiper "
                        "waits)")
    p.add_argument("--concurrency", type=int, default=d.concurrency, metavar="N",
                   help=f"calls run at once in this process (default {d.concurrency}); more wait their turn")
    p.add_argument("--max-connections", type=int, default=d.max_connections, metavar="N",
                   help=f"connections (rest, msgpack-rpc) or rpcs (grpc) at once (default {d.max_connections})")
    p.add_argument("--max-body", type=int, default=d.max_body, metavar="BYTES",
                   help=f"largest request body or message (default {d.max_body})")
    p.add_argument("--header-timeout", type=float, default=d.header_timeout, metavar="S",
                   help=f"seconds for a request head (rest) or a connection's handshake (grpc) "
                        f"(default {d.header_timeout:g})")
    p.add_argument("--body-timeout", type=float, default=d.body_timeout, metavar="S",
                   help=f"seconds for a request body to arrive (rest; default {d.body_timeout:g})")
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout, metavar="S",
                   help=f"close a connection idle this long (rest, grpc; default {d.idle_timeout:g})")
    p.add_argument("--backlog", type=int, default=d.backlog, metavar="N",
                   help=f"connections waiting to be accepted (default {d.backlog})")
    p.add_argument("--grace", type=float, default=d.grace, metavar="S",
                   help=f"on SIGTERM, seconds the calls in flight may finish in (default {d.grace:g}); a "
                        "second signal cuts them off at once")


def _dev_arguments(p: argparse.ArgumentParser) -> None:
    from .host.dev import add_arguments

    add_arguments(p)


def _deploy_arguments(p: argparse.ArgumentParser) -> None:
    from .deploy.cli import add_arguments

    add_arguments(p)


class _Command(NamedTuple):
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]  # may import the command's modules: called lazily
    handler: Callable[[argparse.Namespace], int]


COMMANDS: Dict[str, _Command] = {
    "export": _Command("write the plugin's files (and zip) from its code", _export_arguments, _export),
    "check": _Command("run eKuiper's install checks and metadata lint on a package", _check_arguments, _check),
    "run": _Command("serve the plugin to eKuiper (what the generated main script does)", _run_arguments, _run),
    "service": _Command("serve the plugin's functions to eKuiper as an external service", _service_arguments,
                        _service),
    "dev": _Command("run a plugin against the eKuiper emulator: a tour, or one symbol", _dev_arguments, _dev),
    "deploy": _Command("install, update, describe, status, list or delete a plugin on an eKuiper server through "
                       "its REST API", _deploy_arguments, _deploy),
    "state": _Command("list, show, export, import or drop what plugins keep in ctx.state", _state_arguments,
                      _state),
}


def _chosen(argv: Sequence[str]) -> Optional[str]:
    """The sub-command ``argv`` names (its first word that is not an option), if any."""
    return next((a for a in argv if not a.startswith("-")), None)


def _parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s arguments are built (``None``: every command's), so ``--help`` and the
    other commands import nothing of the ones that do not run."""
    parser = argparse.ArgumentParser(
        prog="python -m ekdsl", description="Build, check and run eKuiper portable plugins.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"ekdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help)
        if command is None or name == command:
            cmd.arguments(p)
        p.set_defaults(handler=cmd.handler)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) > 2 and argv[0] == "dev" and argv[1] in _DEV_MODES and {"-h", "--help"} & set(argv[2:]):
        argv.insert(1, "TARGET")  # 'dev source --help': the mode's help, not dev's
    args = _parser(_chosen(argv) or "").parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except EkdslError as exc:
        print(f"ekdsl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130

