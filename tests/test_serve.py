"""`prunescope serve`: loopback by default from any folder, a password beyond it, and the app's password gate."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pruning_core import cli
from pruning_core.cli import serve

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "dashboard" / "app.py")
GOOD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status, r.read().decode("utf-8", "replace")


def _listening(pid: int) -> list[tuple[str, int]]:
    """(ip, port) of every listening TCP socket of the process and its children."""
    import psutil

    root = psutil.Process(pid)
    out = []
    for p in [root, *root.children(recursive=True)]:
        conns = getattr(p, "net_connections", None) or p.connections  # psutil < 6 spells it `connections`
        out += [(c.laddr.ip, c.laddr.port) for c in conns(kind="inet") if c.status == psutil.CONN_LISTEN]
    return out


def _lan_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, if it has one."""
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


def test_serve_listens_on_loopback_only_from_any_folder(tmp_path):
    """A real server started outside the repository, in a folder whose own streamlit config and environment
    ask for every interface: it still listens on 127.0.0.1 only, serves the app, and stops on SIGTERM."""
    pytest.importorskip("psutil")
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text('[server]\naddress = "0.0.0.0"\n')
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != serve.PASSWORD_ENV}
    env.update(PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               STREAMLIT_SERVER_ADDRESS="0.0.0.0", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "pruning_core.cli", "serve", "--port", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if _get(f"http://127.0.0.1:{port}/")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 60 s"
            time.sleep(0.25)
        listening = _listening(proc.pid)
        assert (("127.0.0.1", port) in listening), listening
        assert all(ip == "127.0.0.1" for ip, _ in listening), listening  # no 0.0.0.0, no ::
        assert _get(f"http://127.0.0.1:{port}/_stcore/health") == (200, "ok")
        lan = _lan_address()
        if lan is not None:  # the same port from this machine's network address: nobody listens there
            with pytest.raises(ConnectionRefusedError), socket.create_connection((lan, port), timeout=2):
                pass
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert f"http://127.0.0.1:{port}" in out
        with socket.socket() as s:  # the child is gone too: the port is free again
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_streamlit_command_carries_the_repo_config_and_the_address():
    cmd = serve.streamlit_command("0.0.0.0", 9999)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == APP
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert len(cmd[5:]) == 2 * len(flags)  # every flag has its value, none repeated
    assert flags["--server.address"] == "0.0.0.0" and flags["--server.port"] == "9999"
    assert flags["--server.headless"] == "true" and flags["--browser.gatherUsageStats"] == "false"
    assert flags["--theme.primaryColor"] == "#E45756"  # the repository's theme, from any folder


@pytest.fixture
def no_server(monkeypatch):
    """serve.run without starting anything: the Popen calls it would make."""
    calls = []

    class FakeProc:
        def __init__(self, cmd, env=None, **kw):
            calls.append((cmd, env))

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(serve.subprocess, "Popen", FakeProc)
    monkeypatch.delenv(serve.PASSWORD_ENV, raising=False)
    return calls


def _refused(capsys, argv, *needles):
    assert cli.main(["serve", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "classroom.lan"])
def test_beyond_loopback_needs_a_password(capsys, no_server, host):
    _refused(capsys, ["--host", host, "--port", str(_free_port())], "needs a password", serve.PASSWORD_ENV)
    assert no_server == []


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True),
                                           ("localhost", True), ("0.0.0.0", False), ("::", False),
                                           ("10.1.2.3", False), ("localhost.example.com", False), ("", False)])
def test_is_loopback(host, loopback):
    assert serve.is_loopback(host) is loopback


def test_weak_or_visible_passwords_refused(capsys, no_server, monkeypatch, tmp_path):
    port = str(_free_port())
    monkeypatch.setenv(serve.PASSWORD_ENV, "hunter2")
    err = _refused(capsys, ["--host", "0.0.0.0", "--port", port], "too short", "at least 8")
    assert "hunter2" not in err
    monkeypatch.delenv(serve.PASSWORD_ENV)
    weak = tmp_path / "weak"
    weak.write_text("abc\n")
    _refused(capsys, ["--host", "0.0.0.0", "--port", port, "--password-file", str(weak)], "too short")
    _refused(capsys, ["--host", "0.0.0.0", "--port", port, "--password-file", str(tmp_path / "none")], "does not exist")
    _refused(capsys, ["--host", "0.0.0.0", "--port", port, "--password-file", str(tmp_path)], "not a regular file")
    err = _refused(capsys, ["--host", "0.0.0.0", "--password", "s3cret-s3cret"], "visible", "ps")
    assert "s3cret" not in err
    _refused(capsys, ["--host", ""], "empty")
    assert no_server == []


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_bad_port_refused(capsys, no_server, port):
    _refused(capsys, ["--port", port], "not a port number")
    assert no_server == []


def test_busy_port_or_foreign_address_refused_before_starting(capsys, no_server, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        _refused(capsys, ["--port", str(s.getsockname()[1])], "already in use")
    monkeypatch.setenv(serve.PASSWORD_ENV, GOOD)
    _refused(capsys, ["--host", "192.0.2.7", "--port", str(_free_port())], "not an address of this machine")
    assert no_server == []


def test_password_reaches_the_app_by_environment_not_argv(capsys, no_server, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(GOOD + "\n")
    pw.chmod(0o600)
    port = _free_port()
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", str(port), "--password-file", str(pw)]) == 0
    [(cmd, env)] = no_server
    assert env[serve.PASSWORD_ENV] == GOOD and not any(GOOD in a for a in cmd)
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert "password required" in capsys.readouterr().err
    # loopback without a password: the app gets none, even if an empty variable was set
    no_server.clear()
    os.environ[serve.PASSWORD_ENV] = ""
    try:
        assert cli.main(["serve", "--port", str(port)]) == 0
    finally:
        del os.environ[serve.PASSWORD_ENV]
    [(cmd, env)] = no_server
    assert serve.PASSWORD_ENV not in env and cmd[cmd.index("--server.address") + 1] == "127.0.0.1"


def test_app_password_gate(monkeypatch):
    """With a password configured the app shows only the form; a wrong one keeps it locked; the right one
    opens the Prune page, for the rest of the session."""
    from streamlit.testing.v1 import AppTest

    from dashboard import auth

    monkeypatch.setenv(serve.PASSWORD_ENV, GOOD)
    monkeypatch.setattr(auth, "WRONG_DELAY_S", 0.0)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    [gate] = at.text_input
    assert gate.label == "Password" and gate.proto.type == gate.proto.PASSWORD  # typed characters are hidden
    assert len(at.selectbox) == 0 and len(at.sidebar) == 0  # nothing of the app but the form
    at.text_input[0].input(GOOD[:-1])
    at.button[0].click()
    at.run()
    assert [e.value for e in at.error] == ["Wrong password."]
    assert [t.label for t in at.text_input] == ["Password"] and len(at.selectbox) == 0
    at.text_input[0].input(GOOD)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert "Password" not in [t.label for t in at.text_input]
    assert at.selectbox(key="method") is not None  # the Prune page
    at.run()  # remembered for the session
    assert at.selectbox(key="method") is not None and "Password" not in [t.label for t in at.text_input]
