"""Arguments and handler of ``python -m ekdsl deploy ACTION``."""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

from ..errors import UsageError
from . import DEFAULT_MAX_ANSWER, DEFAULT_SERVER

if TYPE_CHECKING:
    from .provision import Provision

__all__ = ["TOKEN_ENV", "USER_ENV", "add_arguments", "credentials", "run"]

TOKEN_ENV = "EKUIPER_TOKEN"
USER_ENV = "EKUIPER_USER"
MIB = 1 << 20


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", default=os.environ.get("EKUIPER_SERVER", DEFAULT_SERVER), metavar="URL",
                        help=f"eKuiper's REST API (default: $EKUIPER_SERVER or {DEFAULT_SERVER})")
    common.add_argument("--token", metavar="JWT",
                        help="JWT sent as the Authorization header, for an eKuiper with "
                             "basic.authentication on (default: $EKUIPER_TOKEN)")
    common.add_argument("--user", metavar="NAME:PASSWORD",
                        help="basic auth, for a proxy in front of eKuiper (default: $EKUIPER_USER)")
    common.add_argument("--timeout", type=_positive, default=330.0, metavar="S",
                        help="seconds one request may take in all, a trickling answer included (an install "
                             "waits for install.sh and the plugin's handshake; default 330)")
    common.add_argument("--max-answer", type=_positive, default=DEFAULT_MAX_ANSWER / MIB, metavar="MIB",
                        help=f"the most MiB of an answer read (default {DEFAULT_MAX_ANSWER // MIB})")
    common.add_argument("--dry-run", action="store_true",
                        help="send nothing: print each request and the equivalent bin/kuiper command")
    return common


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def credentials(token: Optional[str], user: Optional[str], environ: Mapping[str, str] = os.environ) -> Dict[str, str]:
    """The ``Authorization`` header from ``--token``/``--user``, else from ``$EKUIPER_TOKEN``/``$EKUIPER_USER``.

    An option given on the command line wins over both variables."""
    from .rest import auth_header

    if token is None and user is None:
        token, user = environ.get(TOKEN_ENV, ""), environ.get(USER_ENV, "")
        if token and user:
            raise UsageError(f"both ${TOKEN_ENV} and ${USER_ENV} are set: unset one, or choose with --token or --user")
    return auth_header(token or "", user or "")


def _service_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service", action="store_true",
                   help="an external service (the zip of 'export --service', POST /services) instead of a "
                        "portable plugin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``deploy`` actions and their options."""
    common = _common()
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    for action, text in (("install", "install a plugin zip (and provision its streams and rules)"),
                         ("update", "replace an installed plugin with a new zip (eKuiper: delete + install)")):
        p = sub.add_parser(action, parents=[common], help=text, description=text)
        p.add_argument("package", help="the plugin zip, e.g. dist/pysam.zip")
        p.add_argument("--name", default="", help="install name (default: the zip's base name)")
        where = p.add_mutually_exclusive_group()
        where.add_argument("--upload", dest="upload", action="store_true", default=None,
                           help="send the zip with POST /config/uploads first (default for a remote server; "
                                "needed for an eKuiper in a container)")
        where.add_argument("--no-upload", dest="upload", action="store_false",
                           help="let the server read the zip itself through a file:// URL (default on "
                                "127.0.0.1/localhost)")
        p.add_argument("--shell-para", action="append", default=[], metavar="ARG",
                       help="an argument for the package's install.sh (eKuiper's shellParas; repeatable), "
                            "e.g. --shell-para=--online")
        p.add_argument("--provision", metavar="FILE",
                       help="then create or replace the streams and rules listed in FILE (YAML or JSON)")
        _service_flag(p)
    for action, text in (("describe", "show an installed plugin (GET /plugins/portables/NAME)"),
                         ("status", "show a plugin's process status and rule references"),
                         ("delete", "delete a plugin (and the streams and rules of --provision FILE)")):
        p = sub.add_parser(action, parents=[common], help=text, description=text)
        p.add_argument("name", help="the plugin's install name")
        if action == "delete":
            p.add_argument("--provision", metavar="FILE",
                           help="first drop the rules, then the streams, listed in FILE")
        if action != "status":
            _service_flag(p)
    _service_flag(sub.add_parser("list", parents=[common], help="list the installed portable plugins"))


def _show(data: Any) -> None:
    if data is not None:
        print(json.dumps(data, indent=2, ensure_ascii=False))


def run(args: argparse.Namespace) -> int:
    """Run one deploy action; errors propagate as :class:`~ekdsl.errors.EkdslError`."""
    from . import provision as provisioning
    from .commands import Deployer
    from .rest import Client

    client = Client(args.server, headers=credentials(args.token, args.user), timeout=args.timeout,
                    dry_run=args.dry_run, max_answer=int(args.max_answer * MIB))
    deployer = Deployer(client)
    plan: Optional[Provision] = None
    if getattr(args, "provision", None):
        plan = provisioning.load(args.provision)
    action = args.action
    if getattr(args, "service", False):
        return _run_service(deployer, args, plan)
    if action in ("install", "update"):
        deployer.install(args.package, args.name, update=action == "update", upload=args.upload,
                         shell_paras=args.shell_para, provision=plan)
    elif action == "describe":
        _show(deployer.describe(args.name))
    elif action == "status":
        _show(deployer.status(args.name))
    elif action == "list":
        _show(deployer.list())
    elif action == "delete":
        deployer.delete(args.name, plan)
    else:  # pragma: no cover - argparse restricts the choices
        raise UsageError(f"unknown deploy action '{action}'")
    return 0


def _run_service(deployer: Any, args: argparse.Namespace, plan: Optional[Provision]) -> int:
    """The ``--service`` form of an action: the same verbs on ``/services``."""
    if plan is not None or getattr(args, "shell_para", None):
        raise UsageError("--provision and --shell-para are for plugins: a service has no install.sh, and its "
                         "rules can be provisioned with the plugin's deploy or 'bin/kuiper create rule'")
    action = args.action
    if action in ("install", "update"):
        deployer.install_service(args.package, args.name, update=action == "update", upload=args.upload)
    elif action == "describe":
        _show(deployer.describe_service(args.name))
    elif action == "list":
        _show(deployer.list_services())
    else:
        deployer.delete_service(args.name)
    return 0
