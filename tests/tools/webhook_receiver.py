#!/usr/bin/env python3
"""webhook_receiver.py — the receiving end of tests/webhooks.sh: an HTTP
server (standard library only) that verifies every delivery's Standard
Webhooks signature on its own, with hmac, and records it.

    webhook_receiver.py PORT DIR

POST /hook/NAME is verified with the secret in DIR/NAME.secret (whsec_...),
answered as DIR/NAME.mode says ("ok": 200, "500": 500, "slow:MS": 200 after
MS ms; no file: ok) and recorded as one JSON line in DIR/NAME.log:
{webhook_id, timestamp, valid, why, status, body_id, type}. A delivery whose
signature does not verify is answered 401 (and recorded, valid false).
Being down is being stopped: the test kills it and starts it again.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time

TOLERANCE_S = 300  # a timestamp further than this from our clock is refused (replays)
BODY_MAX = 65536
NAME = re.compile(r"^/hook/([a-z0-9_-]{1,64})$")
LOCK = threading.Lock()


def verify(secret, msg_id, timestamp, signatures, body):
    """None when one of the v1 signatures is HMAC-SHA256(secret, id.ts.body), else why not."""
    if not (msg_id and timestamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not an integer"
    if abs(time.time() - ts) > TOLERANCE_S:
        return "webhook-timestamp outside the tolerance"
    if not secret.startswith("whsec_"):
        return "the secret is not whsec_"
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for sig in signatures.split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return None
    return "no signature matches"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def read_file(self, name, suffix, default):
        try:
            with open(os.path.join(self.server.dir, name + suffix), encoding="utf-8") as f:
                return f.read().strip()
        except FileNotFoundError:
            return default

    def do_POST(self):
        m = NAME.match(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if not m or length > BODY_MAX:
            self.send_error(404 if not m else 413)
            return
        name = m.group(1)
        body = self.rfile.read(length)
        msg_id = self.headers.get("webhook-id")
        why = verify(self.read_file(name, ".secret", ""), msg_id, self.headers.get("webhook-timestamp"),
                     self.headers.get("webhook-signature"), body)
        mode = self.read_file(name, ".mode", "ok")
        status = 401 if why else 500 if mode == "500" else 200
        if mode.startswith("slow:"):
            time.sleep(int(mode[5:]) / 1000)
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        rec = {"webhook_id": msg_id, "timestamp": self.headers.get("webhook-timestamp"), "valid": why is None,
               "why": why, "status": status, "body_id": event.get("id"), "type": event.get("type"),
               "user_agent": self.headers.get("User-Agent"), "content_type": self.headers.get("Content-Type")}
        with LOCK, open(os.path.join(self.server.dir, name + ".log"), "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.dir = directory
    server.serve_forever()


if __name__ == "__main__":
    main()
