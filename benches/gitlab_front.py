#!/usr/bin/env python3
"""A GitLab-with-object-storage stand-in for benches/run-proxy.sh: in front of `artifact
serve`, it adds a latency to every request and, like GitLab with object storage, answers
archive downloads of the jobs it is told about with a 302 to a presigned-looking URL on a
separate range server, once the upstream has said the caller may read the archive.

Usage: gitlab_front.py UPSTREAM_URL PORT --object JOB=URL [--object ...] [--delay-ms N]
GET /__stats returns "requests" since the last GET /__reset. Standard library only.
"""
import argparse
import http.client
import http.server
import re
import secrets
import threading
import time
import urllib.parse

parser = argparse.ArgumentParser()
parser.add_argument("upstream")
parser.add_argument("port", type=int)
parser.add_argument("--object", action="append", default=[], help="JOB=URL of its archive")
parser.add_argument("--delay-ms", type=float, default=0.0)
ARGS = parser.parse_args()
UP = urllib.parse.urlsplit(ARGS.upstream)
OBJECTS = dict(o.split("=", 1) for o in ARGS.object)
DELAY = ARGS.delay_ms / 1000
DOWNLOAD = re.compile(r"^/api/v4/projects/[^/]+/jobs/(\d+)/artifacts$")
LOCAL = threading.local()
LOCK = threading.Lock()
STATS = {"requests": 0}
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def upstream():
    """This thread's keep-alive connection to the upstream."""
    if getattr(LOCAL, "conn", None) is None:
        LOCAL.conn = http.client.HTTPConnection(UP.hostname, UP.port, timeout=60)
    return LOCAL.conn


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm holds the
    # body back until the client's delayed ACK of the headers (40 ms on Linux).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def ask(self, method, headers):
        conn = upstream()
        try:
            conn.request(method, self.path, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            LOCAL.conn = None
            conn = upstream()
            conn.request(method, self.path, headers=headers)
            resp = conn.getresponse()
        return resp, resp.read()

    def handle_one(self, method):
        if self.path == "/__stats":
            return self.reply(200, [], f"{STATS['requests']}\n".encode())
        if self.path == "/__reset":
            with LOCK:
                STATS["requests"] = 0
            return self.reply(200, [], b"")
        with LOCK:
            STATS["requests"] += 1
        if DELAY:
            time.sleep(DELAY)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        path = urllib.parse.urlsplit(self.path).path
        match = DOWNLOAD.match(path)
        if method == "GET" and match and match.group(1) in OBJECTS:
            # May this caller read it? The upstream decides; then the object's URL.
            resp, body = self.ask("GET", {**headers, "Range": "bytes=0-0"})
            if resp.status in (200, 206):
                signature = secrets.token_hex(16)
                location = f"{OBJECTS[match.group(1)]}?X-Amz-Expires=300&X-Amz-Signature={signature}"
                return self.reply(302, [("Location", location)], b"")
            return self.reply(resp.status, resp.getheaders(), body)
        resp, body = self.ask(method, headers)
        return self.reply(resp.status, resp.getheaders(), body if method != "HEAD" else b"")

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.handle_one("GET")

    def do_HEAD(self):
        self.handle_one("HEAD")


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler).serve_forever()
