"""The code's own lint: ruff over the Python (ruff.toml), shellcheck over every shell script."""
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BIN = Path(sys.executable).parent


def tracked_shell_scripts():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    scripts = []
    for name in files:
        path = ROOT / name
        if name.endswith(".sh") or (path.is_file() and path.read_bytes()[:40].startswith((b"#!/bin/bash", b"#!/usr/bin/env bash", b"#!/bin/sh"))):
            scripts.append(name)
    return scripts


def test_python_passes_ruff():
    out = subprocess.run([BIN / "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_shell_scripts_pass_shellcheck():
    scripts = tracked_shell_scripts()
    assert {"scripts/hub.sh", "scripts/lib.sh", "images/base/start.sh", ".ci/run",
            "images/base/start-notebook.d/10-dlab-threads.sh"} <= set(scripts)
    out = subprocess.run([BIN / "shellcheck", "--external-sources", "--severity=warning", *scripts], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
