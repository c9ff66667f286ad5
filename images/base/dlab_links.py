"""Course links (nbgitpuller's /git-pull) that put material only where a person expects it.

A link's parameters are written by whoever sends the link, and the server that follows it is the
server of whoever clicks it: a student can send one to a classmate or to the organizer. nbgitpuller
(1.3.0) clones any `repo` git accepts (a local folder too) into any `targetpath` (an absolute path,
`..`, or a dot-folder such as ~/.ipython/profile_default/startup, whose scripts the next kernel
runs), and its status page writes the link's parameters into the page unescaped. This server
extension serves nbgitpuller's pages in its place, and before any work refuses a link:

- whose repository is not an http(s) URL with a host (no local path, file://, ssh or ext::), or is
  on a host the organizer did not name in DLAB_LINK_HOSTS (when set);
- whose folder (targetpath, or the repository's name) is absolute, has `..` or a dot-folder in it,
  or passes through a link in the home (the course and hand-in folders are links);
- whose page to open afterwards (urlpath, subpath) leaves the server's own pages;
- whose branch or depth is not one.

The status page is rendered with autoescaping. jupyter_server_config.py turns nbgitpuller's own
extension off and this one on. `check_link` is pure and tested in `make check`; the attacks are
tested against a real class in tests/hub/test_hub_links.py.
"""
import os
import re
import subprocess
import urllib.parse

_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\%]")  # % too: a page name must not hide a ".." in %2e%2e
_URL = re.compile(r"[A-Za-z0-9._~:/@+=&?-]{1,2000}")  # what a repository's URL needs; nothing for markup
# Everything else (nbgitpuller's `backup`, which moves a folder aside and puts the link's in its
# place; `targetPath` beside `targetpath`, which the two pages read differently) is refused.
KNOWN = {"repo", "targetpath", "targetPath", "branch", "depth", "urlpath", "urlPath", "subpath", "subPath", "app"}
_BRANCH = re.compile(r"[\w][\w./-]{0,254}")


class LinkRefused(ValueError):
    """What is wrong with a link, said to the person who clicked it."""


def link_hosts(value):
    """DLAB_LINK_HOSTS ("github.com, gitlab.example.edu") as a set of host names; empty: any host."""
    return {host.lower() for host in re.split(r"[\s,]+", value or "") if host}


def _relative(value, what):
    """A relative path without `..`, dot-folders, backslashes or control characters: its parts."""
    if _UNSAFE.search(value) or len(value) > 1000:
        raise LinkRefused(f"the {what} {value!r} has characters a folder name cannot have")
    if value.startswith("/"):
        raise LinkRefused(f"the {what} {value!r} is an absolute path: a link puts material in your home only")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise LinkRefused(f"the {what} {value!r} climbs out of its folder (..)")
    return parts


def origin_of(path):
    """The URL a git working copy pulls from (remote.origin.url), or None."""
    try:
        out = subprocess.run(["git", "-C", path, "config", "--get", "remote.origin.url"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def check_link(args, home, hosts=frozenset(), parent=""):
    """A link's query parameters (`args`, one string each), checked: returns (the folder it clones
    into, an absolute path under `home`; the parameters nbgitpuller may see, every one of them
    checked, the folder named explicitly). LinkRefused says why, when the link would do anything
    but put a repository into a visible folder of the home."""
    unknown = sorted(set(args) - KNOWN)
    if unknown:
        raise LinkRefused(f"the link has parameters a course link does not take: {', '.join(unknown)}")
    repo = args.get("repo") or ""
    url = urllib.parse.urlsplit(repo) if _URL.fullmatch(repo) else None
    if not url or url.scheme not in ("https", "http") or not url.hostname:
        raise LinkRefused(f"the repository {repo!r} is not an https:// URL (like https://github.com/you/course)")
    if hosts and url.hostname.lower() not in hosts:
        raise LinkRefused(f"this class takes course material from {', '.join(sorted(hosts))} only, "
                          f"not from {url.hostname}")
    # Without a folder, nbgitpuller names it after the repository: the URL's last part.
    target = args["targetpath"] if "targetpath" in args else args.get("targetPath", repo.rsplit("/", 1)[-1])
    target_parts = _relative(target, "folder")
    parts = _relative(parent, "folder NBGITPULLER_PARENTPATH") + target_parts
    if not target_parts:
        raise LinkRefused(f"the link names no folder to put {repo!r} in (does the URL end with a /?)")
    for part in parts:
        if part.startswith("."):
            raise LinkRefused(f"the folder {target!r} is or is inside a hidden folder ({part}), where material "
                              "would change how Jupyter or Python start, not show in the file browser")
        if len(part.encode()) > 255:
            raise LinkRefused(f"the folder name {part[:40]!r}... is too long")
    path = home
    for part in parts:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise LinkRefused(f"the folder {target!r} passes through {part}, a link to another place "
                              "(such as the course or hand-in folder): a link puts material in your home only")
    if os.path.lexists(path) and origin_of(path) != repo:
        # nbgitpuller would pull the folder's own origin (any branch the link names) and commit
        # the work in it: only the repository that made the folder may update it.
        raise LinkRefused(f"the folder {target!r} exists and is not a copy of {repo}: choose another folder")
    query = {"repo": repo, "targetpath": "/".join(target_parts)}
    for key in ("urlpath", "urlPath", "subpath", "subPath"):
        if args.get(key):
            _relative(args[key], "page to open")
            query[key] = args[key]
    branch = args.get("branch")
    if branch and not _BRANCH.fullmatch(branch) or ".." in (branch or ""):
        raise LinkRefused(f"the branch {branch!r} is not a branch name")
    depth = args.get("depth")
    if depth and not re.fullmatch(r"\d{1,6}", depth):
        raise LinkRefused(f"the depth {depth!r} is not a whole number")
    if args.get("app") not in (None, "", "lab", "notebook"):
        raise LinkRefused(f"the app {args['app']!r} is not lab or notebook")
    query.update({key: args[key] for key in ("branch", "depth", "app") if args.get(key)})
    return path, query


# --- The server extension ------------------------------------------------------------------------

def _jupyter_server_extension_points():
    return [{"module": "dlab_links"}]


def _load_jupyter_server_extension(app):
    from jupyter_server.utils import url_path_join
    from nbgitpuller._compat import get_base_handler
    from tornado import web
    from tornado.escape import xhtml_escape

    get_base_handler(app)  # nbgitpuller's handlers import their base class from here
    from nbgitpuller import handlers

    # nbgitpuller's status page writes the link's repository and folder into the page as they
    # are; everything it renders is escaped from now on. (Reported upstream: docs/upstream.md.)
    handlers.jinja_env.autoescape = True
    hosts = link_hosts(os.environ.get("DLAB_LINK_HOSTS"))
    parent = os.environ.get("NBGITPULLER_PARENTPATH", "")

    class Checked:
        """Check the link before nbgitpuller's get() does any work; refuse() answers a refused one."""

        def checked(self):
            """Check the link, then let nbgitpuller see the checked parameters alone."""
            args = {key: self.get_argument(key) for key in self.request.arguments}
            for key in ("_xsrf", "token"):  # the page's own request, and the server's login: not the link's
                args.pop(key, None)
            home = os.path.expanduser(self.settings["server_root_dir"])
            _, query = check_link(args, home, hosts, parent)
            self.request.arguments = {key: [value.encode()] for key, value in query.items()}

        @web.authenticated
        async def get(self):
            try:
                self.checked()
            except LinkRefused as refused:
                return self.refuse(refused)
            return await super().get()

    class CheckedPage(Checked, handlers.UIHandler):
        def refuse(self, refused):
            self.set_status(400)
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            self.finish(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Link refused</title></head>"
                        f"<body><h1>This course link was refused</h1><p>{xhtml_escape(str(refused))}.</p>"
                        f"<p>Nothing was copied into your home. Ask your organizer for the class's link "
                        f"(<code>make link</code> makes it).</p><p><a href='{xhtml_escape(self.base_url)}'>"
                        "Go to your server</a></p></body></html>")

    class CheckedSync(Checked, handlers.SyncHandler):
        def refuse(self, refused):
            raise web.HTTPError(400, str(refused))

    web_app = app.web_app
    base = url_path_join(web_app.settings["base_url"], "git-pull")
    web_app.settings["nbapp"] = app  # nbgitpuller's SyncHandler reads it
    web_app.add_handlers(".*", [
        (url_path_join(base, "api"), CheckedSync),
        (base, CheckedPage),
        # The old addresses redirect to /git-pull, and so are checked there.
        (url_path_join(web_app.settings["base_url"], "git-sync"), handlers.LegacyGitSyncRedirectHandler),
        (url_path_join(web_app.settings["base_url"], "interact"), handlers.LegacyInteractRedirectHandler),
        (url_path_join(base, "static", "(.*)"), web.StaticFileHandler,
         {"path": os.path.join(os.path.dirname(handlers.__file__), "static")}),
    ])


load_jupyter_server_extension = _load_jupyter_server_extension
