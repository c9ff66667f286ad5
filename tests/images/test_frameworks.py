"""dlab/cpu and dlab/gpu: each framework computes (the CUDA builds too, with no GPU here), Keras fits
under all three backends; dlab/cpu: threads follow --cpus."""
import ast

import pytest

from conftest import ARM64_CPU, FRAMEWORK_IMAGES, ROOT, image_param, read_lock

BACKENDS = ["tensorflow", "torch", "jax"]

TENSORFLOW = """
import tensorflow as tf
x = tf.Variable(3.0)
with tf.GradientTape() as tape:
    y = x ** 2
print("RESULT", float(tape.gradient(y, x)), float(tf.reduce_sum(tf.linalg.matmul(tf.eye(3), tf.ones((3, 3))))))
"""

TORCH = """
import torch
x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
(x ** 3).sum().backward()
print("RESULT", x.grad.tolist(), torch.__version__)
"""

JAX = """
import jax, jax.numpy as jnp
f = jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(x) * x)))
x = jnp.array([0.0, 1.0, 2.0])
print("RESULT", [round(float(v), 5) for v in f(x)], [round(float(v), 5) for v in jnp.sin(x) + x * jnp.cos(x)], jax.devices()[0].platform)
"""

KERAS_FIT = """
import numpy as np, keras
keras.utils.set_random_seed(0)
x = np.random.rand(256, 4).astype("float32")
y = (x @ np.array([1.0, -2.0, 3.0, 0.5], dtype="float32") > 1.0).astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, epochs=40, batch_size=32, verbose=0)
print("RESULT", keras.backend.backend(), history.history["loss"][0], history.history["loss"][-1], history.history["accuracy"][-1])
"""

THREADS = """
import collections, os
import tensorflow as tf
a = tf.random.normal((256, 256)); (a @ a).numpy()
import torch
names = collections.Counter(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
print("RESULT", os.environ["DLAB_CPUS"], torch.get_num_threads(), names["tf_Compute"], os.environ["XLA_FLAGS"])
"""


def result(logs):
    """The values a script printed after RESULT."""
    line = next(line for line in logs.splitlines() if line.startswith("RESULT "))
    return line.split(" ", 1)[1]


def run_python(cpu_container, script, *args):
    return result(cpu_container.run_and_wait(*args, command=["python", "-c", script], timeout=300))


def test_tensorflow_gradient_and_matmul(framework_container):
    grad, total = map(float, run_python(framework_container, TENSORFLOW).split())
    assert grad == 6.0 and total == 9.0


def test_torch_autograd(framework_container):
    out = run_python(framework_container, TORCH)
    grad = ast.literal_eval(out.rsplit(" ", 1)[0])
    assert grad == [3.0, 12.0, 27.0]
    # The same version in both images: the CPU build, and PyPI's CUDA build.
    if framework_container.name == "dlab/cpu":
        locked = read_lock(ROOT / "images/cpu/requirements.lock", framework_container.machine)["torch"]
        assert out.endswith(" " + locked.split("+")[0] + "+cpu")
    else:
        assert out.endswith("2.13.0+cu130")


def test_jax_jit_grad(framework_container):
    """On a machine with no GPU the CUDA build of JAX falls back to the CPU."""
    out = run_python(framework_container, JAX)
    jitted, analytic, platform = out.rsplit(" ", 1)[0].split("] [") + [out.rsplit(" ", 1)[1]]
    assert ast.literal_eval(jitted + "]") == ast.literal_eval("[" + analytic)
    assert platform == "cpu"


# Every backend in both images; on the emulated arm64 build, one Keras fit (its default backend's):
# each costs a minute there (docs/testing.md).
@pytest.mark.parametrize("framework_container, backend",
                         [pytest.param(image, backend, marks=image_param(image).marks, id=f"{image}-{backend}")
                          for image, backend in [(i, b) for i in FRAMEWORK_IMAGES for b in BACKENDS]
                          + [(ARM64_CPU, "tensorflow")]], indirect=["framework_container"])
def test_keras_fit_under_each_backend(framework_container, backend):
    out = run_python(framework_container, KERAS_FIT, "-e", f"KERAS_BACKEND={backend}").split()
    assert out[0] == backend
    first_loss, last_loss, accuracy = map(float, out[1:])
    assert last_loss < first_loss / 2, out
    assert accuracy > 0.9, out


def test_keras_backend_defaults_to_tensorflow(framework_container):
    logs = framework_container.run_and_wait(command=["python", "-c", "import keras; print('RESULT', keras.backend.backend())"])
    assert result(logs) == "tensorflow"


def test_thread_pools_follow_a_cpus_limit(cpu_container):
    """With --cpus 1 every framework's compute pool has one thread, not one per host core. (The arm64
    build starts with the same hook, images/base/start-notebook.d; emulated, this run took 80 s.)"""
    cpus, torch_threads, tf_compute, xla_flags = run_python(cpu_container, THREADS, "--cpus", "1").split(" ", 3)
    assert (cpus, torch_threads, tf_compute) == ("1", "1", "1")
    assert "intra_op_parallelism_threads=1" in xla_flags


def test_thread_pools_follow_the_cpu_set_without_a_limit(cpu_container):
    cpus, torch_threads, tf_compute, _ = run_python(cpu_container, THREADS, "--cpuset-cpus", "0,1").split(" ", 3)
    assert (cpus, torch_threads, tf_compute) == ("2", "2", "2")


def test_thread_pools_can_be_set_by_the_user(cpu_container):
    """A user's own OMP_NUM_THREADS wins over dlab's default."""
    out = run_python(cpu_container, THREADS, "--cpuset-cpus", "0,1", "-e", "OMP_NUM_THREADS=1")
    cpus, torch_threads, _, _ = out.split(" ", 3)
    assert (cpus, torch_threads) == ("2", "1")
