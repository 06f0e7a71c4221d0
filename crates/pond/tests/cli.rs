//! Every `pond` command, driven through the real binary in temp dirs: exit codes, one-line
//! errors, exact bytes, hashes equal to `b3sum`, `--json` documents, verify on corrupted data,
//! broken pipes, and the writer lock against an open library transaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::process::{Command, ExitCode};
use std::time::Duration;
use support::logs::logfile_config;
use support::{TestPond, assert_one_line_error, b3sum, keys, log_bytes, pond_path, random_bytes};

const SIZES: &[usize] = &[
    0,
    1,
    1024,
    1025,
    16384,
    16385,
    32768,
    65536,
    1 << 20,
    (1 << 20) + 1,
];

/// Appends `bytes` to the pond file `file` as one new version, through the library.
fn append_version(tp: &TestPond, file: &str, bytes: &[u8]) -> u64 {
    tp.append_versions(file, &[bytes])[0]
}

/// Entries of `pond list --json ARGS`, by path.
fn listed(tp: &TestPond, glob: &str) -> Vec<Value> {
    tp.json(&["list", glob])["entries"]
        .as_array()
        .unwrap()
        .clone()
}

fn listed_paths(tp: &TestPond, glob: &str) -> Vec<String> {
    listed(tp, glob)
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// init, --pond / POND

// Regression: a second `init` on the same directory must refuse, not reset the catalog.
#[test]
fn init_twice_is_already_a_pond() {
    let tp = TestPond::new();
    tp.ok(&["mkdir", "/keep"]);
    let (code, err) = tp.fails(&["init"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err, &["already a pond", &tp.pond.display().to_string()]);
    assert_eq!(listed_paths(&tp, "/"), ["/keep"]);
}

// Every accepted compression spelling is stored normalised; bad ones are refused naming the value.
#[test]
fn init_compression_values_and_bad_values() {
    for (value, stored) in [("none", "none"), ("zstd", "zstd:1"), ("zstd:5", "zstd:5")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let out = Command::new(support::pond_bin())
            .arg("--pond")
            .arg(&dir)
            .args(["init", "--compression", value, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            keys(&report),
            ["compression", "instance_id", "pond", "sharing"]
        );
        assert_eq!(report["sharing"], "private");
        assert_eq!(report["compression"], stored, "{value}");
        assert_eq!(report["pond"], dir.display().to_string());
        assert_eq!(
            pond_store::Pond::open(&dir)
                .unwrap()
                .compression()
                .to_string(),
            stored
        );
    }
    for bad in ["lz4", "zstd:0", "zstd:23", "zstd:x", "zstd:", "", "ZSTD"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p");
        let out = Command::new(support::pond_bin())
            .arg("--pond")
            .arg(&dir)
            .args(["init", "--compression", bad])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "--compression {bad:?} should fail"
        );
        let err = String::from_utf8(out.stderr).unwrap();
        assert_one_line_error(&err, &["invalid compression", &format!("{bad:?}")]);
        assert!(
            !dir.join(pond_store::CATALOG_FILE).exists(),
            "{bad:?} created a pond"
        );
    }
}

// Without --pond and without POND every pond command fails, naming both ways to give it.
#[test]
fn missing_pond_flag_and_env_names_both() {
    for args in [
        &["init"][..],
        &["list"],
        &["mkdir", "/a"],
        &["log"],
        &["verify"],
    ] {
        let out = Command::new(support::pond_bin())
            .args(args)
            .env_remove("POND")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_one_line_error(&String::from_utf8(out.stderr).unwrap(), &["--pond", "POND"]);
    }
}

// POND in the environment works like --pond.
#[test]
fn pond_env_var_selects_the_pond() {
    let tp = TestPond::new();
    let out = Command::new(support::pond_bin())
        .args(["mkdir", "/from-env"])
        .env("POND", &tp.pond)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed_paths(&tp, "/"), ["/from-env"]);
}

// A directory without a catalog is refused, naming the directory.
#[test]
fn dir_that_is_not_a_pond_is_an_error() {
    let tp = TestPond::new();
    let not_a_pond = tp.host.clone();
    for args in [&["list"][..], &["mkdir", "/a"], &["cat", "/a"]] {
        let out = Command::new(support::pond_bin())
            .arg("--pond")
            .arg(&not_a_pond)
            .args(args)
            .env_remove("POND")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_one_line_error(
            &String::from_utf8(out.stderr).unwrap(),
            &["not a pond", &not_a_pond.display().to_string()],
        );
    }
    assert!(!not_a_pond.join(pond_store::CATALOG_FILE).exists());
}

// ---------------------------------------------------------------------------------------------
// mkdir

// mkdir with and without -p: parents, existing directories, a file in the way.
#[test]
fn mkdir_parents_existing_and_missing_parent() {
    let tp = TestPond::new();
    let (code, err) = tp.fails(&["mkdir", "/a/b"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err, &["/a", "no such file or directory"]);

    let made = tp.json(&["mkdir", "-p", "/a/b/c"]);
    assert_eq!(keys(&made), ["dirs", "txn"]);
    assert_eq!(made["txn"], 1);
    assert_eq!(keys(&made["dirs"][0]), ["id", "path"]);
    assert_eq!(made["dirs"][0]["path"], "/a/b/c");
    assert_eq!(made["dirs"].as_array().unwrap().len(), 1);
    assert_eq!(listed_paths(&tp, "/**"), ["/a", "/a/b", "/a/b/c"]);
    assert_eq!(listed(&tp, "/a/b")[0]["id"], made["dirs"][0]["id"]);

    // -p on an existing directory changes nothing and commits nothing.
    let again = tp.json(&["mkdir", "-p", "/a/b"]);
    assert_eq!(again["txn"], Value::Null);
    assert_eq!(tp.txns(), [1]);

    let (code, err) = tp.fails(&["mkdir", "/a/b"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err, &["/a/b", "already exists"]);

    let file = tp.host_file("f", b"x");
    tp.ok(&["copy", file.to_str().unwrap(), "/a"]);
    for args in [&["mkdir", "/a/f/x"][..], &["mkdir", "-p", "/a/f/x"]] {
        let (code, err) = tp.fails(args);
        assert_eq!(code, 1);
        assert_one_line_error(&err, &["/a/f", "not a directory"]);
    }
    assert_eq!(tp.txns(), [2, 1]);
}

// Several paths are one transaction; one bad path among them creates none of them.
#[test]
fn mkdir_several_paths_all_or_nothing() {
    let tp = TestPond::new();
    let made = tp.json(&["mkdir", "/x", "/y", "/x/z"]);
    assert_eq!(made["txn"], 1);
    let paths: Vec<&str> = made["dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/x", "/y", "/x/z"]);
    assert_eq!(
        tp.json(&["log"])["transactions"][0]["summary"],
        "mkdir /x /y /x/z"
    );

    let (code, err) = tp.fails(&["mkdir", "/p", "/q/r", "/s"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err, &["/q", "no such file or directory"]);
    let (_, err) = tp.fails(&["mkdir", "/p", "/bad/../path"]);
    assert_one_line_error(&err, &["invalid pond path", "/bad/../path"]);
    assert_eq!(listed_paths(&tp, "/"), ["/x", "/y"]);
    assert_eq!(tp.txns(), [1]);
    let (code, err) = tp.fails(&["mkdir"]);
    assert_eq!(code, 2, "no path is a usage error");
    // Regression: the one-line usage error names the missing argument.
    assert_one_line_error(&err, &["required", "<PATH>"]);
}

// Regression: malformed pond paths are a one-line error, never a panic, and change nothing.
#[test]
fn mkdir_bad_paths_fail_cleanly() {
    let tp = TestPond::new();
    for bad in ["/a/../b", "..", "/a//b", "a//b", "/a/", "/./a", "", "/a/."] {
        let (code, err) = tp.fails(&["mkdir", bad]);
        assert_eq!(code, 1, "{bad:?}");
        assert_one_line_error(&err, &["invalid pond path", &format!("{bad:?}")]);
        let (code, err) = tp.fails(&["mkdir", "-p", bad]);
        assert_eq!(code, 1, "-p {bad:?}");
        assert_one_line_error(&err, &["invalid pond path"]);
    }
    // A NUL cannot cross exec, so drive the same entry point in-process.
    let args = [
        OsString::from("pond"),
        OsString::from("--pond"),
        tp.pond.clone().into_os_string(),
        OsString::from("mkdir"),
        OsString::from_vec(b"/a\0b".to_vec()),
    ];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = pond::main_with(&pond::registry::registry(), args, &mut out, &mut err);
    assert_eq!(code, ExitCode::FAILURE);
    assert_one_line_error(
        &String::from_utf8(err).unwrap(),
        &["invalid pond path", "NUL"],
    );
    assert!(out.is_empty());
    assert!(tp.txns().is_empty());
    assert!(listed(&tp, "/").is_empty());
}

// ---------------------------------------------------------------------------------------------
// copy

// Several host files in one copy: one transaction, each file's bytes and hash as on the host.
#[test]
fn copy_several_files_is_one_transaction() {
    let tp = TestPond::new();
    tp.ok(&["mkdir", "/logs"]);
    let a = tp.host_file("a.json", &log_bytes(5000, 1));
    let b = tp.host_file("sub/b.log", &log_bytes(70_000, 2));
    let c = tp.host_file("c.bin", &random_bytes(3000, 3));
    let report = tp.json(&[
        "copy",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        c.to_str().unwrap(),
        "/logs",
    ]);
    assert_eq!(keys(&report), ["files", "txn"]);
    assert_eq!(report["txn"], 2);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    for (entry, (host, name)) in files.iter().zip([
        (&a, "/logs/a.json"),
        (&b, "/logs/b.log"),
        (&c, "/logs/c.bin"),
    ]) {
        assert_eq!(keys(entry), ["blake3", "bytes", "host_path", "id", "path"]);
        assert_eq!(entry["path"], name);
        assert_eq!(entry["host_path"], host.to_str().unwrap());
        assert_eq!(entry["bytes"], std::fs::metadata(host).unwrap().len());
        assert_eq!(entry["blake3"], b3sum(host));
        assert_eq!(tp.cat(name), std::fs::read(host).unwrap());
    }
    assert_eq!(tp.txns(), [2, 1]);
    let log = tp.json(&["log", "--limit", "1"]);
    assert_eq!(log["transactions"][0]["summary"], "copy 3 files -> /logs");
}

// Boundary sizes (frames are 1 MiB, outboard blocks 16 KiB) in both compression modes: `cat`
// returns the exact bytes, and `show`, `list` and `copy` report the hash `b3sum` prints.
#[test]
fn copy_boundary_sizes_roundtrip_and_match_b3sum() {
    for compression in ["none", "zstd"] {
        let tp = TestPond::with_compression(compression);
        let mut hosts = Vec::new();
        for (i, &size) in SIZES.iter().enumerate() {
            // Alternate compressible log lines and incompressible bytes.
            let bytes = if i % 2 == 0 {
                log_bytes(size, i as u64)
            } else {
                random_bytes(size, i as u64)
            };
            hosts.push((tp.host_file(&format!("size-{size}.bin"), &bytes), bytes));
        }
        let mut args = vec!["copy"];
        args.extend(hosts.iter().map(|(p, _)| p.to_str().unwrap()));
        args.push("/");
        let copied = tp.json(&args);
        let listing = listed(&tp, "/");
        assert_eq!(listing.len(), SIZES.len());
        for (i, (host, bytes)) in hosts.iter().enumerate() {
            let size = bytes.len();
            let name = format!("/size-{size}.bin");
            let expected = b3sum(host);
            let context = format!("{compression}, {size} bytes");
            assert!(tp.cat(&name) == *bytes, "cat differs: {context}");
            assert_eq!(copied["files"][i]["blake3"], expected, "{context}");
            assert_eq!(copied["files"][i]["bytes"], size, "{context}");
            let shown = tp.json(&["show", &name]);
            let versions = shown["versions"].as_array().unwrap();
            assert_eq!(versions.len(), 1, "{context}");
            assert_eq!(versions[0]["blake3"], expected, "{context}");
            assert_eq!(versions[0]["segment_blake3"], expected, "{context}");
            assert_eq!(versions[0]["total_len"], size, "{context}");
            let entry = listing.iter().find(|e| e["path"] == name.as_str()).unwrap();
            assert_eq!(entry["blake3"], expected, "{context}");
            assert_eq!(entry["size"], size, "{context}");
            assert_eq!(entry["versions"], 1, "{context}");
        }
        assert!(tp.ok(&["verify"]).starts_with("ok: 10 file(s)"));
    }
}

// Regression: copying a name that exists fails and leaves the first file's bytes in place.
#[test]
fn copy_same_name_twice_keeps_the_first() {
    let tp = TestPond::new();
    let host = tp.host_file("same.log", b"first\n");
    tp.ok(&["copy", host.to_str().unwrap(), "/"]);
    let first_hash = b3sum(&host);
    std::fs::write(&host, b"second, longer\n").unwrap();
    let (code, err) = tp.fails(&["copy", host.to_str().unwrap(), "/"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err, &["/same.log", "already exists"]);
    assert_eq!(tp.cat("/same.log"), b"first\n");
    assert_eq!(listed(&tp, "/same.log")[0]["blake3"], first_hash);
    assert_eq!(tp.txns(), [1]);
}

// Regression: a missing host file among good ones is named and nothing at all is committed.
#[test]
fn copy_missing_host_file_names_it_and_commits_nothing() {
    let tp = TestPond::new();
    tp.ok(&["mkdir", "/d"]);
    let good = tp.host_file("good.log", &log_bytes(100_000, 9));
    let missing = tp.host.join("missing.log");
    let log_before = tp.ok(&["log"]);
    let (code, err) = tp.fails(&[
        "copy",
        good.to_str().unwrap(),
        missing.to_str().unwrap(),
        "/d",
    ]);
    assert_eq!(code, 1);
    assert_one_line_error(&err, &[missing.to_str().unwrap()]);
    assert_eq!(tp.ok(&["log"]), log_before);
    assert!(listed(&tp, "/d").is_empty());
    // The rolled-back data of good.log is gone too.
    let data: Vec<_> = std::fs::read_dir(tp.pond.join("data")).unwrap().collect();
    assert!(data.is_empty(), "data left behind: {data:?}");
    assert!(tp.ok(&["verify"]).starts_with("ok: 0 file(s)"));
}

// copy into a path that is not a directory, or does not exist, is refused.
#[test]
fn copy_into_missing_or_non_directory() {
    let tp = TestPond::new();
    let host = tp.host_file("x.log", b"x");
    tp.ok(&["copy", host.to_str().unwrap(), "/"]);
    let (_, err) = tp.fails(&["copy", host.to_str().unwrap(), "/nodir"]);
    assert_one_line_error(&err, &["/nodir"]);
    let (_, err) = tp.fails(&["copy", host.to_str().unwrap(), "/x.log"]);
    assert_one_line_error(&err, &["/x.log", "not a directory"]);
    let (_, err) = tp.fails(&["copy", tp.host.to_str().unwrap(), "/"]);
    assert_one_line_error(&err, &[tp.host.to_str().unwrap()]);
    assert_eq!(tp.txns(), [1]);
}

// ---------------------------------------------------------------------------------------------
// list

// Directory children, -l, and globs within and across components; no match is an empty list.
#[test]
fn list_children_long_and_globs() {
    let tp = TestPond::new();
    tp.ok(&["mkdir", "-p", "/a/b"]);
    let json = tp.host_file("x.json", b"{}\n");
    let txt = tp.host_file("y.txt", b"hello\n");
    tp.ok(&["copy", json.to_str().unwrap(), txt.to_str().unwrap(), "/a"]);
    tp.ok(&["copy", json.to_str().unwrap(), "/a/b"]);
    tp.ok(&["copy", json.to_str().unwrap(), "/"]);

    assert_eq!(tp.ok(&["list"]), "/a\n/x.json\n");
    assert_eq!(tp.ok(&["list", "/a"]), "/a/b\n/a/x.json\n/a/y.txt\n");
    assert_eq!(tp.ok(&["list", "/a/y.txt"]), "/a/y.txt\n");
    assert_eq!(
        listed_paths(&tp, "/**"),
        [
            "/a",
            "/a/b",
            "/a/b/x.json",
            "/a/x.json",
            "/a/y.txt",
            "/x.json"
        ]
    );
    assert_eq!(listed_paths(&tp, "/a/*"), ["/a/b", "/a/x.json", "/a/y.txt"]);
    // `*` stays within one component: a relative `*.json` is the root's JSON files only.
    assert_eq!(listed_paths(&tp, "*.json"), ["/x.json"]);
    assert_eq!(
        listed_paths(&tp, "/**/*.json"),
        ["/a/b/x.json", "/a/x.json", "/x.json"]
    );
    assert_eq!(listed_paths(&tp, "/a/{b,y.txt}"), ["/a/b", "/a/y.txt"]);
    for none in ["/*.csv", "/nowhere/**", "/a/y.txt/*"] {
        assert!(listed(&tp, none).is_empty(), "{none}");
        assert_eq!(tp.ok(&["list", none]), "", "{none}");
    }

    let long = tp.ok(&["list", "-l", "/a"]);
    let rows: Vec<Vec<&str>> = long
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{long}");
    assert_eq!(rows[0][0], "dir");
    assert_eq!(rows[0][1], "-");
    assert_eq!(rows[0][4], "/a/b");
    assert_eq!(rows[2][..3], ["file", "6", "v1"]);
    assert_eq!(rows[2][4], "/a/y.txt");

    let entries = listed(&tp, "/a");
    assert_eq!(keys(&entries[0]), ["id", "kind", "path"]);
    assert_eq!(entries[0]["kind"], "dir");
    assert_eq!(
        keys(&entries[2]),
        ["blake3", "id", "kind", "path", "size", "versions"]
    );
    assert_eq!(entries[2]["kind"], "file");
    assert_eq!(entries[2]["blake3"], b3sum(&txt));
    assert_eq!(rows[2][3], entries[2]["id"].to_string());

    let (_, err) = tp.fails(&["list", "/nope"]);
    assert_one_line_error(&err, &["/nope", "no such file or directory"]);
}

// ---------------------------------------------------------------------------------------------
// cat, show, log

// Every old version is readable with --version and `show` has one row per version whose hash is
// b3sum of that prefix; a missing version names the path and the latest.
#[test]
fn cat_old_versions_and_show_rows() {
    let tp = TestPond::new();
    tp.ok(&["mkdir", "/d"]);
    let segments = [
        log_bytes(40_000, 1),
        log_bytes(1, 2),
        random_bytes(1_100_000, 3),
    ];
    for (i, segment) in segments.iter().enumerate() {
        assert_eq!(append_version(&tp, "/d/f.log", segment), i as u64 + 1);
    }
    let mut prefix = Vec::new();
    let mut prefixes = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        prefix.extend_from_slice(segment);
        let host = tp.host_file(&format!("prefix-{}", i + 1), &prefix);
        let seg_host = tp.host_file(&format!("segment-{}", i + 1), segment);
        prefixes.push((prefix.clone(), b3sum(&host), b3sum(&seg_host)));
    }
    for (i, (bytes, _, _)) in prefixes.iter().enumerate() {
        let out = tp.output(&["cat", "/d/f.log", "--version", &(i + 1).to_string()]);
        assert!(out.status.success());
        assert!(out.stdout == *bytes, "version {} differs", i + 1);
    }
    assert!(tp.cat("/d/f.log") == prefixes[2].0);

    let (code, err) = tp.fails(&["cat", "/d/f.log", "--version", "4"]);
    assert_eq!(code, 1);
    assert_one_line_error(&err, &["/d/f.log", "no version 4", "latest is 3"]);
    let (_, err) = tp.fails(&["cat", "/d"]);
    assert_one_line_error(&err, &["/d", "not a file"]);
    let (_, err) = tp.fails(&["cat", "/d/none"]);
    assert_one_line_error(&err, &["/d/none", "no such file"]);

    let shown = tp.json(&["show", "/d/f.log"]);
    assert_eq!(keys(&shown), ["id", "path", "versions"]);
    assert_eq!(shown["path"], "/d/f.log");
    let rows = shown["versions"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for (i, row) in rows.iter().enumerate() {
        let (bytes, hash, segment_hash) = &prefixes[i];
        assert_eq!(
            keys(row),
            [
                "blake3",
                "first_version",
                "segment_blake3",
                "segment_len",
                "total_len",
                "txn",
                "version"
            ]
        );
        assert_eq!(row["version"], i + 1);
        assert_eq!(row["first_version"], i + 1, "nothing folded");
        assert_eq!(row["txn"], i + 2, "mkdir was txn 1");
        assert_eq!(row["segment_len"], segments[i].len());
        assert_eq!(row["total_len"], bytes.len());
        assert_eq!(row["blake3"], *hash);
        assert_eq!(row["segment_blake3"], *segment_hash);
    }
    let text = tp.ok(&["show", "/d/f.log"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("/d/f.log (node "));
    let last: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(
        last,
        ["3", "4", "1100000", "1140001", prefixes[2].1.as_str()]
    );
    let (_, err) = tp.fails(&["show", "/d"]);
    assert_one_line_error(&err, &["/d", "not a file"]);
}

// log: newest first, --limit, and the argv each transaction was made with.
#[test]
fn log_newest_first_limit_and_argv() {
    let tp = TestPond::new();
    tp.ok(&["mkdir", "/a"]);
    tp.ok(&["mkdir", "/b"]);
    let host = tp.host_file("h.log", b"line\n");
    tp.ok(&["copy", host.to_str().unwrap(), "/a"]);

    let log = tp.json(&["log"]);
    assert_eq!(keys(&log), ["transactions"]);
    let txns = log["transactions"].as_array().unwrap();
    assert_eq!(txns.len(), 3);
    for (t, expected) in txns.iter().zip([3, 2, 1]) {
        assert_eq!(keys(t), ["argv", "last_txn", "summary", "time", "txn"]);
        assert_eq!(t["txn"], expected);
        assert_eq!(t["last_txn"], expected, "nothing folded");
        assert!(t["time"].as_str().unwrap().ends_with('Z'), "{t}");
    }
    assert_eq!(
        txns[0]["summary"],
        format!("copy {} -> /a/h.log", host.display())
    );
    assert_eq!(txns[2]["summary"], "mkdir /a");
    let argv: Vec<&str> = txns[0]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        argv,
        [
            support::pond_bin(),
            "--pond",
            tp.pond.to_str().unwrap(),
            "copy",
            host.to_str().unwrap(),
            "/a"
        ]
    );

    let limited = tp.json(&["log", "--limit", "2"]);
    let numbers: Vec<u64> = limited["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["txn"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2]);

    let text = tp.ok(&["log", "--limit", "1"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("txn 3 "), "{text}");
    assert!(lines[1].trim().starts_with("$ "), "{text}");
    assert!(lines[1].contains(" copy "), "{text}");
}

// ---------------------------------------------------------------------------------------------
// verify

// A clean pond verifies with exit 0, in text and JSON, whole or by path.
#[test]
fn verify_clean_pond_exits_zero() {
    let tp = TestPond::new();
    tp.ok(&["mkdir", "/d"]);
    let host = tp.host_file("v.log", &log_bytes(300_000, 4));
    tp.ok(&["copy", host.to_str().unwrap(), "/d"]);
    append_version(&tp, "/d/v.log", &log_bytes(50_000, 5));
    let text = tp.ok(&["verify"]);
    assert_eq!(
        text,
        "ok: 1 file(s), 2 version(s), 350000 bytes checked, 0 problem(s)\n"
    );
    let report = tp.json(&["verify"]);
    assert_eq!(
        keys(&report),
        ["bytes", "files", "ok", "problems", "versions"]
    );
    assert_eq!(report["ok"], true);
    assert_eq!(report["files"], 1);
    assert_eq!(report["versions"], 2);
    assert_eq!(report["bytes"], 350_000);
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(tp.json(&["verify", "/d/v.log"])["ok"], true);
    assert_eq!(tp.json(&["verify", "/d"])["files"], 1);
}

/// Flips one byte of `file` at `offset`.
fn flip_byte(file: &std::path::Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 0x20;
    f.write_all_at(&byte, offset).unwrap();
}

// Regression: a flipped content byte is found, naming the pond file and the first version whose
// bytes it lies in, with exit 1 (text and JSON).
#[test]
fn verify_flipped_content_byte_names_path_and_version() {
    let tp = TestPond::with_compression("none");
    tp.ok(&["mkdir", "/d"]);
    let host = tp.host_file("c.log", &log_bytes(100_000, 6));
    tp.ok(&["copy", host.to_str().unwrap(), "/d"]);
    append_version(&tp, "/d/c.log", &log_bytes(60_000, 7));
    let data = tp.data_file(tp.node_id("/d/c.log"));
    // Raw frames: data file offset = content offset.
    assert_eq!(std::fs::metadata(&data).unwrap().len(), 160_000);
    for (offset, version) in [(130_000u64, 2u64), (5_000, 1)] {
        flip_byte(&data, offset);
        let out = tp.output(&["verify"]);
        assert_eq!(out.status.code(), Some(1), "byte {offset}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            stdout.contains(&format!("CORRUPT /d/c.log version {version}:")),
            "byte {offset}: {stdout}"
        );
        assert!(stdout.contains("FAILED"), "{stdout}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));

        let out = tp.output(&["verify", "/d/c.log", "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["ok"], false);
        let problems = report["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "{report}");
        assert_eq!(keys(&problems[0]), ["detail", "path", "version"]);
        assert_eq!(problems[0]["path"], "/d/c.log");
        assert_eq!(problems[0]["version"], version);
        flip_byte(&data, offset);
        assert_eq!(tp.json(&["verify"])["ok"], true, "restored byte {offset}");
    }
}

// Regression: a truncated data file is reported (not read as a short file), with exit 1.
#[test]
fn verify_truncated_data_file_is_reported() {
    let tp = TestPond::with_compression("none");
    let host = tp.host_file("t.log", &log_bytes(80_000, 8));
    tp.ok(&["copy", host.to_str().unwrap(), "/"]);
    let data = tp.data_file(tp.node_id("/t.log"));
    let file = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    file.set_len(40_000).unwrap();
    let out = tp.output(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("CORRUPT /t.log"), "{stdout}");
    assert!(stdout.contains("40000"), "{stdout}");
    let report = tp.output(&["verify", "--json"]);
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["problems"][0]["path"], "/t.log");
    // cat of a truncated file fails rather than returning short content.
    let (_, err) = tp.fails(&["cat", "/t.log"]);
    assert_one_line_error(
        &err,
        &["/t.log", &format!("{}.0.dat", tp.node_id("/t.log"))],
    );
    // Regression: an I/O cause is printed once, not once per error-chain level.
    assert_eq!(
        err.matches("failed to fill whole buffer").count(),
        1,
        "{err}"
    );
}

// Regression: a corrupted outboard node of a file past 32 KiB is reported, naming the file.
#[test]
fn verify_corrupt_outboard_is_reported() {
    let tp = TestPond::new();
    let host = tp.host_file("o.log", &log_bytes(200_000, 10));
    tp.ok(&["copy", host.to_str().unwrap(), "/"]);
    let outboard = tp.outboard_file(tp.node_id("/o.log"));
    let len = std::fs::metadata(&outboard).unwrap().len();
    assert!(
        len >= 64,
        "a 200 KB file has stable outboard nodes ({len} bytes)"
    );
    flip_byte(&outboard, len / 2);
    let out = tp.output(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("CORRUPT /o.log version 1"), "{stdout}");
    assert!(stdout.contains("outboard"), "{stdout}");
    // The content itself is intact.
    assert_eq!(tp.cat("/o.log"), std::fs::read(&host).unwrap());
}

// ---------------------------------------------------------------------------------------------
// --json, pipes, the writer lock

// Every reporting command's --json is exactly one JSON document with the documented fields.
#[test]
fn json_on_every_reporting_command_is_one_document() {
    let tp = TestPond::new();
    let host = tp.host_file("j.log", b"{\"a\":1}\n");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["mkdir", "/j"], vec!["dirs", "txn"]),
        (
            vec!["copy", host.to_str().unwrap(), "/j"],
            vec!["files", "txn"],
        ),
        (vec!["list", "/j"], vec!["entries"]),
        (vec!["list", "/**", "-l"], vec!["entries"]),
        (vec!["show", "/j/j.log"], vec!["id", "path", "versions"]),
        (vec!["log"], vec!["transactions"]),
        (
            vec!["verify"],
            vec!["bytes", "files", "ok", "problems", "versions"],
        ),
        (vec!["list-factories"], vec!["factories"]),
    ];
    for (args, fields) in cases {
        let mut with_json = args.clone();
        with_json.push("--json");
        let stdout = tp.ok(&with_json);
        let doc: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {stdout}"));
        assert_eq!(keys(&doc), fields, "{args:?}");
    }
    let listed = tp.json(&["list", "/**"]);
    assert_eq!(listed["entries"].as_array().unwrap().len(), 2);
}

// Regression: `pond cat big | head -c 10` exits 0 with nothing on stderr.
#[test]
fn broken_pipe_exits_zero_without_error_text() {
    let tp = TestPond::new();
    let bytes = random_bytes(4 << 20, 11);
    let host = tp.host_file("big.bin", &bytes);
    tp.ok(&["copy", host.to_str().unwrap(), "/"]);
    for args in ["cat /big.bin", "log", "list --json /"] {
        let script = format!(
            "\"$POND_BIN\" --pond \"$POND_DIR\" {args} 2>\"$ERR\" | head -c 10 >/dev/null; \
             echo ${{PIPESTATUS[0]}}"
        );
        let err_file = tp.tmp.path().join("stderr.txt");
        let out = Command::new("bash")
            .args(["-c", &script])
            .env("POND_BIN", support::pond_bin())
            .env("POND_DIR", &tp.pond)
            .env("ERR", &err_file)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            "0",
            "pond {args}"
        );
        assert_eq!(
            std::fs::read_to_string(&err_file).unwrap(),
            "",
            "pond {args}"
        );
    }
}

// Regression: a second writer gives up after --lock-timeout naming the holder's pid; readers run
// beside the open transaction and see only the last commit.
#[test]
fn writer_lock_names_holder_and_readers_never_block() {
    let tp = TestPond::new();
    let committed = log_bytes(50_000, 12);
    let host = tp.host_file("f.log", &committed);
    tp.ok(&["copy", host.to_str().unwrap(), "/"]);
    let committed_hash = b3sum(&host);

    let pond = tp.library();
    let mut txn = pond
        .begin(vec!["holder".into()], Duration::from_secs(5))
        .unwrap();
    let node = txn.resolve_file(&pond_path("/f.log")).unwrap();
    txn.append(&node, &mut &random_bytes(300_000, 13)[..], None)
        .unwrap();
    txn.create_file(&pond_path("/uncommitted.log")).unwrap();

    let (code, err) = tp.fails(&["--lock-timeout", "1", "mkdir", "/x"]);
    assert_eq!(code, 1);
    assert_one_line_error(
        &err,
        &[
            &format!("pid {}", std::process::id()),
            "locked",
            tp.pond.to_str().unwrap(),
        ],
    );
    let (_, err) = tp.fails(&["--lock-timeout", "0", "copy", host.to_str().unwrap(), "/x"]);
    assert_one_line_error(&err, &[&format!("pid {}", std::process::id())]);

    // Readers: the last commit only, while the writer holds the lock.
    assert!(tp.cat("/f.log") == committed);
    assert_eq!(listed_paths(&tp, "/"), ["/f.log"]);
    let entry = &listed(&tp, "/f.log")[0];
    assert_eq!(entry["size"], committed.len());
    assert_eq!(entry["blake3"], committed_hash);
    assert_eq!(
        tp.json(&["show", "/f.log"])["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(tp.txns(), [1]);
    assert_eq!(tp.json(&["verify"])["ok"], true);

    drop(txn);
    // Rolled back: the lock is free and the file is as committed.
    tp.ok(&["--lock-timeout", "1", "mkdir", "/x"]);
    assert!(tp.cat("/f.log") == committed);
    assert_eq!(tp.json(&["verify"])["ok"], true);
    assert_eq!(listed_paths(&tp, "/"), ["/f.log", "/x"]);
}

// The pond file grows through the library across commits and the binary sees each commit.
#[test]
fn appends_through_library_are_visible_after_commit() {
    let tp = TestPond::new();
    let host = tp.host_file("g.log", b"one\n");
    tp.ok(&["copy", host.to_str().unwrap(), "/"]);
    append_version(&tp, "/g.log", b"two\n");
    assert_eq!(tp.cat("/g.log"), b"one\ntwo\n");
    let both = tp.host_file("both", b"one\ntwo\n");
    assert_eq!(listed(&tp, "/g.log")[0]["blake3"], b3sum(&both));
    assert_eq!(listed(&tp, "/g.log")[0]["versions"], 2);
}

// Regression: on a full disk, read-only commands failed with `disk I/O error: Error code 4874`
// (SQLite could not set up its shared memory file), and write errors hid the cause. Reads
// work; every write error says "no space left on device" with the path.
#[test]
fn full_disk_reads_work_and_writes_say_no_space_left() {
    let disk = match support::SmallDisk::mount("4m") {
        Ok(disk) => disk,
        Err(reason) => {
            support::skipped("full_disk_reads_work_and_writes_say_no_space_left", &reason);
            return;
        }
    };
    let pond_dir = disk.dir.path().join("pond");
    let run = |args: &[&str]| {
        std::process::Command::new(support::pond_bin())
            .arg("--pond")
            .arg(&pond_dir)
            .args(args)
            .env("POND_LOG", "warn")
            .output()
            .unwrap()
    };
    assert!(run(&["init"]).status.success());
    let host = tempfile::tempdir().unwrap();
    let content = support::log_bytes(300_000, 5);
    std::fs::write(host.path().join("a.log"), &content).unwrap();
    std::fs::write(host.path().join("b.log"), support::random_bytes(900_000, 6)).unwrap();
    assert!(
        run(&["copy", host.path().join("a.log").to_str().unwrap(), "/"])
            .status
            .success()
    );
    disk.fill();

    for args in [
        vec!["status"],
        vec!["verify"],
        vec!["list", "-l"],
        vec!["log"],
        vec!["show", "/a.log"],
        vec!["settings"],
    ] {
        let out = run(&args);
        assert!(
            out.status.success(),
            "pond {args:?} on a full disk: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(run(&["cat", "/a.log"]).stdout == content);
    for args in [
        vec!["mkdir", "/x"],
        vec!["copy", host.path().join("b.log").to_str().unwrap(), "/"],
    ] {
        let out = run(&args);
        assert!(
            !out.status.success(),
            "pond {args:?} succeeded on a full disk"
        );
        assert_one_line_error(
            &String::from_utf8_lossy(&out.stderr),
            &["no space left on device", pond_dir.to_str().unwrap()],
        );
    }
}

/// Every file and directory below `dir`, with its mode.
fn modes_below(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32, bool)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        out.push((
            entry.path(),
            meta.permissions().mode() & 0o7777,
            meta.is_dir(),
        ));
        if meta.is_dir() {
            out.extend(modes_below(&entry.path()));
        }
    }
    out
}

// Regression: the pond directory, catalog and data files were world-readable (0755/0644)
// though they hold the host's logs and the configs. A new pond is the owner's alone (0700,
// files 0600); `--shared-group` lets the group read (2750, 0640). Every file a run creates
// (data, outboards, catalog and its logs, locks, run records) follows.
#[test]
fn a_new_pond_is_private_and_shared_group_lets_the_group_read() {
    use std::os::unix::fs::PermissionsExt;
    for (flag, dir_mode, file_mode) in [
        (None, 0o700, 0o600),
        (Some("--shared-group"), 0o2750, 0o640),
    ] {
        let tp = TestPond::with_init_args(flag.as_slice());
        let host = tp.host_file("app.log", b"{\"a\":1}\n");
        tp.ok(&["copy", host.to_str().unwrap(), "/"]);
        tp.install(
            "logfile",
            "/etc/app",
            &logfile_config(
                "app",
                &format!("{}/app.log", tp.host.display()),
                "logs/app",
                "",
            ),
        );
        tp.ok(&["run", "/etc/app", "sync"]);
        tp.ok(&["maintain"]);
        let mode = std::fs::metadata(&tp.pond).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, dir_mode, "{flag:?}: the pond directory");
        let below = modes_below(&tp.pond);
        assert!(below.iter().any(|(p, ..)| p.ends_with("runs")), "{below:?}");
        assert!(
            below.iter().any(|(p, ..)| p.ends_with("catalog.sqlite")),
            "{below:?}"
        );
        for (path, mode, is_dir) in &below {
            let want = if *is_dir { dir_mode & 0o777 } else { file_mode };
            assert_eq!(
                mode & 0o777,
                want,
                "{flag:?}: {} is {mode:o}",
                path.display()
            );
        }
    }
}

// Regression: `id: position` was `<node id>:<offset>`, unique in one pond only, so two hosts
// feeding one collection collided. Every pond gets an instance id at `init`, and position ids
// start with it; two ponds never share one.
#[test]
fn every_pond_gets_its_own_instance_id() {
    let a = TestPond::new();
    let b = TestPond::new();
    let id = |tp: &TestPond| {
        tp.json(&["settings"])["settings"]["instance_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (ia, ib) = (id(&a), id(&b));
    assert_eq!(ia.len(), 16, "{ia}");
    assert!(ia.chars().all(|c| c.is_ascii_hexdigit()), "{ia}");
    assert_ne!(ia, ib);
    // Stable: it is a setting of the pond, read again the same.
    assert_eq!(id(&a), ia);
}

// A factory's name where a node's path belongs: said so, with how to install and run a node.
#[test]
fn a_factory_name_where_a_node_path_belongs_says_how_to_install_one() {
    let tp = TestPond::new();
    let (code, err) = tp.fails(&["run", "logfile", "sync"]);
    assert_eq!(code, 1);
    assert_one_line_error(
        &err,
        &[
            "`logfile` is a factory, not a node",
            "pond mknod logfile /etc/NAME --config-path CONFIG.yaml",
            "pond run /etc/NAME sync",
        ],
    );
}
