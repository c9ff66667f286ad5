"""dlab: the organizer's command for the class server (compose.yaml). The make targets call it
(`make up` is `dlab up`); on the host it runs with the standard library only (the work is
dlab_hub.classserver's and dlab_hub.classtools'), from the checkout
(`PYTHONPATH=hub python3 -m dlab_hub.cli`, which scripts/hub.sh runs) or installed
(`pip install -e ./hub` gives the `dlab` command). Settings: .env beside compose.yaml (.env.example),
or the file DLAB_ENV_FILE names; each is checked before anything is touched.

    up                  start the hub (images built first: make up builds them), wait until it
                        answers, print the URL, and the admin's first password while unchanged
    down                stop the hub, which stops every student's server; every volume is kept
    status              the class's containers (and services, on a swarm)
    prestart [NAME...]  start every approved account's server (or these) now, one after another
    accounts ROSTER     a class's accounts from a CSV roster, approved, each with a first password
                        on a sheet written beside the roster (ROSTER-passwords.html)
    remove-accounts ROSTER [keep|archive|delete]
                        remove them at the end of a course; their homes kept (default), archived
                        to backups/ (BACKUP_DIR) and then deleted, or deleted
    signups [pending|ADDRESS]
                        the sign-ups waiting and the accounts made by sign-up, by address; with an
                        argument, remove the waiting ones or an address's accounts
    message [TEXT]      a message on every hub page (empty: none); no one's server restarts
    link REPO [BRANCH] [PATH]
                        the nbgitpuller link that puts REPO into each student's home
    reset-admin         a new first password for the organizer (a lost one)
    backup DIR [USER...] | restore DIR [USER...] | delete-home USER...
                        the homes and class folders (scripts/homes.sh: tar in throwaway containers)
"""
import argparse
import os
import re
import sys
import urllib.parse

from dlab_hub import classtools
from dlab_hub.classserver import ROOT, ClassServer, Stop, say
from dlab_hub.settings import exported


def link(class_url, repo, branch="", path=""):
    """The nbgitpuller link that puts REPO into each student's home, checked as students' servers check it."""
    if not repo:
        say("which repository? make link REPO=https://github.com/you/course [BRANCH=main] [OPEN=lab1.ipynb]")
        raise Stop(2)
    repo = repo.rstrip("/")
    parts = urllib.parse.urlsplit(repo)
    if parts.scheme not in ("https", "http") or not parts.hostname or re.search(r"[\s\\]", repo):
        say(f"{repo!r} is not a git repository's https:// URL (like https://github.com/you/course)")
        raise Stop
    hosts = {h.lower() for h in re.split(r"[\s,]+", os.environ.get("DLAB_LINK_HOSTS", "")) if h}
    if hosts and parts.hostname.lower() not in hosts:
        say(f"{parts.hostname} is not in DLAB_LINK_HOSTS ({', '.join(sorted(hosts))}): students' "
            "servers would refuse the link; add the host to DLAB_LINK_HOSTS in .env, then make up")
        raise Stop
    # The folder in each home, named explicitly (students' servers refuse hidden folders).
    folder = repo.rsplit("/", 1)[-1].removesuffix(".git").lstrip(".") or "course-material"
    if folder in ("course", "handin", "handins", "labs"):  # dlab's own folders in the home
        folder = f"{folder}-material"
    query = {"repo": repo, **({"branch": branch} if branch else {}), "targetpath": folder}
    query["urlpath"] = f"lab/tree/{folder}/{path.lstrip('/')}".rstrip("/")
    print(f"{class_url.rstrip('/')}/hub/user-redirect/git-pull?{urllib.parse.urlencode(query)}")
    return 0


def parser():
    p = argparse.ArgumentParser(prog="dlab", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in ("up", "down", "status", "reset-admin"):
        sub.add_parser(name)
    sub.add_parser("prestart").add_argument("names", nargs="*")
    sub.add_parser("accounts").add_argument("roster", nargs="?", default="")
    remove = sub.add_parser("remove-accounts")
    remove.add_argument("roster", nargs="?", default="")
    remove.add_argument("homes", nargs="?", default="keep")
    sub.add_parser("signups").add_argument("clear", nargs="?", default="")
    sub.add_parser("message").add_argument("text", nargs="*")
    linked = sub.add_parser("link")
    for argument in ("repo", "branch", "path"):
        linked.add_argument(argument, nargs="?", default="")
    for name in ("backup", "restore"):
        homes = sub.add_parser(name)
        homes.add_argument("dir")
        homes.add_argument("users", nargs="*")
    sub.add_parser("delete-home").add_argument("users", nargs="*")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    os.chdir(ROOT)
    try:
        if args.command in ("backup", "restore"):
            return classtools.homes_sh(args.command, args.dir, *args.users)
        if args.command == "delete-home":
            return classtools.homes_sh("delete", *args.users)
        # Every setting, checked before anything is touched: a wrong one stops the command here, and
        # the running class goes on as it was. compose.yaml takes them from the environment.
        environment = exported(os.environ, os.environ.get("DLAB_ENV_FILE") or ".env")
        if environment is None:
            return 1
        os.environ.update(environment)
        server = ClassServer(environment)
        if args.command == "link":
            return link(server.class_url, args.repo, args.branch, args.path)
        server.check_engine()
        commands = {
            "up": server.up, "down": server.down, "status": server.status,
            "reset-admin": lambda: classtools.reset_admin(server),
            "prestart": lambda: classtools.prestart(server, args.names),
            "accounts": lambda: classtools.accounts(server, args.roster),
            "remove-accounts": lambda: classtools.remove_accounts(server, args.roster, args.homes),
            "signups": lambda: classtools.signups(server, args.clear),
            "message": lambda: classtools.message(server, " ".join(args.text)),
        }
        return commands[args.command]() or 0
    except Stop as stop:
        return stop.status


if __name__ == "__main__":
    sys.exit(main())
