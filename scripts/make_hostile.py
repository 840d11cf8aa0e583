#!/usr/bin/env python3
"""Writes the hostile-archive corpus into tests/hostile/ with cases.json: every archive is
built here from the standard library (nothing downloaded), and each case states what the
engine must do with it. Run: python3 scripts/make_hostile.py (deterministic)."""
import json
import os
import struct
import zipfile
import zlib
import io

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "hostile")
CASES = []
DOS_TIME, DOS_DATE = 0x6000, 0x5822  # 2024-01-02 12:00


def raw_deflate(data, level=9):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def lfh(name, method, crc, csize, usize, flags=0, extra=b""):
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, DOS_TIME, DOS_DATE,
                       crc, csize, usize, len(name), len(extra)) + name + extra


def cdh(name, method, crc, csize, usize, offset, flags=0, extra=b"", attrs=0o100644 << 16):
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, flags, method, DOS_TIME,
                       DOS_DATE, crc, csize, usize, len(name), len(extra), 0, 0, 0, attrs,
                       offset) + name + extra


def eocd(count, cd_size, cd_offset, comment=b""):
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_offset,
                       len(comment)) + comment


def archive(entries, comment=b""):
    """entries: (name, data, method) -> a well-formed archive and the offsets of its parts."""
    body, central = b"", b""
    for name, data, method in entries:
        comp = raw_deflate(data) if method == 8 else data
        crc = zlib.crc32(data)
        central += cdh(name, method, crc, len(comp), len(data), len(body))
        body += lfh(name, method, crc, len(comp), len(data)) + comp
    return body + central + eocd(len(entries), len(central), len(body), comment), len(body)


def case(file, what, data, served=None, **expect):
    """`served`: what the server answers for each entry once the archive is imported (200 or
    500; names that break the path rule are 400 by the path rule and not listed). Defaults to
    `read` (ok -> 200, anything else -> 500). `imported`: "ok" (every entry verified),
    "partial" (imported with entries refused) or "refused" (nothing stored)."""
    with open(os.path.join(OUT, file), "wb") as f:
        f.write(data)
    if served is None:
        served = {k: 200 if v == "ok" else 500 for k, v in expect.get("read", {}).items()}
    if "imported" not in expect:
        if expect["open"] != "ok":
            expect["imported"] = "refused"
        else:
            expect["imported"] = "ok" if set(served.values()) <= {200} else "partial"
    if expect["open"] == "ok":
        expect["served"] = served
    CASES.append(dict(file=file, what=what, **expect))


def with_cd_size(data, delta):
    """The archive with its end record's central-directory size off by `delta` bytes."""
    data = bytearray(data)
    at = len(data) - 22
    (size,) = struct.unpack("<I", data[at + 12:at + 16])
    data[at + 12:at + 16] = struct.pack("<I", size + delta)
    return bytes(data)


def overlap_bomb(files=40, kernel_len=1 << 20):
    """David Fifield's quoted-overlap construction: every file's deflate data quotes the next
    file's local header in a stored block, then continues into that file's data; the last
    holds the kernel. Each entry alone is valid; together they share bytes."""
    kernel = raw_deflate(b"\0" * kernel_len)
    names = [f"f{i:03}".encode() for i in range(files)]
    # Build from the last file back: data[i] = quote(LFH[i+1]) + data[i+1].
    datas, plains, headers = [None] * files, [None] * files, [None] * files
    datas[-1], plains[-1] = kernel, b"\0" * kernel_len
    headers[-1] = lfh(names[-1], 8, zlib.crc32(plains[-1]), len(datas[-1]), len(plains[-1]))
    for i in range(files - 2, -1, -1):
        quoted = headers[i + 1]
        block = struct.pack("<BHH", 0, len(quoted), len(quoted) ^ 0xFFFF) + quoted
        datas[i] = block + datas[i + 1]
        plains[i] = quoted + plains[i + 1]
        headers[i] = lfh(names[i], 8, zlib.crc32(plains[i]), len(datas[i]), len(plains[i]))
    body, central, offset = b"", b"", 0
    for i in range(files):
        central += cdh(names[i], 8, zlib.crc32(plains[i]), len(datas[i]), len(plains[i]), offset)
        offset += len(headers[i]) + 5 if i < files - 1 else 0
    # Physical layout: LFH0 Q0 LFH1 Q1 ... LFH(n-1) kernel, where Qi is a stored-block header.
    for i in range(files - 1):
        body += headers[i] + struct.pack("<BHH", 0, len(headers[i + 1]), len(headers[i + 1]) ^ 0xFFFF)
    body += headers[-1] + kernel
    return body + central + eocd(files, len(central), len(body))


def main():
    os.makedirs(OUT, exist_ok=True)
    base, cd_at = archive([(b"a.txt", b"hello world\n" * 100, 8), (b"b.bin", bytes(range(256)) * 4, 0)])

    # Each entry reads alone; served, only the first: the others start inside its span.
    case("overlap-bomb.zip", "Fifield's quoted-overlap bomb: 40 entries share one 1 MiB kernel",
         overlap_bomb(), open="ok", index="corrupt", read={"*": "ok"}, served={"f000": 200, "*": 500},
         max_heap_mb=48)

    bad = bytearray(base); bad[30:35] = b"x.txt"
    case("local-name-mismatch.zip", "local header names another file than the central directory",
         bytes(bad), open="ok", index="ok", read={"a.txt": "corrupt"}, max_heap_mb=16)
    bad = bytearray(base); bad[18:22] = struct.pack("<I", 7)
    case("local-size-mismatch.zip", "local header sizes disagree with the central directory",
         bytes(bad), open="ok", index="ok", read={"a.txt": "corrupt"}, max_heap_mb=16)
    bad = bytearray(base); bad[8:10] = struct.pack("<H", 0)
    case("local-method-mismatch.zip", "local header says stored, the central directory deflate",
         bytes(bad), open="ok", index="ok", read={"a.txt": "corrupt"}, max_heap_mb=16)

    bad = bytearray(base); bad[cd_at + 20:cd_at + 24] = struct.pack("<I", 0x7FFFFFF0)
    case("size-past-end.zip", "compressed size runs past the central directory",
         bytes(bad), open="ok", index="corrupt", read={"a.txt": "corrupt"}, max_heap_mb=16)
    bad = bytearray(base); bad[cd_at + 42:cd_at + 46] = struct.pack("<I", 0xFFFFFF00)
    case("offset-past-end.zip", "local header offset past the end of the file",
         bytes(bad), open="ok", index="corrupt", read={"a.txt": "corrupt"}, max_heap_mb=16)

    comment = b"release notes PK\x05\x06" + b"\xff" * 18 + b" end"
    fake, _ = archive([(b"a.txt", b"real\n", 0)], comment)
    case("fake-eocd-in-comment.zip", "an end record signature inside the archive comment",
         fake, open="ok", index="ok", read={"*": "ok"}, max_heap_mb=16)

    nested, _ = archive([(b"inner.zip", base, 0), (b"self.zip", base, 8)])
    case("nested-zip.zip", "zips inside a zip are content: served as bytes, never opened",
         nested, open="ok", index="ok", read={"*": "ok"}, max_heap_mb=16)

    bad = bytearray(base); at = len(base) - 22
    bad[at + 8:at + 12] = struct.pack("<HH", 65000, 65000)
    case("impossible-count.zip", "65,000 entries claimed in a 2-record central directory",
         bytes(bad), open="corrupt", max_heap_mb=16)

    regions = {"eocd": len(base) - 10, "central-directory": cd_at + 20, "local-header": 12, "data": 60}
    for region, cut in regions.items():
        case(f"truncated-in-{region}.zip", f"the archive cut inside its {region.replace('-', ' ')}",
             base[:cut], open="corrupt", max_heap_mb=16)
    kept = base[:40] + base[cd_at:]
    fixed = bytearray(kept); at = len(fixed) - 22
    fixed[at + 16:at + 20] = struct.pack("<I", 40)
    # Both entries' data now runs past where the moved central directory starts.
    case("truncated-data-kept-directory.zip", "entry data cut, central directory kept and moved",
         bytes(fixed), open="ok", index="corrupt", read={"*": "corrupt"}, max_heap_mb=16)

    names, _ = archive([(b"caf\x82.txt", b"cp437 name\n", 0), (b"bad\xff\xfe.txt", b"not utf-8\n", 0),
                        (b"ok.txt", b"fine\n", 0)])
    case("non-utf8-names.zip", "CP437 and invalid UTF-8 names: listed, never servable by path",
         names, open="ok", index="ok", read={"*": "ok"},
         not_servable_hex=["636166822e747874", "626164fffe2e747874"], max_heap_mb=16)

    evil, _ = archive([(b"../evil.txt", b"x", 0), (b"/etc/passwd", b"x", 0), (b"C:/win.txt", b"x", 0),
                       (b"a\\..\\b.txt", b"x", 0), (b"a/./b", b"x", 0), (b"a//b", b"x", 0), (b"good.txt", b"ok", 0)])
    case("escaping-names.zip", "absolute, drive-letter, backslash and dot-dot names",
         evil, open="ok", index="ok", read={"*": "ok"},
         not_servable_hex=[n.hex() for n in [b"../evil.txt", b"/etc/passwd", b"C:/win.txt", b"a\\..\\b.txt", b"a/./b", b"a//b"]],
         max_heap_mb=16)

    enc = bytearray(base); enc[6] |= 1; enc[cd_at + 8] |= 1
    case("encrypted.zip", "an entry with the encryption flag", bytes(enc), open="ok", index="ok",
         read={"a.txt": "unsupported"}, max_heap_mb=16)
    for method, label in [(12, "bzip2"), (9, "deflate64"), (93, "zstd"), (14, "lzma")]:
        m = bytearray(base); m[8:10] = struct.pack("<H", method); m[cd_at + 10:cd_at + 12] = struct.pack("<H", method)
        case(f"method-{label}.zip", f"compression method {method} ({label})", bytes(m), open="ok", index="ok",
             read={"a.txt": "unsupported"}, max_heap_mb=16)

    # 10 GB declared (zip64 extra), 1 KB of real deflate data.
    data = raw_deflate(b"A" * 1024)
    extra = struct.pack("<HHQQ", 1, 16, 10 * 10**9, len(data))
    name = b"huge.bin"
    body = lfh(name, 8, 0, 0xFFFFFFFF, 0xFFFFFFFF, extra=extra) + data
    central = cdh(name, 8, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0, extra=extra)
    case("declared-10gb.zip", "10 GB declared, 1 KB of data: refused before inflating",
         body + central + eocd(1, len(central), len(body)), open="ok", index="ok",
         read={"*": "corrupt"}, max_heap_mb=16)

    lie = bytearray(archive([(b"zeros", b"\0" * (64 << 20), 8)])[0])
    lie_cd = bytes(lie).rfind(b"PK\x01\x02")
    lie[22:26] = struct.pack("<I", 1 << 20); lie[lie_cd + 24:lie_cd + 28] = struct.pack("<I", 1 << 20)
    case("ratio-lie.zip", "64 MiB of zeros declared as 1 MiB: stops at the declared size",
         bytes(lie), open="ok", index="ok", read={"*": "corrupt"}, max_heap_mb=16)

    # Entries that fail only when read to the end: their siblings keep serving.
    small, large = b"eighteen bytes ok\n", bytes((i * 7919) % 251 for i in range(200 * 1024))
    parts = [(b"small-stored.txt", small, 0), (b"small-deflated.txt", small * 40, 8),
             (b"large-stored.bin", large, 0), (b"large-deflated.bin", large, 8), (b"good.txt", b"fine\n", 0)]
    crc, crc_cd = archive(parts)
    crc = bytearray(crc)
    body_at = 0
    for name, data, method in parts:
        head = 30 + len(name)
        csize = struct.unpack("<I", crc[body_at + 18:body_at + 22])[0]
        if name != b"good.txt":
            # Both headers agree on a CRC-32 the data does not have.
            wrong = struct.pack("<I", zlib.crc32(data) ^ 0x5A5A5A5A)
            crc[body_at + 14:body_at + 18] = wrong
            rec = bytes(crc).find(b"PK\x01\x02" , crc_cd)
            while bytes(crc)[rec + 46:rec + 46 + len(name)] != name:
                rec = bytes(crc).find(b"PK\x01\x02", rec + 1)
            crc[rec + 16:rec + 20] = wrong
        body_at += head + csize
    case("crc-mismatch.zip", "small and large, stored and deflated entries with a wrong CRC-32",
         bytes(crc), open="ok", index="ok", read={"good.txt": "ok", "*": "corrupt"}, max_heap_mb=16)

    def deflated_pair(mangle):
        data = bytes((i * 31) % 256 for i in range(100 * 1024))
        good, _ = archive([(b"bad.bin", data, 8), (b"good.txt", b"fine\n", 0)])
        return mangle(bytearray(good), data)

    def truncate_stream(buf, data):
        # The deflate stream cut to half; sizes in both headers say the half is all there is.
        full = raw_deflate(data)
        half = full[: len(full) // 2]
        parts = [(b"bad.bin", data, 8), (b"good.txt", b"fine\n", 0)]
        body = lfh(b"bad.bin", 8, zlib.crc32(data), len(half), len(data)) + half
        central = cdh(b"bad.bin", 8, zlib.crc32(data), len(half), len(data), 0)
        good_at = len(body)
        body += lfh(b"good.txt", 0, zlib.crc32(b"fine\n"), 5, 5) + b"fine\n"
        central += cdh(b"good.txt", 0, zlib.crc32(b"fine\n"), 5, 5, good_at)
        return body + central + eocd(2, len(central), len(body))

    case("deflate-truncated.zip", "a deflate stream cut short, headers consistent with the cut",
         deflated_pair(truncate_stream), open="ok", index="ok", read={"bad.bin": "corrupt", "good.txt": "ok"},
         max_heap_mb=16)

    def corrupt_stream(buf, data):
        # Block type 3 (reserved) in the middle of the stream.
        at = 30 + len(b"bad.bin") + 40
        buf[at:at + 8] = b"\xff" * 8
        return bytes(buf)

    case("deflate-corrupt.zip", "a deflate stream with reserved block types in it",
         deflated_pair(corrupt_stream), open="ok", index="ok", read={"bad.bin": "corrupt", "good.txt": "ok"},
         max_heap_mb=16)

    # One record points inside another entry's local header; one runs past the end; the
    # healthy members must still serve, byte for byte.
    healthy = [(b"a.txt", b"hello world\n" * 100, 8), (b"b.bin", bytes(range(256)) * 4, 0),
               (b"c/d.txt", b"deeper\n" * 50, 8)]
    body, central = b"", b""
    for name, data, method in healthy:
        comp = raw_deflate(data) if method == 8 else data
        central += cdh(name, method, zlib.crc32(data), len(comp), len(data), len(body))
        body += lfh(name, method, zlib.crc32(data), len(comp), len(data)) + comp
    central += cdh(b"intruder.txt", 0, 0, 4, 4, 10)  # inside a.txt's local header
    central += cdh(b"too-long.bin", 0, 0, 1 << 30, 1 << 30, 0)  # 1 GiB from the start
    mixed = body + central + eocd(5, len(central), len(body))
    case("overlap-and-out-of-bounds.zip", "one entry inside another's local header, one past the end",
         mixed, open="ok", index="corrupt",
         read={"a.txt": "ok", "b.bin": "ok", "c/d.txt": "ok", "intruder.txt": "corrupt", "too-long.bin": "corrupt"},
         max_heap_mb=16)

    # The end record's directory size wrong by a few bytes, everything else right: read by
    # count from the offset, as Go's archive/zip and Info-ZIP do.
    for delta, label in [(3, "overstated"), (-3, "understated"), (46, "overstated-by-a-record")]:
        case(f"cd-size-{label}.zip", f"the end record's directory size {label} ({delta:+} bytes)",
             with_cd_size(base, delta), open="ok", index="ok", read={"*": "ok"}, max_heap_mb=16)
    # Not unambiguous: bytes between the records and the end record, and a wrong size.
    junk = bytearray(base[:-22] + b"JUNK" + base[-22:])
    case("cd-size-wrong-with-junk.zip", "a wrong directory size and 4 stray bytes after the records",
         with_cd_size(bytes(junk), -3), open="corrupt", max_heap_mb=16)

    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(CASES, f, indent=1)
        f.write("\n")


main()
