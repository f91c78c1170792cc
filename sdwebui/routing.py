"""The routing header: which checkpoint a request is for, so a load balancer can keep each model on one WebUI.

Behind nginx with ``hash $http_x_sd_model consistent;`` every request that carries the same
``X-SD-Model`` value reaches the same WebUI, so that WebUI keeps the model loaded and the others never
load it. The plugin sets the header on every request of a call once the model is known: the
``GET /options`` before the generation, a ``POST /options``, the generation itself, and the queue
checks and ``/interrupt`` after a deadline, so all of them reach the same WebUI.

The value is the checkpoint title *without* its ``[hash]`` suffix: a WebUI adds the hash to the title
the first time it loads a file (``rand-b.safetensors`` becomes ``rand-b.safetensors [2a30d74d7c]``), and
two WebUIs may report the two forms at the same time. Routing on the full title would move a model to
another WebUI right after its first load. Non-ASCII characters are percent-encoded (HTTP header values
must be ASCII); the title comes from ``/sd-models`` and never holds credentials.
"""

from __future__ import annotations

from urllib.parse import quote

from sdwebui.checkpoints import without_hash

ROUTE_HEADER = "X-SD-Model"

# Printable ASCII that is safe in a header value and kept as typed; everything else is percent-encoded.
_SAFE = " !#$&'()*+,-./:;<=>?@[]^_`{|}~"
MAX_KEY_CHARS = 512


def route_key(title: str | None) -> str:
    """The header value for a checkpoint title: stable across hashing, ASCII only, bounded; "" for none."""
    text = without_hash((title or "").strip())
    return quote(text, safe=_SAFE)[:MAX_KEY_CHARS]
