"""A webhook receiver for the tests: verifies every delivery with the Standard Webhooks
reference library and records it.

Usage: receiver.py PORT. Endpoints:
  POST /_control  {"secrets": {path: [whsec_...]}, "status": {path: code}, "retry_after": {path: s}}
                  merges into the receiver's settings (an endpoint answers 200 unless told).
  GET  /_received every delivery so far: {path, id, timestamp, verified, error, answered, body}.
  POST anything else: a delivery.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()
SECRETS = {}
STATUS = {}
RETRY_AFTER = {}
RECEIVED = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def do_GET(self):
        if self.path == "/_received":
            with LOCK:
                data = json.dumps(RECEIVED).encode()
            self.reply(200, data, {"Content-Type": "application/json"})
        else:
            self.reply(404)

    def do_POST(self):
        raw = self.body()
        if self.path == "/_control":
            c = json.loads(raw)
            with LOCK:
                SECRETS.update(c.get("secrets", {}))
                STATUS.update(c.get("status", {}))
                RETRY_AFTER.update(c.get("retry_after", {}))
            self.reply(204)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified, error, body = False, None, None
        with LOCK:
            secrets = list(SECRETS.get(self.path, []))
            code = STATUS.get(self.path, 200)
            retry_after = RETRY_AFTER.get(self.path)
        for secret in secrets:
            try:
                body = Webhook(secret).verify(raw, headers)
                verified, error = True, None
                break
            except WebhookVerificationError as e:
                error = str(e)
        if body is None:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        with LOCK:
            RECEIVED.append({
                "path": self.path,
                "id": headers.get("webhook-id"),
                "timestamp": headers.get("webhook-timestamp"),
                "signature": headers.get("webhook-signature"),
                "verified": verified,
                "error": error if not verified else None,
                "answered": code,
                "body": body,
            })
        extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.reply(code, b"receiver says %d" % code, extra)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
