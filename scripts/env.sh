# Sourced by scripts/demo.sh and scripts/test.sh: create .venv and install
# mmprm into it on first use (again whenever pyproject.toml changes).
# CPU machines get the CPU wheel of torch first, because a bare `torch`
# requirement pulls a multi-GB CUDA build. On a GPU machine, point
# MMPRM_PYTHON at an interpreter whose environment already has your torch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -n "${MMPRM_PYTHON:-}" ]; then
    PY="$MMPRM_PYTHON"
else
    VENV="${MMPRM_VENV:-$ROOT/.venv}"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    PY="$VENV/bin/python"
fi
STAMP="$("$PY" -c 'import sys; print(sys.prefix)')/.mmprm-installed"
WANT="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "setting up the environment in $("$PY" -c 'import sys; print(sys.prefix)') (first run only)" >&2
    "$PY" -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" >&2 || true
    if ! "$PY" -c "import torch" 2>/dev/null; then
        "$PY" -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" >&2 || true
        "$PY" -c "import torch" || { echo "torch failed to install" >&2; exit 1; }
    fi
    "$PY" -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" >&2 || true
    "$PY" -c "import mmprm, transformers, math_verify" && "$PY" -m ruff --version >/dev/null || { echo "mmprm failed to install" >&2; exit 1; }
    echo "$WANT" > "$STAMP"
fi
export PATH="$(dirname "$PY"):$PATH"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
