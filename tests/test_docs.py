"""Every code block in README.md and docs/ is exercised, so the docs cannot rot.

- ``python`` blocks run against the fake llama-server (the server URL in the block
  is pointed at it).
- ``sh`` blocks: each ``pedrollm`` command runs against the fake and must exit 0; a
  ``text`` block right after a one-command ``sh`` block must be that command's
  output; ``make`` targets must exist (``make -n``); commands that need what a test
  cannot have here (an installed Ollama, a GPU model, the network) or that CI runs
  itself (``tox``, ``pip install``) are listed below with the reason, and anything
  else fails the test until it is classified.
- ``json`` blocks must parse, and a ``model`` section must pass config validation.

docs/fixtures.md and docs/reliability.md have their own block tests
(tests/fakellama/test_fake_docs.py, tests/reliability/test_docs.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fakellama.server import FakeServer
from pedrollm.config import ModelConfig

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OWN_TESTS = {"fixtures.md", "reliability.md"}
URL = re.compile(r"http://localhost:\d+")

# Commands a test here does not run, each with why; matched by prefix.
NOT_RUN = {
    "python3 -m pip install": "installs the project: .ci/run does exactly this",
    "python3 -m tox": "the test command itself: .ci/run runs it",
    "tox ": "tox environments: CI runs them",
    "pytest contracts": "the contract suite: the contract-fake and contract-real envs run it",
    "python -m contracts.report": "joins reports the contract envs write",
    "python -m contracts.servers.models": "downloads a 93 MB wheel from PyPI: contract-real "
                                          "runs it; tests/test_real_models.py covers it offline",
    "contracts/servers/gpu_check.sh": "needs an NVIDIA GPU; tests/test_gpu_check.py runs it "
                                      "up to that point",
    "llama-server ": "starts a real server with the reader's own model",
    "ollama ": "needs Ollama installed",
    "vllm ": "needs vLLM and a GPU",
    "mv .pedrocli.json.bak": "undoes a migration in the reader's own directory",
    "python bench/": "benchmarks take minutes: tox -e bench runs them",
    "python -m bench": "benchmarks take minutes: tox -e bench runs them",
}


@dataclass
class Block:
    """One fenced code block."""

    page: str
    line: int
    lang: str
    text: str


def blocks() -> list[Block]:
    """Every fenced block of the pages, in order."""
    out: list[Block] = []
    for page in PAGES:
        if page.name in OWN_TESTS:
            continue
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            match = re.match(r"^```(\w*)\s*$", lines[i])
            if match:
                start, lang, body = i + 1, match.group(1), []
                i += 1
                while i < len(lines) and not lines[i].startswith("```"):
                    body.append(lines[i])
                    i += 1
                out.append(Block(page.name, start, lang, "\n".join(body) + "\n"))
            i += 1
    return out


ALL = blocks()


def commands(block: Block) -> list[str]:
    """The commands of a shell block, comments and continuations handled."""
    text = block.text.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.split("  #")[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _ids(kind: str) -> list[Block]:
    return [b for b in ALL if b.lang == kind]


def test_every_block_has_a_known_language() -> None:
    unknown = [(b.page, b.line, b.lang) for b in ALL
               if b.lang not in ("python", "sh", "json", "text")]
    assert not unknown, f"blocks with no or an unknown language: {unknown}"


@pytest.mark.parametrize("block", _ids("python"), ids=lambda b: f"{b.page}:{b.line}")
def test_python_block_runs_against_the_fake(block: Block, fake_llama_server: FakeServer) -> None:
    if ".embed(" in block.text:
        # Embeddings need llama-server started with --embeddings: so is this fake.
        with FakeServer(embeddings=True) as embedding_server:
            code = URL.sub(embedding_server.url, block.text)
            exec(compile(code, f"{block.page}:{block.line}", "exec"),
                 {"__name__": "__doc_block__"})
        return
    code = URL.sub(fake_llama_server.url, block.text)
    # dont_inherit: a block runs as a reader's script would, without this module's
    # ``from __future__ import annotations`` (which would leave a block's dataclass
    # annotations as strings naming a module that is not importable).
    exec(compile(code, f"{block.page}:{block.line}", "exec", dont_inherit=True),
         {"__name__": "__doc_block__"})


@pytest.mark.parametrize("block", _ids("json"), ids=lambda b: f"{b.page}:{b.line}")
def test_json_block_parses_and_validates(block: Block) -> None:
    data = json.loads(block.text)
    if isinstance(data, dict) and "model" in data:
        ModelConfig.from_dict(data["model"], source=f"{block.page}:{block.line}")


def _run_pedrollm(
    line: str, fake_llama_server: FakeServer, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run one documented pedrollm command against the fake, in cwd."""
    args = shlex.split(URL.sub(fake_llama_server.url, line))[1:]
    if "--server-url" not in args and args[:1] != ["config"]:
        args = ["--server-url", fake_llama_server.url, *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEDROLLM_")}
    env["HOME"] = str(cwd)
    # cwd is a temporary directory: an absolute path imports this checkout, not an install.
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in ("sdk", "fakeserver", "."))
    return subprocess.run([sys.executable, "-m", "pedrollm", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _workdir(tmp_path: Path) -> Path:
    """A directory holding what documented commands refer to (examples/, a config)."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / ".pedrocli.json").write_text(
        (ROOT / "examples" / ".pedrocli-llamacpp-legacy.json.example").read_text())
    (tmp_path / "old.json").write_text(
        (ROOT / "examples" / ".pedrocli-llamacpp-legacy.json.example").read_text())
    return tmp_path


SH_BLOCKS = _ids("sh")


@pytest.mark.parametrize("block", SH_BLOCKS, ids=lambda b: f"{b.page}:{b.line}")
def test_shell_block_commands_run_or_are_accounted_for(
    block: Block, fake_llama_server: FakeServer, tmp_path: Path
) -> None:
    cwd = _workdir(tmp_path)
    index = ALL.index(block)
    following = ALL[index + 1] if index + 1 < len(ALL) else None
    lines = commands(block)
    for line in lines:
        if line.startswith("pedrollm "):
            if "chat" in line.split()[:3]:
                line += " --no-stream"
            if "embed" in line.split()[:3]:
                # Embeddings need llama-server started with --embeddings: so is this fake.
                with FakeServer(embeddings=True) as embedding_server:
                    result = _run_pedrollm(line, embedding_server, cwd)
                assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
                continue
            result = _run_pedrollm(line, fake_llama_server, cwd)
            assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
            if (following is not None and following.lang == "text" and len(lines) == 1
                    and following.page == block.page):
                assert result.stdout == following.text
        elif line.startswith("make "):
            target = line.split()[1]
            dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True,
                                 text=True, timeout=60)
            assert dry.returncode == 0, f"{line}: {dry.stderr}"
        elif line.startswith("python3 -m pip install") and block.page == "README.md":
            ci = (ROOT / ".ci" / "run").read_text()
            assert "pip install" in ci
        elif line.startswith("python3 -m tox") and block.page == "README.md":
            assert "python3 -m tox" in (ROOT / ".ci" / "run").read_text()
        else:
            assert any(line.startswith(prefix) for prefix in NOT_RUN), (
                f"{block.page}:{block.line}: {line!r} is neither run by this test nor "
                "listed in NOT_RUN with a reason")
