"""The Makefile's llama-server targets and ./test-llama-server.sh, as a new user runs them.

No compiler and no real llama-server: the server is the stand-in of
test_llama_server_build.py, and the build is made to fail fast (a missing sdist).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .test_llama_server_build import FAKE_SERVER

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command from the checkout with its sources first on the path."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PEDROLLM_", "LLAMA_"))}
    full.pop("MODEL", None)
    full["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "sdk"), str(ROOT / "fakeserver"), str(ROOT),
         *filter(None, [os.environ.get("PYTHONPATH")])])
    full.update(env or {})
    return subprocess.run(list(args), cwd=ROOT, env=full, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    """A llama-server stand-in that records its arguments in ``<itself>.argv``."""
    path = tmp_path / "llama-server"
    path.write_text(FAKE_SERVER.format(python=sys.executable))
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("variable", ["MODEL", "LLAMA_MODEL"])
def test_make_with_a_missing_model_fails_loudly_and_starts_nothing(
        variable: str, stand_in: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "server.json"
    out = run("make", "llama-server-tools", f"{variable}=/nonexistent.gguf",
              f"LLAMA_BIN={stand_in}", f"LLAMA_PID_FILE={pid_file}", f"PYTHON={sys.executable}")
    assert out.returncode != 0
    assert "make: no model file at /nonexistent.gguf; set MODEL=" in out.stderr
    assert not pid_file.exists() and not Path(f"{stand_in}.argv").exists()


def test_make_starts_the_model_given_as_MODEL_with_LLAMA_ARGS(stand_in: Path,
                                                              tmp_path: Path) -> None:
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF")
    settings = [f"MODEL={model}", f"LLAMA_BIN={stand_in}", f"PYTHON={sys.executable}",
                f"LLAMA_PID_FILE={tmp_path / 'server.json'}", "LLAMA_SERVER_PORT=0",
                f"LLAMA_LOG_FILE={tmp_path / 'server.log'}"]
    started = run("make", "llama-server-tools", *settings, "LLAMA_ARGS=--metrics --parallel 2")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        argv = Path(f"{stand_in}.argv").read_text().splitlines()
        assert argv[argv.index("-m") + 1] == str(model)
        assert argv[-3:] == ["--metrics", "--parallel", "2"]
        assert "--jinja" in argv
    finally:
        stopped = run("make", "stop-llama", *settings)
    assert stopped.returncode == 0, stopped.stderr


def test_the_script_with_an_empty_cache_builds_or_says_what_to_run(tmp_path: Path) -> None:
    out = run("./test-llama-server.sh", env={
        "PEDROLLM_CACHE_DIR": str(tmp_path / "empty-cache"),
        "PEDROLLM_LLAMA_SDIST": str(tmp_path / "missing.tar.gz"),
        "PYTHON": sys.executable})
    assert out.returncode == 1
    assert "llama-server is not built yet: building it now" in out.stdout
    assert f"PEDROLLM_LLAMA_SDIST={tmp_path / 'missing.tar.gz'} does not exist" in out.stderr
    assert (f"run '{sys.executable} -m contracts.servers.build' (or 'make llama-build'), "
            "or use an installed one: LLAMA_BIN=/path/to/llama-server") in out.stderr
