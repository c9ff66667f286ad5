"""Graded assignments (nbgrader; docs/assignments.md): the folders each server gets, as its role
allows. A mixin of DlabSpawner, beside ClassFolders (whose hand-in folders it reuses).

Every server runs as uid 1000, so nbgrader's file modes tell no one apart; the mounts do:
- the exchange (PREFIX-exchange, at /srv/nbgrader/exchange/<course>): instructors write it
  (release, feedback), students read it, and their own hand-in folder is its `inbound`, so a
  submission lands where only its student and the instructors see it;
- its `feedback` folder belongs to root and the group GRADERS_GID, mode 2771: instructors (who get
  the group) write and list it, students may only open a file whose name they know (nbgrader names
  it by a hash of the student's own submission secret), never list the others';
- the grading folder (PREFIX-grading at /srv/grading, ~/grading: nbgrader's course with the
  solutions and the gradebook) is mounted in instructors' servers alone.
The images' nbgrader_config.py reads DLAB_COURSE and DLAB_ROLE; students' servers also read
/etc/jupyter/dlab-student, which leaves the formgrader and the assignment tools out of their
JupyterLab (a convenience: the mounts are the boundary).
"""
import docker
from traitlets import Integer, Unicode
from traitlets.config import LoggingConfigurable
from tornado import web

GRADERS_GID = 2000
EXCHANGE_ROOT = "/srv/nbgrader/exchange"
# The exchange's folders, made by root once a hub process (install -d is idempotent): outbound for
# released assignments, inbound the mount point of each student's hand-in, feedback (above).
EXCHANGE_LAYOUT = (f"install -d -o 1000 -g 100 -m 0755 /x/outbound && install -d -o 0 -g 0 -m 0755 /x/inbound && "
                   f"install -d -o 0 -g {GRADERS_GID} -m 2771 /x/feedback && install -d -o 1000 -g 100 -m 0755 /x")


class Assignments(LoggingConfigurable):
    course_id = Unicode("", config=True, help="nbgrader's course id: the class's DLAB_PREFIX. Empty: no assignments.")
    exchange_volume = Unicode("", config=True, help="nbgrader's exchange: released assignments and feedback.")
    grading_volume = Unicode("", config=True, help="nbgrader's course folder (solutions, submissions, gradebook): instructors only.")
    exchange_size = Unicode("", config=True, help='Size of the exchange, as "2G" (dlab-home); "": a plain volume.')
    grading_size = Unicode("", config=True, help='Size of the grading folder, as "10G" (dlab-home); "": a plain volume.')
    graders_gid = Integer(GRADERS_GID, config=True, help="The group instructors' servers get: the exchange's feedback folder's.")

    _laid_out = set()  # (volume, when it was made) laid out by this hub process

    def assignment_folders(self, handin_source):
        """(folders, sized, mounts) for this user's server: DockerSpawner volumes, (volume, size,
        before, labels) for ensure_sized_volumes, DockerSpawner mounts. handin_source: the
        student's hand-in volume or folder, mounted again as the exchange's inbound."""
        if not (self.course_id and self.exchange_volume):
            return {}, [], []
        instructor = self.is_instructor()
        exchange = f"{EXCHANGE_ROOT}/{self.course_id}"
        folders = {self.exchange_volume: {"bind": exchange, "mode": "rw" if instructor else "ro"}}
        sized = [(self.exchange_volume, self.exchange_size, None, {})] if self.exchange_size else []
        mounts = []
        if instructor:
            folders[self.grading_volume] = {"bind": "/srv/grading", "mode": "rw"}
            if self.grading_size:
                sized.append((self.grading_volume, self.grading_size, None, {}))
        elif handin_source:
            mounts.append({"source": handin_source, "target": f"{exchange}/inbound", "read_only": False,
                           "type": "bind" if handin_source.startswith("/") else "volume"})
        return folders, sized, mounts

    async def lay_out(self):
        """The exchange's folders, and the grading folder's owner (a plain volume is made root's),
        once a hub process each, before a server mounts them (a student's read-only exchange needs
        its inbound to mount the hand-in on)."""
        volumes = {self.exchange_volume: ("/x", EXCHANGE_LAYOUT)}
        if self.is_instructor():
            volumes[self.grading_volume] = ("/g", "install -d -o 1000 -g 100 -m 0755 /g")
        made = {}
        for name in volumes:  # a volume removed and made again (make restore...) is laid out again
            try:
                made[name] = (name, (await self.docker("inspect_volume", name))["CreatedAt"])
            except docker.errors.NotFound:
                await self.docker("create_volume", name=name, driver="local", labels={"org.dlab.hub": self.prefix})
                made[name] = (name, (await self.docker("inspect_volume", name))["CreatedAt"])
        todo = {name: step for name, step in volumes.items() if made[name] not in Assignments._laid_out}
        if not todo:
            return
        status, said = await self.run_helper(["sh", "-c", " && ".join(script for _, script in todo.values())],
                                             network_mode="none", cap_drop=["ALL"],
                                             cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"],
                                             binds={name: {"bind": path, "mode": "rw"} for name, (path, _) in todo.items()})
        if status != 0:
            raise web.HTTPError(503, f"The assignments' folders could not be made: {said[-200:]}")
        Assignments._laid_out.update(made[name] for name in todo)

    def assignment_env(self):
        """What the images' nbgrader_config.py reads, and students' servers' own Jupyter config."""
        if not self.course_id:
            return {}
        env = {"DLAB_COURSE": self.course_id, "DLAB_ROLE": "instructor" if self.is_instructor() else "student"}
        if env["DLAB_ROLE"] == "student":
            env["JUPYTER_CONFIG_PATH"] = "/etc/jupyter/dlab-student"
        return env
