#!/usr/bin/env bash
# The test suite. Sets up .venv on first use. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec python -m pytest "$@"
