"""One-shot llama-cli per prompt against the SDK on a persistent llama-server.

Run from the repository root: python -m bench.bench_oneshot_vs_server [--prompts N]

For each model (the scripted tiny model, and random-weight GGUFs of about 50 MB and
500 MB written by contracts/servers/scripted_model.py) the same N prompts go through
(a) one ``llama-cli`` process per prompt, as the old pedrocli did, and (b) the SDK
against one llama-server started for that model, alternating a then b, b then a. Both
sides generate exactly the same number of tokens (``-n``/``max_tokens``, end of
generation ignored) from the same chat prompt with the same threads, context size and
greedy sampling. The table gives the median per-prompt latency of each side and the
ratio once the server is up, and the first request with the server's start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.machine import command_line, describe

MODULE = "bench.bench_oneshot_vs_server"
CLI_TIMEOUT_S = 600.0
SERVER_START_TIMEOUT_S = 600.0
PACKAGES = ["pedrollm", "requests"]


@dataclass
class ModelCase:
    """A model to measure: a label and the file."""

    label: str
    path: Path

    @property
    def size_mb(self) -> float:
        """The file size in MB."""
        return self.path.stat().st_size / 1e6


@dataclass
class Result:
    """What one model's run measured (seconds)."""

    case: ModelCase
    server_start: float = 0.0
    cold: list[float] = field(default_factory=list)
    cli: list[float] = field(default_factory=list)
    sdk: list[float] = field(default_factory=list)
    sdk_tokens: list[int] = field(default_factory=list)


# -- llama-cli ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OneShot:
    """How this llama.cpp version's llama-cli runs one prompt and exits."""

    binary: Path
    mode_flags: tuple[str, ...]
    description: str

    def command(self, model: Path, prompt: str, n_predict: int, threads: int,
                ctx_size: int, seed: int) -> list[str]:
        """Return the llama-cli command line for one prompt."""
        return [str(self.binary), "-m", str(model), "-p", prompt, "-n", str(n_predict),
                "-t", str(threads), "-c", str(ctx_size), "--temp", "0", "--seed", str(seed),
                "--ignore-eos", *self.mode_flags]


def cli_help(binary: Path) -> str:
    """Return llama-cli's --help text."""
    done = subprocess.run([str(binary), "--help"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout + done.stderr


def one_shot_mode(binary: Path) -> OneShot:
    """Choose the flags that make llama-cli answer one prompt and exit, from its --help."""
    text = cli_help(binary)
    flags: list[str] = []
    if "--single-turn" in text:
        flags.append("--single-turn")
        what = ("conversation mode for a single turn (`--single-turn`): the prompt goes "
                "through the model's chat template, as llama-server's chat endpoint does")
    elif "-no-cnv" in text or "--no-conversation" in text:
        flags.append("-no-cnv")
        what = "`-no-cnv` (no conversation mode): the prompt is completed as raw text"
    else:
        raise SystemExit(f"{binary} --help names neither --single-turn nor -no-cnv; "
                         "cannot run it one-shot")
    if "--jinja" in text:
        flags.append("--jinja")
    if "--simple-io" in text:
        flags.append("--simple-io")
    if "--no-display-prompt" in text:
        flags.append("--no-display-prompt")
    return OneShot(binary, tuple(flags), what)


def run_cli(shot: OneShot, model: Path, prompt: str, n_predict: int, threads: int,
            ctx_size: int) -> tuple[float, str]:
    """Run llama-cli for one prompt; return its wall time and what it printed."""
    command = shot.command(model, prompt, n_predict, threads, ctx_size, seed=1)
    started = time.perf_counter()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=CLI_TIMEOUT_S, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise SystemExit(f"llama-cli failed ({done.returncode}): {' '.join(command)}\n{tail}")
    return elapsed, done.stdout


# -- models ---------------------------------------------------------------------------------


def models(directory: Path, sizes_mb: list[float]) -> list[ModelCase]:
    """Write (or reuse) the scripted model and one random-weight model per size."""
    from contracts.servers.scripted_model import write_random_model, write_scripted_model

    directory.mkdir(parents=True, exist_ok=True)
    scripted = directory / "scripted.gguf"
    write_scripted_model(scripted)
    cases = [ModelCase("scripted tiny", scripted)]
    for size in sizes_mb:
        path = directory / f"random-{size:g}mb-seed0.gguf"
        if not path.exists():
            print(f"writing {path} ...", file=sys.stderr, flush=True)
            partial = path.with_suffix(".partial")
            write_random_model(partial, size)
            partial.replace(path)
        cases.append(ModelCase(f"random ~{size:g} MB", path))
    return cases


# -- the run --------------------------------------------------------------------------------


def evict_from_page_cache(path: Path) -> None:
    """Ask the kernel to drop this one file's cached pages (no other file is touched)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_into_page_cache(path: Path) -> None:
    """Read the whole file once, so both sides start from a cached model."""
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass


def measure(case: ModelCase, shot: OneShot, server_binary: Path, prompts: list[str],
            n_predict: int, threads: int, ctx_size: int, cold_runs: int) -> Result:
    """Time cold one-shots, then start a server and send every prompt both ways, alternating."""
    from contracts.servers.llama_server import LlamaServer
    from pedrollm import InferenceRequest, new_backend

    result = Result(case)
    # Cold one-shots first: the server, once up, keeps the file mapped and so cached.
    for prompt in prompts[:cold_runs]:
        evict_from_page_cache(case.path)
        elapsed, _ = run_cli(shot, case.path, prompt, n_predict, threads, ctx_size)
        result.cold.append(elapsed)
    read_into_page_cache(case.path)
    server = LlamaServer(server_binary, case.path, ctx_size=ctx_size, jinja=True,
                         threads=threads, startup_timeout=SERVER_START_TIMEOUT_S)
    started = time.perf_counter()
    with server:
        result.server_start = time.perf_counter() - started
        backend = new_backend(type="llamacpp", server_url=server.url, read_timeout=600.0)
        try:
            for i, prompt in enumerate(prompts):
                request = InferenceRequest(user_prompt=prompt, max_tokens=n_predict,
                                           temperature=0.0, seed=1,
                                           extra={"ignore_eos": True})
                for side in (("cli", "sdk") if i % 2 == 0 else ("sdk", "cli")):
                    if side == "cli":
                        elapsed, _ = run_cli(shot, case.path, prompt, n_predict, threads,
                                             ctx_size)
                        result.cli.append(elapsed)
                    else:
                        t0 = time.perf_counter()
                        reply = backend.infer(request)
                        result.sdk.append(time.perf_counter() - t0)
                        usage = reply.usage
                        result.sdk_tokens.append(usage.completion_tokens if usage else -1)
                print(f"{case.label}: prompt {i + 1}/{len(prompts)} one-shot "
                      f"{result.cli[-1]:.3f} s, server {result.sdk[-1]:.3f} s",
                      file=sys.stderr, flush=True)
        finally:
            backend.close()
    return result


def p95(values: list[float]) -> float:
    """Return the nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def table(results: list[Result]) -> str:
    """Return the Markdown table, one row per model."""
    lines = [
        "| model | size MB | one-shot cold median s | one-shot median s | one-shot p95 s "
        "| server start s "
        "| server 1st request s | server median after 1st s | server p95 after 1st s "
        "| ratio after 1st (one-shot / server) | one-shot extra per prompt s "
        "| 1st prompt: one-shot / (start + 1st) | N prompts total: one-shot / (start + server) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        after = r.sdk[1:] or r.sdk
        cli_median = statistics.median(r.cli)
        sdk_median = statistics.median(after)
        first = r.server_start + r.sdk[0]
        cold = f"{statistics.median(r.cold):.3f}" if r.cold else "n/a"
        lines.append(
            f"| {r.case.label} | {r.case.size_mb:.1f} | {cold} | {cli_median:.3f} "
            f"| {p95(r.cli):.3f} "
            f"| {r.server_start:.2f} | {r.sdk[0]:.3f} | {sdk_median:.4f} | {p95(after):.4f} "
            f"| **{cli_median / sdk_median:.1f}x** | {cli_median - sdk_median:.3f} "
            f"| {r.cli[0] / first:.2f}x "
            f"| {sum(r.cli) / (r.server_start + sum(r.sdk)):.1f}x |"
        )
    return "\n".join(lines)


def target_line(results: list[Result]) -> str:
    """Say how the largest model compares with the 10x target, and what each side spent."""
    largest = max(results, key=lambda r: r.case.size_mb)
    cli_median = statistics.median(largest.cli)
    sdk_median = statistics.median(largest.sdk[1:] or largest.sdk)
    ratio = cli_median / sdk_median
    return (f"Target ≥ 10x after the first request on the largest model ({largest.case.label}): "
            f"{ratio:.1f}x, {'met' if ratio >= 10 else 'not met'}. There each one-shot prompt "
            f"spent {cli_median - sdk_median:.2f} s more than a server request (median), "
            f"while the server itself spent {sdk_median:.2f} s per request generating.")


def main(argv: list[str] | None = None) -> None:
    """Build or find the binaries, write the models, measure and print the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prompts", type=int, default=10, help="prompts per model")
    parser.add_argument("--n-predict", type=int, default=8, help="tokens generated per prompt")
    # One thread on both sides: on a small shared machine, several llama.cpp threads
    # contend with other processes at every barrier and the medians swing widely.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ctx-size", type=int, default=2048)
    parser.add_argument("--cold-runs", type=int, default=3,
                        help="one-shot runs per model with the model file out of the page cache")
    parser.add_argument("--sizes-mb", type=float, nargs="*", default=[50.0, 500.0],
                        help="random-weight model sizes besides the scripted model")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="where the benchmark models are written (default: the cache)")
    args = parser.parse_args(argv)

    from contracts.servers.build import cache_root, ensure_llama_cli, ensure_llama_server

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    server_binary = ensure_llama_server(progress=progress)
    shot = one_shot_mode(ensure_llama_cli(progress=progress))
    cases = models(args.models_dir or cache_root() / "bench-models", args.sizes_mb)
    # Short prompts: the scripted vocabulary has few merges, so a prompt costs about one
    # token per byte, and prompt processing would otherwise hide what the curve is about.
    prompts = [f"Say hi {i + 1}." for i in range(args.prompts)]
    results = [measure(case, shot, server_binary, prompts, args.n_predict, args.threads,
                       args.ctx_size, args.cold_runs) for case in cases]
    example = " ".join(shot.command(Path("MODEL.gguf"), "PROMPT", args.n_predict,
                                    args.threads, args.ctx_size, seed=1)[1:])
    lines = [
        "## One-shot llama-cli vs the SDK on a persistent llama-server",
        "",
        f"Command: `{command_line(MODULE)}`  ",
        f"Machine: {describe(PACKAGES)}",
        "",
        f"{args.prompts} prompts per model, each sent both ways, alternating which side goes "
        f"first; {args.n_predict} tokens generated per prompt on both sides (end of "
        f"generation ignored), greedy, {args.threads} thread(s) on both sides, context "
        f"{args.ctx_size}. "
        f"One-shot: `llama-cli {example}`, one process per prompt, run in "
        f"{shot.description}; its other defaults are kept, its warm-up run included. "
        f"Server: `llama-server --jinja --threads {args.threads} "
        f"--ctx-size {args.ctx_size}`, started once per model (its start, to /health 200, "
        "is the `server start` column) and asked through `pedrollm` "
        "(`new_backend(type=\"llamacpp\")`, `/v1/chat/completions`). For the timed "
        "comparison the model file is in the page cache on both sides (read once before), "
        "so one-shot load time is mapping and preparing the model, not disk reads; the "
        f"`cold` column is {args.cold_runs} one-shot runs each made after asking the kernel "
        "to drop that model file's cached pages (`posix_fadvise(DONTNEED)`; the virtual "
        "disk below may still cache), before the server starts. Ratios are medians over "
        "medians; `after 1st` leaves out the server's first request.",
        "",
        table(results),
        "",
        target_line(results),
        "",
        "Tokens generated by the server per request: "
        + "; ".join(f"{r.case.label}: {sorted(set(r.sdk_tokens))}" for r in results) + ".",
        "",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
