"""nginx and Caddy started for real on a loopback port with `hearth host --print-config`, in front of a Hearth."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from click.testing import CliRunner

from webapp.cli import main

KINDS = ("nginx", "caddy")
NGINX = Path("/usr/sbin/nginx")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def installed(kind: str) -> bool:
    return NGINX.exists() if kind == "nginx" else shutil.which(kind) is not None


@contextmanager
def serving(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """A stdlib HTTP handler served on a free loopback port in a background thread; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def stop(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """Ask a server to stop; kill it when it will not within `grace` seconds (busy with a reply, say)."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, name: str = "the server",
                  timeout: float = 20) -> None:
    """Return once something listens on 127.0.0.1:port; fail if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited: {process.stdout.read().decode() if process.stdout else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port} within {timeout} s")


def _command(kind: str, config: Path, prefix: Path) -> list[str]:
    if kind == "nginx":
        # The test's own nginx: its prefix, its pid file, errors to stderr; root's workers may read tmp dirs.
        user = "user root; " if os.geteuid() == 0 else ""
        return [str(NGINX), "-p", str(prefix), "-c", str(config), "-e", "stderr",
                "-g", f"daemon off; {user}pid {prefix}/nginx.pid;"]
    return ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"]


@contextmanager
def front_server(kind: str, models_dir: Path, hearth_port: int, work: Path) -> Iterator[str]:
    """Start nginx or Caddy with the configuration `hearth host --print-config` prints; yield its URL."""
    port = free_port()
    result = CliRunner().invoke(main, ["host", str(models_dir), "--print-config", kind, "--port", str(hearth_port),
                                       "--listen", f"127.0.0.1:{port}"])
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    prefix = work / f"{kind}-{port}"
    prefix.mkdir(parents=True)
    config = prefix / ("nginx.conf" if kind == "nginx" else "Caddyfile")
    config.write_text(result.output)
    env = {**os.environ, "HOME": str(prefix), "XDG_CONFIG_HOME": str(prefix), "XDG_DATA_HOME": str(prefix)}
    process = subprocess.Popen(_command(kind, config, prefix), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=env)
    try:
        wait_for_port(port, process, kind)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
