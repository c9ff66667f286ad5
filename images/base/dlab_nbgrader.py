"""nbgrader on a dlab class server: what differs from nbgrader's own exchange and autograder
(images/base/nbgrader_config.py turns it on for instructors; docs/assignments.md says how a course
runs).

Every server of the class runs as uid 1000, so nbgrader's file modes tell no one apart: the class
server's mounts do. A student's submissions go to their own hand-in folder (mounted as the
exchange's inbound); an instructor reads them all, read-only, at /srv/handins/<name>, where the
folder's name is the hub's account name.

- DlabCollect takes each submission from /srv/handins/<name>, keeps only those that say they are
  <name>'s, dates them by the files' change times (which a student cannot set back; the student's
  own timestamp.txt is replaced), and copies files and folders only, never through a link: a
  student's link to ~/grading/gradebook.db would otherwise bring the gradebook into the submission.
- SandboxExecute sends each autograded notebook to the hub's sandbox (POST /hub/api/dlab/grade,
  hub/dlab_hub/sandbox.py) instead of running it with the instructor's rights, and keeps only the
  outputs of the cells it sent.
"""
import datetime
import errno
import json
import os
import shutil
import stat
import urllib.error
import urllib.request

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters.autograde import Autograde
from nbgrader.converters.generate_assignment import GenerateAssignment
from nbgrader.exchange.default import ExchangeCollect, ExchangeReleaseAssignment
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Unicode

HANDINS = "/srv/handins"
GRADING = "/home/jovyan/grading"  # the course's folder: a link to /srv/grading, under the server's root


# What the formgrader would serve from a hand-in as a page on the instructor's origin
# (/formgrader/submissions/...): left out of what is collected.
PAGES = (".html", ".htm", ".xhtml", ".svg", ".xml", ".js", ".mjs")
MAX_FILES, MAX_DEPTH = 10_000, 20


def copy_without_links(src, dest, max_file_bytes, max_bytes):
    """Copy the folder src to dest: regular files and folders, each opened without following a
    link (a link put in place while the copy runs is skipped too); pages, files past
    max_file_bytes, all past max_bytes or MAX_FILES in all and folders past MAX_DEPTH left out.
    Returns (the relative paths left out, the newest change time of what was copied)."""
    skipped, budget, newest = [], {"bytes": max_bytes, "files": MAX_FILES}, [os.lstat(src).st_ctime]

    def copy_file(fd, info, target):
        budget["bytes"] -= info.st_size
        budget["files"] -= 1
        newest[0] = max(newest[0], info.st_ctime)
        with open(target, "wb") as out:
            os.set_blocking(fd, True)
            left = info.st_size  # what it held when looked at: a file growing meanwhile stops there
            while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
                out.write(chunk)
                left -= len(chunk)

    def walk(src_fd, dest_dir, relative, depth):
        os.makedirs(dest_dir, exist_ok=True)
        with os.scandir(src_fd) as found:
            entries = sorted(found, key=lambda e: e.name)
        for entry in entries:
            path = os.path.join(relative, entry.name)
            try:
                fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOENT, errno.ENXIO, errno.EACCES, errno.EPERM):
                    skipped.append(path)
                    continue
                raise
            try:
                info = os.fstat(fd)
                newest[0] = max(newest[0], info.st_ctime)
                if stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH:
                    walk(fd, os.path.join(dest_dir, entry.name), path, depth + 1)
                elif (stat.S_ISREG(info.st_mode) and not entry.name.lower().endswith(PAGES) and budget["files"] > 0
                      and info.st_size <= min(max_file_bytes, budget["bytes"])):
                    copy_file(fd, info, os.path.join(dest_dir, entry.name))
                else:
                    skipped.append(path)
            finally:
                os.close(fd)

    top = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY)
    try:
        walk(top, dest, "", 0)
    finally:
        os.close(top)
    return skipped, datetime.datetime.fromtimestamp(newest[0], datetime.timezone.utc).replace(tzinfo=None)


class DlabCollect(ExchangeCollect):
    """Collect from the hand-in folders, each submission under the name of the folder it is in."""
    handins = Unicode(HANDINS, help="Where the students' hand-in folders are, one a student, read-only.").tag(config=True)

    def init_src(self):
        if not self.coursedir.course_id:
            self.fail("No course id specified.")
        self.inbound_path = self.handins
        wanted = self.coursedir.student_id if self.coursedir.student_id not in ("", "*") else None
        newest = {}
        for name in sorted(os.listdir(self.handins)) if os.path.isdir(self.handins) else []:
            if wanted and name != wanted:
                continue
            try:  # whatever one student's folder holds, the others are collected
                records = self.hand_ins(name)
            except (OSError, RecursionError) as error:
                self.log.error("Could not read %s's hand-in folder, left out: %s", name, error)
                continue
            if records:
                newest[name] = records
        self.say_who_is_new(newest)
        duedate = self.duedate() if self.before_duedate else None
        self.src_records = []
        for records in newest.values():
            records.sort(key=lambda record: record["timestamp"], reverse=True)
            in_time = [record for record in records if duedate is None or record["timestamp"] <= duedate]
            self.src_records.append((in_time or records)[0])

    def hand_ins(self, name):
        """The hand-ins of this assignment in name's folder: real folders named as nbgrader names
        them, for this name (one made out in a classmate's name is left out)."""
        folder, records = os.path.join(self.handins, name), []
        for entry in sorted(os.listdir(folder)):
            parts = entry.rsplit("+", 3)  # <name>+<assignment>+<time>+<random>, as nbgrader names it
            if len(parts) < 3 or parts[1] != self.coursedir.assignment_id:
                continue
            if not stat.S_ISDIR(os.lstat(os.path.join(folder, entry)).st_mode):
                continue  # a link or a file under a hand-in's name
            if parts[0] != name:
                self.log.warning("Ignoring %s in %s's hand-in folder: it says it is %s's", entry, name, parts[0])
                continue
            records.append({"username": name, "filename": os.path.join(name, entry),
                            "timestamp": changed(os.path.join(folder, entry))})  # never the name's own time
        return records

    def duedate(self):
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            try:
                return gradebook.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                return None

    def say_who_is_new(self, students):
        """A hand-in from an account the gradebook does not list is graded (autograde adds it), and said."""
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            known = {student.id for student in gradebook.students}
        for name in sorted(set(students) - known):
            self.log.warning("%s handed in %s but is not in the gradebook: autograde adds them (nbgrader db student "
                             "add %s --first-name=... --last-name=... names them)", name, self.coursedir.assignment_id, name)

    def do_copy(self, src, dest, log=None):
        try:
            skipped, copied = copy_without_links(src, dest, 1000 * self.coursedir.max_file_size,
                                                 1000 * self.coursedir.max_dir_size)
        except (OSError, RecursionError) as error:  # the others are collected
            self.log.error("Could not collect %s, left out: %s", src, error)
            shutil.rmtree(dest, ignore_errors=True)
            return
        for path in skipped:
            self.log.warning("Left out of %s: %s (a link, a page, not a file, or past the size or count allowed)", src, path)
        record = next(r for r in self.src_records if os.path.join(self.inbound_path, r["filename"]) == src)
        # Dated by its newest change, seen before the copy or during it (a file changed meanwhile).
        with open(os.path.join(dest, "timestamp.txt"), "w") as out:
            out.write(max(record["timestamp"], copied).strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


def changed(folder):
    """When the submission last changed: the newest change time in it (a student can set a
    file's modification time and write any timestamp.txt, but not set a change time back)."""
    newest, seen = os.lstat(folder).st_ctime, 0
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            newest = max(newest, os.lstat(os.path.join(parent, name)).st_ctime)
            seen += 1
            if seen > MAX_FILES:
                raise OSError(f"more than {MAX_FILES} files and folders in {folder}")
    return datetime.datetime.fromtimestamp(newest, datetime.timezone.utc).replace(tzinfo=None)


class DlabReleaseAssignment(ExchangeReleaseAssignment):
    """nbgrader's release, which also says when the assignment's deadline has already passed
    (every submission would be marked late)."""

    def copy_files(self):
        super().copy_files()
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            try:
                due = gradebook.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                due = None
        if due is not None and due < datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None):
            self.log.warning("The deadline of %s, %s UTC, has passed: every submission will be marked late. Set a new "
                             "one in the formgrader, or: nbgrader db assignment add %s --duedate='YYYY-MM-DD HH:MM UTC'",
                             self.coursedir.assignment_id, due.strftime("%Y-%m-%d %H:%M"), self.coursedir.assignment_id)


class CheckSyntax(NbGraderPreprocessor):
    """Before an assignment is made from its source: every code cell, hidden tests included, must
    parse as the kernel will run it; one that does not stops here, named, rather than failing every
    student's test after the release."""

    def preprocess(self, nb, resources):
        from IPython.core.inputtransformer2 import TransformerManager

        problems = []
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            try:
                compile(TransformerManager().transform_cell(cell.source), "cell", "exec")
            except SyntaxError as error:
                name = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id")
                problems.append(f"cell {name}, line {error.lineno}: {error.msg}")
        if problems:
            raise ValueError(f"{resources.get('unique_key', 'the notebook')}: " + "; ".join(problems) +
                             ". Fix the source (hidden tests included) and generate the assignment again.")
        return nb, resources


class SanitizeMarkdown(NbGraderPreprocessor):
    """What a student wrote in markdown (and raw HTML cells) shown as text and pictures, never as a
    script, wherever the formgrader or the feedback renders the autograded notebook: nbconvert's
    sanitizer keeps outputs safe (HTMLExporter.sanitize_html), not a cell's own markdown."""

    def preprocess(self, nb, resources):
        from nbconvert.filters.strings import clean_html

        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = clean_html(cell.source)
            elif cell.cell_type == "raw":
                cell.metadata.pop("raw_mimetype", None)
                cell.metadata.pop("format", None)
        return nb, resources


class SandboxExecute(Execute):
    """Autograde's Execute, done by the class server's sandbox: the notebook already written to
    autograded/<student>/<assignment> runs there; here only its outputs are kept, cell by cell,
    where the cell's id and source are the ones sent."""

    def preprocess(self, nb, resources, km=None):
        grading = resources["nbgrader"]
        body = {"student": grading["student"], "assignment": grading["assignment"],
                "notebook": grading["notebook"] + ".ipynb", "cell_timeout": int(self.timeout or 30)}
        status, executed = ask_sandbox(body)
        if status.startswith(("the class server answered 403", "the class server answered 404")):
            raise RuntimeError(f"{status}: only the organizer and the instructors group may autograde, on a class "
                               "server with grading set up (docs/assignments.md); nothing was graded")
        if executed is None:
            self.log.error("The sandbox could not run %s/%s/%s: %s", body["student"], body["assignment"],
                           body["notebook"], status)
        else:
            executed = nbformat.from_dict(executed)
        merge_outputs(nb, executed, status)
        return nb, resources


def ask_sandbox(body):
    """(status, executed notebook as a dict, or None) from the hub's sandbox."""
    url = os.environ.get("JUPYTERHUB_API_URL", "http://hub:8081/hub/api").rstrip("/") + "/dlab/grade"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3600) as answer:
            result = json.loads(answer.read())
        return result["status"], result["notebook"]
    except urllib.error.HTTPError as error:
        try:
            said = json.loads(error.read()).get("message", "")
        except ValueError:
            said = ""
        return f"the class server answered {error.code}: {said}", None
    except (OSError, ValueError) as error:
        return f"the class server's sandbox could not be reached: {error}", None


def merge_outputs(nb, executed, status):
    """Each code cell of nb gets the outputs of its executed twin (same id, same source); a cell
    without one gets an error, which nbgrader grades as a failed test."""
    twins = {}
    if executed is not None:
        twins = {cell.get("id"): cell for cell in executed.cells if cell.cell_type == "code"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        twin = twins.get(cell.get("id"))
        if twin is not None and twin.source == cell.source:
            cell.outputs = twin.get("outputs", [])
            cell.execution_count = twin.get("execution_count")
        else:
            why = status if executed is None else "the cell came back changed or not at all"
            cell.outputs = [nbformat.v4.new_output("error", ename="SandboxError", evalue=why,
                                                   traceback=[f"SandboxError: {why}"])]


def instructor_config(c):
    """An instructor's nbgrader: the course's folder, collection from the hand-in folders, the
    autograder's notebooks run in the sandbox, and student outputs shown without their scripts."""
    c.CourseDirectory.root = GRADING
    c.ExchangeFactory.collect = DlabCollect
    c.ExchangeFactory.release_assignment = DlabReleaseAssignment
    c.GenerateAssignment.preprocessors = [CheckSyntax, *GenerateAssignment.class_traits()["preprocessors"].default()]
    c.ExchangeCollect.check_owner = False  # every submission's owner is uid 1000; the folder names the student
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    c.Autograde.autograde_preprocessors = [p for step in default for p in ((SandboxExecute, SanitizeMarkdown) if step is Execute else (step,))]
    # The formgrader and the feedback show what a submission printed: as text and pictures, never
    # as a script that runs on the class's origin with the instructor's rights.
    c.HTMLExporter.sanitize_html = True
