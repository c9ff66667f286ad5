# Jupyter server settings for every dlab image (read from /etc/jupyter).
import json
import os

c = get_config()  # noqa: F821  (provided by Jupyter)

# Listen on all interfaces inside the container; the port comes from JUPYTER_PORT (docker-stacks).
c.ServerApp.ip = "0.0.0.0"
c.ServerApp.port = int(os.environ.get("JUPYTER_PORT", "8888"))
# GEN_CERT=yes (docker-stacks): HTTPS with a self-signed certificate, made anew at every start in
# the user's Jupyter data folder, readable by the user alone.
if os.environ.get("GEN_CERT", "").lower() not in ("", "0", "no", "false"):
    import pathlib
    import subprocess

    from jupyter_core.paths import jupyter_data_dir

    pem = pathlib.Path(jupyter_data_dir()) / "notebook.pem"
    pem.parent.mkdir(parents=True, exist_ok=True)
    pem.unlink(missing_ok=True)
    old_umask = os.umask(0o077)
    try:
        subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-days", "365", "-nodes", "-x509",
                        "-subj", "/O=dlab/CN=localhost", "-keyout", str(pem), "-out", str(pem)],
                       check=True, capture_output=True)
    finally:
        os.umask(old_umask)
    c.ServerApp.certfile = str(pem)
# NB_USER=root NB_UID=0 NB_GID=0 with --user root (docker-stacks): the user asked for a server as root.
if os.getuid() == 0 and os.environ.get("NB_USER") == "root" and os.environ.get("NB_UID") == "0":
    c.ServerApp.allow_root = True
# Course links (/git-pull): dlab_links serves nbgitpuller's pages after checking each link's
# repository and folder, and escapes what the page shows; nbgitpuller's own, unchecked, is off.
c.ServerApp.jpserver_extensions = {"nbgitpuller": False, "dlab_links": True}
# JupyterLab's extension manager lists what the image holds, without asking PyPI for newer versions
# or offering to install: the image's environment is pinned, and where a class server keeps its
# students off the internet each lookup waited out its timeout (the panel took over 30 s).
c.LabApp.extension_manager = "readonly"
# There is no browser in the container.
c.ServerApp.open_browser = False
# One Ctrl-C stops the server (no "Shutdown this Jupyter server (y/[n])?" prompt under `docker run -it`).
c.ServerApp.answer_yes = True
# Terminals start bash (login shell, so ~/.bashrc and the prompt work).
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}
# JupyterLab's pages and scripts (about 10 MB) go out gzipped: a third of the bytes, which a class on
# one school network fetches all at once. The scripts' names carry their hash and are cached for a year.
c.ServerApp.tornado_settings = {"compress_response": True}
# %tensorboard in a notebook shows TensorBoard through jupyter-server-proxy (/proxy/<port>/ under
# this server's URL, the hub's route included), as docker-stacks does: the browser cannot reach the
# container's port 6006 itself. Kernels inherit the variable from the server.
os.environ.setdefault("TENSORBOARD_PROXY_URL",
                      os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/").rstrip("/") + "/proxy/%PORT%/")

# jupyter-resource-usage: memory and CPU in the status bar, against the container's real limits.
# Under the hub, JupyterHub passes MEM_LIMIT and CPU_LIMIT (DLAB_MEM_LIMIT, DLAB_CPU_LIMIT), which
# it reads itself; under `docker run --memory ...` the limit is the cgroup's.
c.ResourceUseDisplay.track_cpu_percent = True
c.ResourceUseDisplay.mem_warning_threshold = 0.1  # the meter turns red at 90 % of the limit


def cgroup_limits():
    """(bytes of memory, cores) this container may use, None where unlimited: cgroup v2, else v1."""
    def read(path):
        try:
            with open(path) as f:
                return f.read().split()
        except OSError:
            return []
    memory = read("/sys/fs/cgroup/memory.max") or read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    cpu = read("/sys/fs/cgroup/cpu.max") or read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") + read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    # Unlimited: "max" (v2), or v1's largest page-aligned number and a quota of -1.
    memory = int(memory[0]) if memory and memory[0].isdigit() and int(memory[0]) < 2**62 else None
    cores = int(cpu[0]) / int(cpu[1]) if len(cpu) == 2 and cpu[0].isdigit() else None
    return memory, cores


memory_limit, cpu_limit = cgroup_limits()
if not os.environ.get("MEM_LIMIT") and memory_limit:
    c.ResourceUseDisplay.mem_limit = memory_limit
if not os.environ.get("CPU_LIMIT") and cpu_limit:
    c.ResourceUseDisplay.cpu_limit = cpu_limit

# Behind HTTPS the class server passes JUPYTERHUB_COOKIE_OPTIONS={"secure": true} (its
# Spawner.cookie_options): the login cookie honours it already; the XSRF cookie must too.
if json.loads(os.environ.get("JUPYTERHUB_COOKIE_OPTIONS") or "{}").get("secure"):
    c.ServerApp.tornado_settings["xsrf_cookie_kwargs"] = {"secure": True}
# Under a hub that disables user configuration (the class server), the server process cannot be
# traced or read through /proc by the student's own kernels, though they run as the same user:
# otherwise a kernel could rewrite what the server sends to other people's browsers. Kernels and
# terminals are new programs (exec), traceable as usual.
if os.environ.get("JUPYTERHUB_DISABLE_USER_CONFIG") == "1":
    import ctypes

    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_core.paths import jupyter_data_dir

    class KernelSpecManagerWithTheStudentsKernels(KernelSpecManager):
        """The home's Jupyter folders are out of the server's paths (JupyterHub's disable_user_config),
        but the student's own kernels (python -m ipykernel install --user) stay in the launcher: a
        kernel is the student's own process, and its spec is served to its owner alone."""

        def _kernel_dirs_default(self):
            return [os.path.join(jupyter_data_dir(), "kernels"), *super()._kernel_dirs_default()]

    c.ServerApp.kernel_spec_manager_class = KernelSpecManagerWithTheStudentsKernels

    # jupyter-lsp would look for twenty language servers at every start of every student's server:
    # here none can appear, since the server's environment is read-only and its Python ignores the
    # home's packages. An image that installs one lists it in LanguageServerManager.language_servers.
    c.LanguageServerManager.autodetect = False

    PR_SET_DUMPABLE = 4
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise SystemExit(f"dlab: prctl(PR_SET_DUMPABLE) failed: {os.strerror(ctypes.get_errno())}")
