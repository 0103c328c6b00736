"""Loading the Daytona SDK off the event loop.

``import daytona`` alone loads only a lazy stub (a few ms): the SDK's real modules (about 900, over a second) load
when a name such as ``AsyncDaytona`` is first used — which would be on the event loop, at the first sandbox
creation, freezing everything else the loop serves. :func:`load_sdk` imports every one of them (blocking: call it in a
worker thread); :func:`ensure_sdk` does that once from async code before the backend touches the SDK.

A worker thread alone is not enough: the import allocates so many objects that the cyclic garbage collector runs full
collections during it, each holding the GIL for 50-140 ms — the event loop then stalls as if the import ran on it.
So the collector is paused for the import, and what the import made is moved out of its reach (``gc.freeze``:
module-level objects live as long as the process anyway) so that no later collection has to walk it either.
"""

from __future__ import annotations

import asyncio
import gc
import threading

_loaded = threading.Event()
_lock = threading.Lock()


def load_sdk() -> None:
    """Import the whole SDK: every module the backend's calls load, also those the SDK loads lazily. Blocking."""
    if _loaded.is_set():
        return
    with _lock:
        if _loaded.is_set():
            return
        collecting = gc.isenabled()
        gc.disable()
        try:
            import aiohttp  # noqa: F401 - imported by the backend's error mapping
            import daytona

            for name in daytona.__all__:  # each name is a lazy import of the module that defines it
                getattr(daytona, name)
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
        _loaded.set()


async def ensure_sdk() -> None:
    """:func:`load_sdk` in a worker thread, once; afterwards free (no thread hop)."""
    if not _loaded.is_set():
        await asyncio.to_thread(load_sdk)
