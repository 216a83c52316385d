"""A demo emrest server for the client tests: the real binary, a temporary data folder,
HTTP and HTTPS (self-signed) on free loopback ports."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import urllib3

ADMIN_PASSWORD = "client-tests-Pa55"
REPO = Path(__file__).resolve().parents[2]

# The server's certificate is self-signed; the clients are told not to verify it.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def emrest_binary() -> str:
    explicit = os.environ.get("EMREST_BIN")
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "debug" / "emrest"
    if not binary.exists():
        raise RuntimeError(f"{binary} not found: run `cargo build -p emrest-cli` or set EMREST_BIN")
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data: Path, extra: tuple = ()):
        self.data = data
        self.http_port = free_port()
        self.https_port = free_port()
        self.binary = emrest_binary()
        env = dict(os.environ, EMREST_ADMIN_PASSWORD=ADMIN_PASSWORD)
        self.log = open(data.parent / "server.log", "wb")
        self.proc = subprocess.Popen(
            [
                self.binary, "serve", "--data", str(data), "--demo", "--disk-size", "4M",
                "--http", f"127.0.0.1:{self.http_port}",
                "--https", f"127.0.0.1:{self.https_port}", *extra,
            ],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emrest serve exited: {self.log_text()}")
            try:
                if requests.get(f"{self.http}/api", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"emrest serve did not answer: {self.log_text()}")
            time.sleep(0.1)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def log_text(self) -> str:
        self.log.flush()
        return (self.data.parent / "server.log").read_text(errors="replace")

    def cli_json(self, *args: str):
        """`emrest <args> --json --data <dir>` beside the running server, parsed."""
        out = subprocess.run(
            [self.binary, *args, "--json", "--data", str(self.data)],
            check=True, capture_output=True, text=True,
        )
        return json.loads(out.stdout)

    def cli(self, *args: str) -> str:
        """`emrest <args> --data <dir>` beside the running server; its standard output."""
        out = subprocess.run(
            [self.binary, *args, "--data", str(self.data)],
            check=True, capture_output=True, text=True,
        )
        return out.stdout

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def server():
    tmp = Path(tempfile.mkdtemp(prefix="emrest-clients-"))
    s = Server(tmp / "data")
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
