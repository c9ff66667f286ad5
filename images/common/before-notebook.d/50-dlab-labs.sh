# dlab's start-up hook in the images with labs (dlab/cpu, dlab/gpu): the labs into ~/labs and the
# shared datasets into the Keras cache (dlab-home-init), as the notebook user, before the command
# starts. dlab-home-init reports a problem (a full or read-only home) and returns 0: a student must
# always reach their files, so nothing here stops a start.
# shellcheck shell=bash
if [ "$(id -u)" = 0 ]; then
  # start.sh has applied NB_UID and NB_GID already; the files must be the user's, not root's.
  setpriv --reuid="${NB_UID:-1000}" --regid="${NB_GID:-100}" --init-groups --inh-caps=-all \
    env HOME="/home/${NB_USER:-jovyan}" dlab-home-init
else
  dlab-home-init
fi
