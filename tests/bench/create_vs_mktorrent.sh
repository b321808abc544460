#!/usr/bin/env bash
# Benchmark: `peerwire create` against `mktorrent` on the same 1 GiB file, 2 hashing threads
# each, same piece length (512 KiB), in one run on this machine. Not a test: it prints times
# and the ratio. Run from the repository root:
#
#     bash tests/bench/create_vs_mktorrent.sh [SIZE_MIB] [ROUNDS]
#
# The file is read once before timing so both tools hash from the page cache: this measures
# hashing and reading code, not the disk. Both torrents must have the same info hash (same
# name, piece length and content), which the script checks.
set -euo pipefail

size_mib=${1:-1024}
rounds=${2:-3}
command -v mktorrent >/dev/null || { echo "mktorrent is not installed (apt-get install mktorrent)"; exit 1; }

cargo build --release --quiet
peerwire=$(pwd)/target/release/peerwire

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data="$work/bench.bin"
head -c "${size_mib}M" /dev/urandom > "$data"
cat "$data" > /dev/null # warm the page cache

# Wall time of a command in seconds (bash's own clock, no external `time` needed).
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" > /dev/null 2>&1
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' 
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: > "$work/mk.times"
: > "$work/pw.times"
for round in $(seq "$rounds"); do
    rm -f "$work/mk.torrent" "$work/pw.torrent"
    seconds mktorrent -t 2 -l 19 -a http://127.0.0.1:6969/announce -o "$work/mk.torrent" "$data" >> "$work/mk.times"
    seconds "$peerwire" create "$data" -o "$work/pw.torrent" --piece-length 524288 --threads 2 -t http://127.0.0.1:6969/announce >> "$work/pw.times"
    echo "round $round: mktorrent $(tail -1 "$work/mk.times") s, peerwire $(tail -1 "$work/pw.times") s"
done

mk_hash=$("$peerwire" info "$work/mk.torrent" | sed -n 's/^Info Hash: //p')
pw_hash=$("$peerwire" info "$work/pw.torrent" | sed -n 's/^Info Hash: //p')
if [ "$mk_hash" != "$pw_hash" ]; then
    echo "info hashes differ: mktorrent $mk_hash, peerwire $pw_hash"
    exit 1
fi

mk=$(median < "$work/mk.times")
pw=$(median < "$work/pw.times")
ratio=$(awk -v a="$mk" -v b="$pw" 'BEGIN { print a / b }')
printf 'create %s MiB (median of %s): peerwire %.3f s, mktorrent %.3f s, ratio mktorrent/peerwire %.2f (>1: peerwire faster); same info hash %s\n' \
    "$size_mib" "$rounds" "$pw" "$mk" "$ratio" "$pw_hash"
