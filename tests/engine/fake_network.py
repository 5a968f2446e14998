"""A stand-in social network on loopback, with the faults the engine's tests inject.

Run as ``python fake_network.py PORT [options]`` (the chaos test keeps it in its own process, so
that killing workers never touches it) or start :class:`FakeNetwork` in a thread.

``POST /posts`` takes ``{"text", "ref"}``: ``ref`` is the delivery the post belongs to, the way a
network stores a client's reference (WeChat's media id, Bluesky's record key). Every request is
counted per delivery, and so is every post it created, so a double post always shows:

- ``--keep-keys S`` honours ``Idempotency-Key`` for S seconds (like Mastodon's hour); without it
  the network ignores the header and every request creates a post;
- ``--lookup`` answers ``GET /posts?ref=…`` with the posts made for that delivery;
- ``--drafts`` works the way WeChat does instead: ``POST /drafts`` keeps a draft and answers its
  id, ``POST /publish {"draft"}`` makes the post (each time it is asked), and only
  ``GET /posts?draft=…`` finds a post, by the draft it came from: a client that forgot the
  draft's id cannot tell whether it posted;
- ``--fail-after-create P`` answers HTTP 503 to a share P of the requests *after* creating the
  post (the fault that posted twice when resent without a lookup), or the first N of them;
- ``--rate-limit-first N`` answers the first N requests with HTTP 429 and ``Retry-After``
  (``auth_fail_first``, in a thread only: with HTTP 401, a revoked token);
- ``--delay LO HI`` holds each answer that long, and ``--stall P`` holds a share P of them
  ``--stall-seconds`` longer, so that a worker can be killed in the middle of a request.

``GET /inflight`` lists the worker processes (``X-Worker`` header) whose requests are being
answered right now, ``GET /stats`` the counts.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Faults:
    keep_keys: float | None = None  # seconds a key is honoured; None: keys ignored
    lookup: bool = False
    drafts: bool = False
    fail_after_create: float = 0.0
    fail_after_create_first: int = 0
    rate_limit_first: int = 0
    auth_fail_first: int = 0
    retry_after: float = 1.0
    delay: tuple[float, float] = (0.0, 0.0)
    stall: float = 0.0
    stall_seconds: float = 1.0
    seed: int = 7


@dataclass
class State:
    posts: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    created: Counter[str] = field(default_factory=Counter)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    inflight: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    auth_failed: int = 0
    failed_after_create: int = 0


class FakeNetwork:
    def __init__(self, faults: Faults, port: int = 0) -> None:
        self.faults = faults
        self.state = State()
        self.lock = threading.Lock()
        self.random = random.Random(faults.seed)
        network = self

        class Handler(_Handler):
            net = network

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeNetwork:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            s = self.state
            return {
                "posts": list(s.posts),
                "requests": dict(s.requests),
                "created": dict(s.created),
                "rate_limited": s.rate_limited,
                "auth_failed": s.auth_failed,
                "failed_after_create": s.failed_after_create,
            }

    # ------------------------------------------------------------------ requests

    def create(self, body: dict[str, Any], key: str | None, worker: int) -> tuple[int, Any]:
        ref = str(body.get("ref", ""))
        f = self.faults
        with self.lock:
            s = self.state
            s.requests[ref] += 1
            if s.rate_limited < f.rate_limit_first:
                s.rate_limited += 1
                return 429, {"error": "Too many requests"}
            if s.auth_failed < f.auth_fail_first:
                s.auth_failed += 1
                return 401, {"error": "The access token was revoked"}
            now = time.monotonic()
            kept = s.keys.get(key) if key and f.keep_keys is not None else None
            if kept is not None and now - kept[0] <= f.keep_keys:  # type: ignore[operator]
                post = kept[1]
            else:
                post = {"id": str(len(s.posts) + 1), "ref": ref, "text": body.get("text", "")}
                if "draft" in body:
                    post["draft"] = body["draft"]
                post["url"] = f"http://fake.example/@shop/{post['id']}"
                s.posts.append(post)
                s.created[ref] += 1
                if key and f.keep_keys is not None:
                    s.keys[key] = (now, post)
            s.inflight[worker] += 1
            wait = self.random.uniform(*f.delay) + (
                f.stall_seconds if self.random.random() < f.stall else 0
            )
            fail = self.random.random() < f.fail_after_create
            fail = fail or s.failed_after_create < f.fail_after_create_first
            if fail:
                s.failed_after_create += 1
        try:
            time.sleep(wait)  # the answer takes a moment: a worker may die meanwhile
        finally:
            with self.lock:
                s.inflight[worker] -= 1
        if fail:
            return 503, {"error": "Service Unavailable"}
        return 200, post

    def find(self, ref: str) -> tuple[int, Any]:
        if not self.faults.lookup:
            return 404, {"error": "Not Found"}
        with self.lock:
            return 200, [p for p in self.state.posts if p["ref"] == ref]

    def find_by_draft(self, draft: str) -> tuple[int, Any]:
        if not self.faults.drafts:
            return 404, {"error": "Not Found"}
        with self.lock:
            return 200, [p for p in self.state.posts if p.get("draft") == draft]

    def draft(self, body: dict[str, Any]) -> tuple[int, Any]:
        """A draft kept, not posted: the id is the client's to remember."""
        with self.lock:
            self.state.requests[str(body.get("ref", ""))] += 1
            draft = f"draft-{len(self.state.drafts) + 1}"
            self.state.drafts[draft] = {"ref": body.get("ref", ""), "text": body.get("text", "")}
        return 200, {"draft": draft}

    def publish(self, body: dict[str, Any], worker: int) -> tuple[int, Any]:
        with self.lock:
            kept = self.state.drafts.get(str(body.get("draft", "")))
        if kept is None:
            return 404, {"error": "no such draft"}
        return self.create({**kept, "draft": body["draft"]}, None, worker)

    def inflight(self) -> list[int]:
        with self.lock:
            return sorted(w for w, n in self.state.inflight.items() if n > 0 and w)


class _Handler(BaseHTTPRequestHandler):
    net: FakeNetwork

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status in (429, 503):
            self.send_header("Retry-After", f"{self.net.faults.retry_after:g}")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/stats":
            self._answer(200, self.net.stats())
        elif url.path == "/inflight":
            self._answer(200, self.net.inflight())
        elif url.path == "/posts" and "draft" in parse_qs(url.query):
            self._answer(*self.net.find_by_draft(parse_qs(url.query)["draft"][0]))
        elif url.path == "/posts":
            self._answer(*self.net.find((parse_qs(url.query).get("ref") or [""])[0]))
        else:
            self._answer(404, {"error": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        if len(data) < length or not length:  # the client died while sending: no post
            self._answer(400, {"error": "incomplete request"})
            return
        body = json.loads(data)
        worker = int(self.headers.get("X-Worker") or 0)
        path = urlsplit(self.path).path
        try:
            if path == "/drafts" and self.net.faults.drafts:
                status, answer = self.net.draft(body)
            elif path == "/publish" and self.net.faults.drafts:
                status, answer = self.net.publish(body, worker)
            elif self.net.faults.drafts:
                status, answer = 404, {"error": "Not Found"}
            else:
                status, answer = self.net.create(body, self.headers.get("Idempotency-Key"), worker)
            self._answer(status, answer)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker died waiting: what it asked for is done all the same


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--keep-keys", type=float)
    parser.add_argument("--lookup", action="store_true")
    parser.add_argument("--drafts", action="store_true")
    parser.add_argument("--fail-after-create", type=float, default=0.0)
    parser.add_argument("--rate-limit-first", type=int, default=0)
    parser.add_argument("--delay", type=float, nargs=2, default=(0.0, 0.0))
    parser.add_argument("--stall", type=float, default=0.0)
    parser.add_argument("--stall-seconds", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    a = parser.parse_args(argv)
    keep = math.inf if a.keep_keys is not None and a.keep_keys <= 0 else a.keep_keys
    faults = Faults(
        keep_keys=keep,
        lookup=a.lookup,
        drafts=a.drafts,
        fail_after_create=a.fail_after_create,
        rate_limit_first=a.rate_limit_first,
        delay=tuple(a.delay),
        stall=a.stall,
        stall_seconds=a.stall_seconds,
        seed=a.seed,
    )
    with FakeNetwork(faults, a.port) as net:
        net.thread.join()


if __name__ == "__main__":
    main(sys.argv[1:])
