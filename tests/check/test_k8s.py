"""Kubernetes on paper (hub/dlab_hub/k8s.py, docs/kubernetes.md): the zero-to-jupyterhub values made
from dlab's settings pass z2jh's own values schema, and the student's pod and home claim that
KubeSpawner renders from them pass Kubernetes' schema (kubernetes-validate, strict: no unknown
field). No Kubernetes runs here; what a cluster would add is in docs/kubernetes.md.

tests/data/z2jh-values.schema.json is z2jh's jupyterhub/values.schema.yaml with its descriptions
stripped, as z2jh's tools/generate-json-schema.py makes the chart's values.schema.json, and
tests/data/z2jh-values.yaml the chart's defaults, which Helm merges under a values file before it
checks them (zero-to-jupyterhub-k8s 4.3.2-226-g48ea50e3, BSD-3-Clause)."""
import json

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_asyncio.client import ApiClient
from kubespawner.objects import make_pod, make_pvc

from conftest import ROOT

from dlab_hub.k8s import EXAMPLE, EXAMPLE_REGISTRY, pod_arguments, quantity, to_yaml, values
from dlab_hub.settings import load

KUBERNETES = "1.32.0"  # the oldest Kubernetes the z2jh 4.x chart supports (its kubeVersion)
SCHEMA = json.loads((ROOT / "tests" / "data" / "z2jh-values.schema.json").read_text())
CHART_DEFAULTS = yaml.safe_load((ROOT / "tests" / "data" / "z2jh-values.yaml").read_text())


def as_helm_merges(given, defaults=CHART_DEFAULTS):
    """The values Helm checks: the chart's defaults with the given values over them (maps merged,
    anything else replaced)."""
    if not (isinstance(given, dict) and isinstance(defaults, dict)):
        return given
    return {**defaults, **{key: as_helm_merges(value, defaults.get(key)) for key, value in given.items()}}


def class_values(**settings):
    _, parsed, problems, _ = load(settings)
    assert problems == []
    return values(parsed, "registry.example.org")


def manifest(obj):
    return ApiClient.__new__(ApiClient).sanitize_for_serialization(obj)  # no connection: no __init__


def validate(resource):
    kubernetes_validate.validate(resource, KUBERNETES, strict=True)


def test_the_committed_example_is_the_settings_defaults():
    _, parsed, _, _ = load({}, applies=("hub", "both"))
    assert EXAMPLE.read_text() == to_yaml(values(parsed, EXAMPLE_REGISTRY)), \
        "k8s/values.example.yaml is stale: run `make k8s-values` (it rewrites it from hub/dlab_hub/settings.py)"


@pytest.mark.parametrize("settings", [{}, {"DLAB_GPUS": "none", "DLAB_EGRESS": "off", "DLAB_IDLE_TIMEOUT": "0"},
                                      {"DLAB_GPUS": "2", "DLAB_MAX_SERVERS": "30", "DLAB_HOME_SIZE": "0"},
                                      {"DLAB_DOMAIN": "class.example.edu", "DLAB_ACME_EMAIL": "it@example.edu"}])
def test_the_values_pass_zero_to_jupyterhubs_schema(settings):
    jsonschema.validate(as_helm_merges(yaml.safe_load(to_yaml(class_values(**settings)))), SCHEMA)


def test_a_value_z2jh_does_not_know_is_refused():
    """The schema check can fail: z2jh refuses a key it does not know."""
    broken = class_values()
    broken["singleuser"]["memoryLimit"] = "4Gi"
    with pytest.raises(jsonschema.ValidationError, match="memoryLimit"):
        jsonschema.validate(as_helm_merges(broken), SCHEMA)


def test_the_students_pod_keeps_the_class_guarantees_and_passes_kubernetes_schema():
    pod = manifest(make_pod(**pod_arguments(class_values(DLAB_MEM_LIMIT="3G", DLAB_CPU_LIMIT="1.5"))))
    validate(pod)
    container = pod["spec"]["containers"][0]
    assert container["image"] == "registry.example.org/dlab/cpu:latest"
    assert container["resources"]["limits"] == {"cpu": 1.5, "memory": "3Gi"}
    security = container["securityContext"]
    assert security["runAsUser"] == 1000 and security["runAsGroup"] == 100 and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/home/jovyan", "/dev/shm", "/tmp", "/srv/data", "/opt/dlab/assignments"}
    assert mounts["/srv/data"]["readOnly"] and mounts["/opt/dlab/assignments"]["readOnly"]  # an empty folder over the answers
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Gi"}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "home-ann"


def test_the_gpu_profile_asks_for_the_cards():
    v = class_values(DLAB_GPUS="2")
    gpu = next(p for p in v["singleuser"]["profileList"] if p["slug"] == "gpu")["kubespawner_override"]
    arguments = pod_arguments(v)
    arguments.update(image=gpu["image"], extra_resource_limits=gpu["extra_resource_limits"])
    pod = manifest(make_pod(**arguments))
    validate(pod)
    assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["spec"]["containers"][0]["image"] == "registry.example.org/dlab/gpu:latest"
    assert [p["slug"] for p in class_values(DLAB_GPUS="none")["singleuser"]["profileList"]] == ["cpu"]


def test_the_home_claim_passes_kubernetes_schema():
    v = class_values(DLAB_HOME_SIZE="20G")
    claim = manifest(make_pvc(name="home-ann", storage_class=None, access_modes=["ReadWriteOnce"], selector=None,
                              storage=v["singleuser"]["storage"]["capacity"], labels={"hub.jupyter.org/username": "ann"}))
    validate(claim)
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"


def test_a_pod_kubernetes_would_refuse_is_refused():
    """The pod check can fail: a field Kubernetes does not know."""
    pod = manifest(make_pod(**pod_arguments(class_values())))
    pod["spec"]["containers"][0]["memoryLimit"] = "4Gi"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(pod)


@pytest.mark.parametrize("size, expected", [("4G", "4Gi"), ("512m", "512Mi"), ("1g", "1Gi"), ("2T", "2Ti"), ("1048576", "1048576")])
def test_docker_sizes_become_kubernetes_quantities_of_the_same_bytes(size, expected):
    assert quantity(size) == expected


def test_the_class_settings_carry_over():
    v = class_values(DLAB_EGRESS="off", DLAB_IDLE_TIMEOUT="0", DLAB_MIN_PASSWORD_LENGTH="12", DLAB_ADMIN="teacher")
    assert v["singleuser"]["networkPolicy"]["egressAllowRules"]["nonPrivateIPs"] is False
    assert v["singleuser"]["networkPolicy"]["egressAllowRules"]["privateIPs"] is False
    assert v["cull"]["enabled"] is False
    assert v["hub"]["config"]["NativeAuthenticator"]["minimum_password_length"] == 12
    assert v["hub"]["config"]["Authenticator"]["admin_users"] == ["teacher"]
    assert class_values(DLAB_IDLE_TIMEOUT="1200")["cull"] == {"enabled": True, "timeout": 1200, "every": 300}


def test_https_by_itself_is_z2jhs_own_letsencrypt_with_the_same_authority():
    v = class_values(DLAB_DOMAIN="class.example.edu", DLAB_ACME_DIRECTORY="https://ca.uni.example/acme/directory")
    assert v["proxy"]["https"] == {"enabled": True, "type": "letsencrypt", "hosts": ["class.example.edu"],
                                   "letsencrypt": {"acmeServer": "https://ca.uni.example/acme/directory"}}
    assert "proxy" not in class_values()
