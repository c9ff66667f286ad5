"""The hub's API `POST /hub/api/dlab/grade`: an instructor's nbgrader, at its autograde step, has
one submission's notebook run in a sandbox (dlab_hub.sandbox) and gets it back with its outputs, so
a submission never runs with the instructor's rights (which reach the solutions, the gradebook and
every other submission).

Only callers with the scope `custom:dlab:grade` may ask: the organizer and the instructors group,
through their own tokens and their servers' (JupyterHub gives a server's token the scope only when
its owner holds it). The hub already holds the Docker socket; no one else gets it for this. Served
on the hub's API port, the one port a student's or instructor's server reaches (dlab-firewall).
"""
import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import docker
from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from dlab_hub.sandbox import GRADE_SCOPE, NAME, grade, remove_leftovers


class GradeHandler(APIHandler):
    """POST {"student", "assignment", "notebook", "cell_timeout"?}: that autograded notebook, run in a sandbox.
    Answers {"status": "done" | "kernel died" | "timed out" | "out of memory" | ..., "notebook",
    "seconds"}. 403 without the scope, 400 for a name that is not one, 404 for no such folder."""
    _pool = None    # at_once threads: the jobs beyond wait their turn
    _engine = None

    @web.authenticated
    async def post(self):
        if GRADE_SCOPE not in self.expanded_scopes:
            raise web.HTTPError(403, "Only the organizer and the instructors group may grade.")
        box = self.settings["config"].DlabGrading.get("sandbox")
        if box is None:
            raise web.HTTPError(404, "Grading in a sandbox is not set up on this class server.")
        body = self.get_json_body() or {}
        student, assignment, notebook = (body.get(key) for key in ("student", "assignment", "notebook"))
        if not isinstance(student, str) or self.find_user(student) is None:
            raise web.HTTPError(400, "student: the name of one of the class's accounts")
        for key, value in (("assignment", assignment), ("notebook", notebook)):
            if not isinstance(value, str) or not NAME.fullmatch(value) or ".." in value:
                raise web.HTTPError(400, f"{key}: a name of letters, digits, _ . and - (no path), like ps1")
        if not notebook.endswith(".ipynb"):
            raise web.HTTPError(400, "notebook: a notebook's file name, ending in .ipynb")
        cell_timeout = body.get("cell_timeout", box.cell_timeout)
        if type(cell_timeout) is not int or not 1 <= cell_timeout <= box.cell_timeout:
            raise web.HTTPError(400, f"cell_timeout: a whole number of seconds from 1 to {box.cell_timeout}")
        cls = type(self)
        if cls._pool is None:
            cls._pool = ThreadPoolExecutor(box.at_once, thread_name_prefix="dlab-grade")
            cls._engine = docker.from_env(timeout=60)
            await asyncio.wrap_future(cls._pool.submit(remove_leftovers, cls._engine, box))
        try:
            status, executed, seconds = await asyncio.wrap_future(
                cls._pool.submit(grade, cls._engine, box, student, assignment, notebook, cell_timeout))
        except LookupError as error:
            raise web.HTTPError(404, str(error)) from None
        except ValueError as error:
            raise web.HTTPError(413, str(error)) from None
        self.log.info("dlab: graded %s/%s/%s for %s: %s in %.0f s", student, assignment, notebook,
                      self.current_user.name, status, seconds)
        self.finish(json.dumps({"status": status, "notebook": executed, "seconds": round(seconds, 1)}))
