"""Episodic memory recall bench: p50/p95 search latency and recall@10 against exact brute
force, at 10k and 100k memories, on SQLite (usearch HNSW beside the file) and on PostgreSQL +
pgvector (HNSW); insert throughput; and add-a-memory p95 with the real MiniLM embedding.

::

    .venv/bin/python bench/memory_recall.py                  # 10k and 100k, both backends
    .venv/bin/python bench/memory_recall.py --sizes 2000 --queries 50 --backends sqlite

Data, seeded:

* 10k: 384-dim vectors of real all-MiniLM-L6-v2 embeddings of generated sentences (people,
  actions, objects, places, ticket numbers), queried with other generated sentences;
* 100k: random-but-clustered unit vectors (1,000 Gaussian centres, noise 0.35 per dimension),
  queried with perturbed copies of stored vectors; each memory's text is a few words of a
  synthetic vocabulary so the keyword side has work to do.

The store embeds through a lookup embedder (the precomputed vector of each text; MiniLM for
any other text), so inserts and searches time the store, not the model, except the add-a-memory
figure, which embeds a new sentence with MiniLM each time; ``add_store_only`` adds sentences
whose MiniLM vectors were computed beforehand (the store's part of an add). Latency is one
``search()`` call end to end (query vector lookup, ANN or exact, SQL, fusion),
``record_access=False``. recall@10: the vector-only search's top 10
(``Ranking(keyword_weight=0, half_life=None, importance_weight=0)``, so the order is the vector
order) against numpy's exact top 10 over every vector. "hybrid" is the default ranking
(vector + keywords + decay + importance).

Insert throughput is ``add_many`` in batches of 1,000 (SQLite: rows and HNSW inserts; the
index is then saved and the store reopened, ``reopen_s``). On PostgreSQL a set above
``--bulk-above`` (5,000) is bulk-loaded: COPY with the HNSW index dropped, then one CREATE
INDEX (pgvector's row-by-row HNSW inserts are the slow part); the add-a-memory figure is the
incremental path there (one row, HNSW insert included).

PostgreSQL: ``TETHER_BENCH_PGVECTOR`` (a server with pgvector) or else a throwaway pgserver
(PostgreSQL 16 + pgvector 0.6) in a temporary directory, its ``shared_buffers`` set to
``--pg-shared-buffers`` (1GB: pgvector's advice is shared_buffers large enough for the HNSW
index; at 100k the index is ~195 MB and the table ~196 MB, and with pgserver's 128MB default
every search and add reads hundreds of pages back from the OS cache and evicts dirty ones;
``default`` keeps pgserver's). The server's settings are recorded in the results. Prints a
table and writes ``bench/results/memory_recall.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "memory_recall.json"
DIMS = 384
TARGETS = {"query_p95_ms": 10.0, "recall_at_10": 0.95, "add_p95_ms": 50.0}
VECTOR_RANKING_KW = {"keyword_weight": 0.0, "half_life": None, "importance_weight": 0.0}


class LookupEmbedder:
    """The precomputed vector of a known text; MiniLM for any other."""

    name = "all-MiniLM-L6-v2"
    dimensions = DIMS

    def __init__(self, table: dict[str, np.ndarray], fallback: Any = None) -> None:
        self.table = table
        self.fallback = fallback
        if fallback is not None:
            self.name = fallback.name

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self.table]
        if missing:
            if self.fallback is None:
                raise KeyError(missing[0])
            fresh = await self.fallback.embed(missing)
            out = {t: v for t, v in zip(missing, fresh, strict=True)}
            return np.stack([self.table[t] if t in self.table else out[t] for t in texts])
        return np.stack([self.table[t] for t in texts])


# -- data ------------------------------------------------------------------------------------
PEOPLE = [
    "Alice",
    "Bob",
    "Carla",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Goran",
    "Hana",
    "Ivo",
    "Jun",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
]
ACTIONS = [
    "reported a crash in",
    "asked for a refund on",
    "praised the new version of",
    "could not log in to",
    "requested a feature for",
    "found a security issue in",
    "cancelled the subscription to",
    "upgraded the plan of",
    "complained about slow",
    "shared feedback on",
]
OBJECTS = [
    "billing",
    "mobile-app",
    "dashboard",
    "search",
    "checkout",
    "invoices",
    "reports",
    "api",
    "sso",
    "exports",
]
PLACES = ["Lisbon", "Oslo", "Lagos", "Lima", "Osaka", "Denver", "Cairo", "Quito", "Hanoi", "Perth"]


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            f"{rng.choice(PEOPLE)} from {rng.choice(PLACES)} {rng.choice(ACTIONS)} "
            f"{rng.choice(OBJECTS)} (ticket T-{rng.randrange(100_000):05d}, note {seed}-{i})"
        )
    return out


async def minilm_data(n: int, queries: int) -> dict[str, Any]:
    from tether.llm.embeddings import MiniLMEmbedder, embed_unit

    model = MiniLMEmbedder(cache_size=0, batch_size=64)
    texts = sentences(n, 1)
    qtexts = sentences(queries, 2)
    t0 = time.perf_counter()
    vectors = await embed_unit(model, texts)
    qvectors = await embed_unit(model, qtexts)
    return {
        "kind": "MiniLM sentences",
        "texts": texts,
        "vectors": vectors,
        "qtexts": qtexts,
        "qvectors": qvectors,
        "embed_s": time.perf_counter() - t0,
    }


def clustered_data(n: int, queries: int, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, DIMS)).astype(np.float32)
    labels = rng.integers(0, 1000, n)
    vectors = centres[labels] + 0.35 * rng.normal(size=(n, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picks = rng.integers(0, n, queries)
    qvectors = vectors[picks] + 0.3 / np.sqrt(DIMS) * 4 * rng.normal(size=(queries, DIMS)).astype(
        np.float32
    )
    qvectors /= np.linalg.norm(qvectors, axis=1, keepdims=True)
    words = [f"w{i}" for i in range(5000)]
    prng = random.Random(seed)
    texts = [
        f"topic{labels[i]} " + " ".join(prng.choices(words, k=6)) + f" item{i}" for i in range(n)
    ]
    qtexts = [
        f"topic{labels[p]} " + " ".join(prng.sample(texts[p].split()[1:7], 2)) + f" query{j}"
        for j, p in enumerate(picks)
    ]
    return {
        "kind": "clustered random",
        "texts": texts,
        "vectors": vectors,
        "qtexts": qtexts,
        "qvectors": qvectors.astype(np.float32),
    }


def exact_top10(data: dict[str, Any]) -> list[set[int]]:
    sims = data["qvectors"] @ data["vectors"].T
    return [set(np.argsort(-row)[:10].tolist()) for row in sims]


# -- measuring -------------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def ms(xs: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(xs, 50) * 1e3, 3),
        "p95_ms": round(pct(xs, 95) * 1e3, 3),
        "mean_ms": round(statistics.fmean(xs) * 1e3, 3),
    }


async def open_backend(kind: str, where: str, embedder: Any, pg: dict[str, Any]) -> Any:
    from tether.memory import SqliteMemory, open_memory

    if kind == "sqlite":
        m = SqliteMemory(where, embedder=embedder)
    else:
        m = open_memory(where, embedder=embedder)
        if pg:  # PgMemory's own options (open_memory takes none of them)
            from tether.memory.pg_episodic import PgMemory

            await m.close()
            m = PgMemory(m.db.pool.dsn, embedder=embedder, schema=m.schema, **pg)
    await m.setup()
    return m


async def run_one(
    kind: str,
    where: str,
    data: dict[str, Any],
    truth: list[set[int]],
    adds: int,
    bulk_above: int = 5_000,
    pg: dict[str, Any] | None = None,
    precision: str = "float32",
) -> dict[str, Any]:
    from tether.llm.embeddings import MiniLMEmbedder, default_embedder, embed_unit
    from tether.memory import MemoryScope, NewMemory, Ranking

    pg = pg if kind == "postgres" and pg else {}
    table = dict(zip(data["texts"], data["vectors"], strict=True))
    table.update(zip(data["qtexts"], data["qvectors"], strict=True))
    minilm = default_embedder() if precision == "float32" else MiniLMEmbedder(precision=precision)
    pre_embedded = sentences(adds, 4)  # their MiniLM vectors in the table: the store's part
    if adds:
        vectors = await embed_unit(minilm, pre_embedded)
        table.update(zip(pre_embedded, vectors, strict=True))
    embedder = LookupEmbedder(table, fallback=minilm)
    scope = MemoryScope("bench")
    m = await open_backend(kind, where, embedder, pg)
    out: dict[str, Any] = {"backend": kind, "memories": len(data["texts"]), "data": data["kind"]}
    try:
        key_of: dict[str, int] = {}
        texts = data["texts"]
        bulk = kind == "postgres" and len(texts) > bulk_above
        if bulk:  # COPY without the HNSW index, then one (parallel) index build
            async with m.db.transaction() as tx:
                await tx.execute("DROP INDEX tether_memories_hnsw")
        t0 = time.perf_counter()
        for start in range(0, len(texts), 1000):
            added = await m.add_many(
                [NewMemory(t) for t in texts[start : start + 1000]], scope=scope
            )
            key_of.update((a.id, start + i) for i, a in enumerate(added))
        if bulk:
            from tether.memory.schema import pg_hnsw_index

            async with m.db.transaction() as tx:
                await tx.execute("SET LOCAL maintenance_work_mem = '1GB'")
                await tx.execute(pg_hnsw_index("tether_"))
        insert_s = time.perf_counter() - t0
        out["insert_per_s"] = round(len(texts) / insert_s, 1)
        if kind == "postgres":  # what autovacuum would do: statistics for keyword pruning
            async with m.db.transaction() as tx:
                await tx.execute("ANALYZE tether_memories")
        out["insert_mode"] = "bulk: COPY, then CREATE INDEX" if bulk else "add_many(1000)"
        if kind == "sqlite":  # save the index and open it again: what a restart costs
            await m.close()
            t0 = time.perf_counter()
            m = await open_backend(kind, where, embedder, pg)
            out["reopen_s"] = round(time.perf_counter() - t0, 3)
        vector_only = Ranking(**VECTOR_RANKING_KW)
        for q in data["qtexts"][:5]:  # warm caches
            await m.search(q, scope=scope, k=10, ranking=vector_only, record_access=False)
        lat: list[float] = []
        recalls: list[float] = []
        for q, want in zip(data["qtexts"], truth, strict=True):
            t0 = time.perf_counter()
            hits = await m.search(q, scope=scope, k=10, ranking=vector_only, record_access=False)
            lat.append(time.perf_counter() - t0)
            got = {key_of[h.memory.id] for h in hits}
            recalls.append(len(got & want) / 10)
        out["vector_search"] = ms(lat)
        out["recall_at_10"] = round(statistics.fmean(recalls), 4)
        lat = []
        for q in data["qtexts"]:
            t0 = time.perf_counter()
            await m.search(q, scope=scope, k=10, record_access=False)
            lat.append(time.perf_counter() - t0)
        out["hybrid_search"] = ms(lat)
        if adds:
            await m.search("warm the model", scope=scope, k=1, record_access=False)
            lat = []
            fresh = f"{kind} {len(texts)}"  # texts no earlier run embedded: no cache hit
            for s in sentences(adds, 3):
                s = f"{s}, {fresh}"
                t0 = time.perf_counter()
                await m.add(s, scope=scope)
                lat.append(time.perf_counter() - t0)
            out["add_with_minilm"] = ms(lat)
            lat = []
            for s in pre_embedded:
                t0 = time.perf_counter()
                await m.add(s, scope=scope)
                lat.append(time.perf_counter() - t0)
            out["add_store_only"] = ms(lat)
            lat = []
            for s in sentences(adds, 5):  # new texts: MiniLM embeds each query
                s = f"{s}, {fresh}"
                t0 = time.perf_counter()
                await m.search(s, scope=scope, k=10, record_access=False)
                lat.append(time.perf_counter() - t0)
            out["query_with_minilm"] = ms(lat)
        if kind == "postgres":
            out["server"] = await pg_settings(m)
    finally:
        await m.close()
    return out


async def pg_settings(m: Any) -> dict[str, Any]:
    """What the PostgreSQL figures depend on: the server's memory and commit settings, the
    pgvector version, the sizes of the table and its HNSW index, the store's own options."""
    async with m.db.statement() as tx:
        rows = await tx.fetch(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
            "('shared_buffers', 'synchronous_commit', 'hnsw.ef_search', 'server_version')"
        )
        sizes = await tx.fetch(
            "SELECT pg_size_pretty(pg_table_size('tether_memories')), "
            "pg_size_pretty(pg_relation_size('tether_memories_hnsw')), "
            "(SELECT extversion FROM pg_extension WHERE extname = 'vector')"
        )
    out: dict[str, Any] = dict(rows)
    out["table_size"], out["hnsw_size"], out["pgvector"] = sizes[0]
    out["memory_durability"] = m.durability
    return out


class PgTarget:
    """A PostgreSQL with pgvector: TETHER_BENCH_PGVECTOR, or a throwaway pgserver."""

    def __init__(self, shared_buffers: str = "1GB") -> None:
        self.shared_buffers = shared_buffers
        self.server: Any = None
        self.url = os.environ.get("TETHER_BENCH_PGVECTOR", "")
        self.tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> PgTarget:
        if not self.url:
            import pgserver

            self.tmp = tempfile.TemporaryDirectory(prefix="tether-pgvector-")
            data = Path(self.tmp.name) / "data"
            self.server = pgserver.get_server(data, cleanup_mode="delete")
            if self.shared_buffers != "default":
                self.configure(data)
            self.url = self.server.get_uri()
        return self

    def configure(self, data: Path) -> None:
        """``shared_buffers`` takes a restart: ALTER SYSTEM, then stop and start again."""
        import psycopg
        from pgserver._commands import pg_ctl

        with psycopg.connect(self.server.get_uri(), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET shared_buffers = '{self.shared_buffers}'")
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data, user=self.server.system_user)
        self.server.ensure_postgres_running()

    def schema_url(self) -> str:
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}schema=bench_{secrets.token_hex(4)}"

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.cleanup()
        if self.tmp is not None:
            self.tmp.cleanup()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    backends = args.backends.split(",")
    pg = PgTarget(args.pg_shared_buffers).__enter__() if "postgres" in backends else None
    pg_options: dict[str, Any] = {}
    if args.pg_ef_search:
        pg_options["ef_search"] = args.pg_ef_search
    if args.pg_durability:
        pg_options["durability"] = args.pg_durability
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            if size <= args.minilm_up_to:
                data = await minilm_data(size, args.queries)
            else:
                data = clustered_data(size, args.queries)
            truth = exact_top10(data)
            for kind in backends:
                with tempfile.TemporaryDirectory(prefix="tether-memory-bench-") as tmp:
                    where = str(Path(tmp) / "tether.db") if kind == "sqlite" else pg.schema_url()  # type: ignore[union-attr]
                    row = await run_one(
                        kind,
                        where,
                        data,
                        truth,
                        args.adds,
                        args.bulk_above,
                        pg_options,
                        args.minilm_precision,
                    )
                rows.append(row)
                print_row(row, flush=True)
                if args.out:  # after every row: a long run interrupted keeps what it measured
                    write(args.out, summary(args, rows))
    finally:
        if pg is not None:
            pg.__exit__()
    return summary(args, rows)


def summary(args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "bench": "memory_recall",
        "targets": TARGETS,
        "queries": args.queries,
        "minilm_precision": args.minilm_precision,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "results": rows,
    }


def write(out: str, result: dict[str, Any]) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")


HEADER = (
    f"{'backend':9} {'memories':>8} {'data':17} {'insert/s':>9} {'vec p50':>8} {'vec p95':>8} "
    f"{'recall@10':>9} {'hyb p50':>8} {'hyb p95':>8} {'add p95':>8} {'store p95':>9} "
    f"{'q+emb p95':>9}"
)


def print_row(r: dict[str, Any], flush: bool = False) -> None:
    if flush and not getattr(print_row, "headed", False):
        print(HEADER)
        print_row.headed = True  # type: ignore[attr-defined]
    add = r.get("add_with_minilm", {}).get("p95_ms", float("nan"))
    store = r.get("add_store_only", {}).get("p95_ms", float("nan"))
    query = r.get("query_with_minilm", {}).get("p95_ms", float("nan"))
    print(
        f"{r['backend']:9} {r['memories']:>8} {r['data']:17} {r['insert_per_s']:>9.0f} "
        f"{r['vector_search']['p50_ms']:>8.2f} {r['vector_search']['p95_ms']:>8.2f} "
        f"{r['recall_at_10']:>9.3f} {r['hybrid_search']['p50_ms']:>8.2f} "
        f"{r['hybrid_search']['p95_ms']:>8.2f} {add:>8.2f} {store:>9.2f} "
        f"{query:>9.2f}",
        flush=True,
    )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--adds", type=int, default=100, help="single adds timed with MiniLM")
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument(
        "--minilm-up-to", type=int, default=10_000, help="real MiniLM data up to this size"
    )
    p.add_argument(
        "--bulk-above", type=int, default=5_000, help="PostgreSQL: bulk-load bigger sets"
    )
    p.add_argument(
        "--pg-shared-buffers",
        default="1GB",
        help="the throwaway pgserver's shared_buffers ('default': pgserver's 128MB)",
    )
    p.add_argument("--pg-ef-search", type=int, default=0, help="PgMemory(ef_search=...)")
    p.add_argument(
        "--pg-durability", default="", help="PgMemory(durability=...): process, power-loss"
    )
    p.add_argument(
        "--minilm-precision",
        default="float32",
        help="MiniLMEmbedder(precision=...) for the add and query figures: float32, int8",
    )
    p.add_argument("--out", default=str(RESULTS), help="'' to write nothing")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH.parent / "src"))
    ns = parse()
    result = asyncio.run(main(ns))
    if ns.out:
        write(ns.out, result)
        print(f"wrote {ns.out}")
