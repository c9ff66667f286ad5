# dlab's start-up hook in the images with labs (dlab/cpu, dlab/gpu): the labs into ~/labs and the
# shared datasets into the Keras cache (dlab-home-init), as the notebook user (dlab-as-user), before
# the command starts. dlab-home-init reports a problem (a full or read-only home) and returns 0: a
# student must always reach their files, so nothing here stops a start.
# shellcheck shell=bash
dlab-as-user env HOME="$HOME" dlab-home-init
