"""dlab/legacy: the tutorials dlab grew from run as written, in a kernel of their own.

Each test runs its code in the kernel "retired" (Python 3 — retired frameworks: Theano, MXNet)
through Jupyter's own client, as a student's notebook does, in a real dlab/legacy container; the
models train on scikit-learn's digits (packaged) or data made in code, and must reach the stated
accuracy or loss. The arm64 test runs the same kernel of the arm64 image under emulation.
"""
import json
import textwrap

import pytest

from conftest import MACHINE, NATIVE_ARCH, ROOT, TrackedContainer, docker, read_lock, skip_arm64, skip_legacy, wait_healthy

LEGACY = "dlab/legacy:latest"
LEGACY_ARM64 = "dlab/legacy:latest-arm64"
KERNEL = "retired"

pytestmark = pytest.mark.legacy
# MXNet and PaddlePaddle are in the kernel on amd64 only (docs/images.md says why); on an ARM
# machine its own build is tested, without them.
AMD64_ONLY = pytest.mark.skipif(NATIVE_ARCH != "amd64", reason="MXNet and PaddlePaddle are in the retired kernel on amd64 only")

# Runs stdin's code in a kernel (argv[1]) through jupyter_client, printing what the kernel prints;
# exits 1 with the traceback where the code raises.
IN_KERNEL = textwrap.dedent("""
    import sys
    from jupyter_client.manager import start_new_kernel
    code = sys.stdin.read()
    km, kc = start_new_kernel(kernel_name=sys.argv[1], startup_timeout=300)
    failed = []
    def hook(msg):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            print(content["text"], end="", file=sys.stdout if content["name"] == "stdout" else sys.stderr)
        elif kind == "error":
            failed.append("\\n".join(content["traceback"]))
    try:
        reply = kc.execute_interactive(code, timeout=float(sys.argv[2]), output_hook=hook)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    if failed or reply["content"]["status"] != "ok":
        sys.exit("the kernel raised:\\n" + "\\n".join(failed))
""")


@pytest.fixture(scope="module")
def legacy():
    """A running dlab/legacy container, started as the image starts (start.sh, its hooks)."""
    skip_legacy(LEGACY)
    tracked = TrackedContainer(LEGACY)
    cid = tracked.run_detached()
    wait_healthy(tracked, cid)
    yield tracked, cid
    tracked.remove_all()


def program(*pieces):
    """One program of pieces of code, each indented as it stands in this file."""
    return "\n".join(textwrap.dedent(piece) for piece in pieces)


def in_kernel(cid, *pieces, timeout=600):
    """Run the code of PIECES in the retired kernel of container CID; its printed output."""
    run = docker("exec", "-i", cid, "python", "-c", IN_KERNEL, KERNEL, str(timeout), input=program(*pieces),
                 check=False, timeout=timeout + 120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def results(output):
    """The RESULT {json} line a test's code prints."""
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output
    return json.loads(lines[-1][len("RESULT "):])


DIGITS = """
    import json
    import numpy as np
    from sklearn.datasets import load_digits
    digits = load_digits()
    X = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]
"""


def test_the_kernel_is_registered_apart_from_the_main_environment(legacy):
    """A second kernel, named so that nobody picks it by accident, whose environment is its own:
    numpy 1.x there, dlab/cpu's numpy 2 and frameworks untouched in /opt/venv, both `pip check`
    clean, and no user site through which the main kernel's `pip install --user` could reach it."""
    tracked, cid = legacy
    specs = json.loads(docker("exec", cid, "jupyter", "kernelspec", "list", "--json").stdout)["kernelspecs"]
    assert specs[KERNEL]["spec"]["display_name"] == "Python 3 — retired frameworks: Theano, MXNet"
    assert specs[KERNEL]["spec"]["argv"][0] == "/opt/legacy/bin/python"
    assert specs["python3"]["spec"]["display_name"] == "Python 3 (ipykernel)"
    main_numpy = docker("exec", cid, "python", "-c", "import numpy; print(numpy.__version__)").stdout.strip()
    assert main_numpy.startswith("2."), main_numpy
    for pip in (["python", "-m", "pip"], ["/opt/legacy/bin/python", "-m", "pip"]):
        check = docker("exec", cid, *pip, "check", check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    out = in_kernel(cid, """
        import json, site, sys, numpy
        print("RESULT", json.dumps({"prefix": sys.prefix, "numpy": numpy.__version__, "user_site": site.ENABLE_USER_SITE,
                                    "main_venv_on_path": any(p.startswith("/opt/venv") for p in sys.path)}))
    """)
    found = results(out)
    # Each framework imports without a word on stderr (Theano finds its BLAS; no deprecation noise).
    frameworks = "theano, lasagne, dlib" + (", mxnet, paddle" if NATIVE_ARCH == "amd64" else "")
    quiet = docker("exec", "-i", cid, "python", "-c", IN_KERNEL, KERNEL, "300", check=False, timeout=420,
                   input=f"import {frameworks}")
    assert quiet.returncode == 0 and "Warning" not in quiet.stderr and "WARNING (theano" not in quiet.stderr, quiet.stderr
    assert found["prefix"] == "/opt/legacy" and found["numpy"].startswith("1.23"), found
    assert found["user_site"] is False and found["main_venv_on_path"] is False, found
    # The main environment is dlab/cpu's, package for package.
    cpu = docker("run", "--rm", "--entrypoint", "dlab-info", "dlab/cpu:latest", "--packages").stdout
    assert docker("exec", cid, "dlab-info", "--packages").stdout == cpu
    # The kernel's environment holds exactly its lock's packages and dlib, at their versions.
    retired = dict(line.split("==") for line in docker("exec", cid, "dlab-info", "--packages", "--kernel", KERNEL).stdout.split())
    machine = MACHINE[NATIVE_ARCH]
    locked = read_lock(ROOT / "images/legacy/requirements.lock", machine) | {"dlib": read_lock(ROOT / "images/legacy/dlib.lock")["dlib"]}
    assert retired == locked, {name: (retired.get(name), locked.get(name)) for name in set(retired) ^ set(locked)}
    assert {"theano": "1.0.5", "lasagne": "0.1", "dlib": "20.0.1"}.items() <= retired.items()
    summary = docker("exec", cid, "dlab-info").stdout
    assert "Kernel:    retired (/opt/legacy/bin/python): theano 1.0.5, lasagne 0.1" in summary, summary
    wrong = docker("exec", cid, "dlab-info", "--packages", "--kernel", "theano", check=False)
    assert wrong.returncode != 0 and "no kernel 'theano'" in wrong.stderr and "retired" in wrong.stderr


def test_theano_logistic_regression_as_its_tutorial_teaches(legacy):
    """Symbolic variables, shared weights, T.grad and updates in theano.function, compiled to C++
    by g++ (not Theano's slow Python fallback): at least 90 % of held-out digits."""
    _, cid = legacy
    found = results(in_kernel(cid, DIGITS, """
        import theano, theano.tensor as T
        X_train, X_test = X_train.astype(theano.config.floatX), X_test.astype(theano.config.floatX)
        x, t = T.matrix("x"), T.ivector("t")
        W = theano.shared(np.zeros((64, 10), dtype=theano.config.floatX), name="W")
        b = theano.shared(np.zeros(10, dtype=theano.config.floatX), name="b")
        p_y = T.nnet.softmax(T.dot(x, W) + b)
        loss = -T.mean(T.log(p_y)[T.arange(t.shape[0]), t])
        gW, gb = T.grad(loss, [W, b])
        train = theano.function([x, t], loss, updates=[(W, W - 0.5 * gW), (b, b - 0.5 * gb)])
        predict = theano.function([x], T.argmax(p_y, axis=1))
        for epoch in range(30):
            for i in range(0, 1500, 50):
                last = train(X_train[i:i + 50], y_train[i:i + 50])
        linkers = {type(node.op).__name__: hasattr(node.op, "c_code") for node in train.maker.fgraph.toposort()}
        print("RESULT", json.dumps({"accuracy": float((predict(X_test) == y_test).mean()), "loss": float(last),
                                    "cxx": theano.config.cxx, "linker": theano.config.linker,
                                    "c_ops": sum(linkers.values())}))
    """))
    assert found["cxx"].endswith("g++") and found["linker"] == "cvm" and found["c_ops"] > 0, found
    assert found["accuracy"] >= 0.90, found


def test_lasagne_layers_train_a_small_network_with_pooling(legacy):
    """Lasagne 0.1's layers on Theano 1.0, its pooling layer included (the module Theano removed,
    put back): a small CNN reaches 85 % of held-out digits."""
    _, cid = legacy
    found = results(in_kernel(cid, DIGITS, """
        import warnings
        import theano, theano.tensor as T, lasagne
        lasagne.random.set_rng(np.random.RandomState(0))  # the weights' and dropout's seed
        X_train, X_test = X_train.astype(theano.config.floatX), X_test.astype(theano.config.floatX)
        x, t = T.tensor4("x"), T.ivector("t")
        net = lasagne.layers.InputLayer((None, 1, 8, 8), x)
        net = lasagne.layers.Conv2DLayer(net, 8, 3, pad="same")
        net = lasagne.layers.MaxPool2DLayer(net, 2)
        net = lasagne.layers.DenseLayer(lasagne.layers.DropoutLayer(net, 0.2), 32)
        net = lasagne.layers.DenseLayer(net, 10, nonlinearity=lasagne.nonlinearities.softmax)
        with warnings.catch_warnings(record=True) as shown:  # what the kernel's filters let through
            loss = lasagne.objectives.categorical_crossentropy(lasagne.layers.get_output(net), t).mean()
        params = lasagne.layers.get_all_params(net, trainable=True)
        train = theano.function([x, t], loss, updates=lasagne.updates.nesterov_momentum(loss, params, 0.05, 0.9))
        predict = theano.function([x], T.argmax(lasagne.layers.get_output(net, deterministic=True), axis=1))
        images = X_train.reshape(-1, 1, 8, 8)
        for epoch in range(12):  # (seeds 0 to 4 reach 89 to 92 %)
            for i in range(0, 1500, 50):
                train(images[i:i + 50], y_train[i:i + 50])
        accuracy = float((predict(X_test.reshape(-1, 1, 8, 8)) == y_test).mean())
        print("RESULT", json.dumps({"accuracy": accuracy, "lasagne": lasagne.__version__,
                                    "warnings": [str(w.message) for w in shown],
                                    "pool": type(lasagne.layers.get_all_layers(net)[2]).__name__}))
    """))
    assert found["lasagne"] == "0.1" and found["pool"] == "MaxPool2DLayer" and found["warnings"] == [], found
    assert found["accuracy"] >= 0.85, found


GLUON = """
    import json
    import mxnet as mx
    from mxnet import nd, autograd, gluon
    mx.random.seed(0)
    # Linear regression from scratch: nd arrays, attach_grad, autograd.record, the update by hand.
    features = nd.random.normal(shape=(1000, 2))
    labels = nd.dot(features, nd.array([2, -3.4])) + 4.2 + 0.01 * nd.random.normal(shape=(1000,))
    w, b = nd.random.normal(scale=0.01, shape=(2, 1)), nd.zeros((1,))
    for param in (w, b):
        param.attach_grad()
    for epoch in range(3):
        for i in range(0, 1000, 10):
            with autograd.record():
                l = ((nd.dot(features[i:i + 10], w).reshape(-1) + b - labels[i:i + 10]) ** 2 / 2).mean()
            l.backward()
            for param in (w, b):
                param[:] = param - 0.03 * param.grad
    found = {"mxnet": mx.__version__, "w": w.asnumpy().ravel().tolist(), "b": float(b.asscalar()),
             "loss": float(((nd.dot(features, w).reshape(-1) + b - labels) ** 2 / 2).mean().asscalar())}
"""


@AMD64_ONLY
def test_gluon_from_scratch_then_with_gluon_nn(legacy):
    """MXNet 1.9.1: Gluon's linear regression from scratch finds w and b; a multilayer perceptron
    from scratch (its own parameters, ReLU and softmax cross-entropy) and then with gluon.nn reach
    85 % of held-out digits (chance: 10 %)."""
    _, cid = legacy
    found = results(in_kernel(cid, GLUON, DIGITS, """
        Xn, yn, Xt = nd.array(X_train), nd.array(y_train), nd.array(X_test)
        # From scratch: the parameters, the network and the loss written out.
        W1, b1 = nd.random.normal(scale=0.1, shape=(64, 64)), nd.zeros(64)
        W2, b2 = nd.random.normal(scale=0.1, shape=(64, 10)), nd.zeros(10)
        params = [W1, b1, W2, b2]
        for param in params:
            param.attach_grad()
        def mlp(X):
            return nd.dot(nd.relu(nd.dot(X, W1) + b1), W2) + b2
        def cross_entropy(logits, y):
            return -nd.pick(nd.log_softmax(logits), y).mean()
        for epoch in range(30):
            for i in range(0, 1500, 50):
                with autograd.record():
                    l = cross_entropy(mlp(Xn[i:i + 50]), yn[i:i + 50])
                l.backward()
                for param in params:
                    param[:] = param - 0.5 * param.grad
        found["scratch_accuracy"] = float((mlp(Xt).argmax(axis=1).asnumpy() == y_test).mean())
        # The same with gluon.nn, a Trainer and Gluon's loss.
        net = gluon.nn.Sequential()
        net.add(gluon.nn.Dense(64, activation="relu"), gluon.nn.Dense(10))
        net.initialize(mx.init.Xavier())
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
        loss = gluon.loss.SoftmaxCrossEntropyLoss()
        for epoch in range(30):
            for i in range(0, 1500, 50):
                with autograd.record():
                    l = loss(net(Xn[i:i + 50]), yn[i:i + 50])
                l.backward()
                trainer.step(50)
        found["gluon_accuracy"] = float((net(Xt).argmax(axis=1).asnumpy() == y_test).mean())
        print("RESULT", json.dumps(found))
    """))
    assert found["mxnet"] == "1.9.1", found
    assert abs(found["w"][0] - 2) < 0.05 and abs(found["w"][1] + 3.4) < 0.05 and abs(found["b"] - 4.2) < 0.05, found
    assert found["loss"] < 0.001, found
    assert found["scratch_accuracy"] >= 0.85 and found["gluon_accuracy"] >= 0.85, found


@AMD64_ONLY
def test_paddlepaddle_dynamic_graph_trains_on_the_digits(legacy):
    """PaddlePaddle's dynamic-graph API (paddle.nn, an optimizer, loss.backward()): 85 % of held-out digits."""
    _, cid = legacy
    found = results(in_kernel(cid, DIGITS, """
        import paddle
        paddle.seed(0)
        Xp, yp = paddle.to_tensor(X_train), paddle.to_tensor(y_train.astype("int64"))
        net = paddle.nn.Sequential(paddle.nn.Linear(64, 64), paddle.nn.ReLU(), paddle.nn.Linear(64, 10))
        optimizer = paddle.optimizer.Adam(learning_rate=0.01, parameters=net.parameters())
        loss_fn = paddle.nn.CrossEntropyLoss()
        for epoch in range(20):
            for i in range(0, 1500, 50):
                loss = loss_fn(net(Xp[i:i + 50]), yp[i:i + 50])
                loss.backward()
                optimizer.step()
                optimizer.clear_grad()
        predicted = net(paddle.to_tensor(X_test)).argmax(axis=1).numpy()
        print("RESULT", json.dumps({"paddle": paddle.__version__, "accuracy": float((predicted == y_test).mean()),
                                    "loss": float(loss.item())}))
    """))
    assert found["paddle"] == "3.3.1" and found["accuracy"] >= 0.85, found


def test_dlib_compiled_from_source_finds_the_one_face_in_a_packaged_picture(legacy):
    """dlib 20.0.1, built from its source release: its HOG face detector finds exactly one face in
    scikit-image's astronaut (Eileen Collins), where her face is, and none in its coffee cup or cat."""
    _, cid = legacy
    found = results(in_kernel(cid, """
        import json
        import dlib
        from skimage import data
        detector = dlib.get_frontal_face_detector()
        faces, scores, _ = detector.run(data.astronaut(), 0)
        print("RESULT", json.dumps({"dlib": dlib.__version__, "cuda": dlib.DLIB_USE_CUDA, "scores": scores,
                                    "faces": [[r.left(), r.top(), r.right(), r.bottom()] for r in faces],
                                    "others": len(detector(data.coffee(), 0)) + len(detector(data.chelsea(), 0))}))
    """))
    assert found["dlib"] == "20.0.1" and found["cuda"] is False, found
    assert len(found["faces"]) == 1 and found["scores"][0] > 1 and found["others"] == 0, found
    left, top, right, bottom = found["faces"][0]
    # Her face in the 512x512 picture: around x 180-265, y 85-170.
    assert 150 < left < right < 290 and 50 < top < bottom < 200, found


def test_the_notebook_that_shows_an_old_tutorial_runs_in_the_home(legacy):
    """labs/extras/retired-frameworks.ipynb is in the student's ~/labs/extras after start, names
    the retired kernel, and runs headless in it (papermill, fewer epochs), its own checks passing."""
    _, cid = legacy
    home = "/home/jovyan/labs/extras/retired-frameworks.ipynb"
    notebook = json.loads(docker("exec", cid, "cat", home).stdout)
    assert notebook["metadata"]["kernelspec"]["name"] == KERNEL
    assert notebook == json.loads((ROOT / "labs/extras/retired-frameworks.ipynb").read_text())
    run = docker("exec", "-w", "/home/jovyan/labs/extras", cid, "papermill", "--no-progress-bar", "-p", "epochs", "10",
                 "retired-frameworks.ipynb", "/tmp/ran.ipynb", check=False, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    ran = json.loads(docker("exec", cid, "cat", "/tmp/ran.ipynb").stdout)
    printed = "".join(out.get("text", "") if isinstance(out.get("text", ""), str) else "".join(out["text"])
                      for cell in ran["cells"] if cell["cell_type"] == "code" for out in cell.get("outputs", []))
    mxnet = "mxnet 1.9.1" if NATIVE_ARCH == "amd64" else "mxnet not on this machine"
    assert f"numpy 1.23.5 | theano 1.0.5 | lasagne 0.1 | {mxnet}" in printed, printed
    assert "Theano logistic regression:" in printed and "Lasagne multilayer perceptron:" in printed, printed
    assert ("Gluon multilayer perceptron:" in printed) == (NATIVE_ARCH == "amd64"), printed


@pytest.mark.arm64
def test_the_retired_kernel_runs_on_arm64():
    """dlab/legacy for arm64 (emulated here): Theano computes a gradient and trains a logistic
    regression through Lasagne's layers (Theano's Python fallback: g++ under emulation would take
    minutes for nothing a test needs); MXNet (its aarch64 wheel needs Arm's own libraries, not on
    PyPI or in Debian), PaddlePaddle (no aarch64 wheel) and dlib (not compiled under emulation) are
    left out, and the kernel says so by not having them."""
    skip_legacy(LEGACY_ARM64)
    skip_arm64(LEGACY_ARM64, build="make build-legacy ARCH=arm64")
    arm64_program = program(DIGITS, """
        import importlib.util, platform
        import theano, theano.tensor as T, lasagne
        lasagne.random.set_rng(np.random.RandomState(0))
        x, t = T.dscalar("x"), T.ivector("t")
        found = {"machine": platform.machine(), "numpy": np.__version__,
                 "dy": float(theano.function([x], T.grad(x ** 3, x))(2.0))}
        inputs = T.matrix("inputs")
        net = lasagne.layers.DenseLayer(lasagne.layers.InputLayer((None, 64), inputs), 10,
                                        nonlinearity=lasagne.nonlinearities.softmax)
        loss = lasagne.objectives.categorical_crossentropy(lasagne.layers.get_output(net), t).mean()
        params = lasagne.layers.get_all_params(net, trainable=True)
        train = theano.function([inputs, t], loss, updates=lasagne.updates.sgd(loss, params, 0.5))
        predict = theano.function([inputs], T.argmax(lasagne.layers.get_output(net), axis=1))
        X_train, X_test = X_train.astype(theano.config.floatX), X_test.astype(theano.config.floatX)
        for epoch in range(10):
            for i in range(0, 1500, 100):
                train(X_train[i:i + 100], y_train[i:i + 100])
        found["accuracy"] = float((predict(X_test) == y_test).mean())
        found.update({name: importlib.util.find_spec(name) is not None for name in ("mxnet", "paddle", "dlib")})
        print("RESULT", json.dumps(found))
    """)
    run = docker("run", "--rm", "--platform", "linux/arm64", "-i", "-e", "THEANO_FLAGS=cxx=", "--entrypoint",
                 "python", LEGACY_ARM64, "-c", IN_KERNEL, KERNEL, "900", input=arm64_program,
                 check=False, timeout=1200)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    found = results(run.stdout)
    assert found["machine"] == "aarch64" and found["numpy"].startswith("1.23") and found["dy"] == 12.0, found
    assert found["accuracy"] >= 0.85, found
    assert not (found["mxnet"] or found["paddle"] or found["dlib"]), found
