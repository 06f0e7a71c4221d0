#!/usr/bin/env bash
# logfile factory benchmarks: `pond run NODE sync` against the shell tools that do the same work.
#
# Usage: bash benches/logfile.sh [SIZE_MIB]      (default 1024)
#
# Environment:
#   BENCH_DIR   scratch directory (default /tmp/pond-bench); the generated log and the hour-file
#               layouts split from it are reused from it
#   REPS        timed rounds of the first-sync cases after one warm-up round (default 3)
#   IDLE_REPS   timed rounds of the idle and small cases after one warm-up round (default 10)
#   IDLE_FILES  mirrored files in the idle case (default 1000)
#   MANY_REPS   timed rounds of the first sync of the IDLE_FILES layout (default 1; 5 to 15 s
#               a round at 1 GiB)
#   POND_BIN    use this pond binary instead of building one
#   B3SUM       b3sum binary (default: `b3sum` on PATH, else /tmp/b3/bin/b3sum)
#
# What it does (docs/benchmarks.md, section "logfile", explains the targets and the output):
#   1. builds pond in release mode in target/bench (kept apart from everyday builds);
#   2. generates SIZE_MIB MiB of node_trades lines (benches/gen_trades.py, shared with store.sh)
#      and splits it at line boundaries into Hyperliquid node layouts,
#      `hourly/YYYYMMDD/H`: 24 hour files (one day) and IDLE_FILES hour files;
#   3. times, best of REPS after a warm-up, interleaved with its floor:
#        first sync of one SIZE_MIB active file, and of the 24 hour files (`hourly/*/*`),
#        with `--compression none` (floor: cp, then b3sum) and with the default zstd:1
#        (floor: zstd -1, then b3sum); a fresh pond and node for every run;
#   4. times the first sync of the IDLE_FILES layout (best of MANY_REPS) against zstd -1 + b3sum;
#      then, best of IDLE_REPS, an idle sync over IDLE_FILES mirrored files (`bytes_read` from
#      `--json` must be 0 in every run), over 24 files and over one file, and `find` listing the
#      same IDLE_FILES files; and a cron tick: 1 MiB appended to the newest of the IDLE_FILES;
#   5. checks every mirror with `pond run NODE b3sum | b3sum --check`, and every sync's
#      `--json` report (actions, bytes_read, bytes_written, txn);
#   6. prints markdown tables (also written to $BENCH_DIR/results-logfile.md).
#
# Appending 1 MiB to a big active file vs to a 1 MiB file is measured by benches/store.sh (d),
# through the same logfile sync; it is not repeated here.
#
# Method as in store.sh: commands compared in one row run interleaved (round robin), after a
# warm-up round that also reads the inputs into the page cache; every timed run starts after
# `sync`; wall time from $EPOCHREALTIME, peak RSS and CPU from GNU time.

set -euo pipefail
export LC_ALL=C

SIZE_MIB=${1:-1024}
BENCH_DIR=${BENCH_DIR:-/tmp/pond-bench}
REPS=${REPS:-3}
IDLE_REPS=${IDLE_REPS:-10}
IDLE_FILES=${IDLE_FILES:-1000}
MANY_REPS=${MANY_REPS:-1}
HOURS=24
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ! $SIZE_MIB =~ ^[1-9][0-9]*$ || ! $IDLE_FILES =~ ^[1-9][0-9]*$ ||
    ! $MANY_REPS =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash benches/logfile.sh [SIZE_MIB]   (IDLE_FILES, MANY_REPS: positive)" >&2
    exit 2
fi

# Shared helpers: tools, build, scratch directory, input, timing, formatting.
source "$ROOT/benches/lib.sh"
need_tools zstd cp split find python3
build_pond
make_work logfile

if ! "$POND" list-factories 2>/dev/null | grep -qw logfile; then
    echo "this pond has no logfile factory (\`pond list-factories\`)" >&2
    exit 1
fi

# ---------------------------------------------------------------------------------------------
# Input

INPUT=$BENCH_DIR/trades-${SIZE_MIB}MiB.jsonl
gen_input "$INPUT" "$SIZE_MIB"
SMALL=$BENCH_DIR/trades-1MiB.jsonl
gen_input "$SMALL" 1 2
RAW_BYTES=$(stat -c %s "$INPUT")

# make_layout TREE N: splits INPUT at line boundaries into N hour files TREE/hourly/YYYYMMDD/H,
# 24 a day, the last day being 20250624 (so the newest file is the one being written). Kept in
# BENCH_DIR for the next run.
make_layout() {
    local tree=$1 n=$2 days d h i=0 day
    [[ -f $tree/complete ]] && return
    echo "splitting $INPUT into $n hour files in $tree..." >&2
    rm -rf "$tree" "$tree.tmp"
    mkdir -p "$tree.tmp/parts"
    split -n "l/$n" -d -a 6 "$INPUT" "$tree.tmp/parts/"
    days=$(((n + HOURS - 1) / HOURS))
    for ((d = 0; d < days; d++)); do
        day=$(date -u -d "20250624 $((d - days + 1)) days" +%Y%m%d)
        mkdir -p "$tree.tmp/hourly/$day"
        for ((h = 0; h < HOURS && i < n; h++, i++)); do
            mv "$tree.tmp/parts/$(printf %06d "$i")" "$tree.tmp/hourly/$day/$h"
        done
    done
    rmdir "$tree.tmp/parts"
    touch "$tree.tmp/complete"
    mv "$tree.tmp" "$tree"
}
DAY=$BENCH_DIR/layout-${SIZE_MIB}MiB-$HOURS
MANY_SRC=$BENCH_DIR/layout-${SIZE_MIB}MiB-$IDLE_FILES
make_layout "$DAY" "$HOURS"
make_layout "$MANY_SRC" "$IDLE_FILES"

# ---------------------------------------------------------------------------------------------
# Checks of the sync reports and the mirrors

declare -A REPORT READ_MIN READ_MAX
CHECKS_OK=1

# note_sync NAME: summarizes the `sync --json` report in $WORK/stdout. REPORT[NAME] gets the
# last run's summary ("txn=... read=... written=... files=... new=24"); READ_MIN/READ_MAX
# track bytes_read over all runs.
note_sync() {
    local name=$1 read
    REPORT[$name]=$(python3 -c '
import collections, json, sys
d = json.load(sys.stdin)
actions = collections.Counter(f["action"] for f in d["files"])
print("txn=%s read=%d written=%d files=%d %s" % (
    "null" if d["txn"] is None else d["txn"], d["bytes_read"], d["bytes_written"],
    len(d["files"]), " ".join("%s=%d" % a for a in sorted(actions.items()))))
' <"$WORK/stdout")
    read=${REPORT[$name]#*read=}
    read=${read%% *}
    if [[ -z ${READ_MAX[$name]:-} ]] || ((read > READ_MAX[$name])); then READ_MAX[$name]=$read; fi
    if [[ -z ${READ_MIN[$name]:-} ]] || ((read < READ_MIN[$name])); then READ_MIN[$name]=$read; fi
}

# expect NAME PATTERN: the last report of NAME must match the bash pattern.
expect() {
    # shellcheck disable=SC2053
    if [[ ${REPORT[$1]} != $2 ]]; then
        echo "  CHECK FAILED: $1: report '${REPORT[$1]}' does not match '$2'" >&2
        CHECKS_OK=
    fi
}

# check_mirror POND BASE: every mirrored file still on the host has the host file's BLAKE3.
check_mirror() {
    if ! (cd "$2" && "$POND" --pond "$1" run /etc/src b3sum | "$B3SUM" --check --quiet); then
        echo "  CHECK FAILED: the mirror in $1 does not match $2" >&2
        CHECKS_OK=
    fi
}

# ---------------------------------------------------------------------------------------------
# Definitions

# config NAME PATTERN: a logfile config mirroring PATTERN (the active pattern) under logs/NAME.
config() {
    printf 'name: %s\nactive_pattern: "%s"\npond_path: logs/%s\n' "$1" "$2" "$1" >"$WORK/$1.yaml"
}

# define_first_sync NAME COMPRESSION PATTERN: a fresh pond (`init --compression COMPRESSION`)
# with the node /etc/src, set up untimed; timed: the first `sync --json`.
define_first_sync() {
    local name=$1 compression=$2 pattern=$3 pd=$WORK/pond-$1
    config "$name" "$pattern"
    define "$name" "rm -rf '$pd'
        '$POND' --pond '$pd' init --compression $compression >/dev/null
        '$POND' --pond '$pd' mknod logfile /etc/src --config-path '$WORK/$name.yaml' >/dev/null" \
        "$POND" --pond "$pd" run /etc/src sync --json
    after "$name" "note_sync $name"
}

# define_pond_copy NAME COMPRESSION FILE: `pond copy FILE /` into a fresh pond (the store alone).
define_pond_copy() {
    local pd=$WORK/pond-$1
    define "$1" "rm -rf '$pd' && '$POND' --pond '$pd' init --compression $2 >/dev/null" \
        "$POND" --pond "$pd" copy "$3" /
}

DST=$WORK/dst DST_ZST=$WORK/dst.zst DST_DIR=$WORK/dst-dir

LOAD_BEFORE=$(load)
echo "input: $INPUT ($(mib "$RAW_BYTES") MiB), also as $HOURS and $IDLE_FILES hour files;" \
    "$REPS timed rounds (idle: $IDLE_REPS) after a warm-up; load $LOAD_BEFORE" >&2

# ---------------------------------------------------------------------------------------------
# First sync of one active file

echo "first sync, one $(mib "$RAW_BYTES") MiB active file, --compression none" >&2
define_first_sync sync1-none none "$INPUT"
define_pond_copy copy1-none none "$INPUT"
define cp-b3sum-1 "rm -f '$DST'" bash -c 'cp "$1" "$2" && "$3" "$2"' _ "$INPUT" "$DST" "$B3SUM"
define cp-b3sum-fsync-1 "rm -f '$DST'" \
    bash -c 'cp "$1" "$2" && "$3" "$2" && sync "$2"' _ "$INPUT" "$DST" "$B3SUM"
measure sync1-none cp-b3sum-1 cp-b3sum-fsync-1 copy1-none
expect sync1-none "txn=2 read=$RAW_BYTES written=$RAW_BYTES files=1 new=1"
check_mirror "$WORK/pond-sync1-none" "$(dirname "$INPUT")"

echo "first sync, one $(mib "$RAW_BYTES") MiB active file, zstd:1" >&2
define_first_sync sync1-zstd zstd:1 "$INPUT"
define_pond_copy copy1-zstd zstd:1 "$INPUT"
define zstd-b3sum-1 "rm -f '$DST_ZST'" \
    bash -c 'zstd -1 -q -f "$1" -o "$2" && "$3" "$1"' _ "$INPUT" "$DST_ZST" "$B3SUM"
measure sync1-zstd zstd-b3sum-1 copy1-zstd
expect sync1-zstd "txn=2 read=$RAW_BYTES written=$RAW_BYTES files=1 new=1"
check_mirror "$WORK/pond-sync1-zstd" "$(dirname "$INPUT")"
rm -rf "$WORK/pond-copy1-none" "$WORK/pond-copy1-zstd" "$WORK/pond-sync1-none"

# ---------------------------------------------------------------------------------------------
# First sync of the node layout: 24 hour files, `hourly/*/*`

echo "first sync, $HOURS hour files, --compression none" >&2
define_first_sync sync24-none none "$DAY/hourly/*/*"
define cp-b3sum-24 "rm -rf '$DST_DIR'" \
    bash -c 'cp -r "$1" "$2" && "$3" "$2"/*/*' _ "$DAY/hourly" "$DST_DIR" "$B3SUM"
define cp-b3sum-fsync-24 "rm -rf '$DST_DIR'" \
    bash -c 'cp -r "$1" "$2" && "$3" "$2"/*/* && sync "$2"/*/*' _ "$DAY/hourly" "$DST_DIR" "$B3SUM"
measure sync24-none cp-b3sum-24 cp-b3sum-fsync-24
expect sync24-none "txn=2 read=$RAW_BYTES written=$RAW_BYTES files=$HOURS new=$HOURS"
check_mirror "$WORK/pond-sync24-none" "$DAY/hourly"

echo "first sync, $HOURS hour files, zstd:1" >&2
define_first_sync sync24-zstd zstd:1 "$DAY/hourly/*/*"
define zstd-b3sum-24 "rm -rf '$DST_DIR' && mkdir '$DST_DIR'" \
    bash -c 'zstd -1 -q -f "$1"/*/* --output-dir-flat "$2" && "$3" "$1"/*/*' _ \
    "$DAY/hourly" "$DST_DIR" "$B3SUM"
measure sync24-zstd zstd-b3sum-24
expect sync24-zstd "txn=2 read=$RAW_BYTES written=$RAW_BYTES files=$HOURS new=$HOURS"
check_mirror "$WORK/pond-sync24-zstd" "$DAY/hourly"
rm -rf "$WORK/pond-sync24-none" "$DST" "$DST_ZST" "$DST_DIR"

# ---------------------------------------------------------------------------------------------
# Idle syncs, and a cron tick
#
# The IDLE_FILES layout is hard-linked into WORK (same inodes, no copy), except the newest hour
# file, which is a real copy: the cron tick appends to it. Its first sync (default zstd:1) is
# timed as context, best of MANY_REPS, against zstd -1 + b3sum over the same files, and the same
# with every output file fsynced (pond fsyncs each data and outboard file at commit); the last
# run's pond is the one the idle syncs run on. The one-file and 24-file idle cases reuse the
# ponds the last zstd first syncs above left behind.

echo "first sync, $IDLE_FILES hour files, zstd:1" >&2
MANY=$WORK/many
cp -al "$MANY_SRC/hourly" "$MANY"
NEWEST=$(find "$MANY" -type f -printf '%P\n' | sort -t/ -k1,1 -k2,2n | tail -n 1)
NEWEST=$MANY/$NEWEST
cp --remove-destination "$MANY_SRC/hourly/${NEWEST#"$MANY"/}" "$NEWEST"
define_first_sync sync-many zstd:1 "$MANY/*/*"
define zstd-b3sum-many "rm -rf '$DST_DIR' && mkdir '$DST_DIR'" \
    bash -c 'zstd -1 -q -f "$1"/*/* --output-dir-mirror "$2" && "$3" "$1"/*/*' _ \
    "$MANY" "$DST_DIR" "$B3SUM"
define zstd-b3sum-fsync-many "rm -rf '$DST_DIR' && mkdir '$DST_DIR'" \
    bash -c 'zstd -1 -q -f "$1"/*/* --output-dir-mirror "$2" && "$3" "$1"/*/* &&
        find "$2" -type f -exec sync {} +' _ "$MANY" "$DST_DIR" "$B3SUM"
SAVED_REPS=$REPS
REPS=$MANY_REPS
measure sync-many zstd-b3sum-many zstd-b3sum-fsync-many
REPS=$SAVED_REPS
expect sync-many "txn=2 read=$RAW_BYTES written=$RAW_BYTES files=$IDLE_FILES new=$IDLE_FILES"
rm -rf "$DST_DIR"

echo "idle syncs over $IDLE_FILES, $HOURS and 1 mirrored files; cron tick" >&2
define idle-many "" "$POND" --pond "$WORK/pond-sync-many" run /etc/src sync --json
after idle-many "note_sync idle-many"
define idle-24 "" "$POND" --pond "$WORK/pond-sync24-zstd" run /etc/src sync --json
after idle-24 "note_sync idle-24"
define idle-1 "" "$POND" --pond "$WORK/pond-sync1-zstd" run /etc/src sync --json
after idle-1 "note_sync idle-1"
define find-many "" find "$MANY" -type f -printf '%i %s %T@\n'
# The tick runs between the idle runs: its setup appends 1 MiB, its sync mirrors it, and the
# next idle run finds nothing to do again.
define tick-many "cat '$SMALL' >>'$NEWEST'" \
    "$POND" --pond "$WORK/pond-sync-many" run /etc/src sync --json
after tick-many "note_sync tick-many"
SAVED_REPS=$REPS
REPS=$IDLE_REPS
measure idle-many idle-24 idle-1 find-many tick-many
REPS=$SAVED_REPS
expect idle-many "txn=null read=0 written=0 files=$IDLE_FILES unchanged=$IDLE_FILES"
expect idle-24 "txn=null read=0 written=0 files=$HOURS unchanged=$HOURS"
expect idle-1 "txn=null read=0 written=0 files=1 unchanged=1"
SMALL_BYTES=$(stat -c %s "$SMALL")
expect tick-many "txn=* read=* written=$SMALL_BYTES files=$IDLE_FILES appended=1 unchanged=$((IDLE_FILES - 1))"
for name in idle-many idle-24 idle-1; do
    if ((READ_MAX[$name] != 0)); then
        echo "  CHECK FAILED: $name: bytes_read up to ${READ_MAX[$name]}, not 0" >&2
        CHECKS_OK=
    fi
done
check_mirror "$WORK/pond-sync-many" "$MANY"
check_mirror "$WORK/pond-sync24-zstd" "$DAY/hourly"
check_mirror "$WORK/pond-sync1-zstd" "$(dirname "$INPUT")"
LOAD_AFTER=$(load)

# ---------------------------------------------------------------------------------------------
# Report

POND_RUNS=(sync1-none copy1-none sync1-zstd copy1-zstd sync24-none sync24-zstd sync-many
    idle-many idle-24 idle-1 tick-many)
PEAK_RSS=0
for name in "${POND_RUNS[@]}"; do
    if [[ ${RSS[$name]} != n/a ]] &&
        awk -v a="${RSS[$name]}" -v b="$PEAK_RSS" 'BEGIN { exit !(a > b) }'; then
        PEAK_RSS=${RSS[$name]}
    fi
done

{
    echo "Input: $(mib "$RAW_BYTES") MiB of node_trades JSON lines: one active file, or split" \
        "at line boundaries into $HOURS or $IDLE_FILES hour files \`hourly/YYYYMMDD/H\`" \
        "(pattern \`hourly/*/*\`). Best of $REPS interleaved rounds after a warm-up (idle and" \
        "tick: best of $IDLE_REPS); $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M') UTC;" \
        "load average $LOAD_BEFORE before, $LOAD_AFTER after."
    echo
    echo "| case | pond s | compared with | its s | ratio | pond peak RSS MiB |"
    echo "|---|---:|---|---:|---:|---:|"
    row() { # CASE POND_NAME OTHER_LABEL OTHER_NAME BOLD
        local r
        r=$(ratio "${BEST[$2]}" "${BEST[$4]}")
        [[ -n ${5:-} ]] && r="**$r**"
        echo "| $1 | $(secs "${BEST[$2]}") | $3 | $(secs "${BEST[$4]}") | $r | ${RSS[$2]} |"
    }
    row "first sync, 1 file, \`--compression none\`" sync1-none "cp + b3sum" cp-b3sum-1 bold
    row "same" sync1-none "cp + b3sum + fsync" cp-b3sum-fsync-1
    row "same" sync1-none "\`pond copy\` (store alone)" copy1-none
    row "first sync, 1 file, zstd:1 (default)" sync1-zstd "zstd -1 + b3sum" zstd-b3sum-1 bold
    row "same" sync1-zstd "\`pond copy\` (store alone)" copy1-zstd
    row "first sync, $HOURS hour files, \`--compression none\`" sync24-none "cp -r + b3sum" \
        cp-b3sum-24 bold
    row "same" sync24-none "cp -r + b3sum + fsync" cp-b3sum-fsync-24
    row "first sync, $HOURS hour files, zstd:1 (default)" sync24-zstd "zstd -1 + b3sum" \
        zstd-b3sum-24 bold
    row "first sync, $IDLE_FILES hour files, zstd:1 (best of $MANY_REPS)" sync-many \
        "zstd -1 + b3sum" zstd-b3sum-many
    row "same" sync-many "zstd -1 + b3sum + fsync of each output" zstd-b3sum-fsync-many
    row "idle sync, $IDLE_FILES files" idle-many "\`find\` listing them (inode, size, mtime)" find-many
    row "idle sync, $HOURS files" idle-24 "idle sync, $IDLE_FILES files" idle-many
    row "idle sync, 1 file of $(mib "$RAW_BYTES") MiB" idle-1 "idle sync, $IDLE_FILES files" idle-many
    row "cron tick: 1 MiB appended to the newest of $IDLE_FILES files" tick-many \
        "idle sync, $IDLE_FILES files" idle-many
    echo
    echo "bytes_read (\`sync --json\`, every timed and warm-up run):" \
        "idle $IDLE_FILES files ${READ_MIN[idle-many]}..${READ_MAX[idle-many]}," \
        "idle $HOURS files ${READ_MIN[idle-24]}..${READ_MAX[idle-24]}," \
        "idle 1 file ${READ_MIN[idle-1]}..${READ_MAX[idle-1]};" \
        "first syncs ${READ_MIN[sync1-zstd]} (= the input, read once);" \
        "cron tick ${READ_MIN[tick-many]}..${READ_MAX[tick-many]} for $SMALL_BYTES new bytes."
    echo "Last reports: idle ${REPORT[idle-many]}; tick ${REPORT[tick-many]};" \
        "first sync of $HOURS files ${REPORT[sync24-zstd]}."
    echo "Peak RSS of every pond run: at most $PEAK_RSS MiB (target < 64 MiB)." \
        "Floors: cp + b3sum ${RSS[cp-b3sum-1]} MiB, zstd -1 + b3sum ${RSS[zstd-b3sum-1]} MiB."
    echo "CPU (user + sys) of the best runs: sync none ${CPU[sync1-none]} s, sync zstd" \
        "${CPU[sync1-zstd]} s, zstd -1 + b3sum ${CPU[zstd-b3sum-1]} s; $HOURS files: sync none" \
        "${CPU[sync24-none]} s, sync zstd ${CPU[sync24-zstd]} s, zstd -1 + b3sum" \
        "${CPU[zstd-b3sum-24]} s; first sync of $IDLE_FILES files ${CPU[sync-many]} s."
    echo "Every mirror $([[ -n $CHECKS_OK ]] && echo "passed" || echo "DID NOT pass")" \
        "\`pond run NODE b3sum | b3sum --check\` and every report check."
    echo "Appending 1 MiB to a big vs a 1 MiB active file: benches/store.sh, case (d)."
    echo
    echo "All timed runs (s):"
    echo
    for name in sync1-none cp-b3sum-1 cp-b3sum-fsync-1 copy1-none sync1-zstd zstd-b3sum-1 \
        copy1-zstd sync24-none cp-b3sum-24 cp-b3sum-fsync-24 sync24-zstd zstd-b3sum-24 \
        sync-many zstd-b3sum-many zstd-b3sum-fsync-many idle-many idle-24 idle-1 find-many tick-many; do
        if [[ -n ${RUNS[$name]:-} ]]; then echo "- $name: ${RUNS[$name]}"; fi
    done
} | tee "$BENCH_DIR/results-logfile.md"

[[ -n $CHECKS_OK ]]
