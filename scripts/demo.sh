#!/usr/bin/env bash
# The main job on the embedded default: the whole MM-PRM pipeline on synthetic
# problems with the tiny models (the README says how long). Sets up
# .venv on first use. Extra arguments go to `mmprm demo` (--quick, --full, --out DIR).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec mmprm demo "$@"
