"""Model affinity: a real nginx with ``hash $http_x_sd_model consistent;`` in front of three WebUIs.

Every request of a call carries ``X-SD-Model`` (sdwebui/routing.py), so nginx sends each model to one
WebUI, which keeps it loaded: after the first load of each model, no WebUI loads a model again. The same
60-call sequence behind plain round robin is run for comparison, and a WebUI that goes down mid-run is
skipped by nginx without a failed call. Figures are printed (``pytest -s`` shows them).

Consistent hashing may put two models on one WebUI (then that WebUI swaps between them, as a real one
does unless it keeps several checkpoints resident). The test therefore probes nginx's mapping first and
picks three checkpoints that land on three different WebUIs, as an admin would read it from the access log.
"""

from __future__ import annotations

import random
import urllib.request

from sdwebui.routing import ROUTE_HEADER
from tests.harness.nginx import Nginx
from tests.standin.webui import StandInWebUI

PROVIDER = "sd_webui"
HASH = "hash $http_x_sd_model consistent;"
CANDIDATES = [f"ckpt-{i:02d}" for i in range(24)]  # all three WebUIs have all of them
CALLS = 60
TXT2IMG = "/sdapi/v1/txt2img"


def _backends() -> list[StandInWebUI]:
    return [StandInWebUI("forge", models=CANDIDATES, generation_delay=0.01).__enter__() for _ in range(3)]


def _close(backends: list[StandInWebUI]) -> None:
    for backend in backends:
        backend.stop()


def _probe_homes(proxy: Nginx, backends: list[StandInWebUI]) -> dict[str, StandInWebUI]:
    """One model per WebUI: the first candidate nginx hashes to each of them."""
    homes: dict[int, str] = {}
    for stem in CANDIDATES:
        request = urllib.request.Request(proxy.base_url + "/sdapi/v1/options", headers={ROUTE_HEADER: f"{stem}.safetensors"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        home = next(b for b in backends if any(r.headers.get(ROUTE_HEADER.lower()) == f"{stem}.safetensors" for r in b.requests))
        homes.setdefault(home.port, stem)
        if len(homes) == len(backends):
            break
    assert len(homes) == len(backends), f"nginx hashed 24 checkpoints onto only {len(homes)} WebUIs"
    by_port = {b.port: b for b in backends}
    return {stem: by_port[port] for port, stem in homes.items()}


def _sequence(models: list[str], calls: int = CALLS) -> list[str]:
    sequence = [models[i % len(models)] for i in range(calls)]
    random.Random(20261122).shuffle(sequence)
    return sequence


def _run(plugin, proxy: Nginx, backends: list[StandInWebUI], sequence: list[str], tag: str) -> dict[str, int]:
    """Generate ``sequence`` through the plugin; count model loads, split into first loads and further ones."""
    seen: set[str] = set()
    first = further = 0
    for i, model in enumerate(sequence):
        before = sum(b.model_loads for b in backends)
        result = plugin.invoke_tool(
            PROVIDER, "txt2img", {"base_url": proxy.base_url},
            {"prompt": f"{tag} {i:02d}", "width": 64, "height": 64, "steps": 2, "model_name": model}, timeout=60,
        )
        assert result.error is None, f"{tag} call {i} ({model}) failed: {result.error}"
        assert result.jsons[0]["model"].split(" [")[0].removesuffix(".safetensors") == model
        loads = sum(b.model_loads for b in backends) - before
        if model in seen:
            further += loads
        else:
            first += loads
        seen.add(model)
    return {"calls": len(sequence), "first_loads": first, "further_loads": further}


def test_hash_routing_keeps_each_model_on_one_webui_and_survives_a_webui_going_down(plugin):
    backends = _backends()
    try:
        with Nginx([b.base_url for b in backends], balance=HASH) as proxy:
            homes = _probe_homes(proxy, backends)
            models = sorted(homes)
            hashed = _run(plugin, proxy, backends, _sequence(models), "hash")

            # Every generation reached its model's home, and nothing else did (POST /options included).
            for stem, home in homes.items():
                for backend in backends:
                    got = {r.headers.get(ROUTE_HEADER.lower()) for r in backend.requests_to("POST", TXT2IMG)}
                    assert (f"{stem}.safetensors" in got) == (backend is home)
            assert hashed["further_loads"] == 0, hashed
            assert sum(len(b.requests_to("POST", "/sdapi/v1/options")) for b in backends) <= len(models)

            # One WebUI goes down mid-run: nginx skips it, no call fails, its model moves to another WebUI.
            down = homes[models[0]]
            loads_before = sum(b.model_loads for b in backends if b is not down)
            down.stop()
            after_down = _run(plugin, proxy, backends, _sequence(models, 15), "down")
            moved_loads = sum(b.model_loads for b in backends if b is not down) - loads_before
            assert proxy.alive(), proxy.error_log()
        print(f"\n[affinity] hash $http_x_sd_model consistent, 3 WebUIs, {CALLS} calls over 3 models: "
              f"{hashed['first_loads']} first loads, {hashed['further_loads']} further loads; "
              f"one WebUI down for 15 more calls: 0 failed, {moved_loads} loads on the other two")
        assert after_down["calls"] == 15
    finally:
        _close(backends)


def test_round_robin_on_the_same_sequence_for_comparison(plugin):
    backends = _backends()
    try:
        with Nginx([b.base_url for b in backends], balance=HASH) as probe:
            models = sorted(_probe_homes(probe, backends))
        for backend in backends:
            backend.reset()
        with Nginx([b.base_url for b in backends]) as proxy:  # plain round robin: the header is ignored
            robin = _run(plugin, proxy, backends, _sequence(models), "round-robin")
        print(f"\n[affinity] round robin, 3 WebUIs, same {CALLS} calls: {robin['first_loads']} first loads, "
              f"{robin['further_loads']} further loads")
        # Certain: every call still got its own model (checked in _run). The load count depends on the
        # interleaving, so it is reported, not asserted, beyond the one thing round robin cannot avoid.
        assert robin["first_loads"] + robin["further_loads"] >= 1
    finally:
        _close(backends)
