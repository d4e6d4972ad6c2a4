"""The pool backend: config, routing, failover and sharing, against several fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from pedrollm import (
    BadRequest,
    ConfigError,
    ConnectionFailed,
    InferenceRequest,
    Message,
    NoServerAvailable,
    StreamInterrupted,
    new_backend,
)
from pedrollm.backends.pool import PoolBackend
from pedrollm.config import ModelConfig

from .pool_fakes import chat_fixtures, chats, named_fakes
from .sse import completion

WHO = InferenceRequest(user_prompt="Who are you?")


def pool_of(*urls: str, **settings: Any) -> PoolBackend:
    backend = new_backend({"type": "pool", "servers": [{"server_url": u} for u in urls],
                           **settings})
    assert isinstance(backend, PoolBackend)
    return backend


def fast_pool(*urls: str, **kwargs: Any) -> PoolBackend:
    """A pool with short cooldowns and no waiting between rounds, built directly."""
    members = [new_backend({"server_url": u, "max_retries": 0}) for u in urls]
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("cooldown", 0.2)
    return PoolBackend(members, **kwargs)


def config_error(section: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        ModelConfig.from_dict(section, source="pool.json")
    return str(caught.value)


# -- config -----------------------------------------------------------------------


def test_a_bad_server_is_named_by_its_place_in_the_list() -> None:
    message = config_error({"type": "pool", "servers": [
        {"server_url": "http://127.0.0.1:8081"},
        {"server_url": "ftp://box:8081"},
        {"type": "openai"},
        {"server_ulr": "http://127.0.0.1:8082"},
    ]})
    assert message.splitlines() == [
        'pool.json: model.servers[1].server_url: must start with http:// or https://, '
        'got "ftp://box:8081"',
        "pool.json: model.servers[2].server_url: required for backend type 'openai' "
        "(it has no default address)",
        "pool.json: model.servers[3]: unknown field 'server_ulr' (did you mean 'server_url'?)",
    ]


@pytest.mark.parametrize(("section", "expected"), [
    ({"type": "pool"}, 'pool.json: model.servers: required for type "pool"'),
    ({"type": "pool", "servers": []}, "pool.json: model.servers: must be a non-empty list"),
    ({"type": "pool", "servers": ["http://a:1"]},
     'pool.json: model.servers: item 0 must be a JSON object (a server section), got "http'),
    ({"type": "pool", "servers": [{"type": "pool"}]},
     "pool.json: model.servers[0].type: a server in a pool cannot be a pool itself"),
    ({"type": "pool", "servers": [{"sticky": True}]},
     "pool.json: model.servers[0].sticky: a pool's own field; set it beside model.servers"),
    ({"type": "pool", "server_url": "http://a:1", "servers": [{}]},
     "pool.json: model.server_url: a pool has no address of its own"),
    ({"type": "pool", "servers": [{}], "strategy": "fastest"},
     "pool.json: model.strategy: must be one of least_busy, round_robin, first, "
     'got "fastest"'),
    ({"type": "llamacpp", "sticky": True},
     "pool.json: model.sticky: only for type 'pool' (a pool of servers), not 'llamacpp'"),
])
def test_pool_config_mistakes_are_named(section: dict[str, Any], expected: str) -> None:
    assert config_error(section).startswith(expected)


def test_servers_of_different_model_families_are_refused() -> None:
    message = config_error({"type": "pool", "servers": [
        {"server_url": "http://127.0.0.1:8081", "tool_call_format": "hermes"},
        {"server_url": "http://127.0.0.1:8082"},
        {"server_url": "http://127.0.0.1:8083", "tool_call_format": "mistral",
         "enable_tools": False},
    ]})
    assert message.splitlines() == [
        'pool.json: model.servers[2].tool_call_format: "mistral" but '
        'model.servers[0].tool_call_format is "hermes"; a pool\'s servers serve one model '
        "family: set it once, beside model.servers",
        "pool.json: model.servers[2].enable_tools: false but model.servers[0].enable_tools "
        "is true; a pool's servers serve one model family: set it once, beside "
        "model.servers",
    ]


def test_the_same_server_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"model.servers\[1\].server_url: .* is already "
                                          r"model.servers\[0\]"):
        pool_of("http://127.0.0.1:8081", "http://127.0.0.1:8081/")


def test_pool_settings_reach_every_server_that_sets_none() -> None:
    pool = new_backend({"type": "pool", "temperature": 0.3, "max_tokens": 7, "servers": [
        {"server_url": "http://127.0.0.1:8081"},
        {"server_url": "http://127.0.0.1:8082", "temperature": 0.9},
        {"type": "ollama", "server_url": "http://127.0.0.1:11434"},
    ]})
    assert isinstance(pool, PoolBackend)
    bodies = [e.backend.chat_body(WHO) for e in pool.endpoints]
    assert [b.get("temperature") for b in bodies] == [0.3, 0.9, 0.3]
    assert [e.backend.name for e in pool.endpoints] == ["llamacpp", "llamacpp", "ollama"]
    # The pool moves a failed request on; its servers do not retry it themselves.
    retries = [e.backend.client.retry.max_retries for e in pool.endpoints]  # type: ignore[attr-defined]
    assert retries == [0, 0, 0]


def test_a_pool_section_round_trips_and_hides_each_servers_key() -> None:
    section = {"type": "pool", "strategy": "first", "sticky": True, "servers": [
        {"server_url": "http://user:pw@127.0.0.1:8081", "api_key": "sk-member-secret"}]}
    model = ModelConfig.from_dict(section)
    assert ModelConfig.from_dict(model.to_dict(redact=False)) == model
    shown = json.dumps(model.to_dict())
    assert "sk-member-secret" not in shown and "pw@" not in shown
    assert "sk-member-secret" not in repr(model)
    assert "strategy" not in ModelConfig.from_dict({"type": "llamacpp"}).to_dict()


# -- routing ----------------------------------------------------------------------


def test_round_robin_takes_each_server_in_turn() -> None:
    with named_fakes("ABC") as fakes, pool_of(*(f.url for f in fakes),
                                              strategy="round_robin") as pool:
        answers = [pool.infer(WHO).text for _ in range(9)]
    assert Counter(answers) == {"I am A.": 3, "I am B.": 3, "I am C.": 3}
    assert answers[:3] != answers[3:6] or len(set(answers[:3])) == 3


def test_first_keeps_to_the_first_ready_server() -> None:
    with named_fakes("AB") as (a, b), pool_of(a.url, b.url, strategy="first") as pool:
        assert {pool.infer(WHO).text for _ in range(4)} == {"I am A."}
        assert chats(b) == 0


def test_least_busy_sends_new_requests_away_from_a_slow_server() -> None:
    # A holds each request a while, so its requests pile up in flight; B's do not.
    with named_fakes("AB") as (a, b), pool_of(a.url, b.url) as pool:
        a.set_faults("first_token_delay=0.3")
        with ThreadPoolExecutor(4) as workers:
            answers = list(workers.map(lambda _: pool.infer(WHO).text, range(24)))
    assert len(answers) == 24
    count = Counter(answers)
    assert count["I am B."] > 2 * count["I am A."]


def test_least_busy_reads_free_slots_from_llama_server(make_httpserver: Any) -> None:
    with HTTPServer() as full, HTTPServer() as free:
        for server, busy in ((full, [True, True]), (free, [True, False])):
            server.expect_request("/slots").respond_with_json(
                [{"id": i, "n_ctx": 2048, "is_processing": b} for i, b in enumerate(busy)])
            server.expect_request("/v1/chat/completions").respond_with_json(
                completion(f"from {server.port}"))
        with pool_of(full.url_for(""), free.url_for("")) as pool:
            answers = {pool.infer(WHO).text for _ in range(3)}
            rows = pool.endpoints_info()
    assert answers == {f"from {free.port}"}
    assert [(r["slots_total"], r["slots_busy"]) for r in rows] == [(2, 2), (2, 1)]


def test_a_server_without_slots_is_asked_once(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/slots").respond_with_json(
        {"error": {"code": 501, "message": "This server does not support slots endpoint.",
                   "type": "not_supported_error"}}, status=501)
    httpserver.expect_request("/v1/chat/completions").respond_with_json(completion("ok"))
    with pool_of(httpserver.url_for("")) as pool:
        for _ in range(3):
            assert pool.infer(WHO).text == "ok"
            time.sleep(0.4)
        assert pool.endpoints[0].slots_supported is False
    assert sum(1 for r, _ in httpserver.log if r.path == "/slots") == 1


def test_sticky_keeps_each_conversation_on_one_server() -> None:
    openings = [f"Conversation {n}" for n in range(16)]
    prompts = [*openings, "And then?"]
    with named_fakes("AB", prompts=prompts) as (a, b):
        for fake in (a, b):
            name = "A" if fake is a else "B"
            for opening in openings:
                turn_two = [{"role": "user", "content": opening},
                            {"role": "assistant", "content": f"I am {name}."},
                            {"role": "user", "content": "And then?"}]
                for fixture in chat_fixtures(turn_two, f"Still {name}."):
                    fake.add_fixture(fixture)
        with pool_of(a.url, b.url, sticky=True) as pool:
            first = {o: pool.infer(InferenceRequest(user_prompt=o)).text for o in openings}
            second = {}
            for opening, said in first.items():
                req = InferenceRequest(messages=[Message.user(opening),
                                                 Message.assistant(said),
                                                 Message.user("And then?")])
                second[opening] = pool.infer(req).text
            assert set(first.values()) == {"I am A.", "I am B."}
            assert all(second[o] == first[o].replace("I am", "Still") for o in openings)
            # When a conversation's server goes, the conversation moves; others stay.
            on_a = [o for o in openings if first[o] == "I am A."]
            a.stop()
            moved = pool.infer(InferenceRequest(user_prompt=on_a[0])).text
    assert moved == "I am B."


# -- failover ---------------------------------------------------------------------


def test_a_server_answering_500_is_skipped_and_cooled_down() -> None:
    with named_fakes("AB") as (a, b), fast_pool(a.url, b.url, strategy="first") as pool:
        a.set_faults("status=500")
        answers = [pool.infer(WHO).text for _ in range(5)]
        assert answers == ["I am B."] * 5
        # One request found the fault; the cooldown kept the next ones off A.
        assert chats(a) == 1
        assert pool.endpoints_info()[0]["state"] == "error"
        a.set_faults("")
        time.sleep(0.25)
        # Back from its cooldown, A is probed, found ready, and takes requests again.
        assert pool.infer(WHO).text == "I am A."
        assert pool.endpoints_info()[0]["state"] == "ok"


def test_requests_failing_together_cool_a_server_down_once() -> None:
    with named_fakes("AB") as (a, b), fast_pool(a.url, b.url, strategy="round_robin",
                                                cooldown=2.0) as pool:
        # A holds each request 0.3 s, then fails it: three are in flight on A at once.
        a.set_faults("first_token_delay=0.3,status=500")
        with ThreadPoolExecutor(6) as workers:
            answers = list(workers.map(lambda _: pool.infer(WHO).text, range(6)))
        assert answers == ["I am B."] * 6
        assert chats(a) >= 2
        a_row = pool.endpoints[0]
        # One cooldown of 2 s, not one doubled per failed request (8 s for three).
        assert a_row.failures == 1
        assert a_row.cooldown_until - time.monotonic() < 2.0


def test_a_loading_server_is_skipped_until_it_is_ready() -> None:
    with named_fakes("AB") as (a, b), fast_pool(a.url, b.url, strategy="first") as pool:
        a.set_faults("loading=0.6")
        assert {pool.infer(WHO).text for _ in range(3)} == {"I am B."}
        assert pool.endpoints_info()[0]["state"] == "loading"
        deadline = time.monotonic() + 5
        while pool.infer(WHO).text != "I am A.":
            assert time.monotonic() < deadline, "A never came back after loading"
            time.sleep(0.1)


def test_a_refused_connection_moves_the_request() -> None:
    with named_fakes("AB") as (a, b), fast_pool(a.url, b.url, strategy="first") as pool:
        a.stop()
        assert pool.infer(WHO).text == "I am B."
        assert pool.endpoints_info()[0]["state"] == "unreachable"


def test_a_4xx_is_raised_at_once_and_never_sent_elsewhere() -> None:
    with named_fakes("AB", strict=True) as (a, b), fast_pool(a.url, b.url,
                                                              strategy="first") as pool:
        # A strict fake refuses what no fixture matches with a 400: the request's fault.
        with pytest.raises(BadRequest):
            pool.infer(InferenceRequest(user_prompt="Something nobody recorded"))
        assert chats(a) == 1 and chats(b) == 0
        assert pool.endpoints_info()[0]["state"] != "error"


def test_when_every_server_is_down_one_error_lists_each() -> None:
    with named_fakes("AB") as (a, b), fast_pool(a.url, b.url) as pool:
        a_url, b_url = a.url, b.url
        a.set_faults("status=500")
        b.stop()
        with pytest.raises(NoServerAvailable) as caught:
            pool.infer(WHO)
    error = caught.value
    assert isinstance(error, ConnectionFailed)
    states = {e.url: e.state for e in error.endpoints}
    assert states == {a_url: "error", b_url: "unreachable"}
    text = str(error)
    assert text.startswith("none of the 2 servers of the pool could take the request")
    assert f"{a_url}: error (HTTP 500" in text and f"{b_url}: unreachable (" in text


def test_the_pool_waits_a_round_for_servers_still_loading() -> None:
    with named_fakes("AB") as (a, b):
        a.set_faults("loading=0.5")
        b.set_faults("loading=0.5")
        members = [new_backend({"server_url": f.url, "max_retries": 0}) for f in (a, b)]
        with PoolBackend(members, max_retries=4, cooldown=0.1) as pool:
            assert pool.infer(WHO).text in ("I am A.", "I am B.")


def test_the_deadline_bounds_every_server_tried_together() -> None:
    from pedrollm import DeadlineExceeded

    with named_fakes("AB") as (a, b):
        a.set_faults("loading=30")
        b.set_faults("loading=30")
        members = [new_backend({"server_url": f.url, "max_retries": 0}) for f in (a, b)]
        with PoolBackend(members, max_retries=10, retry_budget=60, cooldown=0.05) as pool:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                pool.infer(InferenceRequest(user_prompt="Who are you?", deadline=0.8))
            took = time.monotonic() - started
    # Ten rounds of waiting would take seconds; the deadline ends them.
    assert 0.7 < took < 1.5


# -- streams ----------------------------------------------------------------------


def test_a_stream_cut_before_any_data_moves_to_another_server() -> None:
    with named_fakes("AB") as (a, b), fast_pool(a.url, b.url, strategy="first") as pool:
        a.set_faults("disconnect_after=0")
        deltas = list(pool.stream(WHO))
    text = "".join(d.content or "" for d in deltas if d.response is None)
    assert text == "I am B."
    final = deltas[-1].response
    assert final is not None and final.text == "I am B."


def test_a_stream_cut_after_data_is_never_sent_again() -> None:
    with named_fakes("AB") as (a, b), fast_pool(a.url, b.url, strategy="first") as pool:
        a.set_faults("disconnect_after=2")
        seen: list[str] = []
        with pytest.raises(StreamInterrupted) as caught:
            for delta in pool.stream(WHO):
                seen.append(delta.content or "")
        assert "".join(seen).startswith("I")
        assert caught.value.partial.text == "".join(seen)
        assert chats(b) == 0
        assert pool.endpoints_info()[0]["state"] == "error"
        assert [r["in_flight"] for r in pool.endpoints_info()] == [0, 0]


def test_a_stream_left_early_counts_its_server_free_again() -> None:
    with named_fakes("AB") as (a, b), fast_pool(a.url, b.url) as pool:
        stream = pool.stream(WHO)
        next(stream)
        assert sum(r["in_flight"] for r in pool.endpoints_info()) == 1
        stream.close()  # type: ignore[attr-defined]
        assert sum(r["in_flight"] for r in pool.endpoints_info()) == 0


# -- many threads -----------------------------------------------------------------


def test_many_threads_lose_no_request_while_servers_fail_and_come_back() -> None:
    with named_fakes("ABC") as (a, b, c), fast_pool(a.url, b.url, c.url,
                                                    max_retries=3) as pool:
        stop = threading.Event()

        def chaos() -> None:
            faults = ["status=500", "loading=0.2", "", "disconnect_after=0", ""]
            turn = 0
            while not stop.is_set():
                (a, b)[turn % 2].set_faults(faults[turn % len(faults)])
                turn += 1
                time.sleep(0.05)

        def ask(n: int) -> str:
            if n % 2:
                return "".join(d.content or "" for d in pool.stream(WHO)
                               if d.response is None)
            return pool.infer(WHO).text

        breaker = threading.Thread(target=chaos)
        breaker.start()
        try:
            with ThreadPoolExecutor(8) as workers:
                answers = list(workers.map(ask, range(120)))
        finally:
            stop.set()
            breaker.join()
        rows = pool.endpoints_info()
    assert len(answers) == 120
    assert set(answers) <= {"I am A.", "I am B.", "I am C."}
    assert [r["in_flight"] for r in rows] == [0, 0, 0]
    assert sum(r["served"] for r in rows) == 120


# -- health, info, the command ------------------------------------------------------


def test_health_is_ok_while_any_server_is_and_lists_each() -> None:
    with named_fakes("AB") as (a, b), pool_of(a.url, b.url) as pool:
        b_url = b.url
        b.stop()
        status = pool.health()
        assert status.ready
        lines = status.detail.splitlines()
        assert lines[:2] == ["1 of 2 servers ready",
                             f"  {a.url}: ok: llamacpp server at {a.url} is ready"]
        assert lines[2].startswith(f"  {b_url}: unreachable: ") and len(lines) == 3
        a.set_faults("loading=5")
        assert pool.health().state == "loading"


def test_the_command_shows_every_server(tmp_path: Path) -> None:
    import fakellama
    import pedrollm

    with named_fakes("AB") as (a, b):
        config = {"model": {"type": "pool", "context_size": 2048, "servers": [
            {"server_url": a.url}, {"server_url": b.url}]}}
        a_url, b_url = a.url, b.url
        b.stop()
        (tmp_path / ".pedrocli.json").write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEDROLLM_")}
        env["HOME"] = str(tmp_path)
        env["PYTHONPATH"] = os.pathsep.join(
            str(Path(m.__file__).resolve().parents[1]) for m in (pedrollm, fakellama))

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "pedrollm", *args], cwd=tmp_path,
                                  env=env, capture_output=True, text=True, timeout=60)

        health = run("health")
        info = run("info", "--no-probe")
    assert health.returncode == 0
    assert health.stdout.splitlines()[:2] == ["ok: 1 of 2 servers ready",
                                              f"  {a_url}: ok: llamacpp server at {a_url} "
                                              "is ready"]
    assert f"  {b_url}: unreachable:" in health.stdout
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert "backend:               pool" in lines
    assert any(line.startswith("server 0:") and a_url in line and " ok," in line
               for line in lines)
    assert any(line.startswith("server 1:") and b_url in line and "unreachable" in line
               for line in lines)


def test_infer_many_over_a_pool_uses_every_servers_slots() -> None:
    from fakellama.server import FakeServer
    from pedrollm import InferenceRequest, InferenceResponse, new_backend

    with FakeServer() as one, FakeServer() as two:
        with new_backend({"type": "pool", "servers": [
                {"type": "llamacpp", "server_url": one.url},
                {"type": "llamacpp", "server_url": two.url}]}) as pool:
            assert pool.parallel_slots() == 8  # four slots each, as /props says
            results = pool.infer_many([InferenceRequest(user_prompt="Say hello.")] * 16)
        assert all(isinstance(r, InferenceResponse) for r in results)
        served = [sum(1 for r in f.requests if r.path == "/v1/chat/completions")
                  for f in (one, two)]
    assert sum(served) == 16 and min(served) > 0
