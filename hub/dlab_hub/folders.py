"""A student's home, hand-in folder and the course folder, made ready before each start: file
systems of their own size made and attached by the root helper dlab-home (images/hub/dlab-home,
in a throwaway container of dlab/hub), the course and hand-in folders mounted as the student's
role allows. A mixin of DlabSpawner: it uses DockerSpawner's docker(), user, prefix and volumes."""
import asyncio

import docker
from tornado import web
from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from dlab_hub.state import HANDIN_DIR

# What dlab-home needs, and no more: mount and losetup (CAP_SYS_ADMIN, no AppArmor profile in the
# way), the loop devices (block major 7) and /dev/loop-control (char 10:237). scripts/lib.sh's
# home_helper (make backup, restore, delete-home; the tests) runs it the same way.
HOME_HELPER_PRIVILEGES = {"cap_add": ["SYS_ADMIN"], "security_opt": ["apparmor=unconfined"],
                          "device_cgroup_rules": ["b 7:* rwm", "c 10:237 rwm"]}


class ClassFolders(LoggingConfigurable):
    """The folders of DlabSpawner's students (its settings: c.DlabSpawner.home_size...)."""

    home_size = Unicode("", config=True, help='Size of each home, as "5G" (dlab-home); "": plain volumes, no limit.')
    homes_dir = Unicode("/var/lib/dlab/homes", config=True, help="Where the homes' images live, on the host.")
    helper_image = Unicode("dlab/hub:latest", config=True, help="The image that runs dlab-home.")

    async def prepare_home(self):
        """Before a start, before the class folders: nothing here (ensure_sized_volumes makes the
        homes of a size); on a swarm, the home's folder."""

    async def run_helper(self, command, **host_config):
        """Run command as root in a throwaway helper container (helper_image) on the hub's engine;
        (exit status, what it said on stderr)."""
        host_config = await self.docker("create_host_config", **host_config)
        helper = await self.docker("create_container", self.helper_image, command, user="root",
                                   labels={"org.dlab.home-helper": self.prefix}, host_config=host_config)
        try:
            await self.docker("start", helper["Id"])
            status = (await self.docker("wait", helper["Id"], timeout=300))["StatusCode"]
            said = (await self.docker("logs", helper["Id"], stdout=False, stderr=True)).decode(errors="replace").strip()
        finally:
            await self.docker("remove_container", helper["Id"], force=True)
        return status, said

    _shared_locks = {}  # volume: asyncio.Lock, for the volumes every student mounts (the course)

    async def ensure_sized_volumes(self, wanted):
        """Before a start, in one run of the root helper: each (volume, size, folder from before,
        labels) in `wanted` a file system of its own of that size (images/hub/dlab-home), made on
        first use, with the files of a plain volume of that name or, for a new one, of the folder
        from before (a host path) copied in; attached again after a reboot. The home, the hand-in
        folder and the course folder: a student who fills one stops there, and the hub's database,
        the other homes and folders keep their room."""
        device = f"{self.homes_dir}/dev/"
        found, later = {}, []
        for name, *_ in wanted:
            try:
                found[name] = await self.docker("inspect_volume", name)
            except docker.errors.NotFound:
                found[name] = None
        for item in wanted:
            name = item[0]
            shared = name in (self.course_volume, self.exchange_volume, self.grading_volume)  # more than one server mounts it
            volume = found[name]
            if shared and (volume is None or (volume.get("Options") or {}).get("device") != device + name):
                later.append(item)  # made or moved once, by one start at a time (below)
        now = [item for item in wanted if item not in later]
        if now:
            await self.run_dlab_home(now, found)
        for item in later:
            name = item[0]
            lock = ClassFolders._shared_locks.setdefault(name, asyncio.Lock())
            async with lock:
                try:
                    found[name] = await self.docker("inspect_volume", name)
                except docker.errors.NotFound:
                    found[name] = None
                volume = found[name]
                if volume is not None and (volume.get("Options") or {}).get("device") != device + name:
                    users = await self.docker("containers", filters={"volume": name})
                    if users:  # moved when no running server holds it: each start would copy it again
                        self.log.info("dlab: %s is in use by %d servers; it moves into its own file system "
                                      "at a start when none is", name, len(users))
                        continue
                await self.run_dlab_home([item], found)

    async def run_dlab_home(self, wanted, found):
        device = f"{self.homes_dir}/dev/"
        binds = {self.homes_dir: {"bind": "/homes", "mode": "rw"}, "/dev": {"bind": "/dev", "mode": "rw"}}
        script, plain = ["set -e"], {}
        for number, (name, size, before, _) in enumerate(wanted):
            volume = found[name]
            plain[name] = volume is not None and (volume.get("Options") or {}).get("device") != device + name
            old = f"/old/{number}"
            if plain[name]:
                binds[name] = {"bind": old, "mode": "ro"}
            elif volume is None and before:
                binds[before] = {"bind": old, "mode": "ro"}
            script.append(f"dlab-home ensure {name} {size} {old}")  # names and sizes are [A-Za-z0-9._-]
        status, said = await self.run_helper(["sh", "-c", "\n".join(script)], binds=binds, network_mode="none",
                                             **HOME_HELPER_PRIVILEGES)
        if status != 0:
            self.log.error("dlab: %s's volumes %s could not be prepared: %s", self.user.name,
                           ", ".join(name for name, *_ in wanted), said)
            raise web.HTTPError(503, "Your home could not be prepared; the organizer finds why in the hub's log"
                                f" ({said.splitlines()[-1] if said else f'dlab-home exited with {status}'}).")
        if said:
            self.log.info("%s", said)
        for name, _, _, labels in wanted:
            if plain[name]:
                await self.docker("remove_volume", name)
                self.log.info("dlab: %s moved from a plain volume into its own file system", name)
            if found[name] is None or plain[name]:
                await self.docker("create_volume", name=name, driver="local",
                                  labels={"org.dlab.hub": self.prefix, **labels},
                                  driver_opts={"type": "ext4", "device": device + name, "o": "nosuid,nodev"})

    # --- The course folder and the hand-in folders -------------------------------------------
    course_volume = Unicode("", config=True, help="The course folder's volume: /srv/course (~/course), read-only to students.")
    handin_volume = Unicode("", config=True, help="The hand-in folders' volume: each student's /srv/handin (~/handin) is one folder of it.")
    organizer = Unicode("admin", config=True, help="The organizer's account: an instructor.")
    instructor_group = Unicode("instructors", config=True, help="Members of this JupyterHub group are instructors.")

    def is_instructor(self):
        return (self.user.admin or self.user.name == self.organizer
                or any(group.name == self.instructor_group for group in self.user.groups))

    handin_size = Unicode("", config=True, help='Size of each student\'s hand-in folder, as "1G" (dlab-home); '
                          '"": folders of the one hand-in volume, no limit.')
    course_size = Unicode("", config=True, help='Size of the course folder, as "10G" (dlab-home); "": a plain volume.')

    async def class_folders(self):
        """The folders the class shares, as DockerSpawner volumes for this user, and those of them
        that are file systems of a size (for ensure_sized_volumes). An instructor writes
        /srv/course and reads every hand-in at /srv/handins; a student reads /srv/course and writes
        /srv/handin, their own hand-in folder and the only one their container holds. Mounted
        outside the home (a full home must still start: Docker would have to make the mount points
        in it); the image's start-up hook links them into the home (~/course...)."""
        folders, sized = {}, []
        self._handin_source = None  # a student's hand-in, as mounted (the assignments' inbound too)
        if self.course_volume:
            folders[self.course_volume] = {"bind": "/srv/course", "mode": "rw" if self.is_instructor() else "ro"}
            if self.course_size and not self.course_volume.startswith("/"):
                # A file system of course_size: an instructor who fills it stops there.
                sized.append((self.course_volume, self.course_size, None, {}))
            elif not self.course_volume.startswith("/"):
                await self.ensure_plain_course()
        if not self.handin_volume:
            return folders, sized
        shared_folders = self.handin_volume.startswith("/")  # on a swarm: on the shared file system
        if shared_folders:
            mountpoint = self.handin_volume
        else:
            mountpoint = (await self.docker("inspect_volume", self.handin_volume))["Mountpoint"]
        if self.is_instructor() and self.handin_size and not shared_folders:
            # Each student's hand-in is a volume of its own (below), at /srv/handins/<name>; a
            # folder of the shared volume from an earlier release until its student's next start.
            folders.update(await self.every_handin(mountpoint))
        elif self.is_instructor():
            folders[self.handin_volume] = {"bind": "/srv/handins", "mode": "ro"}
        elif self.handin_size and not shared_folders:
            # A file system of handin_size, like the home; its files came from the student's folder
            # of an earlier release's shared volume, if any.
            volume = f"{self.handin_volume}-{self.escaped_name}"
            before = f"{mountpoint}/{self.user.name}" if (HANDIN_DIR / self.user.name).is_dir() else None
            sized.append((volume, self.handin_size, before, {"org.dlab.handin": self.user.name}))
            folders[volume] = {"bind": "/srv/handin", "mode": "rw"}
            self._handin_source = volume
        else:
            # The hub holds the same volume at HANDIN_DIR (compose.yaml): it makes the folder,
            # group `users` (the students' gid 100) and setgid, so the student's files keep it.
            # Named after the account, as the instructor knows it (a name has no slash and no "..").
            folder = HANDIN_DIR / self.user.name
            folder.mkdir(exist_ok=True)
            folder.chmod(0o2770)
            folders[f"{mountpoint}/{self.user.name}"] = {"bind": "/srv/handin", "mode": "rw"}
            self._handin_source = None if shared_folders else f"{mountpoint}/{self.user.name}"
        return folders, sized

    async def ensure_plain_course(self):
        """The course folder as a plain volume (course_size ""), made once, writable by the
        instructors (uid 1000) and the group users, as compose made it in earlier releases."""
        try:
            await self.docker("inspect_volume", self.course_volume)
            return
        except docker.errors.NotFound:
            pass
        await self.docker("create_volume", name=self.course_volume, driver="local", labels={"org.dlab.hub": self.prefix})
        status, said = await self.run_helper(["install", "-d", "-o", "1000", "-g", "100", "-m", "2775", "/course"],
                                             binds={self.course_volume: {"bind": "/course", "mode": "rw"}},
                                             network_mode="none", cap_drop=["ALL"], cap_add=["CHOWN", "FOWNER"])
        if status != 0:
            raise web.HTTPError(503, f"The course folder could not be made: {said[-200:]}")

    async def every_handin(self, mountpoint):
        """Every student's hand-in volume, read-only at /srv/handins/<name>, attached first (a
        reboot detaches them): made at each student's first start, so one that starts for the first
        time after the instructor shows at the instructor's next start. A folder of an earlier
        release's shared volume shows until its student's next start moves it."""
        found = await self.docker("volumes", filters={"label": [f"org.dlab.hub={self.prefix}", "org.dlab.handin"]})
        volumes = {v["Labels"]["org.dlab.handin"]: v["Name"] for v in (found or {}).get("Volumes") or []}
        if volumes:
            status, said = await self.run_helper(["dlab-home", "attach", *volumes.values()], network_mode="none",
                                                 binds={self.homes_dir: {"bind": "/homes", "mode": "rw"},
                                                        "/dev": {"bind": "/dev", "mode": "rw"}}, **HOME_HELPER_PRIVILEGES)
            if status != 0:  # the others still show; the organizer finds which in the log
                self.log.error("dlab: some hand-in folders could not be attached for %s: %s", self.user.name, said)
                missing = {line.split("/homes/", 1)[1].split(".ext4", 1)[0] for line in said.splitlines() if "no /homes/" in line}
                volumes = {name: volume for name, volume in volumes.items() if volume not in missing}
        folders = {volume: {"bind": f"/srv/handins/{name}", "mode": "ro"} for name, volume in volumes.items()}
        before = {folder.name for folder in HANDIN_DIR.iterdir() if folder.is_dir()} if HANDIN_DIR.is_dir() else set()
        for name in sorted(before - set(volumes)):
            folders[f"{mountpoint}/{name}"] = {"bind": f"/srv/handins/{name}", "mode": "ro"}
        return folders
