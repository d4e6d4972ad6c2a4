#!/usr/bin/env bash
# Integration check against a real llama-server: build it when the cache has none (or
# use LLAMA_BIN), start it with the scripted model (or LLAMA_MODEL), wait on /health with
# a bound, run a tool-calling agent round trip through the SDK, and always stop the
# server it started.
#
#   ./test-llama-server.sh
#   LLAMA_BIN=/usr/local/bin/llama-server LLAMA_MODEL=~/models/qwen2.5-7b.gguf ./test-llama-server.sh
#
# Exits non-zero when any step fails.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-120}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pedrollm-it.XXXXXX")
SERVER_PID=""

cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "stopping llama-server (pid $SERVER_PID)"
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -f "$WORK/server.log" ]]; then
        echo "--- last lines of the server log ---" >&2
        tail -n 20 "$WORK/server.log" >&2
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT INT TERM

if [[ -z "${LLAMA_BIN:-}" ]]; then
    # --path only looks in the cache; an empty cache means building it here, once.
    if ! LLAMA_BIN=$("$PYTHON" -m contracts.servers.build --path); then
        echo "llama-server is not built yet: building it now with" \
            "'$PYTHON -m contracts.servers.build' (several minutes, once; cached after)"
        if ! LLAMA_BIN=$("$PYTHON" -m contracts.servers.build); then
            echo "could not build llama-server (the reason is above). Fix that and run" \
                "'$PYTHON -m contracts.servers.build' (or 'make llama-build'), or use an" \
                "installed one: LLAMA_BIN=/path/to/llama-server $0" >&2
            exit 1
        fi
    fi
fi
if [[ -z "${LLAMA_MODEL:-}" ]]; then
    LLAMA_MODEL="$WORK/scripted.gguf"
    "$PYTHON" -m contracts.servers.scripted_model "$LLAMA_MODEL"
fi
PORT=${LLAMA_SERVER_PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
URL="http://127.0.0.1:$PORT"

echo "starting $LLAMA_BIN on $URL"
"$LLAMA_BIN" -m "$LLAMA_MODEL" --host 127.0.0.1 --port "$PORT" --ctx-size 2048 --jinja \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

echo "waiting for $URL/health (at most ${HEALTH_TIMEOUT}s)"
deadline=$((SECONDS + HEALTH_TIMEOUT))
until "$PYTHON" -m pedrollm --server-url "$URL" health >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "llama-server exited before it was ready" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "llama-server not ready after ${HEALTH_TIMEOUT}s" >&2
        exit 1
    fi
    sleep 0.5
done

"$PYTHON" -m pedrollm --server-url "$URL" info
echo "running the agent round trip"
"$PYTHON" -m pedrollm demo --server-url "$URL"
echo "integration check passed"
