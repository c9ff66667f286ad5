#!/bin/bash
# Kept for recipes and spawners that name it (dlab's class server does), as docker-stacks keeps it:
# start-singleuser.py does the work.
exec start-singleuser.py "$@"
