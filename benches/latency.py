#!/usr/bin/env python3
"""follow latency: how long a line written to a host hour file takes to be visible in MongoDB.

Usage (with the venv's python, which has pymongo):
  .venv/bin/python benches/latency.py --rate 10000 --duration 30
  .venv/bin/python benches/latency.py --rates 1000,5000,10000 --duration 30 [--json]
  .venv/bin/python benches/latency.py --rate 10000 --no-index       # server cost without the index
  .venv/bin/python benches/latency.py --rate 1000 --old-files 1000  # a node with older hour files

Environment:
  BENCH_DIR   scratch directory (default /tmp/pond-bench); this script's files go to
              $BENCH_DIR/work-latency (removed on exit unless --keep)
  SECANTUSD   SecantusDB server (default .venv/bin/secantusd-py, else /tmp/sdbvenv/bin/...)
  POND_BIN    use this pond binary instead of building one (release, CARGO_TARGET_DIR=target/bench)

Per rate, with a fresh server, pond and host directory each (testdata/live_pipeline.py):
  1. a SecantusDB server on a free loopback port, on-disk storage in the work directory;
  2. a pond with a logfile node /etc/hl (node_trades hourly layout, `downstream: [/etc/mongo]`)
     and a mongo node /etc/mongo (hyperliquid/node_trades, batch_size 1000, max_in_flight 4,
     an index on time_ns);
  3. `pond run /etc/hl follow --metrics-addr 127.0.0.1:0`;
  4. testdata/hlgen.py in a thread at --rate lines/s for --duration s, logging a probe every
     rate/100 lines; a reader thread polls MongoDB every ~20 ms for the probes not yet visible
     and records visible_at - written_at per probe;
  5. waits until the pond has stored every line (or --drain-timeout), SIGTERMs follow (it must
     exit 0), counts the documents.
Prints, per rate: lines written vs documents stored (must be equal, with 0 duplicates and
0 dead letters), probe latency p50/p90/p99/max, the pond's own histograms from /metrics
(entry time -> ack, wake -> commit, step, stage, batch), the lag, and CPU seconds of pond, server
and generator; then a table over the rates. Exit 1 when any run's checks fail.
docs/benchmarks.md ("follow latency") explains the numbers.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(ROOT / "testdata"))
import live_pipeline  # noqa: E402  (testdata/, shared with testdata/demo.py)


def pond_binary() -> str:
    if os.environ.get("POND_BIN"):
        return os.environ["POND_BIN"]
    print("building pond (release, target/bench)...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "-p", "pond", "--quiet"], cwd=ROOT,
                   check=True, env={**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target/bench")})
    return str(ROOT / "target/bench/release/pond")


def interrupted(signum, frame):
    """SIGTERM ends the script as Ctrl-C does, so the `with` blocks stop the servers."""
    raise KeyboardInterrupt


def table(results: list) -> list:
    def ms(x):
        return "n/a" if x is None else f"{x * 1000:,.0f}"

    rows = [
        "| rate lines/s | lines | documents | p50 ms | p90 ms | p99 ms | max ms | pond entry→ack "
        "p50 / p99 ms | wake→commit p50 / p99 ms | batch p50 / p99 ms | CPU s pond / server / "
        "generator | lag at stop s | all stored after s | ok |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in results:
        lat, pond, cpu = r["latency"], r["pond"], r["cpu_seconds"]
        e2a, w2c, batch = (pond["entry_to_ack_seconds"], pond["wake_to_commit_seconds"],
                           pond["batch_seconds"])
        rows.append(
            f"| {r['rate']:,.0f} | {r['lines']:,} | {r['documents']:,} | {ms(lat['p50'])} | "
            f"{ms(lat['p90'])} | {ms(lat['p99'])} | {ms(lat['max'])} | "
            f"{ms(e2a['p50'])} / {ms(e2a['p99'])} | {ms(w2c['p50'])} / {ms(w2c['p99'])} | "
            f"{ms(batch['p50'])} / {ms(batch['p99'])} | "
            f"{cpu['pond']:.1f} / {cpu['server']:.1f} / {cpu['generator']:.1f} | "
            f"{r['lag']['at_generator_stop']['probe_seconds']:.1f} | "
            f"{r['lag']['catch_up_seconds']:.1f} | {'yes' if r['ok'] else 'NO'} |")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="lines per second (default 1000)")
    ap.add_argument("--rates", help="comma-separated rates, each run in turn (overrides --rate)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of writing (default 30)")
    ap.add_argument("--probe-every", type=int, help="probe every N lines (default rate/100)")
    ap.add_argument("--drain-timeout", type=float, default=300.0,
                    help="seconds to wait for the pond to catch up after writing (default 300)")
    ap.add_argument("--no-index", action="store_true",
                    help="no time_ns index (the server's cost per document drops), and so no "
                         "probes: latency from the pond's entry->ack histogram only")
    ap.add_argument("--old-files", type=int, default=0, metavar="N",
                    help="N one-line hour files on earlier days, mirrored and stored before "
                         "follow starts, as on a node that has run for a while (default 0)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    rates = [float(x) for x in args.rates.split(",")] if args.rates else [args.rate]

    signal.signal(signal.SIGTERM, interrupted)
    pond = pond_binary()
    secantusd = live_pipeline.find_secantusd(ROOT)
    work = Path(os.environ.get("BENCH_DIR", "/tmp/pond-bench")) / "work-latency"
    results = []
    try:
        for rate in rates:
            shutil.rmtree(work, ignore_errors=True)
            print(f"rate {rate:,.0f} lines/s, {args.duration:g} s (load "
                  f"{' '.join(open('/proc/loadavg').read().split()[:3])})...", file=sys.stderr)
            with live_pipeline.LivePipeline(
                    pond, work, secantusd, rate=rate, duration=args.duration,
                    probe_every=args.probe_every, drain_timeout=args.drain_timeout,
                    time_index=not args.no_index, old_files=args.old_files) as pipeline:
                result = pipeline.run()
            result["load_after"] = open("/proc/loadavg").read().split()[:3]
            results.append(result)
            # With --json, stdout is the JSON document alone; the reports go to stderr.
            print("\n".join(live_pipeline.report_lines(result)), flush=True,
                  file=sys.stderr if args.json else sys.stdout)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        json.dump({"pond": pond, "runs": results}, sys.stdout, indent=2)
        print()
    else:
        print()
        print("\n".join(table(results)))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
