#!/usr/bin/env python3
"""Python half of the zip fixture generator (stdlib only: zipfile, zlib, struct, ...).

Driven by scripts/make-fixtures.sh; run that, not this. Subcommands:

  pattern OUT          write data.bin for infozip-basic (bytes 0..255 four times)
  junk N OUT           write N deterministic junk bytes (contains no "PK")
  set-dos-time ZIP     rewrite every local + central DOS time/date to the fixed stamp
  python OUTDIR        write python-*.zip and truncated-*.zip (needs OUTDIR/infozip-basic.zip)
  manifest OUTDIR      write OUTDIR/manifest.json and OUTDIR/README.md, check sizes
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import sys
import warnings
import zipfile
import zlib

DT = (2024, 1, 2, 3, 4, 5)  # same instant as `touch -d '2024-01-02 03:04:05 UTC'`
# Info-ZIP rounds odd seconds up (05 -> 06); use its encoding for set-dos-time so the
# patched stdin entry matches the other Info-ZIP entries.
INFOZIP_DOS_TIME = (3 << 11) | (4 << 5) | (6 // 2)
INFOZIP_DOS_DATE = ((2024 - 1980) << 9) | (1 << 5) | 2

SIG_LOCAL = 0x04034B50
SIG_CENTRAL = 0x02014B50
SIG_EOCD = 0x06054B50
SIG_EOCD64 = 0x06064B50
SIG_LOC64 = 0x07064B50

MAX_FILE = 64 * 1024
MAX_FILE_EXEMPT = {"python-comment.zip": 66 * 1024}  # 65,535-byte comment + 1 entry
MAX_TOTAL = 400 * 1024

REGEN = "bash scripts/make-fixtures.sh"


# --------------------------------------------------------------------------- raw parsing


def find_eocd(data: bytes) -> int:
    """Strict EOCD search: last signature whose comment length ends exactly at EOF."""
    lo = max(0, len(data) - 22 - 0xFFFF)
    for pos in range(len(data) - 22, lo - 1, -1):
        if data[pos : pos + 4] == b"PK\x05\x06":
            (clen,) = struct.unpack_from("<H", data, pos + 20)
            if pos + 22 + clen == len(data):
                return pos
    raise ValueError("no end of central directory record")


def parse_cd(data: bytes) -> dict:
    """What the central directory claims (handles Zip64 and prepended data)."""
    e = find_eocd(data)
    _, disk, cd_disk, n_here, n, cd_size, cd_off, clen = struct.unpack_from("<IHHHHIIH", data, e)
    cd_end = e
    zip64 = False
    if e >= 20 and struct.unpack_from("<I", data, e - 20)[0] == SIG_LOC64:
        zip64 = True
        _, _, e64, _ = struct.unpack_from("<IIQI", data, e - 20)
        sig, _, _, _, _, _, _, n, cd_size, cd_off = struct.unpack_from("<IQHHIIQQQQ", data, e64)
        assert sig == SIG_EOCD64
        cd_end = e64
    shift = cd_end - (cd_off + cd_size)  # bytes prepended without adjusting offsets
    pos = cd_off + shift
    entries = []
    for _ in range(n):
        (sig, vmade, vneed, flags, method, t, d, crc, csize, usize, nlen, xlen, klen,
         dstart, iattr, eattr, loff) = struct.unpack_from("<IHHHHHHIIIHHHHHII", data, pos)
        if sig != SIG_CENTRAL:
            raise ValueError(f"bad central header signature at {pos}")
        name = data[pos + 46 : pos + 46 + nlen]
        extra = data[pos + 46 + nlen : pos + 46 + nlen + xlen]
        i = 0
        while i + 4 <= len(extra):
            hid, hlen = struct.unpack_from("<HH", extra, i)
            if hid == 1:
                body, j = extra[i + 4 : i + 4 + hlen], 0
                if usize == 0xFFFFFFFF:
                    (usize,) = struct.unpack_from("<Q", body, j); j += 8
                if csize == 0xFFFFFFFF:
                    (csize,) = struct.unpack_from("<Q", body, j); j += 8
                if loff == 0xFFFFFFFF:
                    (loff,) = struct.unpack_from("<Q", body, j); j += 8
            i += 4 + hlen
        entries.append(dict(central_pos=pos, raw_name=name, flags=flags, method=method,
                            crc=crc, csize=csize, usize=usize, vmade=vmade, eattr=eattr,
                            loff=loff, local_pos=loff + shift))
        pos += 46 + nlen + xlen + klen
    return dict(eocd=e, cd_off=cd_off, cd_size=cd_size, cd_start=cd_off + shift,
                shift=shift, comment_len=clen, entries=entries, zip64=zip64)


def local_data_start(data: bytes, local_pos: int) -> int:
    sig, = struct.unpack_from("<I", data, local_pos)
    assert sig == SIG_LOCAL
    nlen, xlen = struct.unpack_from("<HH", data, local_pos + 26)
    return local_pos + 30 + nlen + xlen


# --------------------------------------------------------------------------- helpers


def cmd_pattern(out: str) -> None:
    with open(out, "wb") as f:
        f.write(bytes(range(256)) * 4)


def junk(n: int) -> bytes:
    buf = bytearray()
    i = 0
    while len(buf) < n:
        buf += hashlib.sha256(b"zip-fixture-junk-%d" % i).digest()
        i += 1
    return bytes(buf[:n]).replace(b"PK", b"pk")


def cmd_junk(n: str, out: str) -> None:
    with open(out, "wb") as f:
        f.write(junk(int(n)))


def cmd_set_dos_time(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    cd = parse_cd(bytes(data))
    for ent in cd["entries"]:
        struct.pack_into("<HH", data, ent["central_pos"] + 12, INFOZIP_DOS_TIME, INFOZIP_DOS_DATE)
        struct.pack_into("<HH", data, ent["local_pos"] + 10, INFOZIP_DOS_TIME, INFOZIP_DOS_DATE)
    with open(path, "wb") as f:
        f.write(data)


def zi(name: str, method: int = zipfile.ZIP_DEFLATED, mode: int = 0o100644) -> zipfile.ZipInfo:
    z = zipfile.ZipInfo(name, date_time=DT)
    z.create_system = 3  # Unix, whatever the host
    z.external_attr = mode << 16
    z.compress_type = method
    return z


def zdir(name: str) -> zipfile.ZipInfo:
    assert name.endswith("/")
    z = zi(name, zipfile.ZIP_STORED, 0o040755)
    z.external_attr |= 0x10  # MS-DOS directory bit, as zipfile.mkdir() would set
    return z


def build(entries, comment: bytes = b"") -> bytes:
    """entries: list of (ZipInfo, bytes|None); None = directory."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(buf, "w") as zf:
            for info, content in entries:
                # writestr() on a ZipInfo named "x/" stores a 0-byte directory entry
                zf.writestr(info, b"" if content is None else content)
            zf.comment = comment
    return buf.getvalue()


def patch_name(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace an entry name (same length) in its local and central header."""
    assert len(old) == len(new)
    out = bytearray(data)
    cd = parse_cd(data)
    hits = 0
    for ent in cd["entries"]:
        if ent["raw_name"] == old:
            out[ent["central_pos"] + 46 : ent["central_pos"] + 46 + len(new)] = new
            out[ent["local_pos"] + 30 : ent["local_pos"] + 30 + len(new)] = new
            hits += 1
    assert hits == 1
    return bytes(out)


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def dos_dt(dt=DT) -> tuple[int, int]:
    y, mo, d, h, mi, s = dt
    return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d


def build_zip64_everywhere(members) -> bytes:
    """Hand-built archive: Zip64 extra in every local AND central header (all 32-bit size and
    offset fields 0xFFFFFFFF), Zip64 EOCD record + locator, EOCD with 0xFFFF/0xFFFFFFFF."""
    t, d = dos_dt()
    out, cd = bytearray(), bytearray()
    for name, content, method in members:
        nb = name.encode()
        crc = zlib.crc32(content)
        comp = content if method == 0 else deflate_raw(content)
        off = len(out)
        lx = struct.pack("<HHQQ", 1, 16, len(content), len(comp))
        out += struct.pack("<IHHHHHIIIHH", SIG_LOCAL, 45, 0, method, t, d, crc,
                           0xFFFFFFFF, 0xFFFFFFFF, len(nb), len(lx)) + nb + lx + comp
        cx = struct.pack("<HHQQQ", 1, 24, len(content), len(comp), off)
        cd += struct.pack("<IHHHHHHIIIHHHHHII", SIG_CENTRAL, (3 << 8) | 45, 45, 0, method, t, d,
                          crc, 0xFFFFFFFF, 0xFFFFFFFF, len(nb), len(cx), 0, 0, 0,
                          0o100644 << 16, 0xFFFFFFFF) + nb + cx
    cd_off = len(out)
    out += cd
    e64 = len(out)
    n = len(members)
    out += struct.pack("<IQHHIIQQQQ", SIG_EOCD64, 44, (3 << 8) | 45, 45, 0, 0, n, n, len(cd), cd_off)
    out += struct.pack("<IIQI", SIG_LOC64, 0, e64, 1)
    out += struct.pack("<IHHHHIIH", SIG_EOCD, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)


# --------------------------------------------------------------------------- python cases

UNICODE_MEMBERS = [
    ("répertoire/", None),
    ("répertoire/naïve.txt", "Ceci est un fichier naïf dans un répertoire.\n" * 20),
    ("日本語/", None),
    ("日本語/ファイル.txt", "日本語のテキストファイルです。\n" * 20),
    ("empty.txt", ""),
    ("ascii/plain.txt", "plain ascii text, plain ascii text, plain ascii text\n" * 10),
]

BAD_NAMES = ["../evil.txt", "/abs.txt", "C:/drive.txt", "a\\..\\b.txt", "ok/./x.txt",
             "ok//y.txt", "good.txt"]

CRC_BAD_CONTENT = b"this stored content is flipped after the CRC was computed\n"


def python_cases() -> dict[str, bytes]:
    z: dict[str, bytes] = {}

    for fname, method in (("python-deflate.zip", zipfile.ZIP_DEFLATED),
                          ("python-stored.zip", zipfile.ZIP_STORED)):
        ents = []
        for name, text in UNICODE_MEMBERS:
            if text is None:
                ents.append((zdir(name), None))
            else:
                ents.append((zi(name, method), text.encode()))
        z[fname] = build(ents)

    # force_zip64 on one entry: local header gets 0xFFFFFFFF sizes + Zip64 extra; zipfile
    # writes no Zip64 data into the central directory for small entries.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zi("normal.txt"), b"a normal entry before the zip64 one\n")
        with zf.open(zi("zip64.txt"), "w", force_zip64=True) as w:
            w.write(b"this entry was written with force_zip64=True\n" * 8)
        zf.writestr(zi("after.txt", zipfile.ZIP_STORED), b"a stored entry after it\n")
    z["python-zip64.zip"] = buf.getvalue()

    z["python-zip64-everywhere.zip"] = build_zip64_everywhere([
        ("stored64.txt", b"stored entry, zip64 extra in local and central header\n", 0),
        ("deflated64.txt", b"deflated entry, zip64 extra in local and central header\n" * 10, 8),
    ])

    line = b"python-comment.zip filler, the comment is exactly 65535 bytes long.\n"
    comment = (line * (0xFFFF // len(line) + 1))[:0xFFFF]
    assert b"PK" not in comment
    z["python-comment.zip"] = build([(zi("inside.txt"), b"the only entry\n")], comment=comment)

    z["python-dupes.zip"] = build([(zi("dup.txt"), b"first\n"), (zi("other.txt"), b"other\n"),
                                   (zi("dup.txt"), b"second\n")])

    z["python-bad-names.zip"] = build([(zi(n), f"contents of {n}\n".encode()) for n in BAD_NAMES])

    raw = build([(zi("plain.txt"), b"plain ascii name\n"),
                 (zi("cafX.txt"), b"name is caf\\x82.txt: CP437 e-acute, flag bit 11 clear\n")])
    z["python-cp437.zip"] = patch_name(raw, b"cafX.txt", b"caf\x82.txt")

    raw = build([(zi("good.txt", zipfile.ZIP_STORED), b"this entry is intact\n"),
                 (zi("bad.txt", zipfile.ZIP_STORED), CRC_BAD_CONTENT)])
    cd = parse_cd(raw)
    bad = next(e for e in cd["entries"] if e["raw_name"] == b"bad.txt")
    ds = local_data_start(raw, bad["local_pos"])
    ba = bytearray(raw)
    ba[ds] ^= 0x20  # 't' -> 'T': same length, CRC no longer matches
    z["python-crc-bad.zip"] = bytes(ba)

    raw = build([(zi("plain.txt", zipfile.ZIP_STORED), b"not encrypted\n"),
                 (zi("secret.txt", zipfile.ZIP_STORED), b"flagged as encrypted, bytes are plain\n")])
    ba = bytearray(raw)
    for ent in parse_cd(raw)["entries"]:
        if ent["raw_name"] == b"secret.txt":
            ba[ent["local_pos"] + 6] |= 1    # local header: general purpose flags
            ba[ent["central_pos"] + 8] |= 1  # central header: general purpose flags
    z["python-encrypted.zip"] = bytes(ba)

    text = b"bzip2/lzma compressed entry; the engine only supports stored and deflate.\n" * 12
    z["python-bzip2.zip"] = build([(zi("bzip2.txt", zipfile.ZIP_BZIP2), text)])
    z["python-lzma.zip"] = build([(zi("lzma.txt", zipfile.ZIP_LZMA), text)])
    return z


def truncated_cases(basic: bytes) -> dict[str, bytes]:
    cd = parse_cd(basic)
    assert cd["shift"] == 0 and cd["comment_len"] == 0
    last = cd["entries"][-1]
    assert last["raw_name"] == b"big.txt" and last["method"] == 8
    L = last["local_pos"]
    D = local_data_start(basic, L)
    cd_bytes = basic[cd["cd_start"] : cd["cd_start"] + cd["cd_size"]]
    eocd = basic[cd["eocd"] :]
    half = cd["cd_size"] // 2

    def with_cd(prefix: bytes) -> bytes:
        e = bytearray(eocd)
        struct.pack_into("<I", e, 16, len(prefix))  # cd offset -> where the CD now starts
        return prefix + cd_bytes + bytes(e)

    return {
        "truncated-eocd.zip": basic[:-10],
        "truncated-cd.zip": basic[: cd["cd_start"] + half],
        "truncated-cd-gap.zip": basic[: cd["cd_start"] + half] + basic[cd["cd_start"] + half + 20 :],
        "truncated-local-header.zip": basic[: L + 15],
        "truncated-data.zip": basic[: D + last["csize"] // 2],
        "truncated-local-header-cd.zip": with_cd(basic[: L + 15]),
        "truncated-data-cd.zip": with_cd(basic[: D + last["csize"] // 2]),
    }


def cmd_python(outdir: str) -> None:
    basic = open(os.path.join(outdir, "infozip-basic.zip"), "rb").read()
    files = python_cases()
    files.update(truncated_cases(basic))
    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)


# --------------------------------------------------------------------------- manifest

IZ = "Info-ZIP Zip 3.0"
PYZ = "Python 3.11 zipfile"
PYRAW = "Python 3.11 zipfile + byte patch"
HAND = "Python struct (hand-built)"

# open:  whether locating the EOCD and parsing the central directory must succeed.
# expect: overall outcome the case is about (worst of open / every entry read).
# entry_expect: per-entry read outcome where it is not "ok".
CASES = [
    dict(file="infozip-basic.zip", tool=f"{IZ}: zip -X -n .bin", expect="ok",
         what="Nested dirs with directory entries, empty file, deflated 20 KiB text, stored .bin (-n .bin).",
         notes="Members added in this order: docs/, docs/readme.txt, docs/nested/, docs/nested/deep/, "
               "docs/nested/deep/leaf.txt, empty.txt (0 bytes), data.bin (bytes 0..255 x4: compressible, but "
               "stored because of -n .bin), big.txt (20,900 bytes deflated; last entry, the truncated-* cases "
               "cut into it). The two small .txt files are stored too (Info-ZIP stores when deflate does not "
               "shrink). Directory entries are stored, size 0, Unix mode 040755."),
    dict(file="infozip-symlink.zip", tool=f"{IZ}: zip -X -y", expect="ok",
         what="Symlink stored as a link (-y): link -> target.txt, plus target.txt.",
         notes="'link' has Unix mode 0120777 in the upper 16 bits of the external attributes (version made "
               "by = Unix); its stored data is the 10-byte target path 'target.txt'. Reading 'link' yields "
               "that path, not the target's contents; a caller must not follow it."),
    dict(file="infozip-comment.zip", tool=f"{IZ}: zip -X -z (comment from stdin)", expect="ok",
         what="Archive comment ends with a fake 22-byte EOCD record (PK\\x05\\x06 + 18 junk bytes).",
         notes="The real EOCD's comment runs to EOF. The last 22 bytes of the file are 'PK\\x05\\x06' + "
               "DE AD BE EF x4 + CA FE: a fake EOCD whose disk numbers are non-zero and whose comment length "
               "(0xFECA) does not end at EOF. A reader must reject that candidate and keep scanning backwards; "
               "Info-ZIP unzip and Python zipfile are fooled by it (they take the last signature)."),
    dict(file="infozip-sfx.zip", tool=f"{IZ}: cat junk zip; zip -A", expect="ok",
         what="4096 junk bytes prepended, offsets adjusted with zip -A (self-extractor layout).",
         notes="All local-header offsets and the CD offset already include the 4096-byte prefix."),
    dict(file="infozip-sfx-unadjusted.zip", tool=f"{IZ}: cat junk zip (no -A)", expect="ok",
         what="4096 junk bytes prepended, offsets NOT adjusted: every stored offset is 4096 too small.",
         notes="EOCD cd_offset + cd_size = EOCD position - 4096. A reader must derive the shift "
               "(actual CD end - (cd_offset + cd_size) = 4096) and add it to the CD offset and to every "
               "local-header offset (as unzip and Python zipfile do)."),
    dict(file="infozip-streamed.zip", tool=f"{IZ}: zip -X - files | cat", expect="ok",
         what="Output to a pipe: flag bit 3 set, local CRC/sizes zero, PK\\x07\\x08 data descriptors.",
         notes="Both entries are deflated with 16-byte signed data descriptors (32-bit sizes). The central "
               "directory holds the real CRC and sizes; the local header has zeros."),
    dict(file="infozip-streamed-stdin.zip", tool=f"{IZ}: zip -X - - | cat (DOS time patched)", expect="ok",
         what="stdin to a pipe: flag bit 3, Zip64 extra in the local header, 24-byte Zip64 data descriptor.",
         notes="Single entry named '-' whose Unix mode is 010600 (a FIFO: zip records stdin's type; treat "
               "it as a regular file). Local header: version needed 4.5, sizes 0xFFFFFFFF, Zip64 extra with "
               "zero sizes; the data descriptor carries 64-bit sizes; the central directory has plain "
               "32-bit sizes and no Zip64 extra. Only the DOS time/date fields were rewritten afterwards "
               "(zip stamps stdin with the current time)."),
    dict(file="python-deflate.zip", tool=f"{PYZ} ZIP_DEFLATED", expect="ok",
         what="UTF-8 names (flag bit 11), directory entries, an empty file, deflated entries."),
    dict(file="python-stored.zip", tool=f"{PYZ} ZIP_STORED", expect="ok",
         what="Same members as python-deflate.zip, all stored."),
    dict(file="python-zip64.zip", tool=f"{PYZ} open(..., 'w', force_zip64=True)", expect="ok",
         what="Middle entry has a Zip64 local extra (local sizes 0xFFFFFFFF); central directory is plain.",
         notes="zipfile only writes Zip64 central data when needed, so only the local header of "
               "'zip64.txt' carries the Zip64 extra (and version needed 4.5). See "
               "python-zip64-everywhere.zip for central Zip64."),
    dict(file="python-zip64-everywhere.zip", tool=HAND, expect="ok",
         what="Zip64 extras in every local and central header, Zip64 EOCD record + locator.",
         notes="All 32-bit size/offset fields are 0xFFFFFFFF with the real values in the Zip64 extra "
               "(central: usize, csize, local offset); EOCD has entry counts 0xFFFF and CD size/offset "
               "0xFFFFFFFF, disk numbers 0. No data descriptors."),
    dict(file="python-comment.zip", tool=PYZ, expect="ok",
         what="Archive comment of exactly 65,535 bytes (EOCD sits at the very start of the search window).",
         notes="The EOCD is at EOF - 22 - 65535, the farthest position the backward search must reach. "
               "Exempt from the 64 KiB per-file cap."),
    dict(file="python-dupes.zip", tool=PYZ, expect="ok",
         what="Two entries named dup.txt ('first\\n' then 'second\\n') with other.txt between them.",
         notes="Both readable by index. For lookup by name, Python zipfile and unzip return the LAST entry "
               "('second\\n'); the engine must either do the same or report ambiguity -- pick and test one."),
    dict(file="python-bad-names.zip", tool=PYZ, expect="ok",
         what="Hostile/odd entry names: traversal, absolute, drive letter, backslashes, ./ and //.",
         notes="The zip layer lists and reads them all verbatim (expect ok). Each entry's path_issue says "
               "why writing it to disk under that name is unsafe or needs normalisation; only good.txt "
               "is clean."),
    dict(file="python-cp437.zip", tool=PYRAW, expect="ok",
         what="Name bytes 'caf\\x82.txt' (not UTF-8, flag bit 11 clear; CP437 0x82 = 'é').",
         notes="Built as 'cafX.txt' then the name was patched to caf\\x82.txt in both the local and the "
               "central header. Python zipfile decodes it as CP437 'café.txt'; name_hex gives the raw bytes."),
    dict(file="python-crc-bad.zip", tool=PYRAW, expect="corrupt",
         what="Stored bad.txt had one data byte flipped after writing; its CRC no longer matches.",
         notes="good.txt reads fine. Reading bad.txt must fail with a corrupt/CRC error (the first data "
               "byte was XORed with 0x20: 't' -> 'T'); the sizes are unchanged, only the CRC check catches it."),
    dict(file="python-encrypted.zip", tool=PYRAW, expect="unsupported",
         what="secret.txt has general purpose flag bit 0 (encrypted) set in local and central header.",
         notes="Only the flag bit was patched: the data is really plaintext and there is no 12-byte "
               "encryption header, so the flag alone must trigger 'unsupported' before any decoding. "
               "plain.txt reads fine."),
    dict(file="python-bzip2.zip", tool=f"{PYZ} ZIP_BZIP2", expect="unsupported",
         what="One entry with compression method 12 (bzip2).",
         notes="Open/list succeeds; reading the entry must report an unsupported method. sha256 is the "
               "real content, for the day bzip2 is supported."),
    dict(file="python-lzma.zip", tool=f"{PYZ} ZIP_LZMA", expect="unsupported",
         what="One entry with compression method 14 (LZMA, flag bit 1 = EOS marker).",
         notes="Open/list succeeds; reading the entry must report an unsupported method. sha256 is the "
               "real content."),
    dict(file="truncated-eocd.zip", tool="infozip-basic.zip, last 10 bytes dropped", expect="corrupt",
         what="Cut inside the EOCD: signature present at EOF-12 but the 22-byte record is incomplete.",
         notes="Open must fail (corrupt): no complete EOCD anywhere. No entry is reachable."),
    dict(file="truncated-cd.zip", tool="infozip-basic.zip, cut in the middle of the CD", expect="corrupt",
         what="File ends halfway through the central directory; no EOCD at all.",
         notes="Open must fail (corrupt). Length = cd_offset + cd_size/2 of infozip-basic.zip."),
    dict(file="truncated-cd-gap.zip", tool="infozip-basic.zip, 20 CD bytes removed", expect="corrupt",
         what="EOCD kept verbatim but 20 bytes cut from the middle of the CD, so cd_offset+cd_size runs 20 bytes into the EOCD.",
         notes="The unmodified EOCD claims the original cd_offset and cd_size, but the CD is now 20 bytes "
               "shorter: the derived shift (EOCD position - (cd_offset + cd_size)) is -20 and parsing from "
               "cd_offset hits a misaligned header halfway through. Open must fail (corrupt); it must not "
               "be treated as prepended data."),
    dict(file="truncated-local-header.zip", tool="infozip-basic.zip, cut inside big.txt's local header",
         expect="corrupt",
         what="Plain truncation 15 bytes into the last entry's (big.txt) local header; no CD, no EOCD.",
         notes="Open must fail (corrupt): the EOCD and central directory are gone."),
    dict(file="truncated-data.zip", tool="infozip-basic.zip, cut inside big.txt's data", expect="corrupt",
         what="Plain truncation halfway through big.txt's deflate data; no CD, no EOCD.",
         notes="Open must fail (corrupt), like an interrupted download."),
    dict(file="truncated-local-header-cd.zip", tool="infozip-basic.zip, rebuilt", expect="corrupt",
         what="big.txt's local header cut to 15 bytes, then the original CD + EOCD (cd_offset fixed up).",
         notes="Open succeeds and lists all 8 entries; every entry except big.txt reads fine. Reading "
               "big.txt must fail (corrupt): its 30-byte local header would run into the central "
               "directory (local offset + 30 > cd_offset)."),
    dict(file="truncated-data-cd.zip", tool="infozip-basic.zip, rebuilt", expect="corrupt",
         what="big.txt's compressed data cut in half, then the original CD + EOCD (cd_offset fixed up).",
         notes="Open succeeds and lists all 8 entries; every entry except big.txt reads fine. Reading "
               "big.txt must fail (corrupt): data start + compressed size runs past cd_offset into the "
               "central directory (a reader that does not bound-check gets garbage/inflate error/CRC error)."),
]

OPEN_FAILS = {"truncated-eocd.zip", "truncated-cd.zip", "truncated-cd-gap.zip",
              "truncated-local-header.zip", "truncated-data.zip"}

ENTRY_EXPECT = {
    "python-crc-bad.zip": {b"bad.txt": "corrupt"},
    "python-encrypted.zip": {b"secret.txt": "unsupported"},
    "python-bzip2.zip": {b"bzip2.txt": "unsupported"},
    "python-lzma.zip": {b"lzma.txt": "unsupported"},
    "truncated-local-header-cd.zip": {b"big.txt": "corrupt"},
    "truncated-data-cd.zip": {b"big.txt": "corrupt"},
}
NO_SHA = {("python-crc-bad.zip", b"bad.txt"), ("python-encrypted.zip", b"secret.txt"),
          ("truncated-local-header-cd.zip", b"big.txt"), ("truncated-data-cd.zip", b"big.txt")}
PATH_ISSUES = {
    "../evil.txt": "parent traversal (..)",
    "/abs.txt": "absolute path",
    "C:/drive.txt": "Windows drive letter",
    "a\\..\\b.txt": "backslash separators with .. (traversal on Windows)",
    "ok/./x.txt": "'.' segment (normalise to ok/x.txt)",
    "ok//y.txt": "empty segment (normalise to ok/y.txt)",
}


def zipfile_view(fname: str, data: bytes) -> bytes:
    """Bytes Python zipfile can open: the comment fixture is stripped of its comment,
    since zipfile is fooled by the fake EOCD inside it."""
    if fname == "infozip-comment.zip":
        e = find_eocd(data)
        return data[: e + 20] + b"\0\0"
    return data


def describe(fname: str, data: bytes) -> tuple[list, dict]:
    cd = parse_cd(data)
    zf = zipfile.ZipFile(io.BytesIO(zipfile_view(fname, data)))
    infos = zf.infolist()
    assert len(infos) == len(cd["entries"]), fname
    out = []
    for ent, info in zip(cd["entries"], infos):
        raw = ent["raw_name"]
        assert info.CRC == ent["crc"] and info.file_size == ent["usize"], (fname, raw)
        assert info.compress_type == ent["method"] and info.compress_size == ent["csize"]
        e: dict = {}
        try:
            e["name"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            e["name_hex"] = raw.hex()
            e["name_cp437"] = raw.decode("cp437")
        unix_mode = ent["eattr"] >> 16 if ent["vmade"] >> 8 == 3 else 0
        is_dir = raw.endswith(b"/") or (unix_mode & 0o170000) == 0o040000
        is_link = (unix_mode & 0o170000) == 0o120000
        e.update(size=ent["usize"], compressed_size=ent["csize"], crc32=ent["crc"],
                 method=ent["method"], flags=ent["flags"], dir=is_dir, symlink=is_link)
        expect = ENTRY_EXPECT.get(fname, {}).get(raw, "ok")
        if not is_dir and (fname, raw) not in NO_SHA:
            content = zf.read(info)
            assert len(content) == ent["usize"]
            e["sha256"] = hashlib.sha256(content).hexdigest()
            if is_link:
                e["link_target"] = content.decode()
        if expect == "corrupt":
            try:
                zf.read(info)
            except Exception:
                pass
            else:
                raise AssertionError(f"{fname}:{raw!r} unexpectedly readable by zipfile")
        e["expect"] = expect
        if fname == "python-bad-names.zip" and e.get("name") in PATH_ISSUES:
            e["path_issue"] = PATH_ISSUES[e["name"]]
        out.append(e)
    return out, {"comment_len": cd["comment_len"]}


def cmd_manifest(outdir: str) -> None:
    manifest = []
    total = 0
    listed = set()
    for case in CASES:
        fname = case["file"]
        listed.add(fname)
        data = open(os.path.join(outdir, fname), "rb").read()
        size = len(data)
        total += size
        cap = MAX_FILE_EXEMPT.get(fname, MAX_FILE - 1)
        if size > cap:
            raise SystemExit(f"{fname}: {size} bytes exceeds cap {cap}")
        rec = dict(file=case["file"], tool=case["tool"], what=case["what"], expect=case["expect"])
        rec["open"] = "corrupt" if fname in OPEN_FAILS else "ok"
        rec["bytes"] = size
        if fname in OPEN_FAILS:
            try:
                parse_cd(data)
                zipfile.ZipFile(io.BytesIO(data)).testzip()
            except Exception:
                pass
            else:
                raise AssertionError(f"{fname} unexpectedly opens")
            rec["entries"] = []
        else:
            entries, extra = describe(fname, data)
            rec["entries"] = entries
            rec["comment_len"] = extra["comment_len"]
            if fname == "infozip-sfx-unadjusted.zip":
                rec["prefix_len"] = parse_cd(data)["shift"]
                assert rec["prefix_len"] == 4096
        if "notes" in case:
            rec["notes"] = case["notes"]
        manifest.append(rec)
    on_disk = {f for f in os.listdir(outdir) if f.endswith(".zip")}
    if on_disk != listed:
        raise SystemExit(f"manifest/files mismatch: {sorted(on_disk ^ listed)}")
    if total > MAX_TOTAL - 1:
        raise SystemExit(f"total {total} bytes exceeds {MAX_TOTAL}")
    with open(os.path.join(outdir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    write_readme(outdir, manifest, total)


def md(s: str) -> str:
    return s.replace("|", "\\|")


def write_readme(outdir: str, manifest: list, total: int) -> None:
    lines = [
        "# Zip test fixtures",
        "",
        "Small archives made by outside tools (Info-ZIP Zip 3.0, Python 3.11 `zipfile`) plus",
        "deliberately damaged variants. Everything here is generated; do not edit by hand.",
        "",
        "Regenerate (from the repository root; needs `zip`, `zipinfo` and Python >= 3.11):",
        "",
        "```sh",
        REGEN,
        "```",
        "",
        "The script deletes and rebuilds every `*.zip`, `manifest.json` and this README. Inputs have",
        "fixed contents, modes and mtimes (`2024-01-02 03:04:05 UTC`, `TZ=UTC`, `zip -X`), so reruns",
        "are byte-identical given the same zip and zlib versions.",
        "",
        f"{len(manifest)} archives, {total:,} bytes in total.",
        "",
        "| file | tool | what it exercises | expected outcome |",
        "|---|---|---|---|",
    ]
    for rec in manifest:
        outcome = rec["expect"]
        if rec["open"] != "ok":
            outcome += " (at open)"
        else:
            bad = [e.get("name", e.get("name_hex")) for e in rec["entries"] if e["expect"] != "ok"]
            if bad:
                others = "; others ok" if len(bad) < len(rec["entries"]) else ""
                outcome += " (reading " + ", ".join(f"`{b}`" for b in bad) + others + ")"
        lines.append(f"| `{rec['file']}` | {md(rec['tool'])} | {md(rec['what'])} | {outcome} |")
    lines += [
        "",
        "## manifest.json",
        "",
        "A list with one object per archive:",
        "",
        "- `file`, `tool`, `what`, `notes` (exact description of the case, when needed).",
        "- `expect`: `ok` | `corrupt` | `unsupported` -- the outcome the case is about (the worst of",
        "  opening the archive and reading each entry).",
        "- `open`: `ok` | `corrupt` -- whether finding the EOCD and parsing the central directory must",
        "  succeed. When it is `corrupt`, `entries` is empty.",
        "- `bytes`: file size; `comment_len`: archive comment length (open-able archives);",
        "  `prefix_len`: bytes prepended without offset adjustment (sfx-unadjusted only).",
        "- `entries`: central-directory order, as the central directory claims it:",
        "  - `name` (UTF-8) or, for names that are not valid UTF-8, `name_hex` (raw bytes) plus",
        "    `name_cp437` (the CP437 decoding);",
        "  - `size` (uncompressed), `compressed_size`, `crc32`, `method` (0 stored, 8 deflate,",
        "    12 bzip2, 14 LZMA), `flags` (general purpose bit flag), `dir`, `symlink`;",
        "  - `sha256` of the content; omitted for directories and for entries whose content is",
        "    undefined (CRC-damaged, truncated, encrypted); present for bzip2/LZMA (real content);",
        "  - `link_target` for symlinks (the entry's data);",
        "  - `expect`: outcome of reading that entry (`ok` | `corrupt` | `unsupported`);",
        "  - `path_issue` (python-bad-names.zip only): why the name is unsafe as a filesystem path.",
        "",
        "Values for readable archives were computed by Python `zipfile` reading the finished file",
        "(cross-checked against a strict central-directory parser); for damaged ones they are what",
        "the central directory claims. `infozip-comment.zip` is read by `zipfile` with its comment",
        "stripped, because `zipfile` (like `unzip`) is fooled by the fake EOCD in the comment.",
        "",
    ]
    with open(os.path.join(outdir, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def main(argv: list[str]) -> None:
    cmds = {"pattern": cmd_pattern, "junk": cmd_junk, "set-dos-time": cmd_set_dos_time,
            "python": cmd_python, "manifest": cmd_manifest}
    if len(argv) < 2 or argv[1] not in cmds:
        raise SystemExit(__doc__)
    cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
