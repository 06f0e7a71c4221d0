"""The live pipeline, end to end, for `make demo` (testdata/demo.py) and benches/latency.py.

    hlgen (a thread) -> host hour files -> `pond run /etc/hl follow` (logfile, inotify)
        -> mongo stage in the same process -> SecantusDB <- probe reader (a thread, polls)

Layout:
  * `find_secantusd`, `free_port`, `Server`: a SecantusDB server on a loopback port, with on-disk
    storage (or `:memory:`), stopped when its `with` block ends, and also when this process dies
    (PR_SET_PDEATHSIG), however the script exits.
  * `Follow`: the `follow` process; its metrics address is parsed from its first stdout line;
    stop() sends SIGTERM and reaps it with wait4, for the exit code and its CPU time.
  * `scrape`, `Scrape`: the Prometheus text of /metrics, parsed; histogram quantiles are
    interpolated within buckets the way Prometheus' histogram_quantile does.
  * `ProbeReader`: tails hlgen's probe log and polls MongoDB every ~20 ms for the probes not yet
    seen, by `time_ns` (computed from the line's `time` as the pond does: naive UTC, nanoseconds).
    A probe's latency is (reply time of the query that first found it) - (hlgen's written_at_ns,
    taken after its write() returned): an upper bound, within one poll, of the time from the
    bytes reaching the host file to the document being visible in MongoDB.
  * `LivePipeline`: a fresh pond (logfile node `/etc/hl` on the node_trades hourly layout,
    downstream mongo node `/etc/mongo`) against a fresh server; run() drives one whole run and
    returns a result dict (see `LivePipeline.run`); `report_lines` formats it.

Python 3.9+, with pymongo (the venv `make tools` installs has it).
"""

import calendar
import ctypes
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import hlgen  # testdata/hlgen.py; callers put testdata/ on sys.path

NS = 1_000_000_000
DATABASE = "hl"
COLLECTION = "trades"
DEAD_LETTERS = f"{COLLECTION}_rejects"  # the mongo factory's default dead-letter collection


def find_secantusd(root: Path) -> str:
    """$SECANTUSD, else .venv/bin/secantusd-py (`make tools`), else /tmp/sdbvenv's."""
    candidates = [os.environ.get("SECANTUSD"), root / ".venv/bin/secantusd-py",
                  "/tmp/sdbvenv/bin/secantusd-py"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    raise SystemExit("no SecantusDB server: run `make tools` or set SECANTUSD")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_ns_of(text: str) -> int:
    """The `time_ns` the node_trades preset stores for a line's `time` (naive UTC ISO with up to
    nine fraction digits), e.g. "2025-06-24T02:56:36.172847427"."""
    secs = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    frac = text[20:] if len(text) > 19 else ""
    return secs * NS + int(frac.ljust(9, "0")[:9] or 0)


def parse_hour(text: str) -> int:
    """'YYYY-MM-DDTHH' (UTC) -> hour number since the epoch, as hlgen.hour_path takes it."""
    return hlgen.parse_start(text) // (3600 * NS)


def percentile(sorted_values, q: float):
    """Nearest-rank percentile of an ascending list; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


# ---------------------------------------------------------------------------------------------
# Processes


class Server:
    """A SecantusDB server on a free loopback port; a context manager."""

    def __init__(self, secantusd: str, storage: str, log_path: Path, test_commands=False):
        self.secantusd = secantusd
        self.storage = storage
        self.log_path = log_path
        # configureFailPoint / failCommand, for benchmarks that slow the server down.
        self.test_commands = test_commands
        self.port = None
        self.proc = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def __enter__(self):
        self.port = free_port()
        if self.storage != ":memory:":
            os.makedirs(self.storage, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.secantusd, "--host", "127.0.0.1", "--port", str(self.port),
                 "--storage-path", self.storage]
                + (["--enable-test-commands"] if self.test_commands else []),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"SecantusDB did not start on port {self.port}:\n"
                                       + self.log_path.read_text(errors="replace")[-2000:])
                time.sleep(0.1)

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc):
        self.stop()


class Follow:
    """`pond run NODE follow --metrics-addr 127.0.0.1:0`, its output in files under `workdir`."""

    def __init__(self, pond_cmd: list, node: str, workdir: Path):
        self.out_path = workdir / "follow.out"
        self.err_path = workdir / "follow.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                pond_cmd + ["run", node, "follow", "--metrics-addr", "127.0.0.1:0"],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.metrics_url = None
        self.cpu_seconds = None
        self.max_rss_kib = None
        deadline = time.monotonic() + 30
        while self.metrics_url is None:
            found = re.search(r"metrics at (http://\S+/metrics)", self.out_path.read_text())
            if found:
                self.metrics_url = found.group(1)
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(timeout=5)
                raise RuntimeError(f"follow did not start (exit {self.proc.returncode}): "
                                   + self.err_path.read_text(errors="replace")[-2000:])
            else:
                time.sleep(0.02)

    def cpu_now(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code (SIGKILL after `timeout`: -9). Sets cpu_seconds."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                pid, status, usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.01)
        # Reaped here (wait4 gives the rusage Popen.wait does not); tell Popen.
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        self.max_rss_kib = usage.ru_maxrss
        return self.proc.returncode


# ---------------------------------------------------------------------------------------------
# Metrics

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Scrape:
    """One scrape of /metrics: `value(name, **labels)`, `histogram(name)`."""

    def __init__(self, text: str):
        self.samples = []  # (name, {labels}, value)
        for line in text.splitlines():
            found = _SAMPLE.match(line)
            if found:
                labels = dict(_LABEL.findall(found.group(2) or ""))
                self.samples.append((found.group(1), labels, float(found.group(3))))

    def value(self, name: str, **labels) -> float:
        """Sum over the series of `name` whose labels include `labels` (0 when none)."""
        return sum(v for n, l, v in self.samples
                   if n == name and all(l.get(k) == w for k, w in labels.items()))

    def histogram(self, name: str) -> dict:
        """count, mean, and p50/p90/p99 interpolated within buckets (None when empty)."""
        buckets = sorted((float(l["le"]), v) for n, l, v in self.samples if n == name + "_bucket")
        count = self.value(name + "_count")
        out = {"count": int(count), "mean": self.value(name + "_sum") / count if count else None}
        for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            out[key] = _bucket_quantile(buckets, q) if count else None
        return out


def _bucket_quantile(buckets, q: float) -> float:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) pairs."""
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # in the +Inf bucket: the highest finite bound
            if cumulative == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (cumulative - below)
        lower, below = bound, cumulative
    return lower


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=5) as response:
        return Scrape(response.read().decode())


# ---------------------------------------------------------------------------------------------
# Probes


class ProbeReader(threading.Thread):
    """Tails hlgen's probe log; polls MongoDB for the probes not yet visible (see module doc).

    Each poll asks for the oldest CHUNK pending probes with one `$in` query on the time_ns
    index, and goes on with the next CHUNK while a whole chunk was found (the pond stores lines
    in order, give or take the batches in flight), at most MAX_QUERIES times. Small `$in`s keep
    the reader's share of a single-process server small: on SecantusDB a 16-value `$in` costs
    about 1.3 ms of server CPU, a 500-value one 200 ms.
    """

    POLL = 0.02
    CHUNK = 16
    MAX_QUERIES = 64

    def __init__(self, probe_log: Path, uri: str):
        super().__init__(name="probe-reader", daemon=True)
        self.probe_log = probe_log
        self.uri = uri
        self.pending = {}  # time_ns -> written_at_ns, oldest first
        self.latencies = []  # seconds
        self.query_seconds = []
        self.probes = 0
        self.cpu_seconds = 0.0
        self.error = None
        self._partial = ""
        self._file = None
        self._stopping = threading.Event()

    def oldest_pending_age(self) -> float:
        """Seconds since the oldest probe not yet seen in MongoDB was written (0 if none): the
        pipeline's lag as a reader of the database sees it, within one poll."""
        try:
            written = next(iter(self.pending.values()))
        except (StopIteration, RuntimeError):  # empty, or changed while we looked
            return 0.0
        return max(0.0, (time.time_ns() - written) / NS)

    def _read_probes(self):
        if self._file is None:
            try:
                self._file = open(self.probe_log, encoding="ascii")
            except FileNotFoundError:
                return
        text = self._partial + self._file.read()
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line:
                probe = json.loads(line)
                self.pending[time_ns_of(probe["time"])] = probe["written_at_ns"]
                self.probes += 1

    def _poll(self, trades):
        for _ in range(self.MAX_QUERIES):
            wanted = [ns for ns, _ in zip(self.pending, range(self.CHUNK))]
            if not wanted:
                return
            sent = time.time_ns()
            found = [d["time_ns"] for d in
                     trades.find({"time_ns": {"$in": wanted}}, {"time_ns": 1, "_id": 0})]
            replied = time.time_ns()
            self.query_seconds.append((replied - sent) / NS)
            for ns in found:
                written = self.pending.pop(ns, None)
                if written is not None:
                    self.latencies.append((replied - written) / NS)
            if len(found) < len(wanted):
                return

    def run(self):
        import pymongo  # only here, so hlgen-only users of this module need no driver
        started = time.thread_time()
        client = pymongo.MongoClient(self.uri)
        trades = client[DATABASE][COLLECTION]
        try:
            while True:
                stopping = self._stopping.is_set()
                tick = time.monotonic()
                self._read_probes()
                self._poll(trades)
                if stopping:
                    break
                self._stopping.wait(max(0.0, self.POLL - (time.monotonic() - tick)))
        except Exception as e:  # reported by the caller; the run itself goes on
            self.error = f"{type(e).__name__}: {e}"
        finally:
            client.close()
            if self._file is not None:
                self._file.close()
            self.cpu_seconds = time.thread_time() - started

    def finish(self, timeout: float):
        """Waits until every probe written so far was seen (or `timeout`), then stops."""
        deadline = time.monotonic() + timeout
        while self.is_alive() and (self.pending or not self._seen_all_written()) \
                and time.monotonic() < deadline:
            time.sleep(self.POLL)
        self._stopping.set()
        self.join()

    def _seen_all_written(self) -> bool:
        try:
            size = os.path.getsize(self.probe_log)
        except FileNotFoundError:
            return True
        return self._file is not None and self._file.tell() >= size

    def summary(self) -> dict:
        values = sorted(self.latencies)
        rtt = sorted(self.query_seconds)
        return {
            "probes": self.probes,
            "seen": len(values),
            "unseen": self.probes - len(values),
            "p50": percentile(values, 0.5),
            "p90": percentile(values, 0.9),
            "p99": percentile(values, 0.99),
            "max": values[-1] if values else None,
            "mean": sum(values) / len(values) if values else None,
            "poll_queries": len(rtt),
            "poll_query_p50": percentile(rtt, 0.5),
            "poll_query_max": rtt[-1] if rtt else None,
            "error": self.error,
        }


# ---------------------------------------------------------------------------------------------
# The pipeline


class LivePipeline:
    """A fresh server, pond and host directory under `workdir`; a context manager.

    run() starts `follow`, writes `rate` lines/s for `duration` s with hlgen (hour files under
    workdir/host, layout clock from `start`, `hour_seconds` real seconds per hour), waits until
    every line is stored (or `drain_timeout`), stops `follow` with SIGTERM and counts what
    MongoDB holds. pond(...) runs other pond commands on the same pond afterwards.
    """

    def __init__(self, pond_bin, workdir, secantusd, rate, duration, start=None,
                 hour_seconds=3600.0, partial_writes=False, probe_every=None, seed=1,
                 batch_size=1000, max_in_flight=4, drain_timeout=120.0,
                 time_index=True, old_files=0, keep_on_host=None, test_commands=False):
        self.pond_bin = str(pond_bin)
        self.workdir = Path(workdir)
        self.rate = rate
        self.duration = duration
        self.start = start
        self.hour_seconds = hour_seconds
        self.partial_writes = partial_writes
        # About 100 probes a second whatever the rate.
        self.probe_every = probe_every or max(1, round(rate / 100))
        self.seed = seed
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.drain_timeout = drain_timeout
        # Without the time_ns index the probe queries would scan the collection: no probes then.
        self.time_index = time_index
        self.old_files = old_files
        # The host's pruner: only the newest `keep_on_host` old hour files stay on the host.
        self.keep_on_host = keep_on_host
        self.documents_before = 0
        self.host = self.workdir / "host"
        self.pond_dir = self.workdir / "pond"
        self.server = Server(secantusd, str(self.workdir / "server"), self.workdir / "server.log",
                             test_commands=test_commands)
        self.follow = None

    # pond commands -----------------------------------------------------------------------

    @property
    def pond_cmd(self) -> list:
        return [self.pond_bin, "--pond", str(self.pond_dir)]

    def pond(self, *args, check=True) -> subprocess.CompletedProcess:
        """Runs `pond ARGS` on this pipeline's pond; output captured as text."""
        done = subprocess.run(self.pond_cmd + list(args), capture_output=True, text=True)
        if check and done.returncode != 0:
            raise RuntimeError(f"pond {' '.join(args)}: exit {done.returncode}: {done.stderr}")
        return done

    def configs(self) -> dict:
        """The node configs, as YAML text by node path."""
        hl = (f'name: hl-trades\n'
              f'active_pattern: "{self.host}/node_trades/hourly/*/*"\n'
              f'pond_path: "logs/hl/node_trades"\n'
              f'downstream: ["/etc/mongo"]\n')
        mongo = (f'source: "logs/hl/node_trades/**"\n'
                 f'mongodb: {{ uri: "{self.server.uri}", database: {DATABASE}, '
                 f'collection: {COLLECTION} }}\n'
                 f'format: hyperliquid/node_trades\n'
                 f'batch_size: {self.batch_size}\n'
                 f'max_in_flight: {self.max_in_flight}\n')
        if self.time_index:
            mongo += 'indexes: [ { keys: { time_ns: 1 } } ]\n'
        return {"/etc/hl": hl, "/etc/mongo": mongo}

    def __enter__(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The node's base directory, as on a host where the node runs.
        (self.host / "node_trades/hourly").mkdir(parents=True, exist_ok=True)
        self.server.__enter__()
        try:
            self.pond("init")
            configs = self.configs()
            for node, factory in (("/etc/mongo", "mongo"), ("/etc/hl", "logfile")):
                path = self.workdir / (node.rsplit("/", 1)[1] + ".yaml")
                path.write_text(configs[node])
                self.pond("mknod", factory, node, "--config-path", str(path))
            if self.old_files:
                self._add_old_files()
        except BaseException:
            self.server.stop()
            raise
        return self

    def _add_old_files(self):
        """`old_files` one-line hour files on days before 2025 (24 a day), as a node that has
        run for a while leaves them, mirrored and stored by `pond run /etc/hl sync` in batches of
        at most 1,000 new files. With `keep_on_host`, the host keeps only that many of the
        newest (the node's pruner deletes the rest, and the pond sees them gone)."""
        import pymongo
        source = hlgen.TradeSource(seed=self.seed + 1)
        first_hour = parse_hour("2025-01-01T00") - self.old_files
        lines = []
        written = []
        for i in range(self.old_files):
            if not lines:
                lines = source.next_chunk()
            head, tail = lines.pop()
            hour = first_hour + i
            path = self.host / hlgen.hour_path(hour)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(head + hlgen.iso_ns(hour * 3600 * NS + 1) + tail)
            written.append(path)
            if len(written) % 1000 == 0 or i == self.old_files - 1:
                self.pond("run", "/etc/hl", "sync")
                if self.keep_on_host is not None:
                    for old in written[:-self.keep_on_host] if self.keep_on_host else written:
                        old.unlink(missing_ok=True)
                        try:
                            old.parent.rmdir()
                        except OSError:
                            pass  # other hours of that day are still there
                    written = written[-self.keep_on_host:] if self.keep_on_host else []
        if self.keep_on_host is not None:
            self.pond("run", "/etc/hl", "sync")
        client = pymongo.MongoClient(self.server.uri)
        try:
            self.documents_before = client[DATABASE][COLLECTION].count_documents({})
        finally:
            client.close()

    def __exit__(self, *exc):
        if self.follow is not None and self.follow.proc.returncode is None:
            self.follow.stop(timeout=10)
        self.server.stop()

    # the run -----------------------------------------------------------------------------

    def run(self, on_sample=None) -> dict:
        """One run; returns the result dict. `on_sample(seconds, scrape, written_lines)` is
        called about every 0.5 s while hlgen writes, and while the pond catches up."""
        import pymongo
        probe_log = self.workdir / "probes.jsonl"
        server_cpu0 = self.server.cpu_seconds()
        self.follow = follow = Follow(self.pond_cmd, "/etc/hl", self.workdir)
        reader = ProbeReader(probe_log, self.server.uri)
        reader.start()
        generator = hlgen.Generator(
            self.host, rate=self.rate, duration=self.duration, seed=self.seed, start=self.start,
            hour_seconds=self.hour_seconds, partial_writes=self.partial_writes,
            probe_log=str(probe_log) if self.time_index else None, probe_every=self.probe_every)
        gen_result = {}

        def write():
            started = time.thread_time()
            try:
                gen_result["summary"] = generator.run(stop_gen)
            finally:
                gen_result["cpu"] = time.thread_time() - started

        stop_gen = threading.Event()
        gen_thread = threading.Thread(target=write, name="hlgen", daemon=True)
        t0 = time.monotonic()
        gen_thread.start()
        lag_max = {"bytes": 0.0, "seconds": 0.0, "probe_seconds": 0.0}
        problems = []

        def sample():
            s = scrape(follow.metrics_url)
            lag_max["bytes"] = max(lag_max["bytes"], s.value("pond_mongo_lag_bytes"))
            lag_max["seconds"] = max(lag_max["seconds"], s.value("pond_mongo_lag_seconds"))
            lag_max["probe_seconds"] = max(lag_max["probe_seconds"], reader.oldest_pending_age())
            return s

        def stored(s: Scrape) -> float:
            return s.value("pond_mongo_documents_total")  # inserted + duplicate + dead_lettered

        try:
            while gen_thread.is_alive():
                gen_thread.join(0.5)
                s = sample()
                if on_sample:
                    on_sample(time.monotonic() - t0, s, None)
                if follow.proc.poll() is not None:
                    problems.append(f"follow exited early with {follow.proc.returncode}")
                    break
        finally:
            stop_gen.set()
            gen_thread.join()
        written_at = time.monotonic()
        lines = gen_result["summary"]["lines"]
        at_stop = sample()
        probe_lag_at_stop = reader.oldest_pending_age()
        # Catch up: every line written is in MongoDB (by the pond's count), or the timeout.
        s = at_stop
        while stored(s) < lines and follow.proc.poll() is None \
                and time.monotonic() - written_at < self.drain_timeout:
            time.sleep(0.1)
            s = sample()
            if on_sample:
                on_sample(time.monotonic() - t0, s, lines)
        drain_seconds = time.monotonic() - written_at
        if stored(s) < lines:
            problems.append(f"not all lines stored within {self.drain_timeout:.0f} s of the "
                            f"generator's stop ({stored(s):.0f} of {lines})")
        reader.finish(timeout=5)
        final = s if follow.proc.poll() is not None else sample()
        wall = time.monotonic() - t0
        server_cpu = self.server.cpu_seconds() - server_cpu0
        pond_cpu_at_catch_up = follow.cpu_now() if follow.proc.poll() is None else None
        stop_started = time.monotonic()
        exit_code = follow.stop()
        stop_seconds = time.monotonic() - stop_started
        if exit_code != 0:
            problems.append(f"follow exited with {exit_code} after SIGTERM: "
                            + follow.err_path.read_text(errors="replace")[-1000:].strip())

        client = pymongo.MongoClient(self.server.uri)
        try:
            db = client[DATABASE]
            documents = db[COLLECTION].count_documents({})
            dead_docs = db[DEAD_LETTERS].count_documents({})
        finally:
            client.close()
        documents -= self.documents_before
        duplicates = final.value("pond_mongo_documents_total", outcome="duplicate")
        dead_lettered = final.value("pond_mongo_documents_total", outcome="dead_lettered")
        if documents != lines:
            problems.append(f"documents stored ({documents}) != lines written ({lines})")
        if duplicates:
            problems.append(f"{duplicates:.0f} duplicates")
        if dead_lettered or dead_docs:
            problems.append(f"{max(dead_lettered, dead_docs):.0f} dead letters")
        probes = reader.summary()
        if probes["error"]:
            problems.append(f"probe reader: {probes['error']}")
        elif probes["unseen"]:
            problems.append(f"{probes['unseen']} probes never seen in MongoDB")
        summary = gen_result["summary"]
        return {
            "rate": self.rate,
            "duration": self.duration,
            "lines": lines,
            "rate_achieved": summary["rate_achieved"],
            "bytes": summary["bytes"],
            "host_files": sorted(summary["files"]),
            "documents": documents,
            "old_files": self.old_files,
            "dead_letter_documents": dead_docs,
            "inserted": final.value("pond_mongo_documents_total", outcome="inserted"),
            "duplicates": duplicates,
            "dead_lettered": dead_lettered,
            "retries": final.value("pond_mongo_retries_total"),
            "probe_every": self.probe_every if self.time_index else None,
            "time_index": self.time_index,
            "latency": probes,
            "pond": {
                "entry_to_ack_seconds": final.histogram("pond_mongo_entry_to_ack_seconds"),
                "wake_to_commit_seconds": final.histogram("pond_logfile_wake_to_commit_seconds"),
                "step_seconds": final.histogram("pond_step_seconds"),
                "stage_seconds": final.histogram("pond_stage_seconds"),
                "batch_seconds": final.histogram("pond_mongo_batch_seconds"),
                "steps": final.value("pond_steps_total"),
                "stage_runs": final.value("pond_stage_runs_total"),
                "stage_failures": final.value("pond_stage_failures_total"),
                "step_failures": final.value("pond_step_failures_total"),
                "bytes_mirrored": final.value("pond_logfile_bytes_mirrored_total"),
            },
            "lag": {
                "at_generator_stop": {"bytes": at_stop.value("pond_mongo_lag_bytes"),
                                      "seconds": at_stop.value("pond_mongo_lag_seconds"),
                                      "probe_seconds": probe_lag_at_stop},
                "max_sampled": lag_max,
                "final": {"bytes": final.value("pond_mongo_lag_bytes"),
                          "seconds": final.value("pond_mongo_lag_seconds")},
                "catch_up_seconds": round(drain_seconds, 3),
            },
            "cpu_seconds": {
                "pond": follow.cpu_seconds,
                "pond_at_catch_up": pond_cpu_at_catch_up,
                "server": server_cpu,
                "generator": gen_result.get("cpu"),
                "probe_reader": reader.cpu_seconds,
            },
            "wall_seconds": round(wall, 3),
            "pond_peak_rss_mib": (follow.max_rss_kib or 0) / 1024,
            "follow_exit": exit_code,
            "follow_stop_seconds": round(stop_seconds, 3),
            "follow_last_line": _last_line(follow.out_path),
            "problems": problems,
            "ok": not problems,
        }


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


# ---------------------------------------------------------------------------------------------
# Report


def _ms(seconds) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"


def _quantiles(h: dict) -> str:
    if not h.get("count"):
        return "no samples"
    return (f"p50 {_ms(h['p50'])}, p90 {_ms(h['p90'])}, p99 {_ms(h['p99'])}, "
            f"mean {_ms(h['mean'])} ({h['count']})")


def report_lines(r: dict) -> list:
    """A run's result, for people."""
    lat = r["latency"]
    pond = r["pond"]
    cpu = r["cpu_seconds"]
    lag = r["lag"]
    wall = r["wall_seconds"]
    verdict = "OK" if r["ok"] else "FAILED: " + "; ".join(r["problems"])
    return [
        f"rate {r['rate']:,.0f} lines/s for {r['duration']:g} s: {r['lines']:,} lines written "
        f"({r['rate_achieved']:,.0f}/s, {r['bytes'] / 1048576:.1f} MiB, "
        f"{len(r['host_files'])} hour file(s))",
        f"  stored: {r['documents']:,} documents in {DATABASE}.{COLLECTION}"
        + (f" (besides the {r['old_files']:,} of the old hour files)" if r["old_files"] else "")
        + f", "
        f"{r['dead_letter_documents']} in {DATABASE}.{DEAD_LETTERS}; pond counted "
        f"{r['inserted']:,.0f} inserted, {r['duplicates']:.0f} duplicates, "
        f"{r['dead_lettered']:.0f} dead-lettered, {r['retries']:.0f} retries",
        (f"  line written -> visible in MongoDB ({lat['seen']} of {lat['probes']} probes, one "
         f"every {r['probe_every']} lines): p50 {_ms(lat['p50'])}, p90 {_ms(lat['p90'])}, "
         f"p99 {_ms(lat['p99'])}, max {_ms(lat['max'])} (poll query p50 "
         f"{_ms(lat['poll_query_p50'])})") if r["time_index"] else
        "  line written -> visible in MongoDB: not measured (no time_ns index, no probes)",
        f"  pond entry time -> MongoDB ack:  {_quantiles(pond['entry_to_ack_seconds'])}",
        f"  pond wake -> commit (+ stages):  {_quantiles(pond['wake_to_commit_seconds'])}",
        f"  pond step (scan + commit):       {_quantiles(pond['step_seconds'])}",
        f"  pond mongo stage run:            {_quantiles(pond['stage_seconds'])}",
        f"  pond mongo batch ack:            {_quantiles(pond['batch_seconds'])}",
        (f"  lag (oldest probe not yet in MongoDB): "
         f"{lag['at_generator_stop']['probe_seconds']:.2f} s at generator stop, max "
         f"{lag['max_sampled']['probe_seconds']:.2f} s" if r["time_index"] else "  lag: no probes")
        + f"; all stored {lag['catch_up_seconds']:.2f} s after the generator stopped",
        f"  pond lag gauges (bytes / seconds): at generator stop "
        f"{lag['at_generator_stop']['bytes']:,.0f} / {lag['at_generator_stop']['seconds']:.2f}, "
        f"max sampled {lag['max_sampled']['bytes']:,.0f} / {lag['max_sampled']['seconds']:.2f}, "
        f"final {lag['final']['bytes']:,.0f} / {lag['final']['seconds']:.2f}",
        f"  CPU over {wall:.1f} s: pond {_cpu(cpu['pond'], wall)}, server "
        f"{_cpu(cpu['server'], wall)}, generator {_cpu(cpu['generator'], wall)}, probe reader "
        f"{_cpu(cpu['probe_reader'], wall)}; pond peak RSS {r['pond_peak_rss_mib']:.1f} MiB",
        f"  follow: {pond['steps']:.0f} steps, {pond['stage_runs']:.0f} stage runs "
        f"({pond['stage_failures']:.0f} failed); SIGTERM -> exit {r['follow_exit']} in "
        f"{r['follow_stop_seconds']:.2f} s ({r['follow_last_line']!r})",
        f"  {verdict}",
    ]


def _cpu(seconds, wall) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.1f} s ({100 * seconds / wall:.0f}%)"
