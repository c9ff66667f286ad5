"""The class view's rows in Prometheus' format, on the hub's own /hub/metrics (JupyterHub serves the
default registry there, to tokens with the scope read:metrics: the organizer's, and the service
`prometheus` of DLAB_PROMETHEUS). Made from the last look at each scrape (prometheus_client's custom
collector), so a student who leaves the class leaves no series behind. Labels: `user`, and `state`
for the servers; the same names the class page shows."""
import os

import bcrypt
from prometheus_client.core import GaugeMetricFamily

from dlab_hub.state import secret

STATES = ("running", "starting", "stopping", "stopped", "failed")
TOTALS = (("servers", "dlab_class_servers", "Students' servers running"),
          ("max_servers", "dlab_class_max_servers", "Servers at once, at most (0: no limit)"),
          ("memory", "dlab_class_memory_bytes", "Memory the students' servers use"),
          ("machine_memory", "dlab_machine_memory_bytes", "The machine's memory"),
          ("disk_used", "dlab_machine_disk_used_bytes", "Bytes used on Docker's disk"),
          ("disk", "dlab_machine_disk_bytes", "Size of Docker's disk"))


class ClassMetrics:
    def __init__(self, view):
        self.view = view

    def describe(self):
        return []  # made at each scrape: no fixed set of series to check at registration

    def collect(self):
        view = self.view
        rows, totals = view.snapshot()["rows"], view.totals or {}
        state = GaugeMetricFamily("dlab_server_state", "1 for the state each student's server is in", labels=["user", "state"])
        per_user = {
            "memory": GaugeMetricFamily("dlab_server_memory_bytes", "Memory a student's server uses (less the page cache)", labels=["user"]),
            "memory_limit": GaugeMetricFamily("dlab_server_memory_limit_bytes", "Memory a student's server may use", labels=["user"]),
            "cpu": GaugeMetricFamily("dlab_server_cpu_cores", "Cores a student's server used since the last look", labels=["user"]),
            "gpu_util": GaugeMetricFamily("dlab_server_gpu_utilization_ratio", "The busiest of the student's GPU cards, 0 to 1", labels=["user"]),
            "gpu_memory": GaugeMetricFamily("dlab_server_gpu_memory_bytes", "GPU memory used on the student's cards", labels=["user"]),
            "last_activity": GaugeMetricFamily("dlab_server_last_activity_seconds", "When the student was last active (Unix time)", labels=["user"]),
            "started": GaugeMetricFamily("dlab_server_started_seconds", "When the student's server started (Unix time)", labels=["user"]),
        }
        folders = {key: (GaugeMetricFamily(f"dlab_{key}_used_bytes", f"Bytes used in the student's {what}", labels=["user"]),
                         GaugeMetricFamily(f"dlab_{key}_size_bytes", f"Size of the student's {what}", labels=["user"]))
                   for key, what in (("home", "home"), ("handin", "hand-in folder"))}
        for row in rows:
            for name in STATES:
                state.add_metric([row["name"], name], 1.0 if row["state"] == name else 0.0)
            for key, family in per_user.items():
                value = row[key]
                if value is not None:
                    family.add_metric([row["name"]], value / 100 if key == "gpu_util" else float(value))
            for key, (used, size) in folders.items():
                if row[key]:
                    size.add_metric([row["name"]], float(row[key][0]))
                    used.add_metric([row["name"]], float(row[key][1]))
        yield state
        yield from per_user.values()
        for used, size in folders.values():
            yield used
            yield size
        for key, name, help_text in TOTALS:
            if key in totals:
                yield GaugeMetricFamily(name, help_text, value=float(totals[key]))


def prometheus_files(folder):
    """DLAB_PROMETHEUS: what dlab/prometheus reads from the metrics-token volume, made by the hub at
    each start: its scraping token (`token`, the service `prometheus`'s), and its own login (user
    dlab, `password` kept, `web.yml` with its bcrypt hash). Returns the token."""
    token, password = secret("token", folder=folder), secret("password", nbytes=16, folder=folder)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    part = folder / "web.yml.new"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"# made by the hub (dlab_hub.classview_metrics): Prometheus' login, user dlab\nbasic_auth_users:\n  dlab: {hashed}\n")
    part.replace(folder / "web.yml")
    return token
