#!/bin/bash
# Kept for recipes that name it, as docker-stacks keeps it: start-notebook.py does the work.
exec start-notebook.py "$@"
