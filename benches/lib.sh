# Shell helpers shared by the benchmark scripts (benches/store.sh, benches/logfile.sh).
#
# Source it after setting ROOT (the workspace), BENCH_DIR (scratch directory) and REPS (timed
# rounds after the warm-up), then call, in this order:
#   need_tools TOOL...   checks the tools; sets B3SUM (b3sum on PATH, else /tmp/b3/bin/b3sum,
#                        or $B3SUM) and GNU_TIME (empty without GNU time: RSS and CPU are n/a)
#   build_pond           builds pond in release mode in target/bench (unless POND_BIN is set);
#                        sets POND
#   make_work [NAME]     a fresh $BENCH_DIR/work (work-NAME: scripts that may run at the same
#                        time need different names), removed on exit; sets WORK
#   gen_input PATH MIB [SEED]
#                        writes MIB MiB of node_trades lines to PATH unless it already exists
#
# Timing (docs/benchmarks.md, "Method"):
#   define NAME SETUP CMD...   registers a command; SETUP is an untimed shell snippet (bash -c)
#                              run before every run: a fresh pond directory, a fresh destination
#   after NAME SNIPPET         optional: CMD's stdout goes to $WORK/stdout instead of /dev/null,
#                              and SNIPPET is eval'ed (untimed, in this shell) after every run
#   measure NAME...            one warm-up round, then REPS rounds, round robin; sets BEST, CPU,
#                              RSS and RUNS per NAME and prints them to stderr
#   run_once NAME              one run; sets LAST_SECS, LAST_RSS_KIB and LAST_CPU

# ---------------------------------------------------------------------------------------------
# Setup

need_tools() {
    B3SUM=${B3SUM:-$(command -v b3sum || echo /tmp/b3/bin/b3sum)}
    local tool
    for tool in "$B3SUM" "$@"; do
        command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
    done
    # Peak RSS and CPU time come from GNU time; without it they are reported as n/a.
    GNU_TIME=
    if [[ -x /usr/bin/time ]] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
        GNU_TIME=/usr/bin/time
    fi
}

build_pond() {
    if [[ -z ${POND_BIN:-} ]]; then
        echo "building pond (release, target/bench)..." >&2
        (cd "$ROOT" && CARGO_TARGET_DIR="$ROOT/target/bench" cargo build --release -p pond --quiet)
        POND_BIN=$ROOT/target/bench/release/pond
    fi
    POND=$POND_BIN
}

make_work() { # [NAME]
    mkdir -p "$BENCH_DIR"
    WORK=$BENCH_DIR/work${1:+-$1}
    rm -rf "$WORK"
    mkdir -p "$WORK"
    trap 'rm -rf "$WORK"' EXIT
}

gen_input() { # PATH SIZE_MIB [SEED]
    if [[ ! -s $1 ]]; then
        echo "generating $1 ($2 MiB)..." >&2
        python3 "$ROOT/benches/gen_trades.py" "$1.tmp" "${@:2}"
        mv "$1.tmp" "$1"
    fi
}

# ---------------------------------------------------------------------------------------------
# Timing

declare -A SETUP CMD AFTER BEST RSS CPU RUNS

define() {
    local name=$1
    SETUP[$name]=$2
    shift 2
    CMD[$name]=$(printf '%q ' "$@")
}

after() { AFTER[$1]=$2; }

# run_once NAME: runs the setup, syncs, times the command. Sets LAST_SECS (wall clock),
# LAST_RSS_KIB (peak RSS of the command and its children) and LAST_CPU (user + sys seconds).
run_once() {
    local name=$1 start end out=/dev/null
    [[ -n ${AFTER[$name]:-} ]] && out=$WORK/stdout
    bash -c "${SETUP[$name]}"
    sync
    eval "set -- ${CMD[$name]}"
    start=$EPOCHREALTIME
    if [[ -n $GNU_TIME ]]; then
        "$GNU_TIME" -f '%M %U %S' -o "$WORK/usage" "$@" >"$out"
    else
        "$@" >"$out"
    fi
    end=$EPOCHREALTIME
    LAST_SECS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }')
    LAST_RSS_KIB=0 LAST_CPU=n/a
    if [[ -n $GNU_TIME ]]; then
        read -r LAST_RSS_KIB LAST_CPU < <(tail -n 1 "$WORK/usage" |
            awk '{ printf "%d %.2f\n", $1, $2 + $3 }')
    fi
    if [[ -n ${AFTER[$name]:-} ]]; then eval "${AFTER[$name]}"; fi
}

# measure NAME...: one warm-up round, then REPS rounds; each round runs every NAME once, in
# turn. Sets BEST (fastest run, s), CPU (user + sys of that run, s), RSS (highest over all
# runs, MiB) and RUNS (every timed run).
measure() {
    local name round
    local -A peak=()
    for name in "$@"; do
        BEST[$name]= RUNS[$name]= peak[$name]=0
    done
    for ((round = 0; round <= REPS; round++)); do
        for name in "$@"; do
            run_once "$name"
            ((LAST_RSS_KIB > peak[$name])) && peak[$name]=$LAST_RSS_KIB
            ((round == 0)) && continue
            RUNS[$name]+="${RUNS[$name]:+ }$LAST_SECS"
            if [[ -z ${BEST[$name]} ]] ||
                awk -v a="$LAST_SECS" -v b="${BEST[$name]}" 'BEGIN { exit !(a < b) }'; then
                BEST[$name]=$LAST_SECS CPU[$name]=$LAST_CPU
            fi
        done
    done
    for name in "$@"; do
        RSS[$name]=n/a
        [[ -n $GNU_TIME ]] && RSS[$name]=$(awk -v k="${peak[$name]}" 'BEGIN { printf "%.1f", k / 1024 }')
        printf '  %-20s best %8.4f s (cpu %s s)  runs: %s  peak RSS %s MiB\n' "$name" \
            "${BEST[$name]}" "${CPU[$name]}" "${RUNS[$name]}" "${RSS[$name]}" >&2
    done
}

# ---------------------------------------------------------------------------------------------
# Formatting and checks

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
size_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
secs() { awk -v s="$1" 'BEGIN { printf (s < 0.1 ? "%.4f" : "%.3f"), s }'; }
dir_bytes() { du -s --apparent-size -B1 "$1" | cut -f1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# The root pond stored for pond file PATH in pond DIR (latest version).
stored_root() {
    "$POND" --pond "$1" show "$2" --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["versions"][-1]["blake3"])'
}
ROOTS_OK=1
check_root() { # DIR PATH HOSTFILE
    local stored
    stored=$(stored_root "$1" "$2")
    if [[ $stored != "$("$B3SUM" --no-names "$3")" ]]; then
        echo "  note: $2 in $1: stored root $stored differs from b3sum of $3" >&2
        ROOTS_OK=
    fi
}
