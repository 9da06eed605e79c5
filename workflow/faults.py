"""Crash points for the resume tests: the driver kills itself with SIGKILL at a named point.

``GASLURM_CRASH_AT=<point>[:<n>][@<island>]`` kills the process the n-th time (default first) it reaches
``<point>``; with ``@<island>`` only the driver of that island (``GASLURM_ISLAND``, set by the island runner).
Unset (always, outside tests) this is a dictionary lookup. SIGKILL, not an exception: nothing gets to clean
up, exactly like a node reboot or the end of an allocation.
"""

from __future__ import annotations

import os
import signal

_seen: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get("GASLURM_CRASH_AT")
    if not spec:
        return
    spec, _, island = spec.partition("@")
    if island and os.environ.get("GASLURM_ISLAND") != island:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
