"""dlab's class on Kubernetes, on paper: zero-to-jupyterhub's values from dlab's settings.

`values(settings, registry)` is a pure function from the settings hub/dlab_hub/settings.py declares
(parsed, as `load` gives them) to a values file for the zero-to-jupyterhub Helm chart (z2jh 4.x,
JupyterHub 5): dlab's images from the organizer's registry, the profiles, the limits, the homes'
size, the idle culler, the accounts and the network policy. Sign-in with the institution is left
to the organizer (z2jh's GenericOAuthenticator takes the provider's endpoints, which dlab reads
from its discovery document at the hub's start: docs/kubernetes.md). `pod_arguments(values)` is what
z2jh's hub hands KubeSpawner's make_pod for a student from those values; `make check` renders that
pod with KubeSpawner and validates it, and the values, against Kubernetes' and z2jh's schemas
(tests/check/test_k8s.py). No Kubernetes runs here: see docs/kubernetes.md for what is checked.

    .venv/bin/python hub/dlab_hub/k8s.py REGISTRY [ENV_FILE]   # values.yaml for your .env, on stdout
    .venv/bin/python hub/dlab_hub/k8s.py --example             # k8s/values.example.yaml, as committed
"""
import re
import sys
from pathlib import Path

from dlab_hub.policy import hidden_folders, policy
from dlab_hub.settings import load
EXAMPLE_REGISTRY = "registry.example.org"
EXAMPLE = Path(__file__).resolve().parents[2] / "k8s" / "values.example.yaml"  # in the checkout (make k8s-values)


def quantity(size):
    """A Docker size ("4G", "512m": powers of 1024) as a Kubernetes quantity ("4Gi", "512Mi");
    Kubernetes reads "4G" as 4 * 10^9 bytes."""
    number, unit = re.fullmatch(r"(\d+)([kKmMgGtT]?)", str(size)).groups()
    unit = unit.upper()
    return f"{number}{unit}i" if unit else number


def _image(registry, image):
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
    return {"name": f"{registry}/{name}", "tag": tag}


def values(s, registry):
    """The z2jh values (a dict) for the parsed settings `s`, images pulled from `registry`: the
    class's policy (dlab_hub.policy) in zero-to-jupyterhub's words."""
    p = policy(s)
    logins, posture = p.logins, p.posture
    cpu, gpu = _image(registry, p.cpu_image), _image(registry, p.gpu_image)
    profiles = [{"display_name": "CPU", "slug": "cpu", "default": True,
                 "description": "TensorFlow, PyTorch and JAX on the CPU (dlab/cpu)"}]
    if p.gpus.kind != "none":
        count = p.gpus.cards
        profiles.append({"display_name": "GPU", "slug": "gpu",
                         "description": f"The same labs with {count} NVIDIA GPU (dlab/gpu)",
                         "kubespawner_override": {"image": f"{gpu['name']}:{gpu['tag']}",
                                                  "extra_resource_limits": {"nvidia.com/gpu": str(count)}}})
    timeout = p.culling.idle_timeout
    hub_config = {
        "JupyterHub": {"authenticator_class": "native", "concurrent_spawn_limit": p.spawn_limit},
        "Authenticator": {"admin_users": [logins.organizer], "allow_all": True},
        "NativeAuthenticator": {"open_signup": logins.open_signup, "check_common_password": logins.check_common_password,
                                "minimum_password_length": logins.min_password_length,
                                "allowed_failed_logins": logins.failed_logins, "seconds_before_next_try": logins.wait_seconds},
        # z2jh has no value for these: its hub.config sets KubeSpawner's traits directly. Nothing
        # outside the home and the memory folders is writable, no capability, no way to root.
        "KubeSpawner": {
            "container_security_context": {"readOnlyRootFilesystem": posture.read_only_root,
                                           "capabilities": {"drop": ["ALL"], **({"add": list(posture.capabilities)}
                                                                                if posture.capabilities else {})},
                                           "runAsNonRoot": True, "runAsGroup": posture.gid},
            "pod_security_context": {"seccompProfile": {"type": "RuntimeDefault"}},
        },
    }
    return {
        "hub": {
            "config": hub_config,
            "activeServerLimit": None if p.max_servers == "auto" else p.max_servers,
            "concurrentSpawnLimit": p.spawn_limit,
        },
        "singleuser": singleuser(p, cpu, profiles, s["DLAB_DATA_VOLUME"]),
        "cull": {"enabled": timeout > 0, "timeout": timeout or 3600,
                 "every": p.culling.every if timeout else 600},
        "prePuller": {"hook": {"enabled": True}, "continuous": {"enabled": True}},  # images on every node
        **({"proxy": https(s)} if s.get("DLAB_DOMAIN") else {}),
    }


def https(s):
    """DLAB_DOMAIN in z2jh's words: its own ACME client (autohttps, Traefik) takes the same authority."""
    letsencrypt = {"acmeServer": s["DLAB_ACME_DIRECTORY"], **({"contactEmail": s["DLAB_ACME_EMAIL"]} if s["DLAB_ACME_EMAIL"] else {})}
    return {"https": {"enabled": True, "type": "letsencrypt", "hosts": [s["DLAB_DOMAIN"]], "letsencrypt": letsencrypt}}


def singleuser(p, image, profiles, data_volume):
    """z2jh's singleuser values: a student's server under the policy `p`, the datasets' claim read-only."""
    limits, posture = p.limits, p.posture
    # The image's answers out of sight (dlab_hub.policy.hidden_folders): every pod here is a student's.
    hidden = hidden_folders(posture.lab_solutions, instructor=False)
    return {
        "image": image,
        "cmd": posture.command,  # the image's start-up hooks, then jupyterhub-singleuser
        "defaultUrl": posture.default_url,
        "startTimeout": p.start_timeout,
        "uid": posture.uid, "fsGid": posture.gid,
        # No root at start: on Kubernetes the network policy below does what dlab-firewall
        # does on Docker, so the server starts as jovyan with nothing to drop.
        "allowPrivilegeEscalation": not posture.no_new_privileges,
        "extraEnv": dict(posture.environment),
        "memory": {"limit": quantity(limits.memory), "guarantee": "512Mi"},
        "cpu": {"limit": limits.cpus, "guarantee": 0.1},
        "storage": {
            "type": "dynamic",
            "capacity": quantity(limits.home or "5G"),
            "homeMountPath": "/home/jovyan",
            "dynamic": {"pvcNameTemplate": "home-{username}"},
            "extraVolumes": [
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": quantity(limits.shm)}},
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": quantity(limits.tmp)}},
                {"name": "data", "persistentVolumeClaim": {"claimName": data_volume, "readOnly": True}},
                *({"name": f"hidden-{path.rsplit('/', 1)[1]}", "emptyDir": {"sizeLimit": "4Ki"}} for path in hidden),
            ],
            "extraVolumeMounts": [
                {"name": "shm", "mountPath": "/dev/shm"},
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "data", "mountPath": "/srv/data", "readOnly": True},
                *({"name": f"hidden-{path.rsplit('/', 1)[1]}", "mountPath": path, "readOnly": True} for path in hidden),
            ],
        },
        "profileList": profiles,
        # A student's pod takes traffic from the hub and the proxy only, and sends to the hub, DNS
        # and (DLAB_EGRESS=on) the internet: no classmate, no private or metadata address.
        "networkPolicy": {"enabled": True, "egressAllowRules": {
            "cloudMetadataServer": False, "privateIPs": False, "dnsPortsPrivateIPs": True,
            "dnsPortsKubeSystemNamespace": True, "nonPrivateIPs": posture.egress}},
    }


def pod_arguments(v, username="ann"):
    """What z2jh's hub gives KubeSpawner's make_pod for `username`'s CPU server, from the values
    (the z2jh mapping of singleuser.* onto KubeSpawner, the parts dlab sets)."""
    single, spawner = v["singleuser"], v["hub"]["config"]["KubeSpawner"]
    storage = single["storage"]
    home = {"name": "home", "persistentVolumeClaim": {"claimName": storage["dynamic"]["pvcNameTemplate"].format(username=username)}}
    return dict(
        name=f"jupyter-{username}", cmd=[single["cmd"]], port=8888,
        image=f"{single['image']['name']}:{single['image']['tag']}", image_pull_policy="IfNotPresent",
        uid=single["uid"], fs_gid=single["fsGid"], allow_privilege_escalation=single["allowPrivilegeEscalation"],
        container_security_context=spawner["container_security_context"],
        pod_security_context=spawner["pod_security_context"],
        env={**single["extraEnv"], "JUPYTERHUB_USER": username}, working_dir="/home/jovyan",
        volumes=[home, *storage["extraVolumes"]],
        volume_mounts=[{"name": "home", "mountPath": storage["homeMountPath"]}, *storage["extraVolumeMounts"]],
        labels={"app": "jupyterhub", "component": "singleuser-server", "hub.jupyter.org/username": username},
        cpu_limit=single["cpu"]["limit"], cpu_guarantee=single["cpu"]["guarantee"],
        mem_limit=single["memory"]["limit"], mem_guarantee=single["memory"]["guarantee"],
    )


def to_yaml(v):
    """The values as YAML (PyYAML: .venv has it, for kubernetes-validate)."""
    import yaml
    return ("# zero-to-jupyterhub values for dlab, made by hub/dlab_hub/k8s.py from dlab's settings: make k8s-values\n"
            + yaml.safe_dump(v, sort_keys=False, width=100))


def main(argv):
    if argv[1:2] == ["--example"]:
        _, parsed, _, _ = load({}, applies=("hub", "both"))
        EXAMPLE.parent.mkdir(exist_ok=True)
        EXAMPLE.write_text(to_yaml(values(parsed, EXAMPLE_REGISTRY)))
        return 0
    if len(argv) not in (2, 3):
        print(__doc__.split("\n\n")[-1], file=sys.stderr)
        return 2
    _, parsed, problems, _ = load({}, env_file=argv[2] if len(argv) == 3 else ".env")  # every setting (the ACME ones are make's)
    if problems:
        print("dlab: " + "; ".join(problems), file=sys.stderr)
        return 1
    sys.stdout.write(to_yaml(values(parsed, argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
