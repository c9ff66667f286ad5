"""The kinds of value a setting takes (dlab_hub.settings declares which setting takes which): each
says what it allows in words, for errors and docs, and parses a value once into what the code uses.

Standard library only, like dlab_hub.settings: it runs on the host (python3) as well as in dlab/hub.
"""
import ipaddress
import re
from dataclasses import dataclass


class Invalid(ValueError):
    """A value a setting does not allow."""


@dataclass(frozen=True)
class Kind:
    """What a setting allows: `allowed` says it to a person (errors and docs), `parse` checks a
    value and returns what the code uses (a number, a bool...), raising Invalid."""
    allowed: str
    parse: object


@dataclass(frozen=True)
class GpuRequest:
    """What a GPU server asks for (DLAB_GPUS, and the spawner's `gpus`), parsed once: `auto`,
    `none`, `all`, a count of cards (2) or named cards (device=0,1), as `docker run --gpus` says it."""
    kind: str  # auto, none, all, count or devices
    count: int = 0
    devices: tuple = ()

    @classmethod
    def parse(cls, value):
        """GpuRequest of a value in docker run --gpus's syntax (or auto, none; "" is none); raises Invalid."""
        if value in ("auto", "none", "all", ""):
            return cls(value or "none")
        if re.fullmatch(r"[1-9]\d*", value):
            return cls("count", count=int(value))
        if re.fullmatch(r"device=[\w-]+(,[\w-]+)*", value):
            return cls("devices", devices=tuple(value[len("device="):].split(",")))
        raise Invalid

    def __str__(self):
        """docker run --gpus's value; "" for none (no GPU profile)."""
        if self.kind == "count":
            return str(self.count)
        if self.kind == "devices":
            return "device=" + ",".join(self.devices)
        return "" if self.kind == "none" else self.kind

    @property
    def cards(self):
        """The cards a server asks for where only a number can be said (a swarm service's generic
        resources, a Kubernetes limit): the count, else one."""
        return self.count or 1


NO_GPUS = GpuRequest("none")


def gpu_request(value):
    if not value:
        raise Invalid
    return GpuRequest.parse(value)


def pattern(regex, allowed, flags=0, convert=str):
    def parse(value):
        if not re.fullmatch(regex, value, flags):
            raise Invalid
        return convert(value)
    return Kind(allowed, parse)


def whole(minimum=0, maximum=None, allowed=None):
    def parse(value):
        if not re.fullmatch(r"\d+", value) or int(value) < minimum or (maximum is not None and int(value) > maximum):
            raise Invalid
        return int(value)
    text = allowed or (f"a whole number from {minimum} to {maximum}" if maximum else f"a whole number, at least {minimum}")
    return Kind(text, parse)


def seconds_or_off(value):
    """0 (off), or an interval of 5 to 300 seconds."""
    seconds = whole(0, 300).parse(value)
    if 0 < seconds < 5:
        raise Invalid
    return seconds


def one_of(*choices):
    def parse(value):
        if value not in choices:
            raise Invalid
        return value
    return Kind(" or ".join(choices), parse)


def cpus(value):
    try:
        cpus = float(value)
    except ValueError:
        raise Invalid from None
    if not 0 < cpus <= 1024:
        raise Invalid
    return cpus


def home_size(value):
    value = value.upper()
    if value == "0":
        return ""  # plain volumes, no limit
    match = re.fullmatch(r"([1-9]\d*)([MGT])", value)
    if not match or (match[2] == "M" and int(match[1]) < 64):
        raise Invalid
    return value


def address(value):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Invalid from None


def max_servers(value):
    if value == "auto":
        return value
    return whole().parse(value)


def auto_or_whole(value):
    if value == "auto":
        return value
    return whole(1).parse(value)


def path_or_empty(value):
    if value and not value.startswith("/"):
        raise Invalid
    return value


TEXT = pattern(r"[^\x00-\x1f\x7f]{0,200}", "one line of text, at most 200 characters")
SIZE = pattern(r"[1-9]\d*[kmgKMG]?", "a size like 512m, 4G or 1g (k, m or g; a plain number is bytes)")
ON_OFF = one_of("on", "off")
IMAGE = pattern(r"[a-z0-9]+([._/:-][a-zA-Z0-9_.-]+)*(@sha256:[0-9a-f]{64})?",
                "a Docker image name like dlab/cpu:latest (built here: make build)")
DOCKER_NAME = pattern(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}", "a Docker name: letters, digits, _ . - (at most 64)")
VOLUME_OR_PATH = pattern(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}|/[\w./-]*", "a Docker volume name, or an absolute path on this machine")
