"""Serves lambda_function.lambda_handler behind HTTP, as a team would put a Lambda rotation function behind Tumbler.

POST / with the rotation event JSON. The X-Tumbler-Signature header (t=UNIX,v1=hex(HMAC-SHA256(secret,
"UNIX." + body))) must verify with the shared secret read from the file named by TUMBLER_SHARED_SECRET_FILE
and be at most five minutes old: otherwise 401. Then lambda_handler(event, None): 200, or 500 with the
exception's text. The handler calls back with this process's own credentials (AWS_ACCESS_KEY_ID, ...) at
SECRETS_MANAGER_ENDPOINT: Tumbler gives HTTP functions none.

Listens on 127.0.0.1 on a free port and prints "listening PORT" as its first line of standard output.
"""
import hashlib
import hmac
import http.server
import json
import os
import sys
import time
import traceback

import lambda_function

with open(os.environ["TUMBLER_SHARED_SECRET_FILE"], encoding="utf-8") as f:
    SHARED_SECRET = f.read().strip().encode("utf-8")


def verify(header, body):
    parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
    t, v1 = parts.get("t", ""), parts.get("v1", "")
    if not t.isdigit() or abs(time.time() - int(t)) > 300:
        return False
    expected = hmac.new(SHARED_SECRET, t.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verify(self.headers.get("X-Tumbler-Signature"), body):
            sys.stderr.write("refused a request with a bad signature\n")
            self.answer(401, b"bad signature")
            return
        try:
            event = json.loads(body)
            lambda_function.lambda_handler(event, None)
        except Exception:
            text = traceback.format_exc()
            sys.stderr.write(text)
            self.answer(500, text.encode("utf-8"))
            return
        self.answer(200, b"{}")

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        function = self.headers.get("X-Tumbler-Function", "-") if self.headers else "-"
        sys.stderr.write("%s %s\n" % (function, format % args))


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print("listening %d" % server.server_address[1], flush=True)
server.serve_forever()
