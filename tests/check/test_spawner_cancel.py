"""A stop that interrupts a start: JupyterHub cancels the start, while Docker's create, in a
thread, goes on and makes the container. CI saw one left behind (a student who starts and stops at
once). Docker's create cannot be held open on purpose, so a thread that takes its time stands in
for it here; the cancellation is asyncio's own, as JupyterHub's DELETE makes it."""
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from dockerspawner import DockerSpawner

from dlab_hub.spawner import DlabSpawner


def test_a_start_stopped_while_its_container_is_made_leaves_no_container(monkeypatch):
    made, removed, pool = [], [], ThreadPoolExecutor(1)

    def create_container():  # the engine's side: finishes whatever the hub does meanwhile
        time.sleep(0.5)
        made.append("c0ffee" * 10)
        return {"Id": made[-1]}

    async def create_object(self):
        return await asyncio.get_running_loop().run_in_executor(pool, create_container)

    async def docker(self, method, *args, **kwargs):
        assert method == "remove_container" and kwargs == {"force": True}
        removed.extend(args)

    monkeypatch.setattr(DockerSpawner, "create_object", create_object)
    monkeypatch.setattr(DlabSpawner, "docker", docker)
    spawner = DlabSpawner(user=SimpleNamespace(name="quick"))

    async def start_then_stop():
        start = asyncio.ensure_future(asyncio.wait_for(spawner.create_object(), 30))
        await asyncio.sleep(0.1)
        start.cancel()  # JupyterHub's DELETE of a pending server
        try:
            await start
        except asyncio.CancelledError:
            return "cancelled"

    assert asyncio.run(start_then_stop()) == "cancelled"
    pool.shutdown(wait=True)  # the engine's create has finished
    assert made and removed == made, "the container made for the stopped start was left"


def test_a_start_not_stopped_keeps_its_container(monkeypatch):
    async def create_object(self):
        await asyncio.sleep(0.01)
        return {"Id": "beef" * 16}

    monkeypatch.setattr(DockerSpawner, "create_object", create_object)
    assert asyncio.run(DlabSpawner().create_object()) == {"Id": "beef" * 16}
