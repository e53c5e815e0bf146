"""``ekdsl deploy`` against a stand-in eKuiper REST server on 127.0.0.1 that answers as eKuiper does."""

from __future__ import annotations

import base64
import json
import socket
import urllib.request
import zipfile
from pathlib import Path

import pytest

from ekdsl import DeployError
from ekdsl.cli import main
from ekdsl.deploy import provision
from ekdsl.deploy.rest import Client

from .fake_ekuiper import FakeEkuiper

PROVISION = """\
streams:
  - CREATE STREAM demo () WITH (TYPE="pyjson", FORMAT="json")
  - create table lookup (id bigint) WITH (TYPE="memory", DATASOURCE="t", KIND="lookup", KEY="id")
rules:
  - id: demo_rule
    sql: SELECT revert(name) AS r FROM demo
    actions:
      - print: {}
"""


@pytest.fixture
def server(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    with FakeEkuiper(str(uploads)) as fake:
        yield fake


def deploy(capsys, *argv: str) -> tuple:
    code = main(["deploy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def bodies(fake: FakeEkuiper) -> list:
    return [(s.method, s.path, json.loads(s.body) if s.body.startswith(b"{") else s.body) for s in fake.seen]


def test_install_status_describe_update_delete(server, pysam_zip, capsys):
    url = "file://" + urllib.request.pathname2url(pysam_zip)
    code, out, _ = deploy(capsys, "install", pysam_zip, "--server", server.url, "--shell-para=--online")
    assert code == 0 and out == "portable plugin pysam is created\n"
    assert bodies(server) == [("GET", "/plugins/portables", b""),  # what the server's other plugins provide
                              ("POST", "/plugins/portables",
                               {"name": "pysam", "file": url, "shellParas": ["--online"]})]
    code, out, _ = deploy(capsys, "status", "pysam", "--server", server.url)
    assert code == 0 and json.loads(out) == {"refCount": {}, "status": "running", "errMsg": ""}
    code, out, _ = deploy(capsys, "describe", "pysam", "--server", server.url)
    assert json.loads(out)["functions"] == ["revert"]
    code, out, _ = deploy(capsys, "list", "--server", server.url)
    assert [p["name"] for p in json.loads(out)] == ["pysam"]
    code, out, _ = deploy(capsys, "update", pysam_zip, "--server", server.url)
    assert code == 0 and out == "portable plugin pysam is updated\n"
    assert bodies(server)[-1] == ("PUT", "/plugins/portables/pysam", {"name": "pysam", "file": url})
    code, out, _ = deploy(capsys, "delete", "pysam", "--server", server.url)
    assert code == 0 and out == "portable plugin pysam is deleted\n" and server.plugins == {}


def test_upload_then_install_from_the_stored_path(server, pysam_zip, capsys):
    code, _, err = deploy(capsys, "install", pysam_zip, "--server", server.url, "--upload", "--name", "pysam")
    assert code == 0, err
    listing, upload, install = server.seen
    assert (listing.method, listing.path) == ("GET", "/plugins/portables")
    assert upload.method == "POST" and upload.path == "/config/uploads"
    assert upload.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert b'name="uploadFile"; filename="pysam.zip"' in upload.body
    assert Path(pysam_zip).read_bytes() in upload.body
    stored = Path(server.uploads) / "pysam.zip"
    assert stored.read_bytes() == Path(pysam_zip).read_bytes()
    assert json.loads(install.body)["file"] == "file://" + urllib.request.pathname2url(str(stored))


def test_remote_server_uploads_by_default():
    assert Client("http://127.0.0.1:9081").is_local and Client("http://localhost:1").is_local
    assert not Client("http://10.11.12.13:9081").is_local


def test_token_and_basic_auth(tmp_path, pysam_zip, capsys):
    with FakeEkuiper(str(tmp_path), token="eyJ.tok.en") as fake:
        code, _, err = deploy(capsys, "status", "pysam", "--server", fake.url)
        assert code == 1
        assert err.count("\n") == 1
        assert "(401): missing_token: this eKuiper requires authentication; pass --token" in err
        code, _, err = deploy(capsys, "install", pysam_zip, "--server", fake.url, "--token", "eyJ.tok.en")
        assert code == 0, err
        assert fake.seen[-1].headers["Authorization"] == "eyJ.tok.en"  # eKuiper takes the bare JWT
        deploy(capsys, "list", "--server", fake.url, "--user", "ann:s3cret")
        assert fake.seen[-1].headers["Authorization"] == "Basic " + base64.b64encode(b"ann:s3cret").decode()


def test_dry_run_sends_nothing_and_shows_kuiper_lines(server, pysam_zip, tmp_path, capsys):
    plan = tmp_path / "provision.yaml"
    plan.write_text(PROVISION, encoding="utf-8")
    code, out, _ = deploy(capsys, "install", pysam_zip, "--server", server.url, "--dry-run", "--provision", str(plan))
    assert code == 0 and server.seen == []
    url = "file://" + urllib.request.pathname2url(pysam_zip)
    assert f"GET {server.url}/plugins/portables\n  = bin/kuiper show plugins portable\n" in out
    assert f"POST {server.url}/plugins/portables\n" in out
    assert f"  = bin/kuiper create plugin portable pysam '{{\"file\":\"{url}\"}}'\n" in out
    assert """  = bin/kuiper create stream demo '() WITH (TYPE="pyjson", FORMAT="json")'\n""" in out
    assert "  = bin/kuiper create table lookup '(id bigint) WITH" in out
    assert f"POST {server.url}/tables\n" in out
    assert "  = bin/kuiper create rule demo_rule '{\"id\":\"demo_rule\"" in out
    code, out, _ = deploy(capsys, "update", pysam_zip, "--server", "http://10.11.12.13:9081", "--dry-run")
    assert "POST http://10.11.12.13:9081/config/uploads  (multipart form, field uploadFile = " in out
    assert "curl -F uploadFile=@" in out and "= bin/kuiper drop plugin portable pysam -s false\n" in out
    for action in ("status", "describe", "delete"):
        code, out, _ = deploy(capsys, action, "pysam", "--server", server.url, "--dry-run")
        assert code == 0 and out.startswith(("GET", "DELETE"))
    assert server.seen == []


def test_provision_creates_then_replaces_then_drops(server, pysam_zip, tmp_path, capsys):
    plan = tmp_path / "provision.yaml"
    plan.write_text(PROVISION, encoding="utf-8")
    code, out, err = deploy(capsys, "install", pysam_zip, "--server", server.url, "--provision", str(plan))
    assert code == 0, err
    assert out.splitlines() == ["portable plugin pysam is created", "Stream demo is created.",
                                "Table lookup is created.", "Rule demo_rule was created successfully."]
    assert set(server.streams) == {"demo", "lookup"} and set(server.rules) == {"demo_rule"}
    server.seen.clear()
    code, out, err = deploy(capsys, "update", pysam_zip, "--server", server.url, "--provision", str(plan))
    assert code == 0, err
    assert [(m, p) for m, p, _ in bodies(server)] == [
        ("GET", "/plugins/portables"), ("PUT", "/plugins/portables/pysam"), ("GET", "/streams/demo"),
        ("PUT", "/streams/demo"),
        ("GET", "/tables/lookup"), ("PUT", "/tables/lookup"), ("GET", "/rules/demo_rule"),
        ("PUT", "/rules/demo_rule")]
    del server.streams["lookup"]
    server.seen.clear()
    code, out, err = deploy(capsys, "delete", "pysam", "--server", server.url, "--provision", str(plan))
    assert code == 0, err
    assert [(m, p) for m, p, _ in bodies(server)] == [
        ("DELETE", "/rules/demo_rule"), ("DELETE", "/tables/lookup"), ("DELETE", "/streams/demo"),
        ("DELETE", "/plugins/portables/pysam")]
    assert out.splitlines() == ["Rule demo_rule is dropped.", "table lookup is not there", "Stream demo is dropped.",
                                "portable plugin pysam is deleted"]
    assert server.streams == {} and server.rules == {} and server.plugins == {}


def test_server_errors_are_one_line_with_its_message(server, pysam_zip, capsys):
    assert deploy(capsys, "install", pysam_zip, "--server", server.url)[0] == 0
    code, _, err = deploy(capsys, "install", pysam_zip, "--server", server.url)
    assert code == 1
    assert err == (f"ekdsl: error: POST {server.url}/plugins/portables failed (400): portable plugin create "
                   "command error: invalid name pysam: duplicate\n")
    code, _, err = deploy(capsys, "describe", "nope", "--server", server.url)
    assert err == (f"ekdsl: error: GET {server.url}/plugins/portables/nope failed (404): describe portable plugin "
                   "nope error: not found\n")
    code, _, err = deploy(capsys, "delete", "nope", "--server", server.url)
    assert code == 1 and "(400): delete portable plugin nope error: portable plugin nope is not found\n" in err


def test_multi_line_server_message_is_joined(tmp_path):
    from ekdsl.deploy.rest import _message

    body = json.dumps({"error": 1000, "message": "fail to install plugin: err:exit status 1 stdout:a\nb\n stderr:c\n"})
    assert _message(body) == ("fail to install plugin: err:exit status 1 stdout:a | b | stderr:c", 1000)
    assert _message("missing_token\n") == ("missing_token", 0)


def test_unreachable_server(pysam_zip, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = deploy(capsys, "status", "pysam", "--server", f"http://127.0.0.1:{port}")
    assert code == 1 and err.count("\n") == 1
    assert f"cannot reach eKuiper at http://127.0.0.1:{port}" in err and "--server URL" in err


def test_refuses_a_package_eKuiper_would_refuse_before_sending(server, pysam_zip, tmp_path, capsys):
    code, _, err = deploy(capsys, "install", pysam_zip, "--server", server.url, "--name", "other")
    assert code == 1 and "eKuiper would refuse" in err and "missing or invalid json file other.json" in err
    code, _, err = deploy(capsys, "install", str(Path(pysam_zip).parent / "pysam"), "--server", server.url)
    assert code == 1 and "is not a plugin zip" in err
    assert server.seen == []


@pytest.mark.parametrize("text, message", [
    ("streams: [SELECT 1]", "streams[0] must be a 'CREATE STREAM"),
    ("rules: [{sql: SELECT 1, actions: []}]", "rules[0] must be a rule object with an 'id'"),
    ("rules: [{id: r1}]", "rule 'r1' needs 'sql' and 'actions'"),
    ("tables: []", "unknown key 'tables'"),
    ("streams: {a: 1}", "'streams' must be a list"),
    ("[1, 2]", "expected a mapping"),
    ("streams: [", "is not valid YAML/JSON"),
])
def test_provision_file_errors(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DeployError) as info:
        provision.load(str(path))
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert str(info.value).count(str(path)) == 1


def test_bad_server_url_and_auth_options(capsys):
    assert deploy(capsys, "status", "x", "--server", "127.0.0.1:9081")[0] == 2
    assert deploy(capsys, "status", "x", "--token", "a", "--user", "b:c")[0] == 2
    assert deploy(capsys, "status", "x", "--user", "nopassword")[0] == 2


def test_service_install_describe_update_delete(server, tmp_path, capsys):
    """``--service`` registers the zip of ``export --service`` through ``/services``, as ``bin/kuiper create
    service`` does; the service is named after the zip."""
    from .conftest import ROOT

    assert main(["export", str(ROOT / "tests" / "plugins" / "svcfuncs.py"), "-o", str(tmp_path),
                 "--service", "127.0.0.1:9999"]) == 0
    capsys.readouterr()
    package = str(tmp_path / "svcfuncs.service.zip")
    url = "file://" + urllib.request.pathname2url(package)
    code, out, _ = deploy(capsys, "install", package, "--service", "--server", server.url)
    assert code == 0 and out == "service svcfuncs is created\n"
    assert bodies(server) == [("POST", "/services", {"name": "svcfuncs", "file": url})]
    code, out, _ = deploy(capsys, "describe", "svcfuncs", "--service", "--server", server.url)
    assert code == 0 and "svcfuncs" in json.loads(out)["Interfaces"]
    code, out, _ = deploy(capsys, "list", "--service", "--server", server.url)
    assert json.loads(out) == ["svcfuncs"]
    code, out, _ = deploy(capsys, "update", package, "--service", "--server", server.url)
    assert code == 0 and out == "service svcfuncs is updated\n"
    assert bodies(server)[-1] == ("PUT", "/services/svcfuncs", {"name": "svcfuncs", "file": url})
    code, out, _ = deploy(capsys, "delete", "svcfuncs", "--service", "--server", server.url)
    assert code == 0 and out == "service svcfuncs is deleted\n"
    code, out, err = deploy(capsys, "delete", "svcfuncs", "--service", "--server", server.url)
    assert code == 1 and "(404): delete service svcfuncs error: svcfuncs is not found" in err
    code, out, _ = deploy(capsys, "install", package, "--service", "--server", server.url, "--dry-run")
    assert code == 0 and "bin/kuiper create service svcfuncs" in out and len(server.seen) == 6
    code, out, err = deploy(capsys, "install", package, "--service", "--shell-para=x", "--server", server.url)
    assert code != 0 and "--shell-para are for plugins" in err


def test_names_are_one_path_segment(server, capsys):
    """A name with a space or a slash is sent as one path segment: eKuiper answers it, no traceback, and it
    cannot reach another route."""
    code, _, err = deploy(capsys, "status", "a b", "--server", server.url)
    assert code == 1 and err.startswith("ekdsl: error:") and "Traceback" not in err
    assert server.seen[-1].path == "/plugins/portables/a%20b/status"
    code, _, err = deploy(capsys, "describe", "../services", "--server", server.url)
    assert code == 1 and server.seen[-1].path == "/plugins/portables/..%2Fservices"


def test_install_refuses_a_name_another_plugin_provides(server, pysam_zip, tmp_path, capsys):
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(pysam_zip) as zin, zipfile.ZipFile(other, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "pysam.json":
                info.filename, data = "other.json", data.replace(b'"pysam"', b'"other"').replace(
                    b'"revert"', b'"REVERT"')
            zout.writestr(info, data)
    code, _, err = deploy(capsys, "install", pysam_zip, "--server", server.url)
    assert code == 0, err
    code, _, err = deploy(capsys, "install", str(other), "--server", server.url)
    assert code == 1 and err.count("\n") == 1
    assert ("plugin 'pysam' on this server already provides the source 'pyjson': eKuiper keeps one source of a name, "
            "so installing 'other' would take it from 'pysam', and deleting either plugin would remove it for both. "
            "Give it another name (@source(name=...)), or delete plugin 'pysam' first") in err
    assert set(server.plugins) == {"pysam"}
    code, _, err = deploy(capsys, "update", pysam_zip, "--server", server.url)  # itself: no clash
    assert code == 0, err
