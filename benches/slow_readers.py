#!/usr/bin/env python3
"""Slow readers for benches/run-server.sh: N concurrent HTTP/1.1 GETs of one URL, each
reading at most CHUNK bytes every INTERVAL seconds for SECONDS, then closing. Meanwhile the
server's memory (VmRSS, VmHWM) and thread count are sampled from /proc/PID/status.

Prints one JSON object on stdout (a human summary on stderr).
Standard library only; plain sockets on the asyncio loop, so no client-side buffering beyond
one CHUNK per connection.
"""

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
from collections import Counter


def proc_status(pid):
    """VmRSS and VmHWM in KiB and Threads, from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


class Stats:
    def __init__(self):
        self.statuses = Counter()
        self.errors = Counter()
        self.bytes = []  # body bytes per connection that got a status line
        self.ttfb = []  # seconds from connect to the end of the response head
        self.early_eof = 0  # the server closed before the deadline
        self.rss_max = 0
        self.threads_max = 0
        self.samples = []


async def one(args, stats, deadline, head_bytes):
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    got_body = None
    try:
        t0 = time.monotonic()
        await loop.sock_connect(sock, (args.host, args.port))
        await loop.sock_sendall(sock, head_bytes)
        # The response head (and whatever body arrived with it).
        head = bytearray()
        while b"\r\n\r\n" not in head:
            data = await asyncio.wait_for(loop.sock_recv(sock, 16384), max(0.001, deadline - time.monotonic()))
            if not data:
                raise ConnectionError("closed before the response head")
            head += data
        stats.ttfb.append(time.monotonic() - t0)
        end = head.index(b"\r\n\r\n") + 4
        status = int(head.split(b" ", 2)[1])
        stats.statuses[status] += 1
        got_body = len(head) - end
        if status != 200:
            return
        buf = bytearray(args.chunk)
        view = memoryview(buf)
        while time.monotonic() < deadline:
            got = 0
            while got < args.chunk:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                n = await asyncio.wait_for(loop.sock_recv_into(sock, view[got:]), left)
                if n == 0:
                    stats.early_eof += 1
                    return
                got += n
            got_body += got
            await asyncio.sleep(args.interval)
    except asyncio.TimeoutError:
        if got_body is None:
            stats.errors["no response head before the deadline"] += 1
    except (OSError, ConnectionError, ValueError, IndexError) as e:
        stats.errors[f"{type(e).__name__}: {e}"] += 1
    finally:
        if got_body is not None:
            stats.bytes.append(got_body)
        sock.close()


async def sample(args, stats, stop):
    while not stop.is_set():
        try:
            s = proc_status(args.pid)
        except OSError:
            return
        stats.rss_max = max(stats.rss_max, s["VmRSS"])
        stats.threads_max = max(stats.threads_max, s["Threads"])
        stats.samples.append(s["VmRSS"])
        try:
            await asyncio.wait_for(stop.wait(), args.sample_every)
        except asyncio.TimeoutError:
            pass


async def main(args):
    stats = Stats()
    head = (
        f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        + "".join(f"{h}\r\n" for h in args.header)
        + "Connection: close\r\n\r\n"
    ).encode()
    stop = asyncio.Event()
    sampler = None
    if args.pid:
        start = proc_status(args.pid)
        sampler = asyncio.create_task(sample(args, stats, stop))
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    await asyncio.gather(*(one(args, stats, deadline, head) for _ in range(args.connections)))
    elapsed = time.monotonic() - t0
    out = {
        "connections": args.connections,
        "seconds": round(elapsed, 2),
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "errors": dict(stats.errors),
        "early_eof": stats.early_eof,
        "bytes_total": sum(stats.bytes),
        "bytes_per_conn_min": min(stats.bytes, default=0),
        "bytes_per_conn_median": int(statistics.median(stats.bytes)) if stats.bytes else 0,
        "bytes_per_conn_nominal": int(args.chunk * args.seconds / args.interval),
        "ttfb_median_ms": round(statistics.median(stats.ttfb) * 1000, 1) if stats.ttfb else None,
        "ttfb_max_ms": round(max(stats.ttfb) * 1000, 1) if stats.ttfb else None,
    }
    if sampler:
        # Peak while the readers were connected, then the same after they closed.
        stop.set()
        await sampler
        end = proc_status(args.pid)
        out.update(
            rss_start_kib=start["VmRSS"],
            rss_peak_sampled_kib=stats.rss_max,
            vmhwm_kib=end["VmHWM"],
            threads_start=start["Threads"],
            threads_peak=stats.threads_max,
            samples=len(stats.samples),
        )
    print(json.dumps(out))
    mib = 1 << 20
    print(
        f"slow readers: {args.connections} connections, {elapsed:.1f} s, statuses {out['statuses']}, "
        f"errors {out['errors'] or 'none'}, early EOF {stats.early_eof}, "
        f"{out['bytes_total'] / mib:.0f} MiB received ({out['bytes_total'] / mib / elapsed:.0f} MiB/s; "
        f"nominal {args.connections * args.chunk / args.interval / mib:.0f} MiB/s), "
        f"per connection min {out['bytes_per_conn_min'] / mib:.1f} / median {out['bytes_per_conn_median'] / mib:.1f} MiB, "
        f"time to response head median {out['ttfb_median_ms']} ms / max {out['ttfb_max_ms']} ms",
        file=sys.stderr,
    )
    if sampler:
        print(
            f"server pid {args.pid}: RSS {start['VmRSS'] / 1024:.1f} MiB at start, peak {stats.rss_max / 1024:.1f} MiB sampled "
            f"(VmHWM {end['VmHWM'] / 1024:.1f} MiB), threads {start['Threads']} -> peak {stats.threads_max}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", help="http://HOST:PORT/PATH")
    p.add_argument("-H", "--header", action="append", default=[], help="extra request header, 'Name: value'")
    p.add_argument("-c", "--connections", type=int, default=500)
    p.add_argument("-s", "--seconds", type=float, default=20.0)
    p.add_argument("--chunk", type=int, default=64 * 1024, help="bytes read per tick (default 64 KiB)")
    p.add_argument("--interval", type=float, default=0.1, help="seconds between reads (default 0.1)")
    p.add_argument("--pid", type=int, help="server process to sample")
    p.add_argument("--sample-every", type=float, default=0.1)
    a = p.parse_args()
    rest = a.url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    a.host, _, port = hostport.partition(":")
    a.port = int(port or 80)
    a.path = "/" + path
    asyncio.run(main(a))
