"""``ekdsl deploy``: install, update, describe, status, list and delete a plugin on an eKuiper server.

REST facts (``internal/server/portable_init.go``, ``rest.go``): ``POST /plugins/portables``
``{"name","file","shellParas"?}`` answers 201 once the plugin has handshaked; ``PUT
/plugins/portables/{name}`` deletes then registers; the ``file`` URL must end in ``.zip``. A server on
this machine reads the zip through a ``file://`` URL; any other first receives it with ``POST
/config/uploads`` (multipart field ``uploadFile``), which answers the stored path.
"""

from __future__ import annotations

import html
import json
import os
import shlex
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Optional, Sequence

from ..checks import check_package, package_name
from ..errors import DeployError, PackagingError
from ..kinds import Kind
from .provision import Provision
from .rest import Client

__all__ = ["Deployer", "file_url", "service_name"]

_KUIPER = "bin/kuiper"


def file_url(path: str) -> str:
    """``file://`` URL of a local path, as eKuiper's ``httpx.ReadFile`` reads it."""
    return "file://" + urllib.request.pathname2url(os.path.abspath(path))


def service_name(package: str) -> str:
    """The service a zip of ``export --service`` registers: ``dist/weather.service.zip`` → ``weather``."""
    base = os.path.basename(package)
    for suffix in (".service.zip", ".zip"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _seg(name: str) -> str:
    """``name`` as one path segment of eKuiper's REST API (a space or ``/`` in it cannot change the route)."""
    return urllib.parse.quote(name, safe="")


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


class Deployer:
    """The deploy operations against one server; ``out`` prints what happened."""

    def __init__(self, client: Client, out: Callable[[str], None] = print) -> None:
        self.client = client
        self.out = out

    # ---- plugin

    def install(self, package: str, name: str = "", *, update: bool = False, upload: Optional[bool] = None,
                shell_paras: Sequence[str] = (), provision: Optional[Provision] = None) -> None:
        """Install (or, with ``update``, replace) the plugin zip ``package``; then apply ``provision``."""
        name = name or package_name(package)
        symbols = self._check(package, name)
        self._refuse_taken_names(name, symbols)
        body: Dict[str, Any] = {"name": name, "file": self._file(package, upload)}
        if shell_paras:
            body["shellParas"] = list(shell_paras)
        cli_json = _compact({k: v for k, v in body.items() if k != "name"})
        self._register("/plugins/portables", body, update,
                       create=f"{_KUIPER} create plugin portable {name} {shlex.quote(cli_json)}",
                       drop=f"{_KUIPER} drop plugin portable {name} -s false")
        if provision is not None:
            self.provision(provision)

    def _file(self, package: str, upload: Optional[bool]) -> str:
        """The URL eKuiper reads ``package`` from: ``file://`` here, or the upload's stored path."""
        if upload is None:
            upload = not self.client.is_local
        return self._upload(package) if upload else file_url(package)

    def _register(self, collection: str, body: Dict[str, Any], update: bool, *, create: str, drop: str) -> None:
        """``POST collection`` (or ``PUT collection/<name>`` to replace) ``body``; print eKuiper's answer."""
        if update:
            resp = self.client.request("PUT", f"{collection}/{_seg(body['name'])}", body=body, kuiper=[drop, create])
        else:
            resp = self.client.request("POST", collection, body=body, kuiper=[create])
        if resp is not None and resp.text:
            self.out(resp.text.strip())

    def _check(self, package: str, name: str) -> Dict[str, Any]:
        """The plugin json's fields of ``package`` (its symbols), or raise what eKuiper's installer would."""
        if os.path.isdir(package) or not package.endswith(".zip"):
            raise PackagingError(f"'{package}' is not a plugin zip: eKuiper installs zips only; export with "
                                 "'python -m ekdsl export ... --zip' and deploy dist/<name>.zip", package)
        report = check_package(package, name)
        refused = [f.message for f in report.findings if f.level == "error" and not f.lint]
        if refused:
            raise PackagingError(f"eKuiper would refuse '{package}' as plugin '{name}': {refused[0]} "
                                 f"(run 'python -m ekdsl check {package}' for every finding)", package)
        return report.info

    def _refuse_taken_names(self, name: str, symbols: Dict[str, Any]) -> None:
        """Refuse a plugin whose source, sink or function another installed plugin provides: eKuiper keeps one table
        of each (``portable/registry.go``): the last plugin installed takes the name, and deleting either plugin
        removes it for both."""
        resp = self.client.request("GET", "/plugins/portables", kuiper=[f"{_KUIPER} show plugins portable"])
        if resp is None or self.client.dry_run:
            return
        installed = resp.json()
        for kind in Kind:
            # eKuiper's tables key names exactly; SQL finds a function by its lower-case name
            same = str.lower if kind is Kind.FUNCTION else str
            mine = {same(str(s)): str(s) for s in symbols.get(kind.folder) or []}
            for other in installed if isinstance(installed, list) else []:
                names = other.get(kind.folder) if isinstance(other, dict) else None
                if not isinstance(names, list) or other.get("name") == name:
                    continue
                taken = [mine[same(str(s))] for s in names if same(str(s)) in mine]
                if taken:
                    raise DeployError(
                        f"plugin '{other.get('name')}' on this server already provides the {kind} "
                        f"'{taken[0]}'{f' (and {len(taken) - 1} more)' if len(taken) > 1 else ''}: eKuiper keeps "
                        f"one {kind} of a name, so installing '{name}' would take it from '{other.get('name')}', and "
                        f"deleting either plugin would remove it for both. Give it another name "
                        f"(@{kind}(name=...)), or delete plugin '{other.get('name')}' first",
                        method="GET", url=self.client.url("/plugins/portables"))

    def _upload(self, package: str) -> str:
        resp = self.client.request(
            "POST", "/config/uploads", upload=package,
            kuiper=[f"no bin/kuiper equivalent: curl -F uploadFile=@{shlex.quote(package)} "
                    f"{self.client.url('/config/uploads')}"])
        if resp is None or self.client.dry_run:
            return f"file://<eKuiper data>/uploads/{os.path.basename(package)}"
        path = html.unescape(resp.text.strip())
        if not path.endswith(".zip"):
            raise DeployError(f"the upload answered '{path}', not the path of a .zip", url=self.client.url(
                "/config/uploads"))
        return "file://" + urllib.request.pathname2url(path)

    def describe(self, name: str) -> Any:
        resp = self.client.request("GET", f"/plugins/portables/{_seg(name)}",
                                   kuiper=[f"{_KUIPER} describe plugin portable {name}"])
        return None if resp is None or self.client.dry_run else resp.json()

    def status(self, name: str) -> Any:
        resp = self.client.request("GET", f"/plugins/portables/{_seg(name)}/status",
                                   kuiper=["no bin/kuiper equivalent"])
        return None if resp is None or self.client.dry_run else resp.json()

    def list(self) -> Any:
        resp = self.client.request("GET", "/plugins/portables", kuiper=[f"{_KUIPER} show plugins portable"])
        return None if resp is None or self.client.dry_run else resp.json()

    def delete(self, name: str, provision: Optional[Provision] = None) -> None:
        """Drop ``provision``'s rules and streams (those that exist), then the plugin."""
        if provision is not None:
            self.unprovision(provision)
        resp = self.client.request("DELETE", f"/plugins/portables/{_seg(name)}",
                                   kuiper=[f"{_KUIPER} drop plugin portable {name} -s false"])
        if resp is not None and resp.text:
            self.out(resp.text.strip())

    # ---- external services (internal/server/service_init.go)

    def install_service(self, package: str, name: str = "", *, update: bool = False,
                        upload: Optional[bool] = None) -> None:
        """Register (or, with ``update``, replace) the zip of ``export --service`` as an external service."""
        name = name or service_name(package)
        if not os.path.isfile(package) or not package.endswith(".zip"):
            raise PackagingError(f"'{package}' is not a service zip: write one with 'python -m ekdsl export "
                                 "TARGET --service HOST:PORT' and deploy dist/<name>.service.zip", package)
        body = {"name": name, "file": self._file(package, upload)}
        self._register("/services", body, update, create=f"{_KUIPER} create service {name} "
                       f"{shlex.quote(_compact(body))}", drop=f"{_KUIPER} drop service {name}")

    def describe_service(self, name: str) -> Any:
        resp = self.client.request("GET", f"/services/{_seg(name)}", kuiper=[f"{_KUIPER} describe service {name}"])
        return None if resp is None or self.client.dry_run else resp.json()

    def list_services(self) -> Any:
        resp = self.client.request("GET", "/services", kuiper=[f"{_KUIPER} show services"])
        return None if resp is None or self.client.dry_run else resp.json()

    def delete_service(self, name: str) -> None:
        resp = self.client.request("DELETE", f"/services/{_seg(name)}", kuiper=[f"{_KUIPER} drop service {name}"])
        if resp is not None and resp.text:
            self.out(resp.text.strip())

    # ---- streams and rules

    def _exists(self, path: str, kuiper: str) -> bool:
        if self.client.dry_run:
            self.client.request("GET", path, kuiper=[kuiper])
            self.out("  (exists: replace it with PUT; missing: create it with POST)")
            return False
        return self.client.request("GET", path, missing_ok=True) is not None

    def provision(self, provision: Provision) -> None:
        """Create, or replace when they exist, the streams then the rules of ``provision``."""
        for st in provision.streams:
            path = f"{st.collection}/{_seg(st.name)}"
            create = f"{_KUIPER} create {st.kind} {st.name} {shlex.quote(st.rest)}"
            if self._exists(path, f"{_KUIPER} describe {st.kind} {st.name}"):
                resp = self.client.request("PUT", path, body={"sql": st.sql},
                                           kuiper=[f"{_KUIPER} drop {st.kind} {st.name}", create])
            else:
                resp = self.client.request("POST", st.collection, body={"sql": st.sql}, kuiper=[create])
            self._said(resp, f"{st.kind} {st.name} is provisioned")
        for rule in provision.rules:
            path = f"/rules/{_seg(rule.id)}"
            create = f"{_KUIPER} create rule {rule.id} {shlex.quote(_compact(rule.body))}"
            if self._exists(path, f"{_KUIPER} describe rule {rule.id}"):
                resp = self.client.request("PUT", path, body=rule.body,
                                           kuiper=[f"{_KUIPER} drop rule {rule.id}", create])
            else:
                resp = self.client.request("POST", "/rules", body=rule.body, kuiper=[create])
            self._said(resp, f"rule {rule.id} is provisioned")

    def unprovision(self, provision: Provision) -> None:
        """Drop the rules then the streams of ``provision``; those already gone are skipped."""
        for rule in reversed(provision.rules):
            resp = self.client.request("DELETE", f"/rules/{_seg(rule.id)}", missing_ok=True,
                                       kuiper=[f"{_KUIPER} drop rule {rule.id}"])
            self._said(resp, f"rule {rule.id} is not there")
        for st in reversed(provision.streams):
            resp = self.client.request("DELETE", f"{st.collection}/{_seg(st.name)}", missing_ok=True,
                                       kuiper=[f"{_KUIPER} drop {st.kind} {st.name}"])
            self._said(resp, f"{st.kind} {st.name} is not there")

    def _said(self, resp: Any, otherwise: str) -> None:
        if self.client.dry_run:
            return
        self.out(resp.text.strip() if resp is not None and resp.text.strip() else otherwise)
