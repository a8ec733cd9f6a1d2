#!/usr/bin/env bash
# The test suite: the linter (ruff, rules in pyproject.toml), then pytest. Sets up
# .venv on first use. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
python -m ruff check src tests benchmarks examples scripts
exec python -m pytest -n 2 "$@"  # two workers: the tests are single-threaded, the machines have two cores
