#!/usr/bin/env python3
"""Imitates a Hyperliquid node writing `node_trades` hour files live.

Lines go to DIR/node_trades/hourly/<YYYYMMDD>/<hour> (hour 0..23, no leading zero, no
extension), the node's layout. Every TICK_MS (default 10 ms) the generator appends the lines due
by then at --rate lines per second: one write() of whole lines per tick, so a reader never sees
a partial line at a tick boundary (unless --partial-writes). A late tick catches up with exactly
the lines due, no more.

Two clocks:
  * each line's "time" is the real UTC wall clock when the line is written, naive ISO with
    nanoseconds like the node ("2025-06-24T02:56:36.172847427"); lines of one write get
    consecutive nanoseconds so times strictly increase. Latency downstream is
    (time a document is visible) - (its line's "time").
  * the layout clock picks the hour file. It starts at --start (the beginning of that UTC hour;
    default: the current wall-clock instant) and runs 3600/--hour-seconds times faster than
    real time. When it enters a new hour the generator opens the new file, creating the day
    directory when needed, as the node does. Files are opened in append mode.

Line content follows the node's records (testdata/samples/node_trades.jsonl): keys coin, side,
time, px, sz, hash, trade_dir_override, side_info (buyer first, then seller; each with user,
start_pos, oid, twap_id, cloid), same order and value shapes. The sequence of trades depends
only on --seed. Every trade is distinct under the natural key (time, coin, px, sz, both sides'
oid and start_pos): times strictly increase, and the taker side's (oid, start_pos) never
repeats. --dup-every N re-appends an earlier line of the current file (byte for byte, old time
included) in place of every Nth line, as a node does after a restart.

Importable: Generator(directory, rate=...).run(stop_event) writes until the event is set, the
duration is over or the line count is reached, and returns the summary dict (see --report).

Example: two simulated hours and a day rollover in 30 s, at 2,000 lines/s:
  python3 testdata/hlgen.py /tmp/hl --start 2025-06-24T22 --hour-seconds 10 --duration 30 \\
      --rate 2000 --report /tmp/hl-report.json --probe-log /tmp/hl-probe.jsonl
writes node_trades/hourly/20250624/22, .../20250624/23 and .../20250625/0.
"""

import argparse
import calendar
import datetime
import itertools
import json
import os
import random
import signal
import sys
import threading
import time

NS = 1_000_000_000
HOUR_NS = 3600 * NS
# (coin, starting price, price decimals, size decimals, weight)
COINS = [
    ("BTC", 104000.0, 0, 5, 30), ("ETH", 2392.0, 1, 4, 25), ("HYPE", 36.77, 3, 2, 20),
    ("SOL", 145.2, 2, 2, 10), ("@151", 2393.9, 1, 4, 6), ("@107", 36.8, 3, 2, 6),
    ("ZK", 0.12398, 5, 1, 3), ("kPEPE", 0.01102, 6, 0, 3), ("XRP", 2.184, 4, 0, 4),
    ("DOGE", 0.1651, 5, 0, 4), ("FARTCOIN", 1.0721, 4, 1, 2), ("@142", 115865.0, 0, 4, 2),
]
ZERO_HASH = "0x" + "0" * 64


def num(x: float, decimals: int) -> str:
    """A decimal string the way the node prints one: "2393.9", "158.0", "0.00012"."""
    s = f"{x:.{decimals}f}"
    if decimals:
        s = s.rstrip("0")
        if s[-1] == ".":
            s += "0"
    else:
        s += ".0"
    return s


class TradeSource:
    """An endless, seed-determined sequence of node_trades records without their `time`.

    next_chunk() returns CHUNK pairs (head, tail): the line is head + time + tail, where head
    ends with '"time":"' and tail starts with '",' and ends with a newline. Chunks are a fixed
    size so the sequence does not depend on how many lines each tick takes.
    """

    CHUNK = 256

    def __init__(self, seed: int = 1):
        rng = self.rng = random.Random(seed)
        self.names = [c[0] for c in COINS]
        self.cum_coin = list(itertools.accumulate(c[4] for c in COINS))
        self.price = {c[0]: c[1] for c in COINS}
        self.base = {c[0]: c[1] for c in COINS}  # prices revert slowly to these (~4% spread)
        self.px_dec = {c[0]: c[2] for c in COINS}
        self.sz_dec = {c[0]: c[3] for c in COINS}
        self.pos_dec = {c[0]: max(1, c[3]) for c in COINS}
        # Cheap variability: price steps (relative, ~N(0, 0.0004) in all) and sizes
        # (lognormal) are products of entries of two pools of coprime lengths.
        self.steps_a = [1 + rng.gauss(0, 0.0003) for _ in range(4099)]
        self.steps_b = [1 + rng.gauss(0, 0.00026) for _ in range(4091)]
        self.sizes_a = [rng.lognormvariate(0, 1.5) / 10 for _ in range(4093)]
        self.sizes_b = [rng.lognormvariate(0, 0.5) for _ in range(4079)]
        self.heads = {
            (coin, side): f'{{"coin":"{coin}","side":"{side}","time":"'
            for coin in self.names for side in "AB"
        }
        # Takers: a large pool with skewed activity. Makers: most fills hit a few market makers.
        self.users = self._hexs(20, 30000)
        self.cum_user = list(itertools.accumulate(1.0 / (i + 1) ** 0.9 for i in range(30000)))
        self.makers = self._hexs(20, 40)
        self.cum_maker = list(itertools.accumulate(1.0 / (i + 1) for i in range(40)))
        self.position = {}  # (user, coin) -> position before the user's next trade
        self.cloid_counter = {}  # user -> (prefix, counter) for counter-style client ids
        self.oid = 105686971733
        self.twap = 822427
        self.k = 0  # index into the step/size pools
        # The current taker order, continued by the next fills.
        self.order = (self.names[0], self.users[0], "B", self.oid, ZERO_HASH, "null")

    def _hexs(self, nbytes: int, count: int) -> list:
        raw = self.rng.randbytes(nbytes * count).hex()
        step = nbytes * 2
        return ["0x" + raw[i: i + step] for i in range(0, len(raw), step)]

    def _start_pos(self, user: str, coin: str) -> float:
        pos = self.position.get((user, coin))
        if pos is None:
            rng = self.rng
            pos = round(rng.lognormvariate(0, 2.5) * (1 if rng.random() < 0.5 else -1),
                        self.sz_dec[coin])
        return pos

    def _cloid(self, user: str, c: float, pool_hex: str) -> str:
        if c < 0.75:
            return "null"
        if c < 0.87:
            return '"' + pool_hex + '"'
        prefix, counter = self.cloid_counter.get(user) or (self.rng.randrange(1 << 32), 0)
        self.cloid_counter[user] = (prefix, counter + 1)
        return f'"0x00000000{prefix:08x}{counter:016x}"'

    def next_chunk(self) -> list:
        rng = self.rng
        n = self.CHUNK
        rand = rng.random
        coin_pick = rng.choices(self.names, cum_weights=self.cum_coin, k=n)
        taker_pick = rng.choices(self.users, cum_weights=self.cum_user, k=n)
        maker_pick = rng.choices(self.makers, cum_weights=self.cum_maker, k=n)
        hashes = self._hexs(32, n)
        cloids = self._hexs(16, 2 * n)
        steps_a, steps_b, sizes_a, sizes_b = self.steps_a, self.steps_b, self.sizes_a, self.sizes_b
        price, base, px_dec = self.price, self.base, self.px_dec
        sz_dec, pos_dec = self.sz_dec, self.pos_dec
        position, heads = self.position, self.heads
        coin, taker, side, taker_oid, tx_hash, twap_id = self.order
        out = []
        for i in range(n):
            r = rand()
            if not 0.08 <= r < 0.45:
                # A new taker order; otherwise the next fill of the current one (same
                # transaction, coin, side, taker, oid).
                coin, taker, side = coin_pick[i], taker_pick[i], "B" if rand() < 0.5 else "A"
                self.oid += rng.randrange(1, 900)
                taker_oid = self.oid
                if r < 0.08:  # a TWAP slice: zero hash
                    tx_hash, twap_id = ZERO_HASH, str(self.twap + rng.randrange(4000))
                else:
                    tx_hash, twap_id = hashes[i], "null"
            k = self.k = self.k + 1
            p = price[coin]
            p = p * steps_a[k % 4099] * steps_b[k % 4091] + (base[coin] - p) * 0.00005
            price[coin] = p
            d = sz_dec[coin]
            size = round(sizes_a[k % 4093] * sizes_b[k % 4079] * 10 ** (2 - d), d)
            size = size or 10 ** -d
            maker = maker_pick[i]
            maker_oid = taker_oid - rng.randrange(1, 40000)
            # side_info[0] is the buyer, [1] the seller; side "B" means the taker bought.
            if side == "B":
                buyer, b_oid, b_twap, seller, s_oid, s_twap = taker, taker_oid, twap_id, maker, maker_oid, "null"
            else:
                buyer, b_oid, b_twap, seller, s_oid, s_twap = maker, maker_oid, "null", taker, taker_oid, twap_id
            b_pos = self._start_pos(buyer, coin)
            s_pos = self._start_pos(seller, coin)
            position[(buyer, coin)] = round(b_pos + size, d)
            position[(seller, coin)] = round(s_pos - size, d)
            pd = pos_dec[coin]
            tail = (
                f'","px":"{num(p, px_dec[coin])}","sz":"{num(size, d)}","hash":"{tx_hash}",'
                f'"trade_dir_override":"Na","side_info":['
                f'{{"user":"{buyer}","start_pos":"{b_pos:.{pd}f}","oid":{b_oid},'
                f'"twap_id":{b_twap},"cloid":{self._cloid(buyer, rand(), cloids[2 * i])}}},'
                f'{{"user":"{seller}","start_pos":"{s_pos:.{pd}f}","oid":{s_oid},'
                f'"twap_id":{s_twap},"cloid":{self._cloid(seller, rand(), cloids[2 * i + 1])}}}]}}\n'
            )
            out.append((heads[(coin, side)], tail))
        self.order = (coin, taker, side, taker_oid, tx_hash, twap_id)
        return out


def parse_start(text: str) -> int:
    """'YYYY-MM-DDTHH' (also with :MM or :MM:SS, or a space for T) as UTC -> epoch ns."""
    text = text.strip().replace(" ", "T")
    for fmt in ("%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y%m%dT%H", "%Y-%m-%d"):
        try:
            dt = datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return calendar.timegm(dt.timetuple()) * NS
    raise ValueError(f"--start: expected YYYY-MM-DDTHH (UTC), got {text!r}")


def iso_ns(ns: int) -> str:
    """Naive UTC ISO with nanoseconds, the node's `time` format."""
    secs, frac = divmod(ns, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}"


def hour_path(hour_index: int) -> str:
    """Relative path of the file for hour number `hour_index` (epoch ns // HOUR_NS)."""
    t = time.gmtime(hour_index * 3600)
    return f"node_trades/hourly/{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}/{t.tm_hour}"


class Generator:
    """Writes node_trades lines under `directory` at `rate` lines/s; see the module doc.

    run(stop_event) blocks until stop_event is set (checked every tick), `duration` seconds
    have passed or `lines` lines are written; then it closes the files, writes the report file
    if `report` is a path, and returns the summary dict. Call run() once per instance.
    """

    def __init__(self, directory, rate=1000.0, duration=None, lines=None, seed=1,
                 start=None, hour_seconds=3600.0, dup_every=0, partial_writes=False,
                 partial_fraction=0.25, tick_ms=10.0, report=None, probe_log=None,
                 probe_every=100):
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if hour_seconds <= 0:
            raise ValueError("hour_seconds must be > 0")
        if tick_ms <= 0:
            raise ValueError("tick_ms must be > 0")
        self.directory = os.fspath(directory)
        self.rate = float(rate)
        self.duration = duration
        self.max_lines = lines
        self.seed = seed
        self.start = parse_start(start) if isinstance(start, str) else start
        self.hour_seconds = float(hour_seconds)
        self.dup_every = dup_every or 0
        self.partial_writes = partial_writes
        self.partial_fraction = partial_fraction
        self.tick_ns = int(tick_ms * 1e6)
        self.report_path = report
        self.probe_path = probe_log
        self.probe_every = max(1, probe_every or 1)
        self.source = TradeSource(seed)
        self.side_rng = random.Random(f"hlgen-{seed}")  # duplicates and write splits
        self.buffer = []
        self.buffer_at = 0
        self.summary = None

    def _fresh(self, n: int) -> list:
        out = []
        while n > 0:
            if self.buffer_at >= len(self.buffer):
                self.buffer, self.buffer_at = self.source.next_chunk(), 0
            take = self.buffer[self.buffer_at: self.buffer_at + n]
            self.buffer_at += len(take)
            n -= len(take)
            out.extend(take)
        return out

    def run(self, stop_event=None):
        stop = stop_event or threading.Event()
        rate = self.rate
        tick = self.tick_ns
        speed = 3600.0 / self.hour_seconds
        dup_every = self.dup_every
        probe_every = self.probe_every
        side_rng = self.side_rng
        max_lines = self.max_lines
        probe = open(self.probe_path, "a", encoding="ascii") if self.probe_path else None

        files = {}  # relative path -> {"lines", "bytes"}
        fd = -1
        path = None
        offset = 0  # size of the current file
        recent = []  # the current file's last lines, for duplicates
        total = total_bytes = dups = splits = 0
        last_ns = 0  # the last line time handed out
        cache_secs, cache_prefix = -1, ""
        stopped_by = "signal"

        wall0 = time.time_ns()
        mono0 = time.monotonic_ns()
        layout0 = self.start if self.start is not None else wall0
        deadline = mono0 + int(self.duration * NS) if self.duration is not None else None
        next_tick = mono0
        hour_index = None
        try:
            while True:
                now = time.monotonic_ns()
                final = False
                if deadline is not None and now >= deadline:
                    now, final, stopped_by = deadline, True, "duration"
                elapsed = now - mono0
                hi = (layout0 + int(elapsed * speed)) // HOUR_NS
                if hi != hour_index:
                    # The layout clock entered a new hour: start its file, like the node.
                    if fd >= 0:
                        os.close(fd)
                    hour_index, path = hi, hour_path(hi)
                    full = os.path.join(self.directory, path)
                    os.makedirs(os.path.dirname(full), exist_ok=True)
                    fd = os.open(full, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    offset = os.fstat(fd).st_size
                    files.setdefault(path, {"lines": 0, "bytes": 0})
                    recent = []
                due = int(elapsed * rate / NS)
                if max_lines is not None and due >= max_lines:
                    due, final, stopped_by = max_lines, True, "lines"
                n = due - total
                if n > 0:
                    fresh = self._fresh(n)
                    t = time.time_ns()
                    if t <= last_ns:
                        t = last_ns + 1
                    parts = []
                    probes = []  # (time string, offset in this write)
                    pos = 0
                    for i in range(n):
                        line_no = total + i
                        if dup_every and line_no % dup_every == dup_every - 1 and recent:
                            line = recent[side_rng.randrange(len(recent))]
                            dups += 1
                            ts = None
                        else:
                            head, tail = fresh[i]
                            secs, frac = divmod(t, NS)
                            if secs != cache_secs:
                                cache_secs = secs
                                cache_prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(secs))
                            ts = f"{cache_prefix}{frac:09d}"
                            last_ns = t
                            t += 1
                            line = head + ts + tail
                        parts.append(line)
                        if probe is not None:
                            if line_no % probe_every == 0 and ts is not None:
                                probes.append((ts, pos))
                            pos += len(line)
                    if dup_every:
                        recent.extend(parts[-64:])
                        del recent[:-64]
                    data = "".join(parts).encode("ascii")
                    if self.partial_writes and n and side_rng.random() < self.partial_fraction:
                        # Split inside the last line; the rest follows a few ms later.
                        cut = len(data) - 1 - side_rng.randrange(1, len(parts[-1]) - 1)
                        _write_all(fd, data[:cut])
                        time.sleep(side_rng.uniform(0.001, 0.005))
                        _write_all(fd, data[cut:])
                        splits += 1
                    else:
                        _write_all(fd, data)
                    written_at = time.time_ns()
                    if probes:
                        for ts, p in probes:
                            probe.write(
                                f'{{"time":"{ts}","written_at_ns":{written_at},'
                                f'"path":"{path}","offset":{offset + p}}}\n'
                            )
                        probe.flush()
                    f = files[path]
                    f["lines"] += n
                    f["bytes"] += len(data)
                    offset += len(data)
                    total += n
                    total_bytes += len(data)
                if final or stop.is_set():
                    break
                # Sleep to the next tick; if late, skip the missed ticks (the next write
                # catches up with exactly the lines due).
                next_tick += tick
                now = time.monotonic_ns()
                if next_tick <= now:
                    next_tick = now + tick - (now - mono0) % tick
                if deadline is not None and next_tick > deadline:
                    next_tick = deadline
                time.sleep(max(0, next_tick - now) / NS)
        finally:
            if fd >= 0:
                os.close(fd)
            if probe is not None:
                probe.close()
        end_mono = time.monotonic_ns()
        end_wall = wall0 + (end_mono - mono0)
        elapsed_s = (end_mono - mono0) / NS
        self.summary = {
            "dir": os.path.abspath(self.directory),
            "lines": total,
            "unique_lines": total - dups,
            "duplicates": dups,
            "bytes": total_bytes,
            "files": files,
            "split_writes": splits,
            "started_at": iso_ns(wall0),
            "ended_at": iso_ns(end_wall),
            "started_at_ns": wall0,
            "ended_at_ns": end_wall,
            "elapsed_s": round(elapsed_s, 6),
            "rate_requested": rate,
            "rate_achieved": round(total / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            "stopped_by": stopped_by,
            "seed": self.seed,
            "layout_start": iso_ns(layout0),
            "hour_seconds": self.hour_seconds,
        }
        if self.report_path:
            tmp = f"{self.report_path}.tmp"
            with open(tmp, "w") as out:
                json.dump(self.summary, out, indent=2)
                out.write("\n")
            os.replace(tmp, self.report_path)
        return self.summary


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="hlgen.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("dir", help="root directory; files go to DIR/node_trades/hourly/YYYYMMDD/H")
    ap.add_argument("--rate", type=float, default=1000.0, metavar="LINES_PER_SEC",
                    help="lines per second, sustained (default 1000)")
    ap.add_argument("--duration", type=float, metavar="SECS",
                    help="stop after SECS seconds (default: run until SIGTERM/SIGINT)")
    ap.add_argument("--lines", type=int, metavar="N", help="stop after N lines (duplicates included)")
    ap.add_argument("--seed", type=int, default=1, help="seed for line content (default 1)")
    ap.add_argument("--start", metavar="YYYY-MM-DDTHH",
                    help="UTC hour the layout clock starts at (default: now)")
    ap.add_argument("--hour-seconds", type=float, default=3600.0, metavar="S",
                    help="real seconds each hour file lasts (default 3600: real time)")
    ap.add_argument("--dup-every", type=int, default=0, metavar="N",
                    help="every Nth line re-appends an earlier line of the current file, "
                         "like a node restart (default 0: off)")
    ap.add_argument("--partial-writes", action="store_true",
                    help="split some writes inside a line, the rest following 1-5 ms later")
    ap.add_argument("--partial-fraction", type=float, default=0.25, metavar="F",
                    help="with --partial-writes, the fraction of ticks split (default 0.25)")
    ap.add_argument("--tick-ms", type=float, default=10.0, metavar="MS",
                    help="write interval in milliseconds (default 10)")
    ap.add_argument("--report", metavar="FILE",
                    help="write a JSON summary at exit: lines (total and per file), bytes, "
                         "duplicates, start/end times, achieved rate")
    ap.add_argument("--probe-log", metavar="FILE",
                    help='append {"time", "written_at_ns", "path", "offset"} for sampled lines '
                         "(written_at_ns: time.time_ns() after the write returned; path "
                         "relative to DIR; offset of the line in that file)")
    ap.add_argument("--probe-every", type=int, default=100, metavar="N",
                    help="sample every Nth line for --probe-log (default 100)")
    ap.add_argument("--quiet", action="store_true", help="no summary line on stderr")
    args = ap.parse_args(argv)

    try:
        gen = Generator(
            args.dir, rate=args.rate, duration=args.duration, lines=args.lines, seed=args.seed,
            start=args.start, hour_seconds=args.hour_seconds, dup_every=args.dup_every,
            partial_writes=args.partial_writes, partial_fraction=args.partial_fraction,
            tick_ms=args.tick_ms, report=args.report, probe_log=args.probe_log,
            probe_every=args.probe_every,
        )
    except ValueError as e:
        ap.error(str(e))
    stop = threading.Event()

    def on_signal(signum, frame):
        # Only sets a flag: a write in progress completes, the loop ends after it.
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    s = gen.run(stop)
    if not args.quiet:
        print(f"hlgen: {s['lines']} lines ({s['duplicates']} duplicates), {s['bytes']} bytes, "
              f"{len(s['files'])} files, {s['rate_achieved']:.1f} lines/s over {s['elapsed_s']:.2f} s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
