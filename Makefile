# dlab: the commands people use. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VERSION := $(shell cat VERSION)
VENV    := .venv
PYTEST  := $(VENV)/bin/pytest
DLAB    := scripts/hub.sh  # the organizer's command, dlab (hub/dlab_hub/cli.py), from this checkout
# make lab: which image, which host port, which volume keeps the home between runs.
IMAGE ?= dlab/cpu
PORT  ?= 8888
LAB_HOME_VOLUME ?= dlab-lab-home
# make data / make lab: the shared datasets (a volume name, or an absolute host path); by default
# the class server's (DLAB_DATA_VOLUME in .env, scripts/lib.sh reads it), so all three share one.
DATA_VOLUME ?=
DATASETS ?=
# make backup / make restore: where the homes' archives go, and whose to restore.
BACKUP_DIR ?= backups
USERS ?=
# make accounts / remove-accounts / message / link: the organizer's tools.
ROSTER ?=
HOMES ?=
TEXT ?=
REPO ?=
BRANCH ?=
OPEN ?=
# make build-legacy ARCH=arm64: another architecture than this machine's, emulated (the command line
# sets it; an ARCH in the environment, as some shells export, is not taken).
ARCH :=
# make k8s-values: the registry the Kubernetes cluster pulls dlab's images from.
REGISTRY ?=
# make test: extra pytest arguments, e.g. PYTEST_ARGS="-k frameworks -x".
PYTEST_ARGS ?=
export PYTEST_ARGS  # tests/run-all.sh parses it as the shell would (quotes: -k "a and not b")

.PHONY: help docker build build-gpu build-legacy build-arm64 build-amd64 up down swarm-check swarm-push k8s-values prestart accounts remove-accounts signups message link backup restore delete-home lab lab-gpu data check test lock bench clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

docker: ## make sure a Docker engine and Compose v2 are there (installs them on Debian/Ubuntu as root)
	@scripts/install-docker.sh

build: ## build dlab/base, dlab/cpu and dlab/hub (BuildKit, from the locks; detects offline/proxy set-ups)
	@scripts/build-images.sh cpu hub

build-arm64: ## build dlab/base, dlab/cpu and dlab/hub for linux/arm64 (Apple Silicon, ARM servers); emulated on x86-64, tagged :latest-arm64
	@scripts/build-images.sh --arch arm64 cpu hub

build-amd64: ## build dlab/base, dlab/cpu and dlab/hub for linux/amd64; emulated on an ARM machine, tagged :latest-amd64
	@scripts/build-images.sh --arch amd64 cpu hub

build-gpu: ## build dlab/gpu (CUDA builds of the frameworks, about 12 GB) on top of dlab/base
	@scripts/build-images.sh gpu

build-legacy: ## build dlab/legacy: dlab/cpu plus a kernel of retired frameworks (Theano, Lasagne, MXNet, PaddlePaddle, dlib) for old tutorials (ARCH=arm64: for arm64)
	@scripts/build-images.sh $(if $(ARCH),--arch $(ARCH)) legacy

up: build ## start the class server on http://localhost:8000 (settings: .env, see .env.example)
	@$(DLAB) up

down: ## stop the class server and every student's server; all volumes (homes, hub state) are kept
	@$(DLAB) down

prestart: ## start every approved student's server now, before the class arrives (USERS="a b": only these)
	@$(DLAB) prestart $(USERS)

accounts: ## a class's accounts from a roster (ROSTER=class.csv: username[,name[,email]]), with a sheet of first passwords
	@$(DLAB) accounts "$(ROSTER)"

remove-accounts: ## remove a roster's accounts at the end of a course (HOMES=keep, archive (to BACKUP_DIR, then deleted) or delete)
	@BACKUP_DIR=$(BACKUP_DIR) $(DLAB) remove-accounts "$(ROSTER)" $(or $(HOMES),keep)

signups: ## the sign-ups waiting for approval, and the accounts made by sign-up by address (CLEAR=pending or CLEAR=ADDRESS removes them)
	@$(DLAB) signups "$(CLEAR)"

message: ## show a message on every hub page (TEXT="Lab 4 starts at 14:00"; TEXT= removes it)
	@$(DLAB) message "$(TEXT)"

link: ## the link that puts a git repository into every student's home (REPO=https://... BRANCH=main OPEN=lab1.ipynb)
	@$(DLAB) link "$(REPO)" "$(BRANCH)" "$(OPEN)"

backup: ## copy every student's home, the course, hand-in and assignments' folders to $(BACKUP_DIR)/<volume>.tar.gz (USERS="a b": these homes)
	@$(DLAB) backup $(BACKUP_DIR) $(USERS)

restore: ## put homes back from $(BACKUP_DIR) (USERS="alice bob"; default: every archive there)
	@$(DLAB) restore $(BACKUP_DIR) $(USERS)

delete-home: ## delete students' homes and hand-in folders for good, which frees their names (USERS="alice"; servers stopped first)
	@if [ -z "$(USERS)" ]; then echo "dlab: whose? make delete-home USERS=alice" >&2; exit 2; fi
	@$(DLAB) delete-home $(USERS)

lab: build ## JupyterLab for one person on http://localhost:$(PORT) (IMAGE=dlab/cpu); Ctrl-C stops it
	@. scripts/lib.sh && load_settings && \
	 echo "dlab: starting $(IMAGE) on port $(PORT); your home is kept in the volume $(LAB_HOME_VOLUME). Ctrl-C stops it." && \
	 docker run --rm $$([ -t 0 ] && echo -it) --name dlab-lab-$(PORT) \
	  -p $(PORT):8888 -v $(LAB_HOME_VOLUME):/home/jovyan -v "$(or $(DATA_VOLUME),$$DLAB_DATA_VOLUME)":/srv/data:ro $(IMAGE)

lab-gpu: ## like lab, with dlab/gpu and every GPU passed in (needs the NVIDIA container toolkit)
	@scripts/gpu-runtime.sh
	@scripts/build-images.sh gpu
	@. scripts/lib.sh && load_settings && \
	 echo "dlab: starting dlab/gpu on port $(PORT) with every GPU; your home is kept in the volume $(LAB_HOME_VOLUME). Ctrl-C stops it." && \
	 docker run --rm $$([ -t 0 ] && echo -it) --name dlab-lab-$(PORT) --gpus all --shm-size 1g \
	  -p $(PORT):8888 -v $(LAB_HOME_VOLUME):/home/jovyan -v "$(or $(DATA_VOLUME),$$DLAB_DATA_VOLUME)":/srv/data:ro dlab/gpu

data: build ## fetch datasets into the class's data volume (DLAB_DATA_VOLUME; DATA_VOLUME=... another) (DATASETS="mnist cifar10"; default: all)
	@DATA_VOLUME=$(DATA_VOLUME) scripts/fetch-data.sh $(DATASETS)

$(VENV)/.installed: tests/requirements.lock hub/pyproject.toml
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r tests/requirements.lock
	@# the hub's package, editable: the tests and bench import the code in hub/dlab_hub as it is now
	@$(VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e hub
	@touch $@

# The fast tier: no Docker engine and no image (DOCKER_HOST points nowhere, so a test that asks
# Docker fails here); the settings, the hub's configuration and spawner logic, the labs' home sync,
# dlab-data's downloads, the locks, and the lint of the Python and shell code. Seconds.
check: $(VENV)/.installed ## the fast tests: no Docker, no image; seconds (make test runs them first)
	@DOCKER_HOST=unix:///nonexistent/docker.sock $(PYTEST) -q tests/check

test: check build $(VENV)/.installed ## make check, then build dlab/gpu (unless DLAB_SKIP_GPU_IMAGE=1), dlab/legacy (unless DLAB_SKIP_LEGACY=1) and the arm64 images (unless DLAB_SKIP_ARM64=1) and run every other test, three rounds (DLAB_TEST_WORKERS=N side by side in the first two; default 2)
	@tests/run-all.sh

swarm-check: ## on a swarm manager: is each node ready for students (no-new-privileges, the shared folder DLAB_SWARM_SHARED, the image)? labels the ready ones; docs/swarm.md
	@scripts/swarm.sh check

swarm-push: ## on a swarm manager: push the students' images to the registry the nodes pull from (DLAB_SWARM_REGISTRY); docs/swarm.md
	@scripts/swarm.sh push

k8s-values: $(VENV)/.installed ## zero-to-jupyterhub values from .env for Kubernetes (REGISTRY=registry.example.org) in k8s/values.yaml; docs/kubernetes.md
	@$(VENV)/bin/python -m dlab_hub.k8s --example
	@if [ -z "$(REGISTRY)" ]; then echo "dlab: which registry holds the images? make k8s-values REGISTRY=registry.example.org (k8s/values.example.yaml is the defaults')" >&2; exit 2; fi
	@$(VENV)/bin/python -m dlab_hub.k8s "$(REGISTRY)" "$${DLAB_ENV_FILE:-.env}" > k8s/values.yaml.tmp || { rm -f k8s/values.yaml.tmp; exit 1; }
	@mv k8s/values.yaml.tmp k8s/values.yaml
	@echo "dlab: k8s/values.yaml written: helm upgrade --install dlab jupyterhub/jupyterhub --version 4.3.2 --values k8s/values.yaml"

lock: $(VENV)/.installed ## re-resolve every requirements.in into its hash-pinned requirements.lock
	@UV=$(VENV)/bin/uv scripts/lock.sh

bench: $(VENV)/.installed ## measure cold builds, sizes (dlab/legacy too), the class server, the class page's cost, the labs' times and lessons (BENCH_ONLY=hub|classview|logins|labs|lessons|legacy|arm64); writes the tables of docs/performance.md and docs/labs.md
	@# bench drives a class with the tests' own harness (tests/hub) and reads the curriculum (labs/curriculum.py)
	@PYTHONPATH=labs:tests:tests/hub:tests/data $(VENV)/bin/python bench/bench.py

clean: ## remove dlab images and build scratch (volumes, and so every home, are kept)
	-@docker image rm $$(docker image ls -q 'dlab/*' | sort -u) 2>/dev/null
	@rm -rf .build
