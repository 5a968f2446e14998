"""A Mastodon server on loopback, as far as posting and deleting statuses go.

Shaped after Mastodon 4's REST API: ``POST /api/v1/statuses`` (form fields, ``Idempotency-Key``
honoured), ``GET``/``DELETE /api/v1/statuses/:id`` (the delete answers the deleted status with
its ``text`` source, as Mastodon does for "delete and redraft"; a status that is not there
answers 404 ``{"error": "Record not found"}``), ``/api/v2/instance`` and the account lookups the
adapter uses. Every DELETE is counted per status, so a second delete of one post shows.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "fake-mastodon-token"
ACCOUNT = {"id": "109", "username": "cedarandclay", "acct": "cedarandclay"}


class FakeMastodon:
    def __init__(self) -> None:
        self.statuses: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.deletes: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._next = 113_000_000_000_000_000
        fake = self

        class Handler(_Handler):
            server_state = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeMastodon:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def create(self, form: dict[str, str], key: str | None) -> dict[str, Any]:
        with self.lock:
            if key and key in self.keys and self.keys[key] in self.statuses:
                return self.statuses[self.keys[key]]
            self._next += 1
            id_ = str(self._next)
            text = form.get("status", "")
            status: dict[str, Any] = {
                "id": id_,
                "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "uri": f"{self.url}/users/cedarandclay/statuses/{id_}",
                "url": f"{self.url}/@cedarandclay/{id_}",
                "visibility": form.get("visibility", "public"),
                "language": form.get("language"),
                "content": f"<p>{text}</p>",
                "favourites_count": 0,
                "reblogs_count": 0,
                "replies_count": 0,
                "account": ACCOUNT,
                "media_attachments": [],
            }
            self.statuses[id_] = {**status, "text": text}
            if key:
                self.keys[key] = id_
            return status

    def delete(self, id_: str) -> dict[str, Any] | None:
        with self.lock:
            self.deletes[id_] += 1
            return self.statuses.pop(id_, None)


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeMastodon

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._answer(401, {"error": "The access token is invalid"})
        return False

    def _status_id(self) -> str | None:
        path = urlsplit(self.path).path
        prefix = "/api/v1/statuses/"
        return path[len(prefix) :] if path.startswith(prefix) else None

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        fake = self.server_state
        if path == "/api/v2/instance":
            statuses = {"max_characters": 500, "characters_reserved_per_url": 23}
            self._answer(200, {"domain": "127.0.0.1", "configuration": {"statuses": statuses}})
            return
        if not self._authorised():
            return
        if path == "/api/v1/accounts/verify_credentials":
            self._answer(200, ACCOUNT)
        elif path == f"/api/v1/accounts/{ACCOUNT['id']}/statuses":
            with fake.lock:
                found = sorted(fake.statuses.values(), key=lambda s: s["id"], reverse=True)
            self._answer(200, [{k: v for k, v in s.items() if k != "text"} for s in found])
        elif (id_ := self._status_id()) is not None:
            with fake.lock:
                status = fake.statuses.get(id_)
            if status is None:
                self._answer(404, {"error": "Record not found"})
            else:
                self._answer(200, {k: v for k, v in status.items() if k != "text"})
        else:
            self._answer(404, {"error": "Record not found"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        if urlsplit(self.path).path != "/api/v1/statuses":
            self._answer(404, {"error": "Record not found"})
            return
        if not form.get("status"):
            self._answer(422, {"error": "Validation failed: Text can't be blank"})
            return
        self._answer(200, self.server_state.create(form, self.headers.get("Idempotency-Key")))

    def do_DELETE(self) -> None:
        if not self._authorised():
            return
        id_ = self._status_id()
        deleted = self.server_state.delete(id_) if id_ else None
        if deleted is None:
            self._answer(404, {"error": "Record not found"})
        else:
            self._answer(200, deleted)
