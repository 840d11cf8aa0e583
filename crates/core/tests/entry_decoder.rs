//! `EntryDecoder`, the sans-io entry decoder, as a driver written from its docs uses it:
//! its ranges (a second one for a long local extra field), misuse that leaves it as it was,
//! errors that are final, and the data it takes never past the entry's compressed bytes.

mod common;

use std::io::ErrorKind;

use artifact_core::{Archive, ArtifactPath, Corruption, EntryDecoder, Error, MemorySource};
use common::*;

fn decoder(bytes: &[u8], name: &str) -> EntryDecoder {
    let archive = Archive::open(MemorySource::new(bytes.to_vec())).unwrap();
    let entry = archive.find(&ArtifactPath::new(name).unwrap()).unwrap();
    EntryDecoder::new(entry, archive.central_directory().data_limit()).unwrap()
}

fn range(bytes: &[u8], (offset, len): (u64, u64)) -> &[u8] {
    let start = (offset as usize).min(bytes.len());
    &bytes[start..(start + len as usize).min(bytes.len())]
}

/// What a drive gives: the ranges asked for, the bytes (or the error), and the compressed
/// bytes taken while in the data.
type Drive = (Vec<(u64, u64)>, Result<Vec<u8>, Error>, u64);

/// Drives `d` over `bytes` in `piece`-byte pieces.
fn drive(bytes: &[u8], mut d: EntryDecoder, piece: usize) -> Drive {
    let (mut ranges, mut out, mut data_taken) = (Vec::new(), Vec::new(), 0u64);
    let mut input: &[u8] = &[];
    let mut buf = [0u8; 100];
    while !d.is_done() {
        if let Some(r) = d.next_range() {
            ranges.push(r);
            input = range(bytes, r);
        }
        if input.is_empty() && d.needs_input() {
            return (ranges, Err(d.end_of_input()), data_taken);
        }
        let in_data = d.in_data();
        let step = match d.decode(&input[..input.len().min(piece)], &mut buf) {
            Ok(step) => step,
            Err(e) => return (ranges, Err(e), data_taken),
        };
        if in_data {
            data_taken += step.consumed as u64;
        }
        input = &input[step.consumed..];
        out.extend_from_slice(&buf[..step.produced]);
    }
    (ranges, Ok(out), data_taken)
}

#[test]
fn one_range_or_two_for_a_long_extra_field_in_any_pieces() {
    let data = text(3000, 4);
    for (extra_len, wanted) in [(100usize, 1usize), (5000, 2)] {
        let bytes = with_local_extra(extra_len, &data);
        for piece in [1, 7, 4096] {
            let (ranges, out, taken) = drive(&bytes, decoder(&bytes, "x.txt"), piece);
            assert_eq!(out.unwrap(), data, "extra {extra_len}, pieces of {piece}");
            assert_eq!(ranges.len(), wanted, "extra {extra_len}: {ranges:?}");
            assert_eq!(taken, data.len() as u64, "stored: the data phase took exactly the data");
        }
    }
    let bytes = build(&[deflated("d.txt", text(200_000, 9))]);
    let (ranges, out, taken) = drive(&bytes, decoder(&bytes, "d.txt"), 1);
    assert_eq!(out.unwrap(), text(200_000, 9));
    assert_eq!(ranges.len(), 1);
    let archive = Archive::open(MemorySource::new(bytes.clone())).unwrap();
    let entry = archive.find(&ArtifactPath::new("d.txt").unwrap()).unwrap();
    assert_eq!(taken, entry.compressed_size(), "deflated: never past the compressed bytes");
}

#[test]
fn misuse_is_an_invalid_input_that_leaves_the_decoder_as_it_was() {
    let bytes = build(&[deflated("d.txt", text(5000, 2))]);
    let mut d = decoder(&bytes, "d.txt");
    // Input before the range was collected.
    let e = d.decode(b"PK", &mut [0; 8]).unwrap_err();
    assert!(matches!(&e, Error::Io(io) if io.kind() == ErrorKind::InvalidInput), "{e:?}");
    let first = d.next_range().unwrap();
    let mut input = range(&bytes, first);
    assert_eq!(d.next_range(), None, "one range at a time");
    // The header takes no output room; the data needs some.
    while !d.in_data() {
        let step = d.decode(input, &mut []).unwrap();
        input = &input[step.consumed..];
    }
    let e = d.decode(input, &mut []).unwrap_err();
    assert!(matches!(&e, Error::Io(io) if io.kind() == ErrorKind::InvalidInput), "{e:?}");
    let e = d.take_stored(b"x").unwrap_err();
    assert!(matches!(&e, Error::Io(io) if io.kind() == ErrorKind::InvalidInput), "a deflated entry: {e:?}");
    // Still usable: the rest decodes and verifies.
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while !d.is_done() {
        let step = d.decode(input, &mut buf).unwrap();
        input = &input[step.consumed..];
        out.extend_from_slice(&buf[..step.produced]);
    }
    assert_eq!(out, text(5000, 2));
    assert_eq!(d.next_range(), None);
    let e = d.end_of_input();
    assert!(matches!(&e, Error::Io(io) if io.kind() == ErrorKind::InvalidInput), "{e:?}");
    assert!(d.is_done(), "a misuse after the end leaves it done");
    assert_eq!(d.decode(b"more", &mut buf).unwrap().consumed, 0, "takes nothing once done");
}

#[test]
fn a_cut_range_and_a_wrong_crc_are_final_errors() {
    let data = text(5000, 3);
    let bytes = build(&[stored("s.txt", data.clone())]);
    let archive = Archive::open(MemorySource::new(bytes.clone())).unwrap();
    let entry = archive.find(&ArtifactPath::new("s.txt").unwrap()).unwrap();
    let limit = archive.central_directory().data_limit();
    // The range cut after 40 bytes of data.
    let mut d = EntryDecoder::new(entry.clone(), limit).unwrap();
    let (offset, _) = d.next_range().unwrap();
    let mut taken = 0;
    while !d.in_data() {
        taken += d.decode(&bytes[offset as usize + taken..], &mut []).unwrap().consumed;
    }
    let header = (d.data_offset().unwrap() - offset) as usize;
    assert_eq!(taken, header, "the header, and not a byte more");
    let cut = &bytes[offset as usize..offset as usize + header + 40];
    let step = d.decode(&cut[header..], &mut [0; 64]).unwrap();
    assert_eq!((step.consumed, step.produced), (40, 40));
    assert!(d.needs_input());
    let e = d.end_of_input();
    assert!(matches!(e, Error::Corrupt(Corruption::Deflate { consumed: 40, .. })), "{e:?}");
    assert!(d.decode(&bytes, &mut [0; 64]).is_err(), "final");
    // A data byte flipped (the central directory's CRC-32 no longer matches): the read
    // fails where the data ends, never with an end.
    let mut flipped = bytes.clone();
    flipped[offset as usize + header + 10] ^= 1;
    let (_, out, _) = drive(&flipped, EntryDecoder::new(entry, limit).unwrap(), 4096);
    let e = out.unwrap_err();
    assert!(matches!(e, Error::Corrupt(Corruption::CrcMismatch { .. })), "{e:?}");
}

#[test]
fn a_local_name_of_another_length_is_refused_before_a_second_range() {
    let data = text(100, 1);
    let mut bytes = with_local_extra(5000, &data);
    // The local header's name length, made longer than the central directory's name.
    bytes[26] = bytes[26].wrapping_add(1);
    let (ranges, out, _) = drive(&bytes, decoder(&bytes, "x.txt"), 4096);
    let e = out.unwrap_err();
    assert!(matches!(e, Error::Corrupt(Corruption::LocalHeaderMismatch { field: "name", .. })), "{e:?}");
    assert_eq!(ranges.len(), 1, "refused from the fixed part alone");
}

#[test]
fn checkpoints_kept_while_decoding_in_small_pieces_are_those_an_import_builds() {
    let bytes = build(&[deflated("big.txt", text(3 << 20, 5)), stored("s.bin", vec![1u8; 100])]);
    let archive = Archive::open(MemorySource::new(bytes.clone())).unwrap();
    let entry = archive.find(&ArtifactPath::new("big.txt").unwrap()).unwrap();
    let spacing = 256 << 10;
    let built = artifact_core::checkpoints::EntryCheckpoints::build(&archive, &entry, spacing).unwrap();
    for (piece, room) in [(7usize, 100usize), (4096, 1), (1 << 20, 64 << 10)] {
        let mut d = decoder(&bytes, "big.txt");
        d.keep_checkpoints(spacing).unwrap();
        let mut input: &[u8] = &[];
        let mut out = vec![0u8; room];
        let mut produced = Vec::new();
        while !d.is_done() {
            if let Some(r) = d.next_range() {
                input = range(&bytes, r);
            }
            assert!(d.take_checkpoints().is_none(), "none before the entry checked out");
            let step = d.decode(&input[..input.len().min(piece)], &mut out).unwrap();
            input = &input[step.consumed..];
            produced.extend_from_slice(&out[..step.produced]);
        }
        assert_eq!(produced, text(3 << 20, 5), "pieces of {piece}, room {room}");
        let kept = d.take_checkpoints().expect("kept, and the entry checked out");
        assert!(kept.points.len() >= 8);
        assert_eq!(kept, built, "pieces of {piece}, room {room}");
        assert!(d.take_checkpoints().is_none(), "taken once");
    }
    // Not for a stored entry, nor once the data was taken.
    let mut stored = decoder(&bytes, "s.bin");
    assert!(matches!(stored.keep_checkpoints(spacing), Err(Error::Checkpoints(_))));
    let mut d = decoder(&bytes, "big.txt");
    let r = d.next_range().unwrap();
    let input = range(&bytes, r);
    let mut out = vec![0u8; 100];
    let mut at = 0;
    while d.produced() == 0 {
        at += d.decode(&input[at..], &mut out).unwrap().consumed;
    }
    let misuse = d.keep_checkpoints(spacing).unwrap_err();
    assert!(matches!(&misuse, Error::Io(e) if e.kind() == ErrorKind::InvalidInput), "{misuse}");
}
