"""The soak injects faults the SDK really meets, and fails when they cannot reach it."""

from __future__ import annotations

import pytest

from bench import soak

SMALL = ["--requests", "150", "--fault-rate", "0.3", "--prompts", "10", "--warmup", "50",
         "--seed", "3"]


def test_soak_passes_with_faults_retried_and_typed(capsys: pytest.CaptureFixture[str]) -> None:
    assert soak.main(SMALL) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    injected = next(line for line in out.splitlines() if line.startswith("- faults injected"))
    successes = next(line for line in out.splitlines() if line.startswith("- successes"))
    assert " 0 applied" not in injected
    assert not successes.endswith("of which 0 after a retry")


def test_soak_fails_when_fault_injection_is_disconnected(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The faults go into a header the fake does not read: every request succeeds
    # first time, which is exactly what the soak must refuse to call a pass.
    assert soak.main([*SMALL, "--fault-environ-key", "HTTP_X_NOT_A_FAULT"]) == 1
    out = capsys.readouterr().out
    assert "FAIL: " in out and "did not take effect" in out
