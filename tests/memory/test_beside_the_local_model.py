"""The SQLite memory store (usearch's ANN index) and the bundled model in one process.

usearch wheels from 2.15 on link libstdc++ statically; their process-wide symbols then make
llama.cpp fail to load any model (``std::bad_cast`` in its vocabulary). The memory plane and the
local model live in one process in every offline deployment (``tether demo``), so this runs in
a fresh interpreter, where the import order is the one that broke: usearch first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import asyncio, sys
from tether.llm import HashingEmbedder, model_from_spec
from tether.memory import MemoryScope, SqliteMemory

async def main(path):
    mem = SqliteMemory(path, embedder=HashingEmbedder())
    await mem.setup()
    scope = MemoryScope("t")
    for i in range(40):
        await mem.add(f"memory number {i}", scope=scope)
    hits = await mem.search("memory number 7", scope=scope, k=3)
    assert hits, "no hits"
    import usearch.index  # loaded by the ANN index already; explicit for the reader
    said = await model_from_spec("local:smollm2").chat("Say hello.", max_tokens=8)
    await mem.close()
    print("ok", len(hits), bool(said.text.strip()))

asyncio.run(main(sys.argv[1]))
"""


def test_memory_index_and_local_model_share_a_process(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path / "m.db")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().startswith("ok 3 True"), res.stdout
