"""A small HTTP file server for testing downloads: Range requests (resuming), and faults on
demand — a connection dropped part-way, or bytes that are not the file's."""
import hashlib
import http.server
import json
import re
import threading
from pathlib import Path


class DataServer:
    def __init__(self, root):
        self.root = Path(root)
        self.requests = []   # (path, Range header or None)
        self.drop = {}       # name: [bytes to send before dropping, times left]
        self.corrupt = set()  # names served with their bytes flipped
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                path = server.root / name
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                if name in server.corrupt:
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start = 0
                match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                fault = server.drop.get(name)
                if fault and fault[1] > 0:
                    fault[1] -= 1
                    self.wfile.write(body[: fault[0]])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the connection breaks mid-file
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def registry_for(registry, files, url):
    """dlab's registry with its real install rules, pointing at files served from url: their
    sha256 where the real entry has a checksum, their size where it has none."""
    out = {}
    for name, entry in registry.items():
        if name.startswith("_"):
            continue
        entry = json.loads(json.dumps(entry))
        for fname, spec in entry["files"].items():
            data = (Path(files) / fname).read_bytes()
            spec["url"] = f"{url}/{fname}"
            if "hash" in spec:
                spec["hash"] = "sha256:" + hashlib.sha256(data).hexdigest()
            else:
                spec["size"] = len(data)
        out[name] = entry
    return out
