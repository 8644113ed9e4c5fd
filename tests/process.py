"""A real `fingerprint serve` process on a free loopback port, for tests that need one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


class Server:
    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_port = free_port()
        environ = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(self.port), "LOG_LEVEL": "WARNING",
                   "RATE_LIMIT_PER_SECOND": "0", "METRICS_PORT": str(self.metrics_port),
                   # generous deadlines (conftest.make_settings): tests of the deadlines set their own
                   "FEATURE_EXTRACTION_TIMEOUT": "60", "REQUEST_TIMEOUT": "120", **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "fingerprint.cli", "serve", *args], env=environ,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read().decode() if self.proc.stdout else ''}")
            try:
                if httpx.get(self.url + "/api/v1/models/status", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def output(self) -> str:
        """Everything the process wrote (stdout and stderr); only once it has stopped."""
        self.stop()
        return self.proc.stdout.read().decode() if self.proc.stdout else ""
