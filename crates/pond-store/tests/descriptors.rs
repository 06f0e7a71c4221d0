//! One transaction writing thousands of files holds a bounded number of descriptors. Its own
//! test binary: it lowers the process's open-file limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use pond_store::Compression;
use support::{NO_WAIT, new_pond, path};

// A back-fill of 3,000 new files in one transaction, with room for only 64 open files: each
// file's data and outboard are open only while it is written, and the commit syncs them one by
// one.
#[test]
fn a_transaction_over_thousands_of_files_stays_under_a_small_descriptor_limit() {
    let (_dir, pond) = new_pond(Compression::Zstd(1));
    let limit = libc::rlimit {
        rlim_cur: 64,
        rlim_max: 64,
    };
    #[allow(unsafe_code)]
    // SAFETY: setrlimit reads the struct it is given; no memory is shared.
    let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    let mut txn = pond.begin(vec![], NO_WAIT).unwrap();
    for i in 0..3000 {
        let node = txn.create_file(&path(&format!("/f{i}"))).unwrap();
        let content = format!("line {i}\n").repeat(100);
        txn.append(&node, &mut content.as_bytes(), None).unwrap();
    }
    txn.commit("3000 files").unwrap();
    let snapshot = pond.snapshot().unwrap();
    let node = snapshot.resolve(&path("/f2999")).unwrap();
    assert_eq!(snapshot.read_bytes(node.id, 0, 10).unwrap(), b"line 2999\n");
}
