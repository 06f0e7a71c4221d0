#!/usr/bin/env bash
# mongo factory benchmarks: `pond run NODE sync` into a local MongoDB-protocol server, side by
# side with the straightforward Python loader (benches/pymongo_insert.py).
#
# Usage: bash benches/mongo.sh [LINES]      (default 200000)
#
# Environment:
#   BENCH_DIR   scratch directory (default /tmp/pond-bench); generated inputs are reused from it,
#               this script's own files go to $BENCH_DIR/work-mongo (removed on exit)
#   REPS        timed rounds after one warm-up round (default 3)
#   DRY_MIB     size of the file for the dry-run case (default 1024, shared with logfile.sh)
#   BATCH, IN_FLIGHT  the mongo node's batch_size and max_in_flight (default 1000 and 4)
#   SECANTUSD   SecantusDB server (default .venv/bin/secantusd-py as `make test` installs it,
#               else /tmp/sdbvenv/bin/secantusd-py); pymongo comes from the same venv's python
#   POND_BIN    use this pond binary instead of building one
#
# What it does (docs/benchmarks.md, section "mongo", explains the targets and the output):
#   1. builds pond in release mode in target/bench (kept apart from everyday builds);
#   2. takes the first LINES lines of generated node_trades input (benches/gen_trades.py);
#   3. starts a SecantusDB server on a free loopback port with on-disk storage in WORK (stopped
#      on exit, however the script exits);
#   4. end to end, interleaved, best of REPS after a warm-up:
#        pond: a fresh pond per run (`init`, a logfile node mirroring the host file, a mongo node:
#        hyperliquid/node_trades, batch_size 1000, max_in_flight 4, write concern majority);
#        the logfile sync (ingest) runs in the untimed setup; timed: `pond run /etc/mongo sync`;
#        python: pymongo_insert.py over the same host file (json.loads, insert_many unordered,
#        batch 1000, one batch in flight, write concern majority);
#      every run writes into a database dropped just before it, and must leave exactly LINES
#      documents there;
#   5. times `pond run /etc/mongo sync --dry-run` (parse, transform, encode, count; no writes)
#      over a DRY_MIB MiB mirrored file, and `pond cat` of the same file (the pond read alone);
#   6. prints markdown tables (also written to $BENCH_DIR/results-mongo.md).
#
# CPU is the client's only (GNU time: user + sys of the pond or python process); the server's
# CPU is printed to stderr per run as context. Wall time from $EPOCHREALTIME.

set -euo pipefail
export LC_ALL=C

LINES=${1:-200000}
BENCH_DIR=${BENCH_DIR:-/tmp/pond-bench}
REPS=${REPS:-3}
DRY_MIB=${DRY_MIB:-1024}
BATCH=${BATCH:-1000}
IN_FLIGHT=${IN_FLIGHT:-4}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ! $LINES =~ ^[1-9][0-9]*$ || ! $DRY_MIB =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash benches/mongo.sh [LINES]   (DRY_MIB: positive)" >&2
    exit 2
fi

# Shared helpers: build, input, timing, formatting. Tools are checked here: this script needs
# no b3sum, and it needs GNU time (CPU per document is one of its results).
source "$ROOT/benches/lib.sh"
for tool in python3 head /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
GNU_TIME=/usr/bin/time
/usr/bin/time -f %M -o /dev/null true 2>/dev/null || { echo "/usr/bin/time is not GNU time" >&2; exit 1; }

SECANTUSD=${SECANTUSD:-$ROOT/.venv/bin/secantusd-py}
[[ -x $SECANTUSD ]] || SECANTUSD=/tmp/sdbvenv/bin/secantusd-py
[[ -x $SECANTUSD ]] || { echo "no SecantusDB: run \`make tools\` or set SECANTUSD" >&2; exit 1; }
PY=$(dirname "$SECANTUSD")/python
"$PY" -c 'import pymongo' 2>/dev/null || { echo "$PY has no pymongo" >&2; exit 1; }

build_pond
if ! "$POND" list-factories 2>/dev/null | grep -qw mongo; then
    echo "this pond has no mongo factory (\`pond list-factories\`)" >&2
    exit 1
fi

# $BENCH_DIR/work-mongo, apart from the other scripts' work directories.
make_work mongo

# ---------------------------------------------------------------------------------------------
# Server

SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
# Replaces make_work's trap: the server goes first, then the work directory it writes to.
trap 'stop_server; rm -rf "$WORK"' EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SECANTUSD" --host 127.0.0.1 --port "$PORT" --storage-path "$WORK/server" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for ((i = 0; ; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    if ((i > 600)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "SecantusDB did not start on port $PORT:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
URI="mongodb://127.0.0.1:$PORT/?directConnection=true"

# mongo_py CODE ARG...: runs python CODE with `client` connected to the server, ARGs in sys.argv.
mongo_py() {
    local code=$1
    shift
    "$PY" -c "import sys; from pymongo import MongoClient
client = MongoClient('$URI')
$code" "$@"
}
drop_db() { mongo_py 'client.drop_database(sys.argv[1])' "$1"; }

# ---------------------------------------------------------------------------------------------
# Input

# LINES lines need about LINES * 470 bytes; reuse a generated file that holds enough.
NEED_MIB=$(((LINES * 480 >> 20) + 1))
INPUT_MIB=100
((NEED_MIB > INPUT_MIB)) && INPUT_MIB=$NEED_MIB
INPUT=$BENCH_DIR/trades-${INPUT_MIB}MiB.jsonl
gen_input "$INPUT" "$INPUT_MIB"
HOST=$WORK/host/hourly/20250624
mkdir -p "$HOST"
head -n "$LINES" "$INPUT" >"$HOST/2"
HAVE=$(wc -l <"$HOST/2")
((HAVE == LINES)) || { echo "$INPUT holds only $HAVE lines" >&2; exit 1; }
HOST_BYTES=$(stat -c %s "$HOST/2")

DRY_INPUT=$BENCH_DIR/trades-${DRY_MIB}MiB.jsonl
gen_input "$DRY_INPUT" "$DRY_MIB"
DRY_LINES=$(wc -l <"$DRY_INPUT")
DRY_BYTES=$(stat -c %s "$DRY_INPUT")

# ---------------------------------------------------------------------------------------------
# Definitions

CHECKS_OK=1

# pond_setup DIR PATTERN DATABASE: a fresh pond with /etc/hl (logfile, PATTERN) and /etc/mongo
# (into DATABASE.trades), and the host files ingested (`pond run /etc/hl sync`).
pond_setup() {
    local dir=$1 pattern=$2 db=$3
    rm -rf "$dir"
    mkdir -p "$dir.cfg"
    printf 'name: hl\nactive_pattern: "%s"\npond_path: logs/hl\n' "$pattern" >"$dir.cfg/logfile.yaml"
    printf 'source: "logs/hl/**"\nmongodb:\n  uri: "%s"\n  database: %s\n  collection: trades\nformat: hyperliquid/node_trades\nbatch_size: %d\nmax_in_flight: %d\n' \
        "$URI" "$db" "$BATCH" "$IN_FLIGHT" >"$dir.cfg/mongo.yaml"
    "$POND" --pond "$dir" init >/dev/null
    "$POND" --pond "$dir" mknod logfile /etc/hl --config-path "$dir.cfg/logfile.yaml" >/dev/null
    "$POND" --pond "$dir" mknod mongo /etc/mongo --config-path "$dir.cfg/mongo.yaml" >/dev/null
    "$POND" --pond "$dir" run /etc/hl sync >/dev/null
}
export -f pond_setup

# fresh_db DATABASE (in setups): drops DATABASE, then notes the server's CPU time so far.
fresh_db() {
    "$PY" -c 'import sys; from pymongo import MongoClient
MongoClient(sys.argv[1]).drop_database(sys.argv[2])' "$URI" "$1"
    cut -d' ' -f14,15 "/proc/$SERVER_PID/stat" >"$WORK/server-mark"
}
export -f fresh_db
export POND PY URI BATCH IN_FLIGHT WORK SERVER_PID

declare -A TYPES
# check_run NAME DATABASE: the run reported `inserted` == LINES and the server holds LINES
# documents in DATABASE.trades. Prints the server CPU the run took (context: the client's CPU is
# what the tables report). The first time, notes what one stored document looks like. Then the
# database is dropped.
check_run() {
    local name=$1 db=$2 got count spent
    spent=$(awk -v t="$(getconf CLK_TCK)" -v m="$(cat "$WORK/server-mark")" \
        '{ split(m, a, " "); printf "%.2f", ($14 + $15 - a[1] - a[2]) / t }' "/proc/$SERVER_PID/stat")
    echo "    $name: $LAST_SECS s, client CPU $LAST_CPU s, server CPU $spent s" >&2
    SERVER_CPU[$name]+="${SERVER_CPU[$name]:+ }$spent"
    got=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["inserted"])' <"$WORK/stdout")
    count=$(mongo_py 'print(client[sys.argv[1]].trades.count_documents({}))' "$db")
    if [[ $got != "$LINES" || $count != "$LINES" ]]; then
        echo "  CHECK FAILED: $name: reported $got, server holds $count, expected $LINES" >&2
        CHECKS_OK=
    fi
    if [[ -z ${TYPES[$name]:-} ]]; then
        TYPES[$name]=$(mongo_py '
import bson
d = client[sys.argv[1]].trades.find_one()
docs = list(client[sys.argv[1]].trades.find().limit(1000))
print("px %s, time %s, _id %s, %.0f BSON bytes/doc" % (type(d["px"]).__name__,
    type(d["time"]).__name__, type(d["_id"]).__name__,
    sum(len(bson.encode(x)) for x in docs) / len(docs)))' "$db")
        echo "    $name stores: ${TYPES[$name]}" >&2
    fi
    drop_db "$db"
}

# The setups run in `bash -c`, with the exported functions and variables above.
declare -A SERVER_CPU
define pond "pond_setup '$WORK/pond' '$WORK/host/hourly/*/*' bench_pond && fresh_db bench_pond" \
    "$POND" --pond "$WORK/pond" run /etc/mongo sync --json
after pond 'check_run pond bench_pond'
define python "fresh_db bench_py" \
    "$PY" "$ROOT/benches/pymongo_insert.py" "$URI" bench_py trades "$HOST/2" \
    --batch "$BATCH" --w majority
after python 'check_run python bench_py'

check_dry() {
    local got
    got=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["inserted"])' <"$WORK/stdout")
    if [[ $got != "$DRY_LINES" ]]; then
        echo "  CHECK FAILED: dry run counted $got lines, expected $DRY_LINES" >&2
        CHECKS_OK=
    fi
}

# ---------------------------------------------------------------------------------------------
# Runs

LOAD_BEFORE=$(load)
echo "end to end: $LINES lines ($(mib "$HOST_BYTES") MiB), server $SECANTUSD on port $PORT;" \
    "$REPS timed rounds after a warm-up; load $LOAD_BEFORE" >&2
measure pond python

echo "dry run over $(mib "$DRY_BYTES") MiB ($DRY_LINES lines)" >&2
DRY_HOST=$WORK/dry/hourly/20250624
mkdir -p "$DRY_HOST"
ln "$DRY_INPUT" "$DRY_HOST/2" 2>/dev/null || cp "$DRY_INPUT" "$DRY_HOST/2"
pond_setup "$WORK/pond-dry" "$WORK/dry/hourly/*/*" bench_dry
define dry "" "$POND" --pond "$WORK/pond-dry" run /etc/mongo sync --dry-run --json
after dry check_dry
define cat "" "$POND" --pond "$WORK/pond-dry" cat /logs/hl/20250624/2
measure dry cat
LOAD_AFTER=$(load)

# ---------------------------------------------------------------------------------------------
# Report

per_sec() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
us_per() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.1f", c * 1e6 / n }'; }
{
    echo "Input: $LINES node_trades lines ($(mib "$HOST_BYTES") MiB, from benches/gen_trades.py)" \
        "into SecantusDB ($("$PY" -c 'import importlib.metadata as m; print(m.version("secantusdb"))' 2>/dev/null || echo '?'))" \
        "on loopback, on-disk storage, write concern majority; best of $REPS interleaved rounds" \
        "after a warm-up; $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M') UTC; load average" \
        "$LOAD_BEFORE before, $LOAD_AFTER after."
    echo
    echo "| case | best s | docs/s | client CPU s | client CPU µs/doc | client peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| pond: \`pond run /etc/mongo sync\` (node_trades preset, batch $BATCH, $IN_FLIGHT in flight) |" \
        "$(secs "${BEST[pond]}") | **$(per_sec "$LINES" "${BEST[pond]}")** | ${CPU[pond]} |" \
        "$(us_per "${CPU[pond]}" "$LINES") | ${RSS[pond]} |"
    echo "| python: pymongo_insert.py (json.loads dicts, batch $BATCH, 1 in flight) |" \
        "$(secs "${BEST[python]}") | **$(per_sec "$LINES" "${BEST[python]}")** | ${CPU[python]} |" \
        "$(us_per "${CPU[python]}" "$LINES") | ${RSS[python]} |"
    echo
    echo "pond docs/s ÷ python docs/s: **$(ratio "${BEST[python]}" "${BEST[pond]}")**." \
        "Server CPU per run (context, not in the table; every run, warm-up first):" \
        "pond ${SERVER_CPU[pond]} s; python ${SERVER_CPU[python]} s."
    echo "Stored: pond: ${TYPES[pond]}; python: ${TYPES[python]}."
    echo
    echo "| no writes | best s | lines/s | MiB/s | CPU s | CPU µs/line | peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    echo "| \`pond run /etc/mongo sync --dry-run\`, $(mib "$DRY_BYTES") MiB mirrored file |" \
        "$(secs "${BEST[dry]}") | $(per_sec "$DRY_LINES" "${BEST[dry]}") |" \
        "$(per_sec "$(mib "$DRY_BYTES")" "${BEST[dry]}") | ${CPU[dry]} |" \
        "$(us_per "${CPU[dry]}" "$DRY_LINES") | ${RSS[dry]} |"
    echo "| \`pond cat\` of the same file (the pond read alone) | $(secs "${BEST[cat]}") |" \
        "$(per_sec "$DRY_LINES" "${BEST[cat]}") | $(per_sec "$(mib "$DRY_BYTES")" "${BEST[cat]}") |" \
        "${CPU[cat]} | $(us_per "${CPU[cat]}" "$DRY_LINES") | ${RSS[cat]} |"
    echo
    echo "Every run $([[ -n $CHECKS_OK ]] && echo "passed" || echo "DID NOT pass") its checks" \
        "(reported and stored counts equal to the input's lines)."
    echo
    echo "All timed runs (s):"
    echo
    for name in pond python dry cat; do echo "- $name: ${RUNS[$name]}"; done
} | tee "$BENCH_DIR/results-mongo.md"

[[ -n $CHECKS_OK ]]
