#!/usr/bin/env bash
# The main job on the embedded default: synthetic problems, the tiny policy,
# sampled and graded solutions. Sets up .venv on first use.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
OUT="${1:-runs/demo}"
mkdir -p "$OUT"
mmprm synth --n 64 --seed 1 --split test --out "$OUT/test"
mmprm generate --policy "hf:assets/tiny-policy-weak" --data "$OUT/test/problems.jsonl" --n 8 \
    --temperature 1.0 --out "$OUT/samples.jsonl"
echo "samples in $OUT/samples.jsonl" >&2
