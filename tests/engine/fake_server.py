"""A stand-in social network on loopback for the chaos test: honours Idempotency-Key, counts posts.

Run as ``python fake_server.py PORT``. ``POST /posts`` creates a post unless one exists for the
request's Idempotency-Key, in which case it answers with that one (like Mastodon). ``GET /stats``
tells how many posts each key created and how many requests came in.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
POSTS: dict[str, dict[str, str]] = {}
CREATED: dict[str, int] = {}
REQUESTS = {"n": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with LOCK:
            self._answer(200, {"created": CREATED, "posts": POSTS, "requests": REQUESTS["n"]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._answer(422, {"error": "Idempotency-Key required"})
            return
        with LOCK:
            REQUESTS["n"] += 1
            if key not in POSTS:
                n = len(POSTS) + 1
                POSTS[key] = {"id": str(n), "url": f"http://fake.example/@shop/{n}"}
                CREATED[key] = CREATED.get(key, 0) + 1
            post = POSTS[key]
        time.sleep(random.uniform(0, 0.1))  # the answer takes a moment: workers die meanwhile
        self._answer(200, {**post, "text": body.get("text", "")})


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
