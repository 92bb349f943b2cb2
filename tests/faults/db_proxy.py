"""A TCP proxy between the app and PostgreSQL that a test can cut and restore: a database outage on demand.

Cutting it does what a server restart does to its clients, without touching the shared cluster: every
established connection is closed under its owner (mid-query or idle in the pool), and new connections
are refused until :meth:`DbProxy.restore` listens again on the same port.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

_CHUNK = 65536


class DbProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream``; :meth:`cut` and :meth:`restore` the link.

    :param upstream: ``(host, port)`` of the real server
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.connections = 0

    def __enter__(self) -> DbProxy:
        self.restore()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cut()

    def url_for(self, url: str) -> str:
        """``url`` (a SQLAlchemy URL of the upstream server) rewritten to go through the proxy."""
        from sqlalchemy.engine import make_url
        return make_url(url).set(host='127.0.0.1', port=self.port).render_as_string(hide_password=False)

    # -- the outage ------------------------------------------------------------------------------------

    def restore(self) -> None:
        """Listen again (on the same port once it has one) and forward new connections."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(('127.0.0.1', self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name='db-proxy-accept').start()

    def cut(self) -> None:
        """Stop listening (new connections are refused) and close every established connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            live, self._sockets = self._sockets, set()
        if listener is not None:
            _close(listener)
        for sock in live:
            _close(sock)

    # -- forwarding ------------------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    _close(client)
                    _close(server)
                    continue
                self._sockets.update((client, server))
                self.connections += 1
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True,
                                 name='db-proxy-pump').start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(_CHUNK):
                target.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._sockets.discard(source)
            self._sockets.discard(target)
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
