"""A loopback fake of the AWS calls one send makes (DynamoDB GetItem/PutItem/UpdateItem, SNS Publish),
answering canned responses with TCP_NODELAY and keep-alive. Run in its own process so its CPU
is not counted against the sender."""
from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPDATE = (b'{"Attributes":{"id":{"S":"m-1"},"channel":{"S":"sms"},"to":{"S":"+14255550123"},'
          b'"status":{"S":"sent"},"providerMessageId":{"S":"p-1"}}}')
PUBLISH = (b'<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>'
           b"<MessageId>p-1</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId>"
           b"</ResponseMetadata></PublishResponse>")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        if target.endswith("UpdateItem"):
            body, ctype = UPDATE, "application/x-amz-json-1.0"
        elif target:
            body, ctype = b"{}", "application/x-amz-json-1.0"
        else:
            body, ctype = PUBLISH, "text/xml"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_port, flush=True)
    # Bounded: the benchmark terminates it; failing that, it stops itself after 10 minutes.
    import threading

    stopper = threading.Timer(600, server.shutdown)
    stopper.daemon = True
    stopper.start()
    server.serve_forever()
