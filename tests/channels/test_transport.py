"""Transport failures from real sockets, mapped by class through ``channels.http.TRANSPORT``:
a connection that never opened is retried, one lost after the request went out is unknown."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
import requests

from channels.base import OutcomeUnknown, RetryLater
from channels.http import transport_failure


def _server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that reads one request and then does ``answer`` to the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/hook"
    thread.join(timeout=5)
    listener.close()


def _close(conn: socket.socket) -> None:
    conn.close()


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # with a zero linger: an RST, not a FIN


def _half_answer(conn: socket.socket) -> None:
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id":')
    conn.close()


def _failure_of(url: str, **kw: float) -> requests.RequestException:
    with pytest.raises(requests.RequestException) as caught:
        requests.post(url, data=b"{}", timeout=kw.get("timeout", 5.0))
    return caught.value


@pytest.mark.parametrize("answer", [_close, _reset, _half_answer], ids=["closed", "reset", "cut"])
def test_a_connection_lost_after_the_request_is_an_unknown_outcome(
    answer: Callable[[socket.socket], None],
) -> None:
    for url in _server(answer):
        error, says = transport_failure(_failure_of(url))
        assert error is OutcomeUnknown, says


def test_a_refused_connection_is_retried() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    error, says = transport_failure(_failure_of(f"http://127.0.0.1:{port}/hook"))
    assert (error, says) == (RetryLater, "cannot connect")


def test_no_answer_in_time_is_an_unknown_outcome() -> None:
    def silent(conn: socket.socket) -> None:
        while conn.recv(65536):  # reads the rest of the request, then waits for the client
            pass  # to give up and close its end
        conn.close()

    for url in _server(silent):
        error, says = transport_failure(_failure_of(url, timeout=0.3))
        assert (error, says) == (OutcomeUnknown, "no answer in time; the post may exist")
