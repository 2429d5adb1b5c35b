"""The Python example: standard library only, on the bookworm stack."""
import os
import platform
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n" if self.path == "/health" else (
            "Hello from Python %s\n" % platform.python_version()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print("python-hello listening on :%d" % port, flush=True)
    HTTPServer(("", port), Handler).serve_forever()
