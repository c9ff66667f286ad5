"""dlab/gpu beyond the library checks: the GPU check, passthrough, one GPU shared by two students.
Tests that need a GPU skip, saying why, where Docker has none; they run for real where it has."""
import json
import re
import subprocess
import threading

import pytest

from conftest import ROOT, docker, nvidia_runtime

pytestmark = pytest.mark.gpu_image

SHARE = """
import time, numpy as np, tensorflow as tf, jax, jax.numpy as jnp, torch
x = tf.random.normal((2048, 2048))
y = jnp.ones((2048, 2048))
for _ in range(50):
    tf.linalg.matmul(x, x).numpy(); (y @ y).block_until_ready()
free, total = torch.cuda.mem_get_info()
print("RESULT", (total - free) / total)
"""


def verdict_line(logs):
    """dlab-gpu-check's last line, its verdict (the start-up hooks' lines on stderr may follow it)."""
    return [line for line in logs.splitlines() if line.startswith(("OK:", "FAIL:"))][-1]


def test_sharing_settings_are_in_the_image(gpu_container):
    env = dict(e.split("=", 1) for e in json.loads(docker("image", "inspect", "dlab/gpu").stdout)[0]["Config"]["Env"])
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert "JAX_PLATFORMS" not in env, "JAX must be free to pick the GPU"


def test_gpu_check_without_a_gpu_says_what_is_missing(gpu_container):
    if nvidia_runtime():
        pytest.skip("this host has a GPU: test_gpu_check_passes_on_the_gpu covers it")
    logs = gpu_container.run_and_wait(command=["dlab-gpu-check"], expect_rc=1, no_problems=False)
    assert "nvidia-smi not found" in logs
    verdict = verdict_line(logs)
    assert verdict.startswith("FAIL: torch: PyTorch sees no GPU; tensorflow: TensorFlow sees no GPU; jax: JAX sees no GPU")
    # The CUDA builds, at the CPU image's versions.
    assert "torch 2.13.0+cu130 (built with cuda 13" in logs and "tensorflow 2.21.0 (built with cuda 12" in logs


def test_gpu_check_is_a_plain_file_that_runs_on_other_pythons(cpu_container):
    """The same file on another installation (dlab/cpu's CPU builds stand in for a user's machine)."""
    mount = ["-v", f"{ROOT / 'images/gpu/dlab-gpu-check'}:/tmp/dlab-gpu-check:ro"]
    logs = cpu_container.run_and_wait(*mount, command=["python", "/tmp/dlab-gpu-check", "torch", "--json"],
                                      expect_rc=1, no_problems=False)
    report, _ = json.JSONDecoder().raw_decode(logs[logs.index("{"):])  # the start-up hooks' lines follow
    assert report["ok"] is False and list(report["frameworks"]) == ["torch"]
    assert report["frameworks"]["torch"]["error"] == "this is a CPU-only build of PyTorch"
    logs = cpu_container.run_and_wait(*mount, command=["python", "/tmp/dlab-gpu-check", "pytorch"],
                                      expect_rc=2, no_problems=False)
    assert "unknown framework pytorch: choose from torch, tensorflow, jax" in logs


def test_make_lab_gpu_without_a_gpu_fails_at_once_saying_why():
    if nvidia_runtime():
        pytest.skip("this host has a GPU: make lab-gpu would start a server")
    out = subprocess.run(["make", "-s", "lab-gpu", "PORT=18899"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "no NVIDIA GPU here" in out.stderr and "make lab" in out.stderr


def test_gpu_check_passes_on_the_gpu(gpu_host, gpu_container):
    logs = gpu_container.run_and_wait("--gpus", "all", command=["dlab-gpu-check"], no_problems=False, timeout=600)
    assert verdict_line(logs).startswith("OK: torch, tensorflow, jax compute on"), logs
    assert "memory growth: on" in logs


def test_frameworks_grow_gpu_memory_instead_of_taking_the_card(gpu_host, gpu_container):
    logs = gpu_container.run_and_wait("--gpus", "all", command=["python", "-c", SHARE], no_problems=False, timeout=600)
    used = float(next(line for line in logs.splitlines() if line.startswith("RESULT")).split()[1])
    assert used < 0.5, f"TensorFlow and JAX hold {used:.0%} of the card after small matrix products"


def test_two_students_share_one_gpu(gpu_host, gpu_container):
    results = {}

    def student(n):
        results[n] = gpu_container.run_and_wait("--gpus", "device=0", command=["python", "-c", SHARE],
                                                no_problems=False, timeout=600)

    threads = [threading.Thread(target=student, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all("RESULT" in logs for logs in results.values())


def test_the_gpu_meter_is_in_jupyterlab(gpu_container):
    """jupyterlab-nvdashboard: GPU memory and utilisation panels in JupyterLab, beside the memory
    meter of every image. Its extension is installed and enabled (here without a GPU)."""
    out = gpu_container.run_and_wait(command=["jupyter", "labextension", "list"], no_problems=False)
    assert re.search(r"jupyterlab-nvdashboard v[\d.]+ .*enabled.*OK", out), out


def test_the_gpu_meter_reads_the_card(gpu_host, gpu_container):
    cid = gpu_container.run_detached("--gpus", "all", command=["sleep", "120"])
    out = docker("exec", cid, "python", "-c", "import pynvml; pynvml.nvmlInit(); h = pynvml.nvmlDeviceGetHandleByIndex(0); "
                 "print(pynvml.nvmlDeviceGetMemoryInfo(h).total)").stdout
    assert int(out) > 0
