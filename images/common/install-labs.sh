#!/usr/bin/env bash
# install-labs.sh: what dlab/cpu and dlab/gpu hold beyond their frameworks, the same in both:
# the labs, their helpers, their start-up hook, dlab-data and TensorBoard inside JupyterLab. Run as root by a RUN step
# that bind-mounts labs/ at /tmp/labs and images/common/ at /tmp/common (nothing else is kept).
set -euo pipefail
# TensorBoard inside JupyterLab: a launcher tile and /tensorboard/, reading ~/logs. No extra port,
# so it works the same behind JupyterHub.
install -D -m 0644 /tmp/common/tensorboard-proxy.json /opt/venv/etc/jupyter/jupyter_server_config.json
# dlab-data, which fetches datasets into the shared data folder.
install -m 0755 /tmp/common/dlab-data /usr/local/bin/dlab-data
# The labs' helpers (`import dlab`) on the venv's path, compiled once here.
install -d -o 1000 -g 100 /opt/dlab/lib /opt/dlab/labs
cp -r --no-preserve=ownership /tmp/labs/dlab /opt/dlab/lib/dlab
echo /opt/dlab/lib >/opt/venv/lib/python3.11/site-packages/dlab.pth
python -m compileall -q /opt/dlab/lib
# The labs, copied into ~/labs at each start (never over a student's edits) by dlab-home-init,
# which the start-up hook 50-dlab-labs.sh runs (start.sh runs the hooks, images/base).
install -m 0644 /tmp/labs/*.ipynb /opt/dlab/labs/
# The graded labs (nbgrader assignments with their solutions and hidden tests): offered to the
# instructors' grading folder by dlab-home-init, never to students' homes.
cp -r --no-preserve=ownership /tmp/labs/assignments /opt/dlab/assignments
# The solutions of the labs' exercises (dlab.exercise), one file each: outside the home, so that
# they are at hand (%load /opt/dlab/solutions/<lab>/<name>.py) and never in a student's way;
# root's, read-only.
cp -r --no-preserve=ownership /tmp/labs/solutions /opt/dlab/solutions
install -m 0755 /tmp/common/dlab-home-init /usr/local/bin/dlab-home-init
install -m 0644 /tmp/common/before-notebook.d/50-dlab-labs.sh /usr/local/bin/before-notebook.d/
chown -R 1000:100 /opt/dlab/lib /opt/dlab/labs /opt/dlab/assignments
