#!/usr/bin/env python3
"""Long history: what a run costs on a pond that has mirrored a year of hour files.

Usage (with the venv's python, which has pymongo):
  .venv/bin/python benches/history.py idle [--files 48,8760] [--runs 15]
  .venv/bin/python benches/history.py follow [--files 48,8760] [--rate 3000] [--duration 30]
                                             [--stage running,stopped,saturated]
  .venv/bin/python benches/history.py backfill [--files 20000] [--nofile 1024]
  .venv/bin/python benches/history.py day [--rate 3000] [--hours 24]
  .venv/bin/python benches/history.py all          # everything above, defaults

Environment:
  BENCH_DIR   scratch directory (default /tmp/pond-bench); this script's files go to
              $BENCH_DIR/work-history (removed on exit unless --keep)
  SECANTUSD   SecantusDB server (default .venv/bin/secantusd-py)
  POND_BIN    use this pond binary instead of building one (release, CARGO_TARGET_DIR=target/bench)

What each part does (docs/benchmarks.md, "long history", has the results and their reading):

  idle      Per file count N (default 48 and 8,760: two days and a year of hour files), a pond
            whose logfile node /etc/hl has mirrored N one-line hour files through its
            downstream mongo node /etc/mongo, of which the host keeps only the newest 48 (the
            node's pruner deleted the rest, and the pond saw them go). Then, with nothing new on
            the host, these commands run RUNS times each, round robin over the ponds so that
            machine noise hits all alike: `pond run /etc/hl sync` (the mirror and its downstream
            stage), `pond run /etc/mongo sync` and `pond status`. Per command and pond: median
            CPU (user+sys of the process, from wait4) and wall time; then each pond's ratio to
            the first one's.
  follow    Per N and per stage mode, the same pond set-up, then `pond run /etc/hl follow` while
            testdata/hlgen.py writes RATE lines/s for DURATION s (benches/latency.py's
            pipeline): pond CPU, line-to-MongoDB latency (probes), the mirror's wake-to-commit
            and the stage's entry-to-ack. Stage modes: `running` (the server answers),
            `stopped` (the server is frozen with SIGSTOP while hlgen writes, resumed after) and
            `saturated` (every insert is held 300 ms by a failCommand fail point while hlgen
            writes). Every run must end with as many documents as lines.
  backfill  N new hour files (default 20,000) appear at once and one `pond run /etc/hl sync`
            mirrors them under `ulimit -n NOFILE` (soft and hard; default 1,024).
  day       The catalog after a simulated day of `follow` at RATE lines/s (see `pond-store`'s
            `day` bench: the same transactions `follow` and its mongo stage commit, one step
            every 100 ms over 24 hours of a simulated clock), before and after `pond maintain`.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(ROOT / "testdata"))
import live_pipeline  # noqa: E402  (testdata/, shared with testdata/demo.py)
import hlgen  # noqa: E402

WORK = Path(os.environ.get("BENCH_DIR", "/tmp/pond-bench")) / "work-history"
ON_HOST = 48


def pond_binary() -> str:
    if os.environ.get("POND_BIN"):
        return os.environ["POND_BIN"]
    print("building pond (release, target/bench)...", file=sys.stderr)
    subprocess.run(["cargo", "build", "--release", "-p", "pond", "--quiet"], cwd=ROOT,
                   check=True, env={**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target/bench")})
    return str(ROOT / "target/bench/release/pond")


def interrupted(signum, frame):
    raise KeyboardInterrupt


def log(text: str):
    print(text, file=sys.stderr, flush=True)


def timed(cmd: list, env=None) -> tuple:
    """Runs `cmd` (output discarded); returns (exit code, CPU seconds, wall seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, time.monotonic() - started


def pipeline(pond, secantusd, files: int, name: str, rate=3000.0, duration=0.0):
    return live_pipeline.LivePipeline(
        pond, WORK / name, secantusd, rate=rate, duration=duration, old_files=files,
        keep_on_host=ON_HOST, drain_timeout=300.0, test_commands=True)


# idle ----------------------------------------------------------------------------------------

IDLE_COMMANDS = [
    ("logfile sync (+ mongo stage)", ["run", "/etc/hl", "sync"]),
    ("mongo sync", ["run", "/etc/mongo", "sync"]),
    ("pond status", ["status"]),
]


def idle(pond, secantusd, counts: list, runs: int) -> dict:
    results = {}
    pipelines = []
    try:
        for n in counts:
            log(f"idle: setting up a pond with {n:,} mirrored hour files ({ON_HOST} on the host)")
            started = time.monotonic()
            p = pipeline(pond, secantusd, n, f"idle-{n}")
            p.__enter__()
            pipelines.append(p)
            log(f"  ready in {time.monotonic() - started:.0f} s")
        for label, args in IDLE_COMMANDS:
            samples = {n: [] for n in counts}
            for p, n in zip(pipelines, counts):  # warm-up
                timed(p.pond_cmd + args)
            for _ in range(runs):
                for p, n in zip(pipelines, counts):
                    code, cpu, wall = timed(p.pond_cmd + args)
                    if code != 0:
                        raise RuntimeError(f"{label} on the {n}-file pond exited {code}: "
                                           + p.pond(*args, check=False).stderr)
                    samples[n].append((cpu, wall))
            row = {}
            for n in counts:
                cpu = statistics.median(s[0] for s in samples[n])
                wall = statistics.median(s[1] for s in samples[n])
                row[n] = {"cpu_ms": cpu * 1000, "wall_ms": wall * 1000,
                          "cpu_ms_min": min(s[0] for s in samples[n]) * 1000,
                          "cpu_ms_max": max(s[0] for s in samples[n]) * 1000}
            results[label] = row
            base = row[counts[0]]["cpu_ms"]
            log(f"  {label}: " + ", ".join(
                f"{n:,} files {row[n]['cpu_ms']:.1f} ms CPU ({row[n]['cpu_ms'] / base:.2f}x)"
                for n in counts))
    finally:
        for p in pipelines:
            p.__exit__(None, None, None)
    return results


def idle_table(results: dict, counts: list) -> list:
    head = "| command | " + " | ".join(f"{n:,} files: CPU ms (min-max) / wall ms" for n in counts)
    head += " | " + " | ".join(f"{n:,} / {counts[0]:,}" for n in counts[1:]) + " |"
    rows = [head, "|---|" + "---:|" * (2 * len(counts) - 1)]
    for label, row in results.items():
        cells = [f"{row[n]['cpu_ms']:.1f} ({row[n]['cpu_ms_min']:.1f}-{row[n]['cpu_ms_max']:.1f})"
                 f" / {row[n]['wall_ms']:.1f}" for n in counts]
        ratios = [f"{row[n]['cpu_ms'] / row[counts[0]]['cpu_ms']:.2f}x" for n in counts[1:]]
        rows.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    return rows


# follow --------------------------------------------------------------------------------------

def follow(pond, secantusd, counts: list, modes: list, rate: float, duration: float) -> list:
    import pymongo
    results = []
    for mode in modes:
        for n in counts:
            log(f"follow: {n:,} mirrored hour files, stage {mode}, {rate:,.0f} lines/s for "
                f"{duration:g} s")
            work = WORK / f"follow-{n}-{mode}"
            shutil.rmtree(work, ignore_errors=True)
            with pipeline(pond, secantusd, n, f"follow-{n}-{mode}", rate, duration) as p:
                undo = disturb(p, mode, pymongo)
                state = {"undone": False}

                def on_sample(seconds, scrape, written):
                    if written is not None and not state["undone"]:
                        undo()
                        state["undone"] = True

                try:
                    result = p.run(on_sample)
                finally:
                    if not state["undone"]:
                        undo()
            shutil.rmtree(work, ignore_errors=True)
            result["files"] = n
            result["stage_mode"] = mode
            results.append(result)
            log("\n".join(live_pipeline.report_lines(result)))
    return results


def disturb(p, mode: str, pymongo):
    """Puts the server in `mode`; returns what undoes it."""
    if mode == "running":
        return lambda: None
    if mode == "stopped":
        os.kill(p.server.proc.pid, signal.SIGSTOP)
        return lambda: os.kill(p.server.proc.pid, signal.SIGCONT)
    if mode == "saturated":
        client = pymongo.MongoClient(p.server.uri)
        client.admin.command({"configureFailPoint": "failCommand", "mode": "alwaysOn",
                              "data": {"failCommands": ["insert"], "blockConnection": True,
                                       "blockTimeMS": 300}})

        def undo():
            client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
            client.close()
        return undo
    raise ValueError(f"unknown stage mode {mode!r}")


def follow_table(results: list) -> list:
    def ms(x):
        return "n/a" if x is None else f"{x * 1000:,.0f}"

    rows = ["| hour files | stage | lines | documents | pond CPU % | line→MongoDB p50 / p99 ms | "
            "wake→commit p50 / p99 ms | step p50 / p99 ms | steps | ok |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lat, pond = r["latency"], r["pond"]
        w2c, step = pond["wake_to_commit_seconds"], pond["step_seconds"]
        cpu = 100 * r["cpu_seconds"]["pond"] / r["wall_seconds"]
        rows.append(f"| {r['files']:,} | {r['stage_mode']} | {r['lines']:,} | {r['documents']:,} "
                    f"| {cpu:.1f} | {ms(lat['p50'])} / {ms(lat['p99'])} | "
                    f"{ms(w2c['p50'])} / {ms(w2c['p99'])} | {ms(step['p50'])} / {ms(step['p99'])}"
                    f" | {pond['steps']:.0f} | {'yes' if r['ok'] else 'NO: ' + '; '.join(r['problems'])} |")
    return rows


# backfill ------------------------------------------------------------------------------------

def backfill(pond, files: int, nofile: int) -> dict:
    work = WORK / "backfill"
    shutil.rmtree(work, ignore_errors=True)
    host = work / "host"
    pond_dir = work / "pond"
    source = hlgen.TradeSource(seed=7)
    lines = []
    first_hour = live_pipeline.parse_hour("2024-01-01T00")
    for i in range(files):
        if not lines:
            lines = source.next_chunk()
        head, tail = lines.pop()
        path = host / hlgen.hour_path(first_hour + i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(head + hlgen.iso_ns((first_hour + i) * 3600 * live_pipeline.NS) + tail)
    cfg = work / "hl.yaml"
    cfg.write_text(f'name: hl-trades\nactive_pattern: "{host}/node_trades/hourly/*/*"\n'
                   f'pond_path: "logs/hl/node_trades"\n')
    subprocess.run([pond, "--pond", str(pond_dir), "init"], check=True, capture_output=True)
    subprocess.run([pond, "--pond", str(pond_dir), "mknod", "logfile", "/etc/hl",
                    "--config-path", str(cfg)], check=True, capture_output=True)

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    log(f"backfill: {files:,} new hour files, one sync under ulimit -n {nofile}")
    started = time.monotonic()
    proc = subprocess.Popen([pond, "--pond", str(pond_dir), "run", "/etc/hl", "sync"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit)
    out, err = proc.communicate()
    wall = time.monotonic() - started
    listed = subprocess.run([pond, "--pond", str(pond_dir), "list", "/logs/hl/node_trades/**"],
                            capture_output=True, text=True)
    mirrored = sum(1 for line in listed.stdout.splitlines() if line.count("/") >= 5)
    result = {"files": files, "nofile": nofile, "exit": proc.returncode, "wall_seconds": wall,
              "mirrored_files": mirrored,
              "last_line": (out.decode(errors="replace").strip().splitlines() or [""])[-1],
              "stderr": err.decode(errors="replace")[-500:],
              "ok": proc.returncode == 0 and mirrored == files}
    log(f"  exit {proc.returncode} in {wall:.1f} s, {mirrored:,} files mirrored: "
        f"{result['last_line']}{result['stderr']}")
    shutil.rmtree(work, ignore_errors=True)
    return result


# day -----------------------------------------------------------------------------------------

def day(rate: float, hours: float) -> dict:
    log(f"day: simulating {hours:g} h of follow at {rate:,.0f} lines/s (pond-store day bench)")
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target/bench"),
           "DAY_RATE": str(rate), "DAY_HOURS": str(hours), "DAY_DIR": str(WORK / "day")}
    shutil.rmtree(WORK / "day", ignore_errors=True)
    done = subprocess.run(["cargo", "bench", "--quiet", "-p", "pond-store", "--bench", "day"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    shutil.rmtree(WORK / "day", ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"day bench failed: {done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log(json.dumps(result, indent=2))
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("part", choices=["idle", "follow", "backfill", "day", "all"])
    ap.add_argument("--files", help="hour file counts (idle, follow: default 48,8760; "
                                    "backfill: default 20000)")
    ap.add_argument("--runs", type=int, default=15, help="timed runs per command (idle)")
    ap.add_argument("--rate", type=float, default=3000.0, help="lines/s (follow, day)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of writing (follow)")
    ap.add_argument("--stage", default="running,stopped,saturated", help="stage modes (follow)")
    ap.add_argument("--nofile", type=int, default=1024, help="descriptor limit (backfill)")
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (day)")
    ap.add_argument("--json", action="store_true", help="print one JSON document at the end")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, interrupted)
    out = {}
    ok = True
    try:
        if args.part in ("idle", "follow", "backfill", "all"):
            pond = pond_binary()
            secantusd = live_pipeline.find_secantusd(ROOT)
        counts = [int(x) for x in (args.files or "48,8760").split(",")]
        if args.part in ("idle", "all"):
            out["idle"] = idle(pond, secantusd, counts, args.runs)
            print("\n".join(idle_table(out["idle"], counts)), flush=True,
                  file=sys.stderr if args.json else sys.stdout)
        if args.part in ("follow", "all"):
            out["follow"] = follow(pond, secantusd, counts, args.stage.split(","), args.rate,
                                   args.duration)
            print("\n".join(follow_table(out["follow"])), flush=True,
                  file=sys.stderr if args.json else sys.stdout)
            ok &= all(r["ok"] for r in out["follow"])
        if args.part in ("backfill", "all"):
            files = int(args.files) if args.files and args.part == "backfill" else 20000
            out["backfill"] = backfill(pond, files, args.nofile)
            ok &= out["backfill"]["ok"]
        if args.part in ("day", "all"):
            out["day"] = day(args.rate, args.hours)
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    if args.json:
        json.dump(out, sys.stdout, indent=2, default=str)
        print()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
