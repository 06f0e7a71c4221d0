"""Tests for testdata/hlgen.py (the live node_trades generator).

Run: python3 -m unittest testdata/test_hlgen.py   (about 15 s)
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hlgen  # noqa: E402

SCRIPT = os.path.join(HERE, "hlgen.py")
SAMPLE = os.path.join(HERE, "hl", "node_trades", "hourly", "20250624", "2")
KEYS = ["coin", "side", "time", "px", "sz", "hash", "trade_dir_override", "side_info"]
SIDE_KEYS = ["user", "start_pos", "oid", "twap_id", "cloid"]
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}$")
DECIMAL_RE = re.compile(r"^-?\d+\.\d+$")


def read_tree(root):
    """{relative path: bytes} for every file under root/node_trades."""
    out = {}
    for dirpath, _, names in os.walk(os.path.join(root, "node_trades")):
        for name in names:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, root)] = f.read()
    return out


def natural_key(rec):
    a, b = rec["side_info"]
    return (rec["time"], rec["coin"], rec["px"], rec["sz"],
            a["oid"], a["start_pos"], b["oid"], b["start_pos"])


def run_cli(root, *args):
    return subprocess.run([sys.executable, SCRIPT, root, "--quiet", *args],
                          check=True, capture_output=True, text=True, timeout=60)


class HlgenTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.report = os.path.join(self.root, "report.json")

    def tearDown(self):
        self.tmp.cleanup()

    def load_report(self):
        with open(self.report) as f:
            return json.load(f)

    def check_lines(self, data, path):
        """Every line is whole, valid JSON shaped like the node's records; returns them."""
        self.assertTrue(data == b"" or data.endswith(b"\n"), f"{path}: partial last line")
        records = []
        for raw in data.decode("ascii").splitlines():
            rec = json.loads(raw)
            self.assertEqual(list(rec), KEYS, path)
            self.assertIn(rec["side"], ("A", "B"))
            self.assertRegex(rec["time"], TIME_RE)
            self.assertRegex(rec["px"], DECIMAL_RE)
            self.assertRegex(rec["sz"], DECIMAL_RE)
            self.assertRegex(rec["hash"], r"^0x[0-9a-f]{64}$")
            self.assertEqual(rec["trade_dir_override"], "Na")
            self.assertEqual(len(rec["side_info"]), 2)
            for side in rec["side_info"]:
                self.assertEqual(list(side), SIDE_KEYS, path)
                self.assertRegex(side["user"], r"^0x[0-9a-f]{40}$")
                self.assertRegex(side["start_pos"], DECIMAL_RE)
                self.assertIsInstance(side["oid"], int)
                self.assertTrue(side["twap_id"] is None or isinstance(side["twap_id"], int))
                self.assertTrue(side["cloid"] is None or re.match(r"^0x[0-9a-f]{32}$", side["cloid"]))
            records.append(rec)
        return records

    def check_report_matches_disk(self, report, tree):
        self.assertEqual(sorted(report["files"]), sorted(tree))
        for path, data in tree.items():
            self.assertEqual(report["files"][path]["lines"], data.count(b"\n"), path)
            self.assertEqual(report["files"][path]["bytes"], len(data), path)
        self.assertEqual(report["lines"], sum(d.count(b"\n") for d in tree.values()))
        self.assertEqual(report["bytes"], sum(len(d) for d in tree.values()))
        self.assertEqual(report["unique_lines"], report["lines"] - report["duplicates"])

    def test_sample_key_order(self):
        # The shapes this file checks are the ones of the node sample kept in testdata/.
        with open(SAMPLE) as f:
            rec = json.loads(f.readline())
        self.assertEqual(list(rec), KEYS)
        self.assertEqual(list(rec["side_info"][0]), SIDE_KEYS)

    def test_layout_and_rollover_across_a_day(self):
        probe = os.path.join(self.root, "probe.jsonl")
        t0 = time.time_ns()
        run_cli(self.root, "--start", "2025-06-24T22", "--hour-seconds", "1", "--duration", "3.5",
                "--rate", "1000", "--report", self.report, "--probe-log", probe,
                "--probe-every", "50")
        t1 = time.time_ns()
        tree = read_tree(self.root)
        order = ["node_trades/hourly/20250624/22", "node_trades/hourly/20250624/23",
                 "node_trades/hourly/20250625/0", "node_trades/hourly/20250625/1"]
        self.assertEqual(sorted(tree), sorted(order))
        report = self.load_report()
        self.check_report_matches_disk(report, tree)
        self.assertEqual(report["duplicates"], 0)
        self.assertEqual(report["stopped_by"], "duration")
        for path in order[:3]:  # full simulated hours: ~1 s of lines each
            self.assertAlmostEqual(report["files"][path]["lines"], 1000, delta=150)
        # Lines in file order carry strictly increasing real times, within the run.
        times, keys = [], set()
        for path in order:
            for rec in self.check_lines(tree[path], path):
                times.append(rec["time"])
                keys.add(natural_key(rec))
        self.assertEqual(times, sorted(times))
        self.assertEqual(len(set(times)), len(times))
        self.assertEqual(len(keys), len(times))  # every line a distinct document
        self.assertGreaterEqual(times[0], hlgen.iso_ns(t0))
        self.assertLessEqual(times[-1], hlgen.iso_ns(t1))
        # Probe lines point at the line they describe and follow its write.
        with open(probe) as f:
            probes = [json.loads(line) for line in f]
        self.assertAlmostEqual(len(probes), report["lines"] / 50, delta=2)
        for p in probes:
            self.assertEqual(list(p), ["time", "written_at_ns", "path", "offset"])
            data = tree[p["path"]]
            line = data[p["offset"]: data.index(b"\n", p["offset"])]
            self.assertEqual(json.loads(line)["time"], p["time"])
            self.assertGreaterEqual(p["written_at_ns"], 0)
            self.assertGreaterEqual(hlgen.iso_ns(p["written_at_ns"]), p["time"])

    def test_rate_2000_over_3s(self):
        run_cli(self.root, "--rate", "2000", "--duration", "3", "--report", self.report)
        report = self.load_report()
        tree = read_tree(self.root)
        self.check_report_matches_disk(report, tree)
        self.assertLess(abs(report["rate_achieved"] - 2000) / 2000, 0.05, report)
        self.assertLess(abs(report["lines"] - 6000) / 6000, 0.05, report)
        self.assertAlmostEqual(report["elapsed_s"], 3.0, delta=0.15)

    def _signal_leaves_whole_lines(self, signum, *extra):
        proc = subprocess.Popen([sys.executable, SCRIPT, self.root, "--quiet", "--rate", "8000",
                                 "--report", self.report, *extra])
        try:
            time.sleep(1.2)
            proc.send_signal(signum)
            self.assertEqual(proc.wait(timeout=10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
        report = self.load_report()
        self.assertEqual(report["stopped_by"], "signal")
        tree = read_tree(self.root)
        self.assertTrue(tree)
        self.check_report_matches_disk(report, tree)
        self.assertGreater(report["lines"], 1000)
        for path, data in tree.items():
            self.check_lines(data, path)
        return report

    def test_sigterm_leaves_only_whole_lines(self):
        # Every write split inside a line: the stop still waits for the rest of the line.
        report = self._signal_leaves_whole_lines(signal.SIGTERM, "--partial-writes",
                                                 "--partial-fraction", "1")
        self.assertGreater(report["split_writes"], 10)

    def test_sigint_exits_cleanly(self):
        self._signal_leaves_whole_lines(signal.SIGINT)

    def test_lines_limit_and_determinism(self):
        def content(root):
            recs = []
            for path, data in sorted(read_tree(root).items()):
                recs += [dict(json.loads(line), time=None) for line in data.splitlines()]
            return recs

        run_cli(self.root, "--lines", "1500", "--rate", "20000", "--seed", "7",
                "--report", self.report)
        self.assertEqual(self.load_report()["lines"], 1500)
        self.assertEqual(self.load_report()["stopped_by"], "lines")
        with tempfile.TemporaryDirectory() as other:
            gen = hlgen.Generator(other, rate=30000, lines=1500, seed=7)
            summary = gen.run(threading.Event())
            self.assertEqual(summary["lines"], 1500)
            self.assertEqual(content(other), content(self.root))
        with tempfile.TemporaryDirectory() as other:
            hlgen.Generator(other, rate=30000, lines=300, seed=8).run()
            self.assertNotEqual(content(other)[:300], content(self.root)[:300])

    def test_duplicates_and_thread_stop(self):
        stop = threading.Event()
        gen = hlgen.Generator(self.root, rate=5000, dup_every=20, report=self.report)
        thread = threading.Thread(target=gen.run, args=(stop,))
        thread.start()
        time.sleep(1.0)
        stop.set()
        thread.join(5)
        self.assertFalse(thread.is_alive())
        report = self.load_report()
        tree = read_tree(self.root)
        self.check_report_matches_disk(report, tree)
        self.assertAlmostEqual(report["duplicates"], report["lines"] / 20, delta=5)
        recs, copies = [], 0
        for path, data in tree.items():
            recs += self.check_lines(data, path)
            # A duplicate is a byte-for-byte copy of an earlier line of the same file.
            seen = set()
            for line in data.splitlines():
                copies += line in seen
                seen.add(line)
        self.assertEqual(copies, report["duplicates"])
        self.assertEqual(len({natural_key(r) for r in recs}), len(recs) - report["duplicates"])

    def test_start_parsing(self):
        self.assertEqual(hlgen.parse_start("2025-06-24T22"), 1750802400 * hlgen.NS)
        self.assertEqual(hlgen.hour_path(1750802400 // 3600), "node_trades/hourly/20250624/22")
        self.assertEqual(hlgen.hour_path(1750802400 // 3600 + 2), "node_trades/hourly/20250625/0")
        self.assertEqual(hlgen.iso_ns(1750733796_172847427), "2025-06-24T02:56:36.172847427")
        with self.assertRaises(ValueError):
            hlgen.parse_start("yesterday")


if __name__ == "__main__":
    unittest.main()
