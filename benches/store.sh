#!/usr/bin/env bash
# Store benchmarks: pond against the shell tools that do the same work, side by side.
#
# Usage: bash benches/store.sh [SIZE_MIB]        (default 1024)
#
# Environment:
#   BENCH_DIR   scratch directory (default /tmp/pond-bench); the generated log is reused from it
#   REPS        timed runs per command after one warm-up run (default 3); the best is reported
#   POND_BIN    use this pond binary instead of building one
#   B3SUM       b3sum binary (default: `b3sum` on PATH, else /tmp/b3/bin/b3sum)
#
# What it does (docs/benchmarks.md explains the targets and how to read the output):
#   1. builds pond in release mode in target/bench (kept apart from everyday builds);
#   2. generates SIZE_MIB MiB of Hyperliquid node_trades-shaped JSON lines (benches/gen_trades.py);
#   3. times, best of REPS after a warm-up, every pond run in a fresh pond directory:
#        (a) copy-none  `pond init --compression none` + `pond copy`  vs  cp + b3sum
#        (b) copy-zstd  `pond init` (zstd:1) + `pond copy`           vs  zstd -1 + b3sum
#        (c) the size of the pond's data vs the raw input and vs zstd -1
#        (d) append     1 MiB appended to a SIZE_MIB file vs to a 1 MiB file (logfile `sync`)
#        (e) peak RSS of every pond run
#      plus context rows that show where the time goes (fsync, single-threaded hashing and
#      compression, full re-verification);
#   4. prints markdown tables (also written to $BENCH_DIR/results.md).
#
# The machine may be noisy, so the commands compared in one row run interleaved (round robin),
# each round after one warm-up round: noise hits both sides alike, and the ratio is what counts.
# Nothing is dropped from the page cache (the warm-up reads the input into it). Every timed run
# starts after `sync`, so no run pays for dirty pages an earlier run left behind.

set -euo pipefail
export LC_ALL=C

SIZE_MIB=${1:-1024}
BENCH_DIR=${BENCH_DIR:-/tmp/pond-bench}
REPS=${REPS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ! $SIZE_MIB =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash benches/store.sh [SIZE_MIB]" >&2
    exit 2
fi

# Shared helpers: tools, build, scratch directory, input, timing, formatting.
source "$ROOT/benches/lib.sh"
need_tools zstd cp python3
build_pond
make_work

# ---------------------------------------------------------------------------------------------
# Input

INPUT=$BENCH_DIR/trades-${SIZE_MIB}MiB.jsonl
gen_input "$INPUT" "$SIZE_MIB"
SMALL=$BENCH_DIR/trades-1MiB.jsonl
gen_input "$SMALL" 1 2
RAW_BYTES=$(stat -c %s "$INPUT")

LOAD_BEFORE=$(load)
echo "input: $INPUT ($(mib "$RAW_BYTES") MiB); $REPS timed rounds after a warm-up;" \
    "load $LOAD_BEFORE" >&2

# ---------------------------------------------------------------------------------------------
# (a) copy, no compression: pond vs cp + b3sum (and vs the same made durable, as pond's commit
# fsyncs what it wrote)

echo "(a) copy, --compression none" >&2
PD_NONE=$WORK/pond-none DST=$WORK/dst
define pond-none "rm -rf '$PD_NONE' && '$POND' --pond '$PD_NONE' init --compression none >/dev/null" \
    "$POND" --pond "$PD_NONE" copy "$INPUT" /
define cp-b3sum "rm -f '$DST'" bash -c 'cp "$1" "$2" && "$3" "$2"' _ "$INPUT" "$DST" "$B3SUM"
define cp-b3sum-fsync "rm -f '$DST'" \
    bash -c 'cp "$1" "$2" && "$3" "$2" && sync "$2"' _ "$INPUT" "$DST" "$B3SUM"
measure pond-none cp-b3sum cp-b3sum-fsync
NONE_DATA=$(dir_bytes "$PD_NONE/data")
check_root "$PD_NONE" "/$(basename "$INPUT")" "$INPUT"

# ---------------------------------------------------------------------------------------------
# (b) copy, zstd:1: pond vs zstd -1 + b3sum; (c) sizes

echo "(b) copy, default zstd:1" >&2
PD_ZSTD=$WORK/pond-zstd DST_ZST=$WORK/dst.zst
define pond-zstd "rm -rf '$PD_ZSTD' && '$POND' --pond '$PD_ZSTD' init >/dev/null" \
    "$POND" --pond "$PD_ZSTD" copy "$INPUT" /
define zstd-b3sum "rm -f '$DST_ZST'" \
    bash -c 'zstd -1 -q -f "$1" -o "$2" && "$3" "$1"' _ "$INPUT" "$DST_ZST" "$B3SUM"
measure pond-zstd zstd-b3sum
ZSTD_DATA=$(dir_bytes "$PD_ZSTD/data")
ZSTD_POND=$(dir_bytes "$PD_ZSTD")
ZSTD_CLI_BYTES=$(stat -c %s "$DST_ZST")
check_root "$PD_ZSTD" "/$(basename "$INPUT")" "$INPUT"
# pond compresses 1 MiB frames independently; zstd -1 on the same 1 MiB pieces:
ZSTD_1M_BYTES=$(python3 - "$INPUT" <<'EOF'
import subprocess, sys
total = 0
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(1 << 20):
        total += len(subprocess.run(["zstd", "-1", "-q", "-c"], input=chunk,
                                    capture_output=True, check=True).stdout)
print(total)
EOF
)

# ---------------------------------------------------------------------------------------------
# Context: what the parts of a copy cost on their own

echo "context: components" >&2
define cp-only "rm -f '$DST'" cp "$INPUT" "$DST"
define b3sum-mt "" "$B3SUM" "$INPUT"
define b3sum-1thread "" "$B3SUM" --num-threads 1 "$INPUT"
define zstd1-only "rm -f '$DST_ZST'" zstd -1 -q -f "$INPUT" -o "$DST_ZST"
define zstd1-single-thread "rm -f '$DST_ZST'" zstd -1 -q --single-thread -f "$INPUT" -o "$DST_ZST"
measure cp-only b3sum-mt b3sum-1thread zstd1-only zstd1-single-thread

# ---------------------------------------------------------------------------------------------
# (d) appending 1 MiB to a big file vs to a 1 MiB file
#
# The CLI appends through the logfile factory: a node mirrors one host file, and `sync` appends
# what the host file gained since the last sync, after checking sampled blocks of the old bytes
# against the stored outboard (`verify: sample`, the default; `verify: full` re-hashes the whole
# old prefix). Per run, untimed: a fresh pond with the node, a first sync of the host file at
# its base size, then 1 MiB appended on the host. Timed: the second sync.

HAVE_LOGFILE=
if "$POND" list-factories 2>/dev/null | grep -qw logfile; then HAVE_LOGFILE=1; fi

# define_append NAME BASE_FILE VERIFY
define_append() {
    local name=$1 base=$2 verify=$3
    local host=$WORK/host-$name/trades.jsonl cfg=$WORK/$name.yaml pd=$WORK/pond-$name
    mkdir -p "$(dirname "$host")"
    cp "$base" "$host"
    printf 'name: %s\nactive_pattern: %s\npond_path: /logs\nverify: %s\n' \
        "$name" "$host" "$verify" >"$cfg"
    define "$name" "truncate -s $(stat -c %s "$base") '$host'
        rm -rf '$pd'
        '$POND' --pond '$pd' init >/dev/null
        '$POND' --pond '$pd' mknod logfile /src --config-path '$cfg' >/dev/null
        '$POND' --pond '$pd' run /src sync >/dev/null
        cat '$SMALL' >>'$host'" \
        "$POND" --pond "$pd" run /src sync
}

if [[ -n $HAVE_LOGFILE ]]; then
    echo "(d) append 1 MiB through the logfile factory" >&2
    define_append append-to-big "$INPUT" sample
    define_append append-to-small "$SMALL" sample
    define_append append-to-big-full "$INPUT" full
    measure append-to-big append-to-small append-to-big-full
    for name in append-to-big append-to-small append-to-big-full; do
        check_root "$WORK/pond-$name" /logs/trades.jsonl "$WORK/host-$name/trades.jsonl"
        rm -f "$WORK/host-$name/trades.jsonl"
    done
else
    echo "(d) append: pending the logfile factory (\`pond list-factories\` has no logfile)" >&2
fi
LOAD_AFTER=$(load)

# ---------------------------------------------------------------------------------------------
# Report

{
    echo "Input: $(mib "$RAW_BYTES") MiB of node_trades JSON lines. Best of $REPS interleaved" \
        "rounds after a warm-up; $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M') UTC;" \
        "load average $LOAD_BEFORE before, $LOAD_AFTER after."
    echo
    echo "| case | pond s | floor | floor s | pond/floor | pond peak RSS MiB | sizes |"
    echo "|---|---:|---|---:|---:|---:|---|"
    echo "| (a) copy, \`--compression none\` | $(secs "${BEST[pond-none]}") | cp + b3sum |" \
        "$(secs "${BEST[cp-b3sum]}") | **$(ratio "${BEST[pond-none]}" "${BEST[cp-b3sum]}")** |" \
        "${RSS[pond-none]} | data $(mib "$NONE_DATA") MiB = $(size_ratio "$NONE_DATA" "$RAW_BYTES") x raw |"
    echo "| (a') same, floor made durable | $(secs "${BEST[pond-none]}") | cp + b3sum + fsync |" \
        "$(secs "${BEST[cp-b3sum-fsync]}") | $(ratio "${BEST[pond-none]}" "${BEST[cp-b3sum-fsync]}") |" \
        "${RSS[pond-none]} | |"
    echo "| (b) copy, zstd:1 (default) | $(secs "${BEST[pond-zstd]}") | zstd -1 + b3sum |" \
        "$(secs "${BEST[zstd-b3sum]}") | **$(ratio "${BEST[pond-zstd]}" "${BEST[zstd-b3sum]}")** |" \
        "${RSS[pond-zstd]} | see (c) |"
    echo "| (c) size, zstd:1 | | zstd -1 output | | $(size_ratio "$ZSTD_DATA" "$ZSTD_CLI_BYTES") |" \
        "| data $(mib "$ZSTD_DATA") MiB = **$(size_ratio "$ZSTD_DATA" "$RAW_BYTES") x raw**" \
        "(whole pond dir $(mib "$ZSTD_POND") MiB); zstd -1: $(mib "$ZSTD_CLI_BYTES") MiB" \
        "= $(size_ratio "$ZSTD_CLI_BYTES" "$RAW_BYTES") x raw; zstd -1 on 1 MiB pieces:" \
        "$(mib "$ZSTD_1M_BYTES") MiB = $(size_ratio "$ZSTD_1M_BYTES" "$RAW_BYTES") x raw |"
    if [[ -n $HAVE_LOGFILE ]]; then
        echo "| (d) append 1 MiB to a $(mib "$RAW_BYTES") MiB file (logfile sync) |" \
            "$(secs "${BEST[append-to-big]}") | same, to a 1 MiB file |" \
            "$(secs "${BEST[append-to-small]}") |" \
            "**$(ratio "${BEST[append-to-big]}" "${BEST[append-to-small]}")** |" \
            "${RSS[append-to-big]} (1 MiB file: ${RSS[append-to-small]}) | |"
        echo "| (d') same with \`verify: full\` | $(secs "${BEST[append-to-big-full]}") |" \
            "same, to a 1 MiB file (sample) | $(secs "${BEST[append-to-small]}") |" \
            "$(ratio "${BEST[append-to-big-full]}" "${BEST[append-to-small]}") |" \
            "${RSS[append-to-big-full]} | |"
    else
        echo "| (d) append 1 MiB to a big file vs to a 1 MiB file | - | | - | - | - |" \
            "pending the logfile factory |"
    fi
    echo
    echo "CPU (user + sys) of the best runs: pond none ${CPU[pond-none]} s," \
        "pond zstd ${CPU[pond-zstd]} s, zstd -1 + b3sum ${CPU[zstd-b3sum]} s." \
        "Components alone (best wall s): cp $(secs "${BEST[cp-only]}")," \
        "b3sum $(secs "${BEST[b3sum-mt]}"), b3sum --num-threads 1 $(secs "${BEST[b3sum-1thread]}")," \
        "zstd -1 $(secs "${BEST[zstd1-only]}") (cpu ${CPU[zstd1-only]})," \
        "zstd -1 --single-thread $(secs "${BEST[zstd1-single-thread]}")." \
        "Every stored root $([[ -n $ROOTS_OK ]] && echo "equals" || echo "DOES NOT equal")" \
        "b3sum of its source."
    echo
    echo "All timed runs (s):"
    echo
    for name in pond-none cp-b3sum cp-b3sum-fsync pond-zstd zstd-b3sum cp-only b3sum-mt \
        b3sum-1thread zstd1-only zstd1-single-thread append-to-big append-to-small \
        append-to-big-full; do
        if [[ -n ${RUNS[$name]:-} ]]; then echo "- $name: ${RUNS[$name]}"; fi
    done
} | tee "$BENCH_DIR/results.md"
