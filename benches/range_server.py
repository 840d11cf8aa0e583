#!/usr/bin/env python3
"""A static file server with single byte ranges, strong ETags and an added latency per
request: the remote end of the HTTP benchmarks (benches/run-http.sh).

Usage: range_server.py DIR PORT [--delay-ms N]
GET /__stats returns "requests bytes" since the last GET /__reset.
"""
import http.server
import os
import sys
import threading
import time

ROOT = sys.argv[1]
PORT = int(sys.argv[2])
DELAY = float(sys.argv[sys.argv.index("--delay-ms") + 1]) / 1000 if "--delay-ms" in sys.argv else 0.0
LOCK = threading.Lock()
STATS = {"requests": 0, "bytes": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm holds the
    # body back until the client's delayed ACK of the headers (40 ms on Linux).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def reply(self, status, headers, body=b""):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__stats":
            with LOCK:
                body = f"{STATS['requests']} {STATS['bytes']}\n".encode()
            return self.reply(200, {}, body)
        if self.path == "/__reset":
            with LOCK:
                STATS.update(requests=0, bytes=0)
            return self.reply(200, {})
        if DELAY:
            time.sleep(DELAY)
        path = os.path.join(ROOT, self.path.split("?")[0].lstrip("/"))
        try:
            st = os.stat(path)
        except OSError:
            return self.reply(404, {})
        size = st.st_size
        etag = f'"{st.st_size:x}-{int(st.st_mtime_ns):x}"'
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if_match = self.headers.get("If-Match")
        if if_match and if_match not in ("*", etag):
            return self.reply(412, {"ETag": etag})
        if_range = self.headers.get("If-Range")
        if rng and (not if_range or if_range == etag) and rng.startswith("bytes=") and "," not in rng:
            a, _, b = rng[6:].partition("-")
            if a == "":
                n = int(b)
                start, end = max(0, size - n), size - 1
            else:
                start, end = int(a), min(int(b) if b else size - 1, size - 1)
            if start >= size or start > end:
                return self.reply(416, {"Content-Range": f"bytes */{size}"})
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        with LOCK:
            STATS["requests"] += 1
            STATS["bytes"] += length
        with open(path, "rb") as f:
            f.seek(start)
            left = length
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)

    def do_HEAD(self):
        path = os.path.join(ROOT, self.path.split("?")[0].lstrip("/"))
        try:
            st = os.stat(path)
        except OSError:
            return self.reply(404, {})
        with LOCK:
            STATS["requests"] += 1
        self.send_response(200)
        self.send_header("ETag", f'"{st.st_size:x}-{int(st.st_mtime_ns):x}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(st.st_size))
        self.end_headers()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that close early (ripunzip's parallel readers) are not news


Server(("127.0.0.1", PORT), Handler).serve_forever()
