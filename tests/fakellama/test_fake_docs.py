"""Every block in docs/fixtures.md runs: json loads as a fixture, python runs, bash runs."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fake_helpers import checkout_env

from fakellama.fixtures import fixture_from_json

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "fixtures.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(DOC.read_text()) if lang == kind]


def test_the_doc_has_blocks_of_each_kind() -> None:
    assert _blocks("json") and _blocks("python") and _blocks("bash")


@pytest.mark.parametrize("block", _blocks("json"))
def test_json_blocks_are_valid_fixtures(block: str) -> None:
    fixture_from_json(json.loads(block), "docs/fixtures.md")


@pytest.mark.parametrize("block", _blocks("python"))
def test_python_blocks_run(block: str, tmp_path: Path) -> None:
    if "def test_" in block:
        (tmp_path / "test_from_doc.py").write_text(block)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "test_from_doc.py"]
    else:
        command = [sys.executable, "-c", block]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=checkout_env())
    assert result.returncode == 0, result.stdout + result.stderr


def _commands() -> list[str]:
    return [line for block in _blocks("bash") for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("command", _commands())
def test_bash_commands_run(command: str, tmp_path: Path) -> None:
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
    if "serve" in argv or "record" in argv:
        process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=checkout_env())
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("fakellama listening on http://")
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0
    else:
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env=checkout_env())
        assert result.returncode == 0, result.stdout + result.stderr
