#!/bin/sh
# Fuzzes the given targets one after another, each for SECONDS (default 600), from the
# committed seeds. New inputs go to work/<target>/, crashes to artifacts/<target>/, the
# libFuzzer output to work/logs/<target>.log (its last lines hold the numbers of
# docs/fuzzing.md). Usage, from anywhere:
#
#   tests/fuzz/run.sh 600 bencode metainfo ...
#
# On the stable toolchain, RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its `-Z` flags.
set -eu
cd "$(dirname "$0")"
seconds=${1:-600}
shift
mkdir -p work/logs
for target in "$@"; do
    mkdir -p "work/$target"
    echo "$(date -u +%FT%TZ) $target: fuzzing for $seconds s"
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir . "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"work/logs/$target.log" 2>&1 ||
        echo "$target: FAILED, see work/logs/$target.log and artifacts/$target/"
    tail -n 1 "work/logs/$target.log" | cut -c1-200
done
