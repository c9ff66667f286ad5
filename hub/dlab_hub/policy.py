"""The class's policy, said once: what every student's server may use, how logins are guarded, when
idle servers stop, what a server may not do, and which GPUs it gets; made from the checked settings
(dlab_hub.settings) by `policy(settings)`, a pure function.

The renderers draw from it: dlab_hub.config for Docker (and through it dlab_hub.swarm, which
carries the Docker spawner's settings to a swarm service), dlab_hub.k8s for zero-to-jupyterhub.
Each renders the same rule in its platform's words (Docker's `cap_drop`, Kubernetes'
`capabilities.drop`); none restates a number or a rule of its own.
"""
from dataclasses import dataclass

from dlab_hub.kinds import GpuRequest

UID, GID = 1000, 100  # jovyan and users, as in every dlab image
# Answers the images hold (images/common/install-labs.sh), kept out of students' servers by an empty
# folder, root's and read-only, mounted over them (hidden_folders):
ASSIGNMENTS_DIR = "/opt/dlab/assignments"  # the sample assignments' sources, solutions and hidden tests
SOLUTIONS_DIR = "/opt/dlab/solutions"      # the solutions of the labs' exercises (DLAB_LAB_SOLUTIONS)
EMPTY_FOLDER = "size=4k,mode=0555"         # the tmpfs in their place


@dataclass(frozen=True)
class Limits:
    """Each student's server: Docker's and Kubernetes' sizes ("4G"; dlab_hub.k8s converts)."""
    memory: str
    cpus: float
    processes: int
    shm: str        # /dev/shm, memory
    tmp: str        # /tmp, memory
    home: str       # the home's own file system ("0": a plain volume, without a size)
    handin: str
    course: str
    grading: str    # the assignments' grading folder (instructors')


@dataclass(frozen=True)
class Logins:
    """Accounts and their guards (NativeAuthenticator's, and dlab's DlabAuthenticator's)."""
    organizer: str
    open_signup: bool = False            # the organizer approves each sign-up (or a class code does)
    min_password_length: int = 8
    check_common_password: bool = True   # "password123" and its friends refused
    failed_logins: int = 5               # per address and name; then that address waits
    wait_seconds: int = 60               # a minute (the organizer elsewhere is never locked out)
    signups_per_hour: int = 0
    pending_signups: int = 0


@dataclass(frozen=True)
class Culling:
    idle_timeout: int  # seconds; 0: idle servers are never stopped
    every: int         # how often the culler looks


@dataclass(frozen=True)
class Posture:
    """What a student's server may not do, and how it starts."""
    uid: int = UID
    gid: int = GID
    capabilities: tuple = ()           # none left to Jupyter (dlab's Docker start adds the firewall's, then drops them)
    no_new_privileges: bool = True     # no setuid way back to root (sudo included)
    read_only_root: bool = True        # nothing outside the home (and the memory folders) is writable
    egress: bool = False               # the internet beyond the hub (DLAB_EGRESS)
    user_config: bool = False          # the server reads no configuration, extension or page from the home
    default_url: str = "/lab"          # JupyterLab, with ~/labs in its file browser
    command: str = "start-singleuser.sh"  # the image's start-up hooks, then jupyterhub-singleuser
    environment: tuple = (("PIP_USER", "1"),)  # pip install goes to ~/.local, kept with the home
    log_size: str = "10m"              # a student printing without end fills no disk:
    log_files: int = 3                 # the last 3 x 10 MB of output are kept
    lab_solutions: bool = True         # the exercises' solutions are in students' servers (DLAB_LAB_SOLUTIONS)


@dataclass(frozen=True)
class Policy:
    limits: Limits
    logins: Logins
    culling: Culling
    posture: Posture
    gpus: GpuRequest       # what the GPU profile asks for (DLAB_GPUS), before the engine's answer
    cpu_image: str
    gpu_image: str
    max_servers: object    # "auto" (by the machine's memory) or a number (0: no limit)
    spawn_limit: int       # starts JupyterHub takes at once before it answers "try again"
    start_timeout: int


def cull_every(s):
    """How often the idle culler looks: DLAB_CULL_EVERY, or a quarter of the idle timeout (10 s at least)."""
    return s["DLAB_CULL_EVERY"] or max(s["DLAB_IDLE_TIMEOUT"] // 4, 10)


def policy(s):
    """The Policy of the parsed settings `s` (name: value, as dlab_hub.settings.load gives them)."""
    return Policy(
        limits=Limits(memory=s["DLAB_MEM_LIMIT"], cpus=s["DLAB_CPU_LIMIT"], processes=s["DLAB_PIDS_LIMIT"],
                      shm=s["DLAB_SHM_SIZE"], tmp=s["DLAB_TMP_SIZE"], home=s["DLAB_HOME_SIZE"],
                      handin=s["DLAB_HANDIN_SIZE"], course=s["DLAB_COURSE_SIZE"],
                      grading=s["DLAB_GRADING_SIZE"]),
        logins=Logins(organizer=s["DLAB_ADMIN"], min_password_length=s["DLAB_MIN_PASSWORD_LENGTH"],
                      signups_per_hour=s["DLAB_SIGNUPS_PER_HOUR"], pending_signups=s["DLAB_PENDING_SIGNUPS"]),
        culling=Culling(idle_timeout=s["DLAB_IDLE_TIMEOUT"], every=cull_every(s)),
        posture=Posture(egress=s["DLAB_EGRESS"] == "on", lab_solutions=s["DLAB_LAB_SOLUTIONS"] == "shown"),
        gpus=s["DLAB_GPUS"], cpu_image=s["DLAB_IMAGE"], gpu_image=s["DLAB_GPU_IMAGE"],
        max_servers=s["DLAB_MAX_SERVERS"], spawn_limit=s["DLAB_SPAWN_LIMIT"], start_timeout=s["DLAB_START_TIMEOUT"],
    )


def hidden_folders(lab_solutions, instructor):
    """The image's folders of answers a server must not show: a student never sees the sample
    assignments' sources (an instructor's server offers them to ~/grading), nor the exercises'
    solutions where the class withholds them (Posture.lab_solutions false; instructors keep them)."""
    if instructor:
        return ()
    return (ASSIGNMENTS_DIR,) if lab_solutions else (ASSIGNMENTS_DIR, SOLUTIONS_DIR)
