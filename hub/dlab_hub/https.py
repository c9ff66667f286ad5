"""HTTPS by itself (DLAB_DOMAIN): Caddy in front of the class's proxy gets the certificate from an
ACME authority (HTTP-01 on port 80, or TLS-ALPN-01 on 443), keeps it and its account key in the
`https` volume, renews it before it expires, redirects port 80 to HTTPS and hands every request to
the proxy. dlab writes no ACME code: this module only writes Caddy's configuration, reads back
what Caddy keeps, and says in words what went wrong.

In compose.yaml's `https` service (dlab/hub's image, as the hub's user, no capabilities):

    python -m dlab_hub.https run            write the Caddyfile from the environment, then run Caddy
    python -m dlab_hub.https certificate    the stored certificate of DLAB_DOMAIN as JSON ({} if none)

On the host, `make up` (dlab_hub.classserver) waits for the certificate and, on a failure, turns
Caddy's log into what to do (`diagnosis`). Standard library only.
"""
import json
import os
import re
import ssl
import sys
import urllib.parse

DATA_DIR = "/data"  # the https volume: XDG_DATA_HOME, so Caddy keeps its certificates in /data/caddy
CA_ROOT = "/etc/dlab/acme-ca-root.pem"  # DLAB_ACME_CA_ROOT, mounted (/dev/null when unset)
CADDYFILE = "/tmp/Caddyfile"
HEALTH_PORT = 2080


def caddyfile(domain, directory, email="", ca_root=False):
    """Caddy's configuration for the class at https://DOMAIN: a pure function (tested by make check)."""
    issuer = [f"dir {directory}"]
    if email:
        issuer.append(f"email {email}")
    if ca_root:
        issuer.append(f"trusted_roots {CA_ROOT}")
    lines = [
        "{",
        "\tadmin off",  # no API to reconfigure it: the configuration is this file, made at each start
        f"\tstorage file_system {DATA_DIR}/caddy",
        # How often Caddy looks at the certificate's dates (no network): in time for the short-lived
        # certificates some authorities give (Let's Encrypt's 6-day ones, an internal CA's hours). It
        # renews once a third of the lifetime is left (60 of Let's Encrypt's 90 days), without a restart.
        "\trenew_interval 10s",
        "\tocsp_stapling off",  # Let's Encrypt has ended OCSP; an internal authority may have none
        "\tservers {",
        "\t\tprotocols h1 h2",  # no HTTP/3: compose publishes TCP only
        # A client that never finishes its headers (or TLS handshake) lets go of its connection.
        "\t\ttimeouts {",
        "\t\t\tread_header 10s",
        "\t\t}",
        "\t}",
        "}",
        "",
        f"{domain} {{",
        # This authority only (no fallback to another), with the organizer's address and root.
        "\ttls {",
        "\t\tissuer acme {",
        *(f"\t\t\t{line}" for line in issuer),
        "\t\t}",
        "\t}",
        # To the class's proxy, as the browser asked (Host kept; X-Forwarded-For set to the browser's
        # address, whatever the browser claimed, which the hub reads: dlab_hub.web.client_address).
        "\treverse_proxy proxy:8000",
        "}",
        "",
        # Docker's health check (dlab-hub-healthcheck https), inside the container only.
        f"http://127.0.0.1:{HEALTH_PORT} {{",
        "\tbind 127.0.0.1",
        "\trespond 200",
        "}",
        "",
    ]
    return "\n".join(lines)


def issuer_key(directory):
    """The folder Caddy (its CertMagic) keeps an authority's certificates in: the directory URL's
    host and path, made safe (acme-v02.api.letsencrypt.org-directory for Let's Encrypt's)."""
    parts = urllib.parse.urlsplit(directory)
    key = parts.netloc + ("-" + parts.path.strip("/") if parts.path.strip("/") else "")
    key = key.lower().strip().replace(" ", "_").replace("+", "_plus_").replace("*", "wildcard_").replace(":", "-")
    return re.sub(r"[^\w@.-]", "", key.replace("..", ""))


def stored_certificate(domain, directory, data_dir=DATA_DIR):
    """What Caddy keeps for DOMAIN from the authority at DIRECTORY (another authority's, from an
    earlier setting, is not this one's): {"names", "not_before", "not_after", "serial", "issuer"}, or {}."""
    path = f"{data_dir}/caddy/certificates/{issuer_key(directory)}/{domain}/{domain}.crt"
    if not os.path.exists(path):
        return {}
    decoded = ssl._ssl._test_decode_cert(path)  # the standard library's own parser of a PEM file
    return {"names": [value for kind, value in decoded.get("subjectAltName", ()) if kind == "DNS"],
            "not_before": decoded["notBefore"], "not_after": decoded["notAfter"],
            "serial": decoded["serialNumber"], "issuer": dict(pair[0] for pair in decoded["issuer"])}


# --- what went wrong, in words --------------------------------------------------------------------

# Caddy's loggers of the ACME exchange: an attempt's end (tls.obtain) and the authority's answers
# (acmez's client: http.acme_client in Caddy 2.6). Not Caddy's others: a request to port 80 or 443
# makes Caddy log an error (logger `http`, `tls`) with any Host the sender likes ("looking up info
# for HTTP challenge", "tls-alpn challenge").
ATTEMPT, EXCHANGE = "tls.obtain", ".acme_client"


def errors(log_text):
    """Caddy's error lines (JSON, one a line) from getting the certificate, oldest first, as
    (logger, text); an attempt failed once one is ATTEMPT's (acmez logs a failed challenge before
    it tries the next kind, which may succeed)."""
    found = []
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("level") not in ("error", "fatal"):
            continue
        logger = str(entry.get("logger", ""))
        if logger != ATTEMPT and not logger.endswith(EXCHANGE):
            continue
        text = f"{entry.get('msg', '')}: {entry.get('error', '')}"
        if entry.get("problem_type"):  # a challenge's failure: the authority's kind of problem
            text += f" ({entry['problem_type']})"
        found.append((logger, text))
    return found


def failed(found):
    """Whether errors() holds the end of a failed attempt."""
    return any(logger == ATTEMPT for logger, _ in found)


def reason(found):
    """Of Caddy's errors (errors()), the one that says most: the authority's own (an ACME error),
    else the last."""
    texts = [text for _, text in found]
    return next((text for text in texts if "urn:ietf:params:acme:error" in text), texts[-1])


def diagnosis(error, domain, directory, ca_root=""):
    """One of Caddy's errors (errors()) as what happened and what to do: (summary, advice)."""
    authority = re.sub(r"^https://([^/]+).*", r"\1", directory)
    if "urn:ietf:params:acme:error:rateLimited" in error:
        return (f"the authority ({authority}) refuses for now: a rate limit (Let's Encrypt allows 5 failed "
                "validations an hour and 50 certificates a week per registered domain)",
                "wait for the time the authority names above, then make up again; rehearse with "
                "DLAB_ACME_DIRECTORY=https://acme-staging-v02.api.letsencrypt.org/directory, whose limits are generous")
    if re.search(r"urn:ietf:params:acme:error:dns\b", error) or (
            "urn:ietf:params:acme:error" in error and re.search(r"could not resolve|NXDOMAIN|no valid A|SERVFAIL", error, re.I)):
        return (f"the authority ({authority}) finds no address for {domain} in DNS",
                f"make an A record (and AAAA, for IPv6) for {domain} that names this machine's public address, "
                f"at your DNS provider; once `dig +short {domain}` shows it, make up again")
    if re.search(r"urn:ietf:params:acme:error:(connection|unauthorized|incorrectResponse|tls)\b", error):
        return (f"the authority ({authority}) could not reach this server as {domain}",
                f"{domain}'s DNS record (A, and AAAA if it has one) must name this machine's public address "
                f"(`dig +short {domain}` shows what it names), and ports 80 and 443 must be open to the "
                "internet (a firewall, a cloud's security group); fix it, then make up again")
    if re.search(r"urn:ietf:params:acme:error:(caa|rejectedIdentifier)\b", error):
        return (f"the authority ({authority}) will not certify {domain}",
                f"a CAA record of {domain} (or its parent) may name another authority; or the name is one the "
                "authority refuses (above): use a name it certifies, then make up again")
    if "urn:ietf:params:acme:error" in error:
        return (f"the authority ({authority}) refused the certificate", "read its reason above, then make up again")
    if re.search(r"dial tcp|no such host|connection refused|i/o timeout|Client\.Timeout|x509|tls: |EOF", error):
        root = (f" and DLAB_ACME_CA_ROOT ({ca_root}) must be the root its HTTPS is served under" if ca_root else
                "; an internal authority's root goes in DLAB_ACME_CA_ROOT")
        return (f"cannot reach the ACME authority at {directory}",
                f"check DLAB_ACME_DIRECTORY and that this machine reaches it over HTTPS{root}; then make up again")
    return ("the certificate was not obtained", "read Caddy's reason above, then make up again")


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    domain = os.environ.get("DLAB_DOMAIN", "")
    if command == "run":
        if not domain:
            print("dlab https: DLAB_DOMAIN is not set: start the class with make up", file=sys.stderr)
            return 1
        with open(CADDYFILE, "w") as f:
            f.write(caddyfile(domain, os.environ["DLAB_ACME_DIRECTORY"], os.environ.get("DLAB_ACME_EMAIL", ""),
                              ca_root=os.path.getsize(CA_ROOT) > 0 if os.path.exists(CA_ROOT) else False))
        os.execvp("caddy", ["caddy", "run", "--config", CADDYFILE, "--adapter", "caddyfile"])
    if command == "certificate":
        print(json.dumps(stored_certificate(domain, os.environ["DLAB_ACME_DIRECTORY"])))
        return 0
    print(__doc__.split("\n\n")[2], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
