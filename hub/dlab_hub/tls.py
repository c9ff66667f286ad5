"""The organizer's certificate and key into the proxy's volume, checked first (`make up` with
DLAB_SSL_CERT): runs in a one-off container of the hub image, as the hub's user, with the two files
on its standard input (base64, one a line), so that a key only root can read still works and no
key ever enters an image.

    python -m dlab_hub.tls check     the key belongs to the certificate (in a scratch folder)
    python -m dlab_hub.tls install   the same, then into /srv/proxy; prints `changed` or `same`
"""
import base64
import os
import ssl
import sys
import tempfile

PROXY_DIR = "/srv/proxy"


def main(argv):
    if argv[1:] not in (["check"], ["install"]):
        print(__doc__.split("\n\n")[-1], file=sys.stderr)
        return 2
    cert, key = (base64.b64decode(line) for line in sys.stdin.read().split())
    folder = PROXY_DIR if argv[1] == "install" else tempfile.mkdtemp()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    paths = {f"{folder}/ssl-cert.pem": cert, f"{folder}/ssl-key.pem": key}
    for path, data in paths.items():
        fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*(p + ".new" for p in paths))
    except (ssl.SSLError, ValueError) as error:
        print(f"dlab: the certificate and key are not a PEM certificate with its own private key ({error})", file=sys.stderr)
        return 1
    changed = any(not os.path.exists(p) or open(p, "rb").read() != data for p, data in paths.items())
    for path in paths:
        os.replace(path + ".new", path)
    print("changed" if changed else "same")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
