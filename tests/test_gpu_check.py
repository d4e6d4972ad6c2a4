"""contracts/servers/gpu_check.sh, up to the point where a GPU is needed.

The script runs with a PATH of stand-ins: python (this interpreter), cmake, and, where a
test says so, nvidia-smi and nvcc. Nothing is built: without a GPU the script must stop
before building, and --dry-run only prints its steps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "contracts/servers/gpu_check.sh"
BASH = shutil.which("bash") or "/bin/bash"


def _tools(tmp_path: Path, *, gpu: str | None = None, nvcc: bool = False) -> Path:
    """A bin directory with python and cmake, and nvidia-smi / nvcc when asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A wrapper, not a symlink: a venv's python found through a symlink elsewhere no
    # longer sees the venv (its pyvenv.cfg is looked for beside the path it ran as).
    stubs = {"python": f'exec "{sys.executable}" "$@"', "cmake": "echo 'cmake version 3.28.0'"}
    if gpu is not None:
        stubs["nvidia-smi"] = f"echo '{gpu}'"
    if nvcc:
        stubs["nvcc"] = "echo 'Cuda compilation tools, release 12.4'"
    for name, body in stubs.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    # head is the one outside tool the GPU probe pipes through.
    head = shutil.which("head")
    if head:
        (bin_dir / "head").symlink_to(head)
    return bin_dir


def _run(tmp_path: Path, bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEDROLLM_")}
    env["PATH"] = str(bin_dir)
    # Where the script looks for a toolkit off PATH: nowhere, whatever this machine has.
    env["CUDA_HOME"] = str(tmp_path / "no-cuda")
    out = tmp_path / "out"
    return subprocess.run([BASH, SCRIPT, *args, str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_without_a_gpu_the_script_stops_before_building(tmp_path: Path) -> None:
    done = _run(tmp_path, _tools(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "needs an NVIDIA GPU (nvidia-smi lists none) nvcc (the CUDA toolkit)" in done.stderr
    assert "nothing was built" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_gpu_without_nvcc_names_the_cuda_toolkit(tmp_path: Path) -> None:
    done = _run(tmp_path, _tools(tmp_path, gpu="NVIDIA H100 80GB HBM3"))
    assert done.returncode == 2
    assert "needs nvcc (the CUDA toolkit)" in done.stderr
    assert "NVIDIA GPU" not in done.stderr.split("needs", 1)[1]


def test_the_dry_run_prints_every_step_with_the_gpu_label(tmp_path: Path) -> None:
    done = _run(tmp_path, _tools(tmp_path, gpu="NVIDIA H100 80GB HBM3", nvcc=True),
                "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "PEDROLLM_CONTRACT_LABEL='GPU: NVIDIA H100 80GB HBM3'" in done.stderr
    for step in ("contracts.servers.build --cuda --target llama-server --target llama-cli",
                 "contracts.servers.models smollm2", "--random-mb 500",
                 "--real-model smollm2", "bench.bench_oneshot_vs_server --cuda"):
        assert step in done.stdout, step
    assert "a real run would go ahead" in done.stderr
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"


def test_the_dry_run_without_a_gpu_says_where_a_real_run_stops(tmp_path: Path) -> None:
    done = _run(tmp_path, _tools(tmp_path), "--dry-run")
    assert done.returncode == 0
    assert "a real run stops before building" in done.stderr
