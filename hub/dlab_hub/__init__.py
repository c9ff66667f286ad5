"""dlab's additions to JupyterHub, one module per concern (docs/architecture.md draws them):

- settings: every DLAB_ setting declared once, with its check; standard library only, so that
  `make up` can run it on the host (PYTHONPATH=hub python3 -m dlab_hub.settings);
- kinds: the kinds of value a setting takes, each parsed once (a size, an address, a GpuRequest);
- policy: the class's policy (limits, login rules, culling, posture, GPUs), made once from the
  settings, which config (Docker, and through it the swarm) and k8s render;
- config: the settings and the engine's answers to JupyterHub's configuration (a pure function);
- state: the hub's secrets, the proxy's token, sign-ups, the message, the accounts table;
- engine: what the Docker engine behind the hub offers, the GPU cards, an OIDC provider;
- web: requests from outside, bounded (addresses, rates, tokens, bodies);
- names: usernames' rules and look-alikes;
- spawner, folders, swarm_spawner, swarm: DlabSpawner (a CPU and a GPU profile, starts in turns),
  its students' homes and class folders (homes of their own size, through the root helper), and
  DlabSwarmSpawner (the same on a Docker Swarm, each server a service);
- pages, auth: the account pages, DlabAuthenticator (NativeAuthenticator with a class code, the
  organizer's account made on first start) and InstitutionAuthenticator;
- prestart, accounts, upgrade: the organizer's tools that run in the hub's container (make prestart,
  make accounts, reset-admin, and make up's database upgrade);
- cli, classserver, classtools: the organizer's command on the host (dlab up, make up's; the tools
  it runs in the hub's container), standard library only;
- tls: the organizer's certificate checked and installed for the proxy (in a one-off hub container);
- k8s: the zero-to-jupyterhub values made from the same settings.

Nothing is imported here: each module is imported by its own name (dlab_hub.spawner.DlabSpawner).
"""
