"""`prunescope serve`: the dashboard on 127.0.0.1 from any working directory; beyond it only with a password.

`streamlit run` reads `.streamlit/config.toml` from the working directory, so started anywhere but the
repository root it listens on every interface without the project's theme. `serve` always passes the
address and port, and the repository's own config as flags (flags win over every config file and
`STREAMLIT_*` variable), so the same app is served from any folder. A host that is not loopback needs a
password of at least 8 characters, read from `PRUNESCOPE_PASSWORD` or a file (never the command line,
which every user of the machine sees in `ps`); the app (dashboard/auth.py) gets it through its
environment and asks each browser session for it.

Streamlit is not imported here: it runs in a child process.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

from pruning_core.core.errors import PrunescopeError
from pruning_core.core.paths import REPO_ROOT

PASSWORD_ENV = "PRUNESCOPE_PASSWORD"
MIN_PASSWORD = 8
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501
APP = REPO_ROOT / "dashboard" / "app.py"
CONFIG = REPO_ROOT / ".streamlit" / "config.toml"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


class _RefusePassword(argparse.Action):
    """`--password VALUE` would show the password to every user in `ps`: refuse it (without echoing it)."""

    def __call__(self, parser, namespace, values, option_string=None):
        raise PrunescopeError(f"a password on the command line is visible to every user in `ps`; set "
                              f"{PASSWORD_ENV} or pass --password-file FILE instead")


def add_parser(subparsers) -> argparse.ArgumentParser:
    sp = subparsers.add_parser(
        "serve", help="serve the dashboard (127.0.0.1 by default; any other host needs a password)",
        description=f"Serve the dashboard. It listens on {DEFAULT_HOST} unless --host says otherwise; a host "
                    f"beyond loopback (e.g. 0.0.0.0 for a classroom) needs a password of at least {MIN_PASSWORD} "
                    f"characters in {PASSWORD_ENV} or in --password-file.")
    sp.add_argument("--host", default=DEFAULT_HOST,
                    help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 = every interface, needs a password)")
    sp.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    sp.add_argument("--password-file", type=Path, default=None, metavar="FILE",
                    help=f"a file whose first line is the password (or set {PASSWORD_ENV})")
    sp.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)
    return sp


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost` only; every other name or address counts as reaching the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_password(password_file: Path | None) -> str | None:
    """The password from --password-file or PRUNESCOPE_PASSWORD (None if neither); never echoes it."""
    env = os.environ.get(PASSWORD_ENV) or None
    if password_file is None:
        return env
    if env is not None:
        raise PrunescopeError(f"both {PASSWORD_ENV} and --password-file are set; use one of them")
    path = Path(password_file).expanduser()
    if not path.exists():
        raise PrunescopeError(f"password file {path} does not exist")
    if not path.is_file():  # a folder, a FIFO (would block), a device
        raise PrunescopeError(f"password file {path} is not a regular file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PrunescopeError(f"cannot read password file {path}: {exc.strerror}") from None
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise PrunescopeError(f"password file {path} is not UTF-8 text") from None
    password = lines[0] if lines else ""
    if not password:
        raise PrunescopeError(f"password file {path} is empty; write the password on its first line")
    return password


def check_password(password: str | None, host: str) -> None:
    if password is not None and len(password) < MIN_PASSWORD:
        n = len(password)
        raise PrunescopeError(f"the password is too short ({n} character{'s' * (n != 1)}): use at least {MIN_PASSWORD}")
    if password is None and not is_loopback(host):
        raise PrunescopeError(
            f"serving on {host} reaches beyond this machine and needs a password: set {PASSWORD_ENV} "
            f"(at least {MIN_PASSWORD} characters) or pass --password-file FILE")


def check_port_free(host: str, port: int) -> None:
    """Bind every address `host` resolves to (as the server will), so a busy port fails here in one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise PrunescopeError(f"--host {host} is not an address or known name of this machine") from None
    for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is fine
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PrunescopeError(f"port {port} on {host} is already in use; stop the other server "
                                          f"or pass --port with a free one") from None
                if exc.errno == errno.EADDRNOTAVAIL and host == "localhost" and family == socket.AF_INET6:
                    continue  # no IPv6 here: the server skips ::1 too
                if exc.errno == errno.EADDRNOTAVAIL:
                    raise PrunescopeError(f"--host {host} is not an address of this machine") from None
                if exc.errno == errno.EACCES:
                    raise PrunescopeError(f"port {port} needs administrator rights; use a port above 1023") from None
                raise PrunescopeError(f"cannot listen on {host} port {port}: {exc.strerror}") from None


def _flag_value(v) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def streamlit_command(host: str, port: int) -> list[str]:
    """`python -m streamlit run <repo>/dashboard/app.py` with the repository's config and our address as flags."""
    options: dict[str, object] = {}
    if CONFIG.is_file():  # absent in a wheel install: streamlit's defaults then
        for section, values in tomllib.loads(CONFIG.read_text(encoding="utf-8")).items():
            for key, value in values.items():
                if not isinstance(value, dict | list):
                    options[f"{section}.{key}"] = value
    options.update({"server.address": host, "server.port": port, "server.headless": True,
                    "browser.gatherUsageStats": False})
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP)]
    for name, value in options.items():
        cmd += [f"--{name}", _flag_value(value)]
    return cmd


def _stop(proc: subprocess.Popen) -> None:
    """After Ctrl-C: a terminal sends it to streamlit too, so wait; else pass it on; kill as a last resort."""
    try:
        proc.wait(timeout=2)
        return
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(args) -> int:
    host = args.host.strip()
    if not host:
        raise PrunescopeError("--host is empty (which would listen on every interface); pass 127.0.0.1 or 0.0.0.0")
    password = read_password(args.password_file)
    check_password(password, host)
    check_port_free(host, args.port)
    if args.password_file is not None and args.password_file.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"prunescope: warning: {args.password_file} is readable by other users "
              f"(chmod 600 {args.password_file})", file=sys.stderr)

    env = dict(os.environ)
    env.pop(PASSWORD_ENV, None)
    if password is not None:
        env[PASSWORD_ENV] = password  # the child's environment is readable only by this user (not in `ps`)
    shown = f"[{host}]" if ":" in host else host
    where = "this machine only" if is_loopback(host) else "the network, password required"
    print(f"prunescope: serving http://{shown}:{args.port} ({where}); Ctrl-C stops it", file=sys.stderr)

    proc = subprocess.Popen(streamlit_command(host, args.port), env=env)
    forward = lambda signum, frame: proc.send_signal(signum)  # noqa: E731
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    old = signal.signal(signal.SIGTERM, forward) if main_thread else None
    try:
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            _stop(proc)
            print("prunescope: server stopped", file=sys.stderr)
            return 0
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old)
    if code < 0 and -code in (signal.SIGTERM, signal.SIGINT):
        return 0
    return code
