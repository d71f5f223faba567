"""Clients that hang up mid-request, for the local HTTP servers built on ``http.server`` (the app's, the webhook
receiver's): curl stopped with ^C or a browser tab closed before the answer is written costs one short line, not
socketserver's traceback in ``make dev``'s terminal, and the server goes on serving.

The embedded AWS runs on werkzeug's server, whose request handler already drops such a connection quietly.
"""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler

# What a read from or a write to a socket the client has closed raises: EPIPE after its FIN, ECONNRESET after
# its RST (SO_LINGER 0, or any write that reached a closed socket), ECONNABORTED on some platforms.
HANG_UPS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class QuietHangUps(BaseHTTPRequestHandler):
    """A request handler base: a client that hangs up ends its connection with at most one line through
    ``log_message`` (so the handler's own log masking applies), naming the request that went unanswered.
    A connection reset while it idles between requests prints nothing: no answer was lost."""

    def handle_one_request(self) -> None:
        self.requestline = ""  # parse_request sets it: while it is empty, no request is in hand
        super().handle_one_request()

    def handle(self) -> None:
        try:
            super().handle()
        except HANG_UPS as err:
            self.close_connection = True
            if self.requestline:
                self.log_message('"%s" unanswered: the client closed the connection first (%s)',
                                 self.requestline, type(err).__name__)
