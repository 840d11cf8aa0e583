//! The contract of [`Blobs`], as checks that any layer must pass (feature `conformance`).
//!
//! A blob reads back whole and by range, a large one too (a bucket's multipart upload);
//! a blob kept beside an archive is found from the archive's key and replaced whole; a put
//! whose reader fails leaves nothing visible; a key that is not a well-formed key is
//! refused before anything is read; a listing finds every blob with its size and nothing
//! else; deleting twice is no error. A layer's own test calls [`run`] on a new, empty
//! layer, with a way to count what the layer holds underneath (files in its folder, objects
//! in its bucket), so that the checks can see what a failure left behind:
//!
//! ```no_run
//! # fn files_under(_: &std::path::Path) -> usize { 0 }
//! let dir = std::path::Path::new("/tmp/blobs-under-test");
//! let blobs = artifact_blobs::LocalBlobs::open(dir).unwrap();
//! artifact_blobs::conformance::run(&blobs, &|| files_under(dir));
//! ```
//!
//! A failed check panics with its name and what differed, as an assertion in a test does.
//! Each check removes what it stored, so the layer is empty again after each.

use std::io::{self, Read};

use crate::{BlobKind, Blobs, beside, new_key};

/// One check: panics if the layer breaks the contract. `stored` counts what the layer
/// holds underneath.
pub type Check = fn(&dyn Blobs, &dyn Fn() -> usize);

/// The checks, by name, in the order [`run`] runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("round_trip", round_trip),
    ("large_blob", large_blob),
    ("beside_an_archive", beside_an_archive),
    ("failed_put", failed_put),
    ("malformed_keys", malformed_keys),
    ("listing", listing),
];

/// Runs every check of [`CHECKS`] on `blobs`, which must start empty; `stored` counts the
/// objects the layer holds underneath (a folder's files, temporary ones included; a
/// bucket's objects, which unfinished multipart uploads are not).
pub fn run(blobs: &dyn Blobs, stored: &dyn Fn() -> usize) {
    for (_, check) in CHECKS {
        check(blobs, stored);
    }
}

/// Bytes that do not repeat within a multipart upload's part.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn round_trip(blobs: &dyn Blobs, stored: &dyn Fn() -> usize) {
    let blob = blobs.put(BlobKind::Trace, &mut &b"hello log"[..]).unwrap();
    assert_eq!(blob.size, 9);
    let open = blobs.open(&blob.key).unwrap();
    assert_eq!(open.source.len(), 9);
    assert_eq!(&open.source.read_bytes(0, 9).unwrap()[..], b"hello log");
    assert_eq!(&open.source.read_bytes(6, 3).unwrap()[..], b"log");
    let mut streamed = String::new();
    open.source.read_stream(2, 5).unwrap().read_to_string(&mut streamed).unwrap();
    assert_eq!(streamed, "llo l");
    assert!(open.source.read_bytes(5, 10).is_err(), "a read past the end fails");
    assert!(open.modified > std::time::UNIX_EPOCH);
    assert_eq!(stored(), 1, "one object");
    blobs.delete(&blob.key).unwrap();
    blobs.delete(&blob.key).unwrap();
    assert_eq!(blobs.open(&blob.key).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(stored(), 0, "deleted");
    blobs.check().unwrap();
}

fn large_blob(blobs: &dyn Blobs, stored: &dyn Fn() -> usize) {
    let data = pattern(12 << 20);
    let blob = blobs.put(BlobKind::Archive, &mut &data[..]).unwrap();
    assert_eq!(blob.size, data.len() as u64);
    let open = blobs.open(&blob.key).unwrap();
    let at = (5 << 20) - 100;
    assert!(open.source.read_bytes(at, 300).unwrap()[..] == data[at as usize..at as usize + 300]);
    let mut all = Vec::new();
    open.source.read_stream(0, data.len() as u64).unwrap().read_to_end(&mut all).unwrap();
    assert!(all == data, "every byte back");
    assert_eq!(stored(), 1, "one object, no parts left over");
    blobs.delete(&blob.key).unwrap();
}

fn beside_an_archive(blobs: &dyn Blobs, stored: &dyn Fn() -> usize) {
    let archive = blobs.put(BlobKind::Archive, &mut &b"PK"[..]).unwrap();
    let side = blobs.put_beside(&archive.key, BlobKind::Verification, &mut &b"{}"[..]).unwrap();
    assert_eq!(Some(side.key.clone()), beside(&archive.key, BlobKind::Verification));
    // Opened before it is replaced: what a layer remembers of it must not outlive it.
    assert_eq!(&blobs.open(&side.key).unwrap().source.read_bytes(0, 2).unwrap()[..], b"{}");
    blobs.put_beside(&archive.key, BlobKind::Verification, &mut &b"[1]"[..]).unwrap();
    let reopened = blobs.open(&side.key).unwrap();
    assert_eq!(reopened.source.len(), 3, "replaced whole");
    assert_eq!(&reopened.source.read_bytes(0, 3).unwrap()[..], b"[1]");
    assert_eq!(stored(), 2);
    assert!(blobs.put_beside("archive/../x", BlobKind::Verification, &mut &b""[..]).is_err());
    blobs.delete(&side.key).unwrap();
    blobs.delete(&archive.key).unwrap();
}

fn failed_put(blobs: &dyn Blobs, stored: &dyn Fn() -> usize) {
    /// Gives `good` bytes, then fails.
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(7);
            self.0 -= n;
            Ok(n)
        }
    }
    // Early (before any part went up) and late (parts uploaded already).
    for good in [100, 11 << 20] {
        let err = blobs.put(BlobKind::Archive, &mut Failing(good)).unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "the reader's error: {err}");
        assert_eq!(stored(), 0, "nothing visible after a failure at {good}");
    }
}

fn malformed_keys(blobs: &dyn Blobs, stored: &dyn Fn() -> usize) {
    /// A reader that must not be read: a malformed key is refused first.
    struct Untouched;
    impl Read for Untouched {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            panic!("a put under a malformed key read its body")
        }
    }
    for key in ["../etc/passwd", "archive/../../x", "archive/zz", "other/0123456789abcdef0123456789abcdef"] {
        assert_eq!(blobs.open(key).unwrap_err().kind(), io::ErrorKind::InvalidInput, "open {key}");
        assert_eq!(blobs.put_at(key, &mut Untouched).unwrap_err().kind(), io::ErrorKind::InvalidInput, "put {key}");
        assert_eq!(blobs.delete(key).unwrap_err().kind(), io::ErrorKind::InvalidInput, "delete {key}");
        assert!(blobs.put_beside(key, BlobKind::Checkpoints, &mut Untouched).is_err(), "beside {key}");
    }
    assert_eq!(stored(), 0);
}

fn listing(blobs: &dyn Blobs, _: &dyn Fn() -> usize) {
    let small = blobs.put(BlobKind::Trace, &mut &b"a log"[..]).unwrap();
    let key = new_key(BlobKind::Archive).unwrap();
    let large = blobs.put_at(&key, &mut &pattern(6 << 20)[..]).unwrap();
    assert_eq!(large.key, key, "put_at stores under the key it is given");
    let side = blobs.put_beside(&key, BlobKind::Checkpoints, &mut &b"cp"[..]).unwrap();
    let mut listed: Vec<(String, u64)> = blobs.list().unwrap().into_iter().map(|b| (b.key, b.size)).collect();
    listed.sort();
    let mut expected = vec![(small.key.clone(), 5), (large.key.clone(), 6 << 20), (side.key.clone(), 2)];
    expected.sort();
    assert_eq!(listed, expected);
    assert!(blobs.list().unwrap().iter().all(|b| b.modified > std::time::UNIX_EPOCH));
    assert!(blobs.leftovers().unwrap().is_empty());
    for key in [small.key, large.key, side.key] {
        blobs.delete(&key).unwrap();
    }
}
