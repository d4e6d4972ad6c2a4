"""Run every benchmark in bench/ and rewrite docs/benchmarks.md with their tables.

Run from the repository root: python -m bench.run_all [--only NAME ...] [--skip NAME ...]

The convention: a benchmark is a module ``bench/bench_<name>.py`` that runs as
``python -m bench.bench_<name>`` and prints its results to stdout, ideally as a Markdown
section that starts with a ``## `` heading and names its command and machine. Output
that is not such a section is kept verbatim in a code block under a heading, with the
command and the machine added. Each benchmark runs in its own process, one after the
other, so none disturbs another's timings. Its stderr passes through to the terminal.
Sections are delimited in the document by ``<!-- bench:NAME -->`` markers, so
``--only`` replaces the named sections and keeps the others as they were.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.machine import describe

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
# The order of the issue; any other bench_*.py follows alphabetically.
ORDER = ["bench_oneshot_vs_server", "bench_client_overhead", "bench_toolcalls",
         "bench_fakellama"]
TIMEOUT_S = 3600
MARKER = re.compile(r"<!-- bench:(?P<name>[\w]+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->\n",
                    re.DOTALL)
HEADER = """# Benchmarks

Every benchmark runs both sides in one run on the same machine and reports ratios
against a peer measured in that run (medians, and p95 where it says so); an absolute
time alone means little on a shared machine. Nothing here is asserted by a test.

Regenerate everything with `tox -e bench` (which runs `python -m bench.run_all`), or one
section with `python -m bench.run_all --only NAME`; each section names the exact command
that produced it, which also runs on its own.

Last full or partial run of `python -m bench.run_all`: {when} on {machine}.
"""


def discover() -> list[str]:
    """Return the benchmark module names present, in report order."""
    present = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    return [n for n in ORDER if n in present] + [n for n in present if n not in ORDER]


def run_one(name: str) -> tuple[str, bool]:
    """Run one benchmark module in its own process; return its section and whether it ran."""
    command = [sys.executable, "-m", f"bench.{name}"]
    shown = f"python -m bench.{name}"
    print(f"run_all: {shown} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                              timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout if isinstance(exc.stdout, str) else ""
        return failed_section(name, shown, f"did not finish within {TIMEOUT_S} s", partial), False
    elapsed = time.monotonic() - started
    print(f"run_all: {shown} finished in {elapsed:.0f} s (exit {done.returncode})",
          file=sys.stderr, flush=True)
    if done.returncode != 0:
        why = f"exited with status {done.returncode}"
        return failed_section(name, shown, why, done.stdout), False
    return as_section(name, shown, done.stdout), True


def as_section(name: str, command: str, output: str) -> str:
    """Keep a Markdown section as printed; wrap plain output under a heading."""
    text = output.strip("\n")
    if text.startswith("## "):
        return text + "\n"
    return (f"## {title_of(name)}\n\nCommand: `{command}`  \nMachine: {describe()}\n\n"
            f"```text\n{text}\n```\n")


def failed_section(name: str, command: str, why: str, output: str) -> str:
    """Describe a benchmark that failed, with the end of what it printed."""
    tail = "\n".join(output.strip("\n").splitlines()[-30:])
    body = f"```text\n{tail}\n```\n" if tail else ""
    return (f"## {title_of(name)}\n\nCommand: `{command}` {why}; no results this run.\n\n"
            + body)


def title_of(name: str) -> str:
    """Return a heading: the first line of the module's docstring, else its name."""
    try:
        tree = ast.parse((BENCH_DIR / f"{name}.py").read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree) or ""
    except (OSError, SyntaxError):
        doc = ""
    first = doc.strip().splitlines()[0].rstrip(".") if doc.strip() else ""
    return first or name.removeprefix("bench_").replace("_", " ").capitalize()


def existing_sections(path: Path) -> dict[str, str]:
    """Return the sections already in the document, by module name."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    return {m.group("name"): m.group("body") for m in MARKER.finditer(text)}


def existing_notes(path: Path) -> dict[str, str]:
    """Hand-written text after each section's end marker, up to the next section.

    A run rewrites what is between the markers and keeps these notes where they were.
    """
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    found = list(MARKER.finditer(text))
    notes = {}
    for this, following in zip(found, [*found[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        note = text[this.end():end].strip("\n")
        if note:
            notes[this.group("name")] = note + "\n"
    return notes


def render(sections: dict[str, str], order: list[str],
           notes: dict[str, str] | None = None) -> str:
    """Return the whole document: the header, then each section between its markers,
    each followed by the hand-written notes that followed it."""
    machine = describe()
    parts = [HEADER.format(when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           machine=machine)]
    names = [n for n in order if n in sections] + sorted(n for n in sections if n not in order)
    for name in names:
        body = sections[name].strip("\n") + "\n"
        parts.append(f"<!-- bench:{name} -->\n{body}<!-- /bench:{name} -->\n")
        if notes and name in notes:
            parts.append(notes[name])
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and rewrite the document; return 1 if any failed."""
    parser = argparse.ArgumentParser(description="Run the benchmarks; rewrite the doc.")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                        help="module names to run, e.g. bench_client_overhead")
    parser.add_argument("--skip", nargs="+", metavar="NAME", default=[])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    available = discover()
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in args.only or available]
    unknown = [n for n in wanted if n not in available]
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}; present: {', '.join(available)}")
    skipped = {n if n.startswith("bench_") else f"bench_{n}" for n in args.skip}
    sections = existing_sections(args.output)
    failures = 0
    for name in wanted:
        if name in skipped:
            continue
        section, ran = run_one(name)
        failures += not ran
        sections[name] = section
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render(sections, available, existing_notes(args.output)),
                               encoding="utf-8")
    print(f"run_all: wrote {args.output}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
