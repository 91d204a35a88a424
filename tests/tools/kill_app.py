"""A worker calling a tool every 10 ms until a kill switch stops it (set by another process).

python -m tests.tools.kill_app DB      prints READY, then the epoch time of the first refusal
"""

from __future__ import annotations

import asyncio
import sys
import time

from tether.core.errors import ToolDisabledError
from tether.store.sqlite import SqliteStore
from tether.tools import ToolExecutor, tool


@tool
async def ping() -> str:
    """Ping."""
    return "pong"


async def main(db: str) -> None:
    store = SqliteStore(db)
    await store.setup()
    ex = ToolExecutor([ping], store, kill_refresh=0.5)
    ok = 0
    deadline = time.time() + 30
    while time.time() < deadline:
        res = await ex.call("ping")
        if res.ok:
            ok += 1
            if ok == 5:
                print("READY", flush=True)
        elif isinstance(res.error, ToolDisabledError):
            print(f"DISABLED {time.time():.6f} after {ok} calls", flush=True)
            break
        await asyncio.sleep(0.01)
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
