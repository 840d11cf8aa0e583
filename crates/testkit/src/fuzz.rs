//! The properties the fuzz targets check, as plain functions over bytes: `fuzz/` holds
//! one-line shims that call them, and `crates/core/tests/fuzz_corpus.rs` replays every
//! committed corpus and regression input through them. Each panics only when a property
//! breaks.

use std::io::Read;

use artifact_core::metadata::{Limits, MetadataReader, generate};
use artifact_core::request::{ArchiveRequest, RequestPath, Upstream};
use artifact_core::{
    Archive, ArtifactPath, CentralDirectory, DirectoryRead, DirectoryStep, EntryDecoder, EntryReader, Error, JobRef,
    MAX_RANGES, MemorySource, RangeRequest, Source, VerifyOptions, open_entry, parse_range, verify,
};

/// Declared sizes above this are listed but not read, so that memory stays bounded.
const MAX_READ: u64 = 4 << 20;
/// Entries read per input, so that one input stays fast.
const MAX_ENTRIES: usize = 2000;

/// An accepted path is canonical (parsing it again gives it back, byte for byte) and cannot
/// escape: no empty, `.` or `..` segment, no leading separator, no control character.
pub fn artifact_path(data: &[u8]) {
    if let Ok(path) = ArtifactPath::new(data) {
        assert_eq!(path.as_bytes(), data);
        assert_eq!(ArtifactPath::new(path.as_str()).as_ref(), Ok(&path));
        assert!(!path.as_str().starts_with(['/', '\\']));
        assert!(!path.as_str().chars().any(char::is_control));
        for segment in path.segments() {
            assert!(!segment.is_empty() && segment != "." && segment != "..", "{path:?}");
        }
        // Joined under a directory, it stays under it.
        let joined = std::path::Path::new("/dest").join(path.as_str());
        assert!(joined.starts_with("/dest"));
    }
}

/// Arbitrary bytes opened as an archive: listing and reading every (small enough) entry
/// ends in a value or a typed error; a read that succeeds produced exactly the declared
/// size with the declared CRC-32; the single-look-up path agrees with the archive's; and
/// verification refuses exactly the entries that do not read or that the index marks.
pub fn archive(data: &[u8]) {
    let Ok(archive) = Archive::open(MemorySource::new(data.to_vec())) else {
        return;
    };
    let index = archive.index().ok();
    // Verification refuses exactly the entries that fail to read or that the index marks
    // (run when the whole archive is small enough to read every entry of).
    let small = archive
        .entries()
        .take(MAX_ENTRIES + 1)
        .try_fold((0usize, 0u64), |(n, size), e| e.ok().map(|e| (n + 1, size.saturating_add(e.size()))));
    let small = small.is_some_and(|(n, size)| n <= MAX_ENTRIES && size <= MAX_READ.saturating_mul(16));
    let verification = small.then(|| verify(&archive, &VerifyOptions::new().threads(1)).ok()).flatten();
    for entry in archive.entries().take(MAX_ENTRIES) {
        let Ok(entry) = entry else { break };
        if let (Some(v), Some(index)) = (&verification, &index)
            && entry.size() <= MAX_READ
        {
            let readable = read_checked(archive.reader(&entry)).is_some() && index.damage_of(&entry).is_none();
            assert_eq!(v.refusal_of(&entry).is_none(), readable, "verification disagrees with a read");
        }
    }
    for entry in archive.entries().take(MAX_ENTRIES) {
        let Ok(entry) = entry else { return };
        if entry.size() > MAX_READ {
            continue;
        }
        let read = read_checked(archive.reader(&entry));
        if let (Ok(path), Some(bytes)) = (ArtifactPath::new(entry.name()), &read) {
            // The first entry of this name is what both look-ups serve.
            if archive.find(&path).ok().as_ref() == Some(&entry) {
                let again = read_checked(open_entry(archive.source(), &path));
                assert_eq!(again.as_ref(), Some(bytes), "open_entry disagrees");
            }
        }
        if let Some(bytes) = read {
            assert_eq!(bytes.len() as u64, entry.size());
            assert_eq!(crc32fast::hash(&bytes), entry.crc32());
        }
    }
}

/// Arbitrary bytes read as an archive's central directory by [`DirectoryRead`] (the
/// engine's sans-io reader, which async index loads drive) gives what a blocking read of
/// the same bytes gives: the same directory, or an error both ways; however the bytes
/// arrive (a tail of 1 or 22 bytes or all of it; fed one byte at a time for small inputs,
/// in pieces for larger ones), and in a bounded number of steps.
pub fn directory_read(data: &[u8]) {
    let source = MemorySource::new(data.to_vec());
    let expected = CentralDirectory::read(&source);
    let size = data.len() as u64;
    let piece = if data.len() <= 2048 { 1 } else { (data.len() / 64).max(1) as u64 };
    for tail_len in [1, 22, data.len()] {
        let tail = source.read_bytes(size - tail_len.min(data.len()) as u64, tail_len.min(data.len())).unwrap();
        let mut reading = DirectoryRead::new(tail, size);
        let mut steps = 0u64;
        let got = loop {
            steps += 1;
            assert!(steps <= size + 64, "a reading of {size} bytes that does not end");
            match reading.step() {
                Ok(DirectoryStep::Want { offset, len }) => {
                    assert!(len > 0 && offset.checked_add(len).is_some_and(|end| end <= size), "want {offset}+{len}");
                    let len = len.min(piece) as usize;
                    reading.feed(offset, source.read_bytes(offset, len).unwrap());
                }
                Ok(DirectoryStep::Done(cd)) => break Ok(cd),
                Err(e) => break Err(e),
            }
        };
        match (&expected, &got) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.as_bytes(), b.as_bytes(), "tail {tail_len}");
                assert_eq!(a.location(), b.location(), "tail {tail_len}");
            }
            (Err(_), Err(_)) => {}
            (a, b) => {
                panic!("a blocking read gives {:?}, the sans-io one {:?} (tail {tail_len})", a.is_ok(), b.is_ok())
            }
        }
    }
}

/// Arbitrary bytes opened as an archive, every (small enough) entry read twice: by the
/// blocking [`EntryReader`] and by an [`EntryDecoder`] fed the bytes of the ranges it asks
/// for in pieces (one byte at a time, into outputs of one to a few bytes, for small
/// entries; in pieces of a few KiB for larger ones). Both give the same bytes, or both
/// fail; the decoder ends in a bounded number of steps, never takes or writes more than it
/// was given, and never takes more data than the entry's compressed size.
pub fn entry_decode(data: &[u8]) {
    let Ok(archive) = Archive::open(MemorySource::new(data.to_vec())) else {
        return;
    };
    let limit = archive.central_directory().data_limit();
    for entry in archive.entries().take(MAX_DECODED_ENTRIES) {
        let Ok(entry) = entry else { return };
        if entry.size() > MAX_READ {
            continue;
        }
        let blocking = read_checked(archive.reader(&entry));
        let (piece, out_len) = if entry.compressed_size() <= 64 << 10 { (1, 3) } else { (4096, 8192) };
        let decoded = decode_in_pieces(data, EntryDecoder::new(entry.clone(), limit), piece, out_len);
        assert_eq!(blocking.is_some(), decoded.is_some(), "the blocking reader and the decoder disagree on {entry:?}");
        if let (Some(a), Some(b)) = (&blocking, &decoded) {
            assert!(a == b, "the blocking reader and the decoder give different bytes for {entry:?}");
        }
    }
}

/// Entries [`entry_decode`] reads per input.
const MAX_DECODED_ENTRIES: usize = 200;

/// Drives `decoder` over `data` as the bytes of the ranges it asks for (cut short where
/// `data` ends), `piece` bytes at a time into outputs of 1 to `out_len` bytes.
fn decode_in_pieces(
    data: &[u8],
    decoder: artifact_core::Result<EntryDecoder>,
    piece: usize,
    out_len: usize,
) -> Option<Vec<u8>> {
    let mut decoder = decoder.ok()?;
    let mut range: &[u8] = &[];
    let mut out = Vec::new();
    let mut buf = vec![0u8; out_len];
    let mut data_taken = 0u64;
    let bound = (data.len() as u64 + decoder.entry().size()) * 2 + 64;
    for step in 0u64.. {
        assert!(step <= bound, "a decoder that does not end");
        if decoder.is_done() {
            assert_eq!(out.len() as u64, decoder.entry().size());
            return Some(out);
        }
        if let Some((offset, len)) = decoder.next_range() {
            let start = usize::try_from(offset).ok()?.min(data.len());
            let end = start.saturating_add(usize::try_from(len).ok()?).min(data.len());
            range = &data[start..end];
        }
        if range.is_empty() && decoder.needs_input() {
            let _ = decoder.end_of_input();
            assert!(decoder.decode(b"x", &mut buf).is_err(), "a decoder used after its end of input");
            return None;
        }
        let given = &range[..range.len().min(piece)];
        let room = 1 + (step as usize % out_len);
        let in_data = decoder.in_data();
        let decoded = decoder.decode(given, &mut buf[..room]);
        let Ok(done) = decoded else {
            assert!(decoder.decode(b"x", &mut buf).is_err(), "a decoder used after an error");
            return None;
        };
        assert!(done.consumed <= given.len() && done.produced <= room, "{done:?} of {} and {room}", given.len());
        if in_data {
            data_taken += done.consumed as u64;
            assert!(data_taken <= decoder.entry().compressed_size(), "data taken past the entry's compressed bytes");
        }
        range = &range[done.consumed..];
        out.extend_from_slice(&buf[..done.produced]);
    }
    unreachable!()
}

/// A valid archive (Info-ZIP's, with stored, deflated, empty and directory entries) with
/// bytes flipped as `data` says (pairs of offset and mask): every entry either reads with
/// its declared size and CRC-32, or fails with a typed error.
pub fn entry_stream(data: &[u8]) {
    let mut bytes = include_bytes!("../../../tests/data/infozip-basic.zip").to_vec();
    for pair in data.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
        bytes[at] ^= pair[2];
    }
    archive(&bytes);
    entry_decode(&bytes);
}

/// Both metadata properties on one input: decoding it, and round-tripping the entries made
/// from it.
pub fn metadata(data: &[u8]) {
    metadata_decode(data);
    metadata_roundtrip(data);
}

/// Arbitrary bytes decoded as a `metadata.gz` under small limits: entries or a typed error.
pub fn metadata_decode(data: &[u8]) {
    let limits = Limits { max_entries: 10_000, max_decompressed: 16 << 20, ..Limits::default() };
    let Ok(reader) = MetadataReader::with_limits(data, limits) else { return };
    let mut owned = Vec::new();
    for entry in reader {
        match entry {
            Ok(e) => {
                assert!(!e.path.starts_with('/') && !e.path.contains("//"));
                owned.push(e);
            }
            Err(Error::Corrupt(_) | Error::Io(_)) => break,
            Err(other) => panic!("untyped metadata error: {other}"),
        }
    }
    // The borrowing reader serves the same entries, field for field.
    let Ok(mut reader) = MetadataReader::with_limits(data, limits) else { panic!("opened once, not twice") };
    let mut served = 0;
    while let Ok(Some(e)) = reader.next_ref() {
        assert_eq!(Some(&e.to_entry()), owned.get(served), "entry {served}");
        served += 1;
    }
    assert_eq!(served, owned.len());
}

/// Entries made from `data` (an archive of stored entries whose names are the lines of
/// `data`), generated into a `metadata.gz` and decoded again: every entry whose name GitLab
/// keeps comes back with its size and CRC-32, in byte order, with its parents.
pub fn metadata_roundtrip(data: &[u8]) {
    let names: Vec<&[u8]> = data.split(|&b| b == b'\n').filter(|n| !n.is_empty()).take(64).collect();
    let archive_bytes = stored_archive(&names);
    let Ok(archive) = Archive::open(MemorySource::new(archive_bytes)) else {
        panic!("a stored archive of {} entries did not open", names.len())
    };
    let entries: Vec<_> = archive.entries().map(|e| e.expect("own archive")).collect();
    let gz = generate(&entries, Vec::new()).expect("in-memory write");
    let decoded: Vec<_> =
        MetadataReader::new(&gz[..]).expect("own metadata").map(|e| e.expect("own metadata")).collect();
    let paths: Vec<&str> = decoded.iter().map(|e| e.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(paths, sorted, "paths are unique and sorted byte-wise");
    for entry in &entries {
        let Ok(name) = std::str::from_utf8(entry.name()) else {
            continue;
        };
        let dropped = name.starts_with('/')
            || name.starts_with("./")
            || name.starts_with("../")
            || name.contains("//")
            || name.contains("/./")
            || name.contains("/../");
        if dropped {
            continue;
        }
        let last = entries.iter().rev().find(|e| e.name() == entry.name()).expect("itself");
        let found = decoded.iter().find(|d| d.path == name).unwrap_or_else(|| panic!("{name:?} missing"));
        assert_eq!(found.metadata.size, Some(last.size()));
        assert_eq!(found.metadata.crc, Some(last.crc32()));
        if let Some((parent, _)) = name.trim_end_matches('/').rsplit_once('/') {
            let parent = format!("{parent}/");
            let clean = !parent.split('/').any(|s| s == "." || s == "..");
            if clean && !parent.contains("//") {
                assert!(paths.contains(&parent.as_str()), "parent {parent:?} of {name:?} missing");
            }
        }
    }
}

/// A minimal archive of stored entries named `names`, each holding its own name.
fn stored_archive(names: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for name in names {
        let name = &name[..name.len().min(1024)];
        let crc = crc32fast::hash(name);
        let offset = out.len() as u32;
        let le16 = |v: usize| (v as u16).to_le_bytes();
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&le16(name.len()));
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name);
        out.extend_from_slice(name);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(name.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u32).to_le_bytes());
        central.extend_from_slice(&le16(name.len()));
        central.extend_from_slice(&[0; 8]);
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(names.len() as u16).to_le_bytes());
    out.extend_from_slice(&(names.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn read_checked(reader: artifact_core::Result<EntryReader>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match reader.and_then(|mut r| r.read_to_end(&mut out).map_err(Error::from_io)) {
        Ok(_) => Some(out),
        Err(Error::InvalidPath(_)) => panic!("reading an entry never checks a path"),
        Err(_) => None,
    }
}

/// The `Range` header parser (`artifact_core::parse_range`): the first eight bytes are the
/// representation's length, the rest the header. Every range answered lies inside the
/// representation, there are at most [`MAX_RANGES`], and writing the answer back as a
/// header gives the same answer.
pub fn http_range(data: &[u8]) {
    let (len_bytes, header) = data.split_at(data.len().min(8));
    let mut len = [0u8; 8];
    len[..len_bytes.len()].copy_from_slice(len_bytes);
    let len = u64::from_le_bytes(len);
    let header = String::from_utf8_lossy(header);
    let answer = parse_range(&header, len);
    match &answer {
        RangeRequest::Full => {}
        RangeRequest::Unsatisfiable => assert!(header.trim().starts_with("bytes=")),
        RangeRequest::Partial(ranges) => {
            assert!(!ranges.is_empty() && ranges.len() <= MAX_RANGES);
            for &(start, end) in ranges {
                assert!(start < end && end <= len, "{start}..{end} of {len} from {header:?}");
            }
            let again: Vec<String> = ranges.iter().map(|(s, e)| format!("{s}-{}", e - 1)).collect();
            assert_eq!(parse_range(&format!("bytes={}", again.join(",")), len), answer);
        }
    }
}

/// The upstream every [`upstream_url`] input is sent to.
const UPSTREAM: (&str, &str) = ("http://gitlab.internal:8080", "/gitlab");

/// The path of `url` (on [`UPSTREAM`]'s origin) as a WHATWG URL parser reads it, checked
/// to be the path as written: below the prefix, nothing collapsed or re-encoded on the way,
/// and no dot segment in any encoding.
fn checked_path(url: &str) -> url::Url {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url:?} is not a URL: {e}"));
    assert_eq!(parsed.origin().ascii_serialization(), UPSTREAM.0, "{url:?} left the upstream");
    let written = url[UPSTREAM.0.len()..].split('?').next().unwrap_or("");
    assert_eq!(parsed.path(), written, "the URL parser rewrote the path of {url:?}");
    assert!(parsed.path().starts_with(&format!("{}/", UPSTREAM.1)), "{url:?} left the prefix");
    assert!(RequestPath::parse(parsed.path()).is_ok(), "{url:?} holds a dot segment");
    parsed
}

/// Whether a raw segment is or hides a dot segment, the slow way: decoded again and again
/// (at most 8 times), each form looked at whole, with overlong two- and three-byte forms
/// of ASCII read as ASCII.
fn slow_dot(segment: &str) -> bool {
    let mut current = segment.as_bytes().to_vec();
    for _ in 0..8 {
        let mut plain = Vec::new();
        let mut i = 0;
        while i < current.len() {
            match current[i..] {
                [lead @ (0xC0 | 0xC1), cont, ..] if cont & 0xC0 == 0x80 => {
                    plain.push(((lead & 1) << 6) | (cont & 0x3F));
                    i += 2;
                }
                [0xE0, mid, cont, ..] if mid & 0xE0 == 0x80 && cont & 0xC0 == 0x80 => {
                    plain.push(((mid & 1) << 6) | (cont & 0x3F));
                    i += 3;
                }
                [0xF0, 0x80, mid, cont, ..] if mid & 0xE0 == 0x80 && cont & 0xC0 == 0x80 => {
                    plain.push(((mid & 1) << 6) | (cont & 0x3F));
                    i += 4;
                }
                _ => {
                    plain.push(current[i]);
                    i += 1;
                }
            }
        }
        let dot = plain.split(|b| *b == b'/' || *b == b'\\').any(|piece| {
            let piece = piece.split(|b| *b == b';').next().unwrap_or(piece);
            piece == b"." || piece == b".."
        });
        if dot {
            return true;
        }
        let decoded: Vec<u8> = percent_encoding::percent_decode(&current).collect();
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    true
}

/// The upstream URLs a proxy builds (`artifact_core::request`), for any input: the first
/// line is a request's path and query; the next three a project, a ref and a job name. The
/// request-path rule refuses exactly the paths that decoding every segment to the end
/// shows a dot segment in (its quick answers are right). A
/// path the request-path rule takes becomes a URL that a WHATWG URL parser reads exactly as
/// written, below the upstream's prefix, without a dot segment, whose segments decode to
/// the request's; typed parts that are taken become an archive download in one of the API's
/// two shapes, each part one segment that decodes to itself.
pub fn upstream_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let upstream = Upstream::new(UPSTREAM.0, UPSTREAM.1).expect("the fuzzed upstream");
    let mut lines = text.split('\n');
    let request = lines.next().unwrap_or("");
    let (path, query) = match request.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request, None),
    };
    // The rule's quick answers agree with decoding every segment to the end.
    let refused = RequestPath::check(path).is_err();
    assert_eq!(refused, path.strip_prefix('/').is_none_or(|rest| rest.split('/').any(slow_dot)), "{path:?}");
    if let Ok(parsed) = RequestPath::parse(path) {
        let url = checked_path(&upstream.below(&parsed, query));
        let below: Vec<Vec<u8>> = url.path()[UPSTREAM.1.len() + 1..]
            .split('/')
            .map(|s| percent_encoding::percent_decode_str(s).collect())
            .collect();
        let asked: Vec<Vec<u8>> = parsed.segments().map(<[u8]>::to_vec).collect();
        assert_eq!(below, asked, "the upstream names other segments than {path:?}");
    }
    let (project, ref_name, job) = (lines.next().unwrap_or("7"), lines.next(), lines.next());
    let job = match (ref_name, job) {
        (Some(ref_name), Some(job)) => JobRef::Latest { ref_name: ref_name.to_owned(), job: job.to_owned() },
        _ => JobRef::Id(data.len() as u64),
    };
    let Ok(archive) = ArchiveRequest::new(project, job.clone()) else { return };
    let url = checked_path(&upstream.archive(&archive));
    let segs: Vec<String> = url.path()[UPSTREAM.1.len() + 1..]
        .split('/')
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8().expect("UTF-8 parts").into_owned())
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&job, &segs[..]) {
        (JobRef::Id(id), ["api", "v4", "projects", p, "jobs", n, "artifacts"]) => {
            assert_eq!((*p, *n), (project, id.to_string().as_str()));
            assert_eq!(url.query(), None);
        }
        (JobRef::Latest { ref_name, job }, ["api", "v4", "projects", p, "jobs", "artifacts", r, "download"]) => {
            assert_eq!((*p, *r), (project, ref_name.as_str()));
            let pairs: Vec<(String, String)> =
                url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            assert_eq!(pairs, [("job".to_owned(), job.clone())]);
        }
        _ => panic!("{url} is not an archive download's shape"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_range_property_holds_on_a_few_inputs() {
        for (len, header) in
            [(1000u64, "bytes=0-1,-5,7-"), (0, "bytes=0-"), (u64::MAX, "bytes=-1"), (5, "bytes=  1 - 2 ,")]
        {
            let mut data = len.to_le_bytes().to_vec();
            data.extend_from_slice(header.as_bytes());
            super::http_range(&data);
        }
    }

    #[test]
    fn the_upstream_url_property_holds_on_a_few_inputs() {
        for input in [
            "/api/v4/projects/g%2Fp/jobs?page=2\ng/p\nfeature/x\nbuild docs",
            "/%2e%2e/admin\n..\nmain\nj",
            "/a//b/%ff/%5C/;x/?q=<'#>\n42",
            "/\n\u{202e}\u{fe0f}&#?%\nv1.2/rc?\na&b=c",
        ] {
            super::upstream_url(input.as_bytes());
        }
    }
}
