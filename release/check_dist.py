"""Build the sdist and the wheel, check them as a package index and a packager would, use the wheel.

Run by `tox -e package` (python release/check_dist.py OUTDIR). Each step prints one
line; the first failure stops the run with a message naming what is wrong:

1. `python -m build`, run on a copy of the source tree, makes both files, with no
   setuptools warning in its output;
2. `twine check --strict` (the metadata and the README render on a package index);
3. the sdist holds every file of the source tree as git sees it (tracked, or new and
   not ignored: tests, docs, examples, the contract suite, LICENSE, CHANGELOG.md)
   but .gitignore, and nothing git ignores;
4. the wheel holds both import packages, their py.typed markers, every bundled
   fixture, the licence and the two entry points, and no tests;
5. a fresh venv gets the wheel: `python -m pedrollm demo` completes and a small test
   suite using the `fake_llama_server` fixture passes (release/wheel_plugin_check.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Tracked files a downstream packager has no use for. (.ci/run stays: tests/test_docs.py
# checks README's test command against it.)
NOT_IN_SDIST = {".gitignore"}

# Files the sdist must hold even when there is no git checkout to compare with.
SDIST_REQUIRED = [
    "LICENSE",
    "CHANGELOG.md",
    "README.md",
    "MANIFEST.in",
    "pyproject.toml",
    "setup.cfg",
    "tox.ini",
    "docs/fixtures.md",
    "tests/conftest.py",
    ".ci/run",
    "contracts/conftest.py",
    "examples",
]

# What setuptools adds to an sdist on its own.
SDIST_GENERATED = re.compile(r"^(PKG-INFO|setup\.cfg|pedrollm\.egg-info/.*)$")

STEP_TIMEOUT_S = 600


class CheckFailed(Exception):
    """A check that did not hold; the message says which and why."""


def run(cmd: list[str], *, cwd: Path | None = None, what: str) -> str:
    """Run a command; return its output, or raise with the output when it fails."""
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=STEP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"{what}: no answer in {STEP_TIMEOUT_S} s ({' '.join(cmd)})") from exc
    if proc.returncode != 0:
        raise CheckFailed(
            f"{what}: exit {proc.returncode} from {' '.join(cmd)}\n{proc.stdout[-6000:]}"
        )
    return proc.stdout


# Left in a working tree by earlier builds; never copied into the tree that is built.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".tox", ".venv", "build", "dist", "*.egg-info", "reports", "__pycache__",
    "*.py[cod]", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache",
)


def copy_source(dest: Path) -> Path:
    """Copy the source tree to dest, so that no earlier build's leftovers reach the files.

    setuptools reads back its own *.egg-info/SOURCES.txt and reuses build/lib, so a
    build in the working tree can ship a file MANIFEST.in no longer names, or a module
    since deleted; a fresh CI clone would not.
    """
    files = git_files()
    if files is None:
        shutil.copytree(ROOT, dest, ignore=NOT_SOURCE)
        return dest
    for name in sorted(files):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def build(source: Path, outdir: Path) -> tuple[Path, Path]:
    """Build both files into outdir; a setuptools warning (config it will drop) fails."""
    log = run([sys.executable, "-m", "build", "--outdir", str(outdir), str(source)], what="build")
    # setuptools prints its deprecation and "would be ignored" warnings as "WARNING ..."
    # blocks; pip's own notes ("WARNING: ...") are about this machine, not the package.
    warnings = [line for line in log.splitlines() if re.match(r"WARNING [^:]", line)]
    if warnings:
        raise CheckFailed("build: setuptools warned:\n  " + "\n  ".join(warnings))
    sdists = sorted(outdir.glob("*.tar.gz"))
    wheels = sorted(outdir.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        raise CheckFailed(f"build: expected one sdist and one wheel in {outdir}, found "
                          f"{[p.name for p in outdir.iterdir()]}")
    print(f"ok  build: {sdists[0].name}, {wheels[0].name}")
    return sdists[0], wheels[0]


def twine_check(files: list[Path]) -> None:
    """The check a package index makes: metadata complete, README renders."""
    run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)], what="twine")
    print("ok  twine check --strict: both files")


def git_files() -> set[str] | None:
    """The files git sees here (tracked, or new and not ignored), or None outside a checkout."""
    git = shutil.which("git")
    if git is None:
        return None
    proc = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        return None
    # a tracked file deleted but not yet committed is not in the tree to package
    return {n for n in proc.stdout.decode().split("\0") if n and (ROOT / n).is_file()}


def check_sdist(sdist: Path) -> None:
    """The sdist is the source tree: every file git sees but .gitignore, nothing else."""
    with tarfile.open(sdist) as tar:
        members = [m.name for m in tar.getmembers() if m.isfile()]
    top = sdist.name.removesuffix(".tar.gz") + "/"
    outside = [name for name in members if not name.startswith(top)]
    if outside:
        raise CheckFailed(f"sdist: files outside {top}: {outside[:5]}")
    names = {name.removeprefix(top) for name in members}
    missing = [
        need for need in SDIST_REQUIRED
        if need not in names and not any(n.startswith(need + "/") for n in names)
    ]
    if missing:
        raise CheckFailed(f"sdist {sdist.name} lacks {missing} (see MANIFEST.in)")
    source = git_files()
    if source is None:
        print(f"ok  sdist: {len(names)} files with {', '.join(SDIST_REQUIRED)} "
              "(not a git checkout: not compared with the source tree)")
        return
    wanted = source - NOT_IN_SDIST
    lacking = sorted(wanted - names)
    if lacking:
        raise CheckFailed(f"sdist {sdist.name} lacks {len(lacking)} source file(s), "
                          f"first {lacking[:10]} (see MANIFEST.in)")
    extra = sorted(n for n in names - wanted if not SDIST_GENERATED.match(n))
    if extra:
        raise CheckFailed(f"sdist {sdist.name} holds {len(extra)} file(s) git ignores, "
                          f"first {extra[:10]} (see MANIFEST.in)")
    print(f"ok  sdist: {len(names)} files, every file git sees but {sorted(NOT_IN_SDIST)}")


def check_wheel(wheel: Path) -> None:
    """The wheel installs both packages with their data, licence and entry points."""
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        metadata = Parser().parsestr(whl.read(f"{dist_info}/METADATA").decode())
        entry_points = whl.read(f"{dist_info}/entry_points.txt").decode()
    source_fixtures = {
        "fakellama/" + p.relative_to(ROOT / "fakeserver/fakellama").as_posix()
        for p in (ROOT / "fakeserver/fakellama/fixtures").rglob("*.json")
    }
    required = {
        "pedrollm/__init__.py",
        "pedrollm/py.typed",
        "pedrollm/backends/__init__.py",
        "pedrollm/toolcalls/__init__.py",
        "fakellama/__init__.py",
        "fakellama/py.typed",
        "fakellama/pytest_plugin.py",
        "pedrollm_contracts/conftest.py",
        "pedrollm_contracts/test_clauses.py",
        "pedrollm_contracts/servers/build.py",
        f"{dist_info}/licenses/LICENSE",
    } | source_fixtures
    missing = sorted(required - names)
    if missing:
        raise CheckFailed(f"wheel {wheel.name} lacks {missing[:10]}")
    tests = sorted(n for n in names if n.startswith(("tests/", "contracts/", "bench/")))
    if tests:
        raise CheckFailed(f"wheel {wheel.name} holds files that are not the packages: {tests[:5]}")
    if metadata.get("License-Expression") != "MIT":
        raise CheckFailed(f"wheel METADATA License-Expression is "
                          f"{metadata.get('License-Expression')!r}, expected 'MIT'")
    for entry in ("pedrollm = pedrollm.cli:main", "fakellama = fakellama.pytest_plugin"):
        if entry not in entry_points:
            raise CheckFailed(f"wheel entry_points.txt lacks {entry!r}:\n{entry_points}")
    print(f"ok  wheel: the packages and the contract suite, py.typed, "
          f"{len(source_fixtures)} fixtures, LICENSE, entry points pedrollm and pytest11")


def use_wheel(wheel: Path, workdir: Path) -> None:
    """Install the wheel in a fresh venv; run the demo and a plugin test from an empty folder."""
    env_dir = workdir / "venv"
    venv.create(env_dir, with_pip=True, clear=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel), "pytest"],
        what="installing the wheel in a fresh venv")
    # an empty folder as the working directory, so nothing imports from the source tree
    empty = workdir / "downstream"
    empty.mkdir()
    where = run(
        [str(python), "-c", "import pedrollm, fakellama; print(pedrollm.__file__); "
         "print(fakellama.__file__)"],
        cwd=empty, what="importing the installed packages",
    ).split()
    if not all(Path(p).resolve().is_relative_to(env_dir.resolve()) for p in where):
        raise CheckFailed(f"the fresh venv imported the packages from elsewhere: {where}")
    demo = run([str(python), "-m", "pedrollm", "demo"], cwd=empty, what="pedrollm demo")
    if "done in 2 turns (complete)" not in demo:
        raise CheckFailed(f"pedrollm demo did not complete its task:\n{demo}")
    print("ok  fresh venv: pedrollm demo completed (2 turns)")
    shutil.copy(ROOT / "release/wheel_plugin_check.py", empty / "test_downstream.py")
    out = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_downstream.py"],
              cwd=empty, what="pytest with the fake_llama_server fixture from the wheel")
    print(f"ok  fresh venv: plugin tests: {out.strip().splitlines()[-1]}")
    suite = run([str(python), "-m", "pedrollm", "contract", "--report-dir", "reports"],
                cwd=empty, what="pedrollm contract from the wheel")
    if not (empty / "reports" / "conformance-fakellama.md").is_file():
        raise CheckFailed(f"pedrollm contract wrote no report:\n{suite[-2000:]}")
    print(f"ok  fresh venv: pedrollm contract: {suite.strip().splitlines()[-1]}")


def main(argv: list[str] | None = None) -> int:
    """Run every check into a fresh OUTDIR; 0 when all hold, 1 with the reason when not."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="scratch folder, emptied first")
    args = parser.parse_args(argv)
    # each step's line shows before a failure's message, even through a pipe
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    outdir: Path = args.outdir.resolve()
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    try:
        sdist, wheel = build(copy_source(outdir / "source"), outdir / "dist")
        twine_check([sdist, wheel])
        check_sdist(sdist)
        check_wheel(wheel)
        use_wheel(wheel, outdir)
    except CheckFailed as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
