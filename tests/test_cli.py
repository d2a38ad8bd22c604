"""The hearth command: help, version, and serve's options and errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from webapp import __version__
from webapp.cli import main


def test_help_lists_the_verbs() -> None:
    result = CliRunner().invoke(main, ["-h"])
    assert result.exit_code == 0
    for verb in ("serve", "compile", "install-default", "validate"):
        assert verb in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_serve_refuses_a_busy_port_with_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--models-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "--port" in result.output
    assert "Traceback" not in result.output


def test_serve_rejects_an_unknown_coep() -> None:
    result = CliRunner().invoke(main, ["serve", "--coep", "sometimes"])
    assert result.exit_code == 2
    assert "'sometimes' is not one of" in result.output


def test_serve_binds_loopback_by_default_and_prints_the_url(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "webapp", "serve", "--port", str(port), "--models-dir", str(tmp_path / "m")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/models/index.json", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "hearth serve did not answer within 30 s"
                time.sleep(0.2)
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        local_addresses = [line.split()[3] for line in listening.splitlines()]
        assert local_addresses == [f"127.0.0.1:{port}"]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in output
