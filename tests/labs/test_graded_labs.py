"""The graded labs dlab/cpu ships (labs/assignments, nbgrader source notebooks) grade what a model
learned: run through nbgrader's own pipeline in the image (generate, autograde, export), the
solutions earn every point, the released notebooks none, and a network that learned less than
asked earns part of its points, by its margin (labs/dlab/grading.py)."""
import csv
import io
import json

import pytest

from conftest import ROOT, docker

ASSIGNMENTS = {"backprop": 7.0, "classifier": 6.0, "adam": 7.0}
# A classifier that learns, but less well than the solution: plain SGD for 25 epochs (a held-out
# accuracy near 0.945, between the bound of 0.93 and full marks at 0.96).
WEAKER = """def train_model(X, y, seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = torch.tensor(X), torch.tensor(y)
    for epoch in range(25):
        order = torch.randperm(len(X))
        for start in range(0, len(X), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
            optimizer.step()
    return model"""

PIPELINE = """set -e
mkdir -p /tmp/course/source && cd /tmp/course
cp -r /opt/dlab/assignments/* source/
for a in backprop classifier adam; do
  nbgrader generate_assignment $a --log-level=ERROR
  nbgrader db assignment add $a --log-level=ERROR
  mkdir -p submitted/solved/$a submitted/blank/$a
  cp source/$a/$a.ipynb submitted/solved/$a/
  cp release/$a/$a.ipynb submitted/blank/$a/
done
mkdir -p submitted/weaker/classifier
python - <<'EOF'
import json
nb = json.load(open('release/classifier/classifier.ipynb'))
for cell in nb['cells']:
    if cell['metadata'].get('nbgrader', {}).get('grade_id') == 'train_model':
        cell['source'] = json.load(open('/tmp/weaker.json'))
json.dump(nb, open('submitted/weaker/classifier/classifier.ipynb', 'w'))
EOF
for s in solved blank weaker; do nbgrader db student add $s --log-level=ERROR; done
for a in backprop classifier adam; do nbgrader autograde $a --log-level=ERROR 2>/dev/null; done
nbgrader generate_feedback classifier --log-level=ERROR
nbgrader export --log-level=ERROR
cat grades.csv
echo ===
cat feedback/blank/classifier/classifier.html
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("graded")
    (folder / "weaker.json").write_text(json.dumps(WEAKER))
    (folder / "pipeline.sh").write_text(PIPELINE)
    folder.chmod(0o755)  # the image's user reads them
    out = docker("run", "--rm", "--network", "none", "-v", f"{folder}:/tmp/in:ro", "-e", "OMP_NUM_THREADS=1",
                 "--entrypoint", "bash", "dlab/cpu:latest", "-c", "cp /tmp/in/weaker.json /tmp/ && bash /tmp/in/pipeline.sh",
                 check=False, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    grades, feedback = out.stdout.split("===\n", 1)
    rows = csv.DictReader(io.StringIO(grades[grades.index("assignment,"):]))
    return {(row["assignment"], row["student_id"]): float(row["score"]) for row in rows}, feedback


def test_the_solutions_earn_every_point_and_the_released_notebooks_none(graded):
    grades, _ = graded
    for assignment, points in ASSIGNMENTS.items():
        assert grades[(assignment, "solved")] == points, (assignment, grades)
        assert grades[(assignment, "blank")] == 0.0, (assignment, grades)


def test_a_network_that_learned_less_earns_part_of_the_points_by_its_margin(graded):
    grades, feedback = graded
    # 4 points for the held-out accuracy (half at 0.93, all at 0.96) and 2 for another seed (>= 0.90)
    assert 2.0 + 2.0 < grades[("classifier", "weaker")] < 6.0, grades
    # A blank notebook's feedback says what was not there, in the lesson's words.
    assert "NotImplementedError" in feedback


def test_the_graded_labs_are_source_notebooks_with_solutions_and_hidden_tests():
    for assignment in ASSIGNMENTS:
        notebook = json.loads((ROOT / "labs" / "assignments" / assignment / f"{assignment}.ipynb").read_text())
        cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in cells), f"{assignment}: outputs committed"
        meta = [c["metadata"].get("nbgrader", {}) for c in cells]
        assert any(m.get("solution") for m in meta) and any(m.get("grade") and m.get("points") for m in meta)
        assert any("BEGIN HIDDEN TESTS" in "".join(c["source"]) for c in cells), f"{assignment}: no hidden test"
        assert notebook["cells"][0]["cell_type"] == "markdown" and "You will be able to" in "".join(notebook["cells"][0]["source"])


def test_grading_helpers_time_silence_and_credit_as_they_say():
    code = """
import time, sys, os
import dlab, dlab.grading as g
assert g.credit(dlab.lesson('x', 0.99, at_least=0.9), points=4, full_margin=0.05) == 4.0
assert g.credit(dlab.lesson('x', 0.92, at_least=0.9), points=4, full_margin=0.04) == 3.0
try:
    g.credit(dlab.lesson('accuracy', 0.8, at_least=0.9), points=4)
    raise SystemExit('no error below the bound')
except AssertionError as e:
    assert 'measured 0.8, needed >= 0.9' in str(e), e
try:
    with g.budget(1, 'train_model'):
        time.sleep(5)
    raise SystemExit('the budget did not stop it')
except TimeoutError as e:
    assert 'train_model took longer than its 1 s' in str(e)
with g.quietly():
    print('python', file=sys.stderr); os.write(2, b'C level\\n')
import numpy as np
m = g.gradients_match({'W': np.ones((2, 2))}, {'W': np.ones((2, 2)) + 1e-3}, at_most=1e-8)
assert m['holds'] is False and abs(m['measured'] - 1e-3) < 1e-12
try:
    g.gradients_match({'W': np.ones(2)}, {'W': np.ones((2, 2))})
except AssertionError as e:
    assert 'has shape (2,)' in str(e)
print('ok')
"""
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "python", "dlab/cpu:latest", "-c", code, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
    assert "python" not in out.stderr and "C level" not in out.stderr, out.stderr  # quietly() let nothing through
