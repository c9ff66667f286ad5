"""git's smart HTTP protocol for the repositories in a folder: `python3 git_server.py ROOT PORT`.
nbgitpuller clones shallow (--depth 1), which git's dumb protocol (plain files) cannot serve; this
runs git's own CGI program, git http-backend, for each request (read-only: no push over HTTP)."""
import subprocess
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server


def app(root):
    def serve(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        cgi = {"GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1", "PATH": "/usr/bin:/bin",
               **{key: environ.get(key, "") for key in ("PATH_INFO", "QUERY_STRING", "REQUEST_METHOD",
                                                        "CONTENT_TYPE", "REMOTE_ADDR")},
               "CONTENT_LENGTH": str(len(body)), "HTTP_GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", "")}
        out = subprocess.run(["git", "http-backend"], input=body, env=cgi, capture_output=True, timeout=60).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in head.decode().split("\r\n") if ":" in line]
        status = next((value for name, value in headers if name.lower() == "status"), "200 OK")
        start_response(status, [(name, value) for name, value in headers if name.lower() != "status"])
        return [payload]
    return serve


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    make_server("0.0.0.0", int(sys.argv[2]), app(sys.argv[1]), handler_class=Quiet).serve_forever()
