#!/usr/bin/env python3
"""`make demo`: the live pipeline with nothing to set up, in about 40 seconds.

    hlgen -> host hour files -> pond run /etc/hl follow -> pond -> mongo stage -> SecantusDB

  1. a SecantusDB server on a free loopback port and a fresh pond, both under a temp directory;
     a file copied into the pond by hand (testdata/casparwater), its BLAKE3 next to b3sum's;
  2. a `logfile` node /etc/hl on the Hyperliquid node_trades hourly layout, with a `mongo` node
     /etc/mongo downstream of it (hyperliquid/node_trades preset, into hl.trades);
  3. `pond run /etc/hl follow` while hlgen (testdata/hlgen.py) writes DEMO_RATE lines/s
     (default 2000) for DEMO_SECONDS (default 30): hours 22 and 23 of 2025-06-24 and hour 0 of
     the next day, 10 s each (so a new hour file, then a new day directory), some writes split
     inside a line; then SIGTERM, and follow drains and exits 0;
  4. the report: lines written against documents stored, per collection (with the dead-letter
     collection), line-to-MongoDB latency, lag, CPU; then the pond's own view: `pond status`,
     the mirrored files, status of both nodes, `pond log | head`, `pond verify`, and the mirror
     checked with `b3sum --check`.
Exit 1 when documents stored != lines written (or anything else in the run failed).

Usage: python testdata/demo.py [POND_BIN]   (default target/debug/pond; a python with pymongo)
The shared machinery is testdata/live_pipeline.py, also used by benches/latency.py.
"""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(HERE))
import live_pipeline  # noqa: E402

START = "2025-06-24T22"
HOUR_SECONDS = 10.0


def shell(line: str):
    print(f"\n$ {line}", flush=True)


def show(pipeline, *args, head=None, check=True):
    """Prints `pond ARGS` as a command line, runs it on the demo pond, prints its output."""
    shell("pond " + shlex.join(args) + (f" | head -n {head}" if head else ""))
    done = pipeline.pond(*args, check=check)
    lines = done.stdout.splitlines()
    print("\n".join(lines[:head] if head else lines))
    if done.stderr.strip():
        print(done.stderr.rstrip())
    return done


def host_bytes(host: Path) -> int:
    return sum(p.stat().st_size for p in host.rglob("*") if p.is_file())


def main() -> int:
    pond_bin = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target/debug/pond").resolve()
    rate = float(os.environ.get("DEMO_RATE", "2000"))
    seconds = float(os.environ.get("DEMO_SECONDS", "30"))
    secantusd = live_pipeline.find_secantusd(ROOT)
    demo_dir = Path(tempfile.mkdtemp(prefix="pond-demo."))
    began = time.monotonic()
    ok = False
    try:
        ok = demo(pond_bin, demo_dir, secantusd, rate, seconds)
    finally:
        print(f"\n{'OK' if ok else 'FAILED'}: the demo took {time.monotonic() - began:.0f} s")
        if ok:
            shutil.rmtree(demo_dir, ignore_errors=True)
        else:
            print(f"(its files are in {demo_dir})")
    return 0 if ok else 1


def demo(pond_bin, demo_dir, secantusd, rate, seconds) -> bool:
    with live_pipeline.LivePipeline(pond_bin, demo_dir, secantusd, rate=rate, duration=seconds,
                                    start=START, hour_seconds=HOUR_SECONDS,
                                    partial_writes=True) as pipeline:
        print(f"== SecantusDB on 127.0.0.1:{pipeline.server.port}; a fresh pond in "
              f"{pipeline.pond_dir}; the node's files go to {pipeline.host}")
        for node, text in pipeline.configs().items():
            print(f"\n# {node.rsplit('/', 1)[1]}.yaml: {node}")
            print(text.rstrip())
        print("\n(pond init, then pond mknod mongo /etc/mongo and pond mknod logfile /etc/hl "
              "with these configs: done)")

        print("\n== a file copied in by hand: its BLAKE3 is the hash b3sum prints")
        caspar = HERE / "casparwater/casparwater.json"
        show(pipeline, "mkdir", "-p", "/logs/casparwater")
        show(pipeline, "copy", str(caspar), "/logs/casparwater")
        show(pipeline, "show", "/logs/casparwater/casparwater.json")
        b3sum = find_b3sum()
        if b3sum:
            shell(f"b3sum {caspar}")
            print(subprocess.run([b3sum, str(caspar)], capture_output=True, text=True,
                                 check=True).stdout.rstrip())
        print(f"\n== live: hlgen writes {rate:,.0f} lines/s for {seconds:g} s, some writes split "
              f"inside a line; its layout clock starts at {START}:00 UTC and runs "
              f"{3600 / HOUR_SECONDS:g}x, so a new hour file every {HOUR_SECONDS:g} s, and a new "
              f"day directory after {2 * HOUR_SECONDS:g} s. Meanwhile:")
        shell("pond run /etc/hl follow --metrics-addr 127.0.0.1:0")
        next_note = [5.0]

        def progress(elapsed, scrape, _lines):
            if elapsed < next_note[0]:
                return
            next_note[0] += 5.0
            mirrored = scrape.value("pond_logfile_bytes_mirrored_total")
            print(f"  {elapsed:5.1f} s: host files {host_bytes(pipeline.host) / 1048576:6.1f} "
                  f"MiB, mirrored {mirrored / 1048576:6.1f} MiB, in MongoDB "
                  f"{scrape.value('pond_mongo_documents_total'):8,.0f} docs, lag "
                  f"{scrape.value('pond_mongo_lag_bytes') / 1024:5.0f} KiB", flush=True)

        result = pipeline.run(on_sample=progress)
        print(f"  SIGTERM: follow exited {result['follow_exit']} "
              f"({result['follow_last_line']})")

        print("\n== the report")
        print("\n".join(live_pipeline.report_lines(result)))

        print("\n== the pond's view")
        status = show(pipeline, "status", check=False)
        show(pipeline, "list", "-l", "/logs/hl/node_trades/**")
        show(pipeline, "run", "/etc/hl", "status")
        show(pipeline, "run", "/etc/mongo", "status")
        show(pipeline, "log", head=8)
        verified = show(pipeline, "verify", check=False)
        b3sum_ok = check_b3sum(pipeline)

        print("\n== per collection")
        print(f"  {live_pipeline.DATABASE}.{live_pipeline.COLLECTION}: "
              f"{result['documents']:,} documents for {result['lines']:,} lines written")
        print(f"  {live_pipeline.DATABASE}.{live_pipeline.DEAD_LETTERS}: "
              f"{result['dead_letter_documents']:,} documents (dead letters)")
    return (result["ok"] and status.returncode == 0 and verified.returncode == 0
            and b3sum_ok is not False)


def find_b3sum():
    """b3sum on PATH, else the one `make tools` installs, else /tmp/b3/bin/b3sum; or None."""
    candidates = [shutil.which("b3sum"), str(ROOT / ".tools/bin/b3sum"), "/tmp/b3/bin/b3sum"]
    return next((p for p in candidates if p and os.access(p, os.X_OK)), None)


def check_b3sum(pipeline):
    """The mirror checked with b3sum, when b3sum is installed (`make tools`); None otherwise."""
    b3sum = find_b3sum()
    base = pipeline.host / "node_trades/hourly"
    shell(f"cd {base} && pond run /etc/hl b3sum | b3sum --check")
    if b3sum is None:
        print("(no b3sum: `make tools` installs it)")
        return None
    sums = pipeline.pond("run", "/etc/hl", "b3sum").stdout
    done = subprocess.run([b3sum, "--check"], input=sums, cwd=base, capture_output=True,
                          text=True)
    print((done.stdout + done.stderr).rstrip())
    return done.returncode == 0


if __name__ == "__main__":
    sys.exit(main())
