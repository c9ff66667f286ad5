"""HTTPS by itself (DLAB_DOMAIN), the pure parts: Caddy's configuration, the folder Caddy keeps an
authority's certificates in, Caddy's errors in words, the settings that cannot go together, and
the hub's secure cookies. The real thing, against pebble, is tests/hub/test_hub_acme.py."""
import pytest

from dlab_hub import https
from dlab_hub.config import Engine, configure
from dlab_hub.settings import LETS_ENCRYPT, load

# Lines (or their errors) Caddy 2.6.2 (dlab/hub's) wrote in the runs of tests/hub/test_hub_acme.py and by hand.
UNREACHABLE = ('{"level":"error","ts":1796639068.5081725,"logger":"tls.obtain","msg":"could not get certificate from '
               'issuer","identifier":"class.dlab.test","issuer":"nowhere.invalid-dir","error":"registering account [] '
               'with server: provisioning client: performing request: Get \\"https://nowhere.invalid/dir\\": dial tcp: '
               'lookup nowhere.invalid on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: network is unreachable"}')
NO_ADDRESS = ('validating authorization: [nowhere.dlab.test] authorization failed: HTTP 400 '
              'urn:ietf:params:acme:error:malformed - Could not resolve URL "nowhere.dlab.test"')
ELSEWHERE = ('validating authorization: authorization failed: HTTP 400 urn:ietf:params:acme:error:connection - Get '
             '"http://elsewhere.dlab.test:80/.well-known/acme-challenge/x": dial tcp 192.168.0.5:80: connect: connection refused')
NO_SOLVERS = ('will retry: [elsewhere.dlab.test] Obtain: solving challenges: elsewhere.dlab.test: no solvers available '
              'for remaining challenges (configured=[http-01 tls-alpn-01] offered=[tls-alpn-01 http-01 dns-01] remaining=[dns-01])')
# Let's Encrypt's answer past a limit (its documentation's wording), as Caddy would carry it.
RATE_LIMITED = ("could not get certificate from issuer: HTTP 429 urn:ietf:params:acme:error:rateLimited - Error creating "
                "new order :: too many certificates (5) already issued for this exact set of domains in the last 168h0m0s, "
                "retry after 2026-12-08 10:00:00 UTC")


def test_caddy_takes_the_authority_the_address_and_the_root_it_is_given():
    plain = https.caddyfile("class.example.edu", LETS_ENCRYPT)
    assert "class.example.edu {" in plain and f"dir {LETS_ENCRYPT}" in plain and "reverse_proxy proxy:8000" in plain
    assert "email" not in plain and "trusted_roots" not in plain and "admin off" in plain
    internal = https.caddyfile("class.uni.example", "https://ca.uni.example/acme/acme/directory", "it@uni.example", ca_root=True)
    assert "email it@uni.example" in internal and f"trusted_roots {https.CA_ROOT}" in internal
    # Only this authority: an explicit issuer, none to fall back to.
    assert internal.count("issuer acme") == 1 and "zerossl" not in internal.lower()


@pytest.mark.parametrize("directory, key", [
    (LETS_ENCRYPT, "acme-v02.api.letsencrypt.org-directory"),  # the folder Caddy's documentation names
    ("https://dlabtest-pebble:14000/dir", "dlabtest-pebble-14000-dir"),
    ("https://ca.uni.example/acme/acme/directory", "ca.uni.example-acmeacmedirectory"),
])
def test_the_certificate_is_looked_for_in_its_own_authoritys_folder(directory, key):
    assert https.issuer_key(directory) == key


def test_caddys_errors_are_read_from_its_log_and_the_authoritys_own_reason_picked():
    log = "\n".join(['{"level":"info","msg":"obtaining certificate","identifier":"class.dlab.test"}', "not json",
                     UNREACHABLE])
    found = https.errors(log)
    assert https.failed(found) and found == [
        ("tls.obtain", "could not get certificate from issuer: " + UNREACHABLE.split('"error":"')[1][:-2].replace('\\"', '"'))]
    exchange = [("http.acme_client", ELSEWHERE), ("tls.obtain", NO_SOLVERS)]
    assert https.reason(exchange) == ELSEWHERE
    assert https.reason([("tls.obtain", NO_SOLVERS)]) == NO_SOLVERS


def test_a_challenge_that_failed_before_the_next_kind_is_tried_is_no_failure_yet():
    """acmez logs a failed HTTP-01 challenge, then tries TLS-ALPN-01 (port 80 closed, 443 open)."""
    line = ('{"level":"error","ts":1796641049.7454362,"logger":"http.acme_client","msg":"challenge failed","identifier":'
            '"elsewhere.dlab.test","challenge_type":"http-01","status_code":400,"problem_type":'
            '"urn:ietf:params:acme:error:connection","error":"Get \\"http://elsewhere.dlab.test:80/.well-known/'
            'acme-challenge/J\\": dial tcp 192.168.160.6:80: connect: connection refused"}')
    found = https.errors(line)
    assert found and not https.failed(found)
    assert "(urn:ietf:params:acme:error:connection)" in https.reason(found)


def test_an_outsider_cannot_make_make_up_give_up_or_say_what_they_like():
    """Any request to port 80 with a challenge's path makes Caddy log an error naming the Host the
    sender chose: make up neither stops for it nor reads it."""
    # (Caddy 2.6.2's line for GET /.well-known/acme-challenge/x with that Host, sent by hand.)
    planted = ('{"level":"error","ts":1796640513.0165555,"logger":"http","msg":"looking up info for HTTP challenge",'
               '"host":"urn:ietf:params:acme:error:rateLimited:class.dlab.test","error":"no information found to solve '
               'challenge for identifier: urn:ietf:params:acme:error:rateLimited:class.dlab.test"}')
    assert https.errors(planted) == []


@pytest.mark.parametrize("error, summary, to_do", [
    (UNREACHABLE, "cannot reach the ACME authority at https://nowhere.invalid/dir", "check DLAB_ACME_DIRECTORY"),
    (NO_ADDRESS, "finds no address for nowhere.dlab.test in DNS", "make an A record"),
    ('challenge failed: Get "http://nowhere.dlab.test:80/.well-known/acme-challenge/d": could not resolve URL '
     '"http://nowhere.dlab.test:80/.well-known/acme-challenge/d" (urn:ietf:params:acme:error:connection)',
     "finds no address for nowhere.dlab.test in DNS", "make an A record"),
    (ELSEWHERE, "could not reach this server as elsewhere.dlab.test", "elsewhere.dlab.test's DNS record"),
    (RATE_LIMITED, "a rate limit", "wait for the time the authority names"),
    ("HTTP 403 urn:ietf:params:acme:error:caa - CAA record for example.edu prevents issuance", "will not certify", "a CAA record"),
    (NO_SOLVERS, "the certificate was not obtained", "read Caddy's reason above"),
])
def test_each_failure_says_what_to_do(error, summary, to_do):
    domain = error.split("/")[2].split(":")[0] if "http://" in error else "nowhere.dlab.test"
    said, advice = https.diagnosis(error, domain, "https://nowhere.invalid/dir")
    assert summary in said and advice.startswith(to_do), (said, advice)


@pytest.mark.parametrize("settings, problem", [
    ({"DLAB_DOMAIN": "class.example.edu", "DLAB_SSL_CERT": "/etc/ssl/c.pem", "DLAB_SSL_KEY": "/etc/ssl/k.pem"},
     "DLAB_DOMAIN and DLAB_SSL_CERT are both set"),
    ({"DLAB_DOMAIN": "class.example.edu", "DLAB_SUBDOMAIN_HOST": "https://class.example.edu"},
     "DLAB_DOMAIN cannot serve DLAB_SUBDOMAIN_HOST"),
    ({"DLAB_DOMAIN": "https://class.example.edu"}, "DLAB_DOMAIN='https://class.example.edu' is not a DNS name"),
    ({"DLAB_DOMAIN": "class.example.edu:443"}, "is not a DNS name"),
    ({"DLAB_DOMAIN": "192.0.2.7"}, "is not a DNS name"),
    ({"DLAB_DOMAIN": "localhost"}, "is not a DNS name"),
    ({"DLAB_ACME_DIRECTORY": "http://ca.uni.example/directory"}, "is not an https:// URL of an ACME directory"),
    ({"DLAB_ACME_EMAIL": "organizer at uni"}, "is not an email address"),
    ({"DLAB_ACME_EMAIL": "{$HOME}@uni.example"}, "is not an email address"),  # Caddyfile syntax
    ({"DLAB_ACME_DIRECTORY": "https://ca.uni.example/{$HOME}"}, "is not an https:// URL"),
    ({"DLAB_DOMAIN": "class.example.edu", "DLAB_HUB_PORT": "443"}, "DLAB_HUB_PORT=443 with DLAB_DOMAIN"),
])
def test_an_organizers_mistyped_https_settings_are_refused_with_what_to_do(settings, problem):
    _, _, problems, _ = load(settings)
    assert any(problem in said for said in problems), problems


def test_a_domain_is_taken_in_any_case_and_the_default_is_plain_http():
    _, parsed, problems, _ = load({"DLAB_DOMAIN": "Class.Example.EDU"})
    assert problems == [] and parsed["DLAB_DOMAIN"] == "class.example.edu"
    _, parsed, _, _ = load({})
    assert parsed["DLAB_DOMAIN"] == "" and parsed["DLAB_ACME_DIRECTORY"] == LETS_ENCRYPT


def test_behind_caddy_the_hubs_cookies_are_secure_and_browsers_keep_to_https():
    _, parsed, _, _ = load({"DLAB_DOMAIN": "class.example.edu"}, applies=("hub", "both"))
    c, _ = configure(parsed, Engine())
    assert c.JupyterHub.bind_url == "http://:8000"  # the proxy speaks plain HTTP to Caddy, on the class network
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"secure": True} == c.Spawner.cookie_options
    assert c.JupyterHub.tornado_settings["headers"]["Strict-Transport-Security"].startswith("max-age=")
    _, parsed, _, _ = load({}, applies=("hub", "both"))
    c, _ = configure(parsed, Engine())
    assert "cookie_options" not in c.JupyterHub.tornado_settings
