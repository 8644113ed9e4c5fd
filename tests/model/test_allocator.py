"""The processes that run the networks keep freed memory: a large block freed and allocated again is not
faulted in anew (LEADER's activations on every print, a training step's)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import fingerprint.server
from fingerprint.settings import load_settings

# 40 rounds of allocating, touching and freeing 79 MB (a training batch's largest activation); prints minor
# page faults per round. Run in a child process: the setting is process-wide and must not leak into pytest.
_PROBE = """
import resource, sys, numpy as np
from fingerprint.model.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    block = np.ones(79_000_000 // 8)
    del block
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 40)
"""


def _faults_per_round(mode: str) -> float:
    run = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    return float(run.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_instead_of_faulted_in_again() -> None:
    default, kept = _faults_per_round("default"), _faults_per_round("keep")
    # by default each round maps 79 MB afresh (hundreds of faults even with huge pages); kept, only the first does
    assert default > 200
    assert kept < default / 10


class _Stop(Exception):
    pass


def test_the_server_keeps_freed_memory_before_it_loads_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def create_app(settings: object) -> None:
        calls.append("app")
        raise _Stop

    monkeypatch.setattr(fingerprint.server, "keep_freed_memory", lambda: calls.append("keep") or True)
    monkeypatch.setattr(fingerprint.server, "create_app", create_app)
    with pytest.raises(_Stop):
        fingerprint.server.run_server(load_settings())
    assert calls == ["keep", "app"]
