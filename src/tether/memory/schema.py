"""The memory plane's tables, set up by the memory store itself (not by the run store's
migrations: on PostgreSQL they need the pgvector extension, which a run store must not require).

Versions are recorded in ``tether_memory_schema``; ``migrations(flavor, dimensions)`` lists each
version's statements. Both databases hold the same tables:

* ``tether_memories``: one row per episodic memory, its vector in ``embedding``
  (SQLite: float32 blob, indexed by a usearch HNSW file beside the database; PostgreSQL:
  ``vector(n)`` with an HNSW index), its words in an FTS5 table (SQLite) or a generated
  ``tsvector`` column with a GIN index (PostgreSQL);
* ``tether_memory_changes`` (SQLite): every insert and delete of a memory, written by triggers in
  the same transaction, so the ANN file can always catch up with the table;
* ``tether_memory_meta``: the embedder the vectors came from and their dimensions;
* ``tether_kg_facts``: the knowledge graph's facts.
"""

from __future__ import annotations

from tether.memory.sql_tx import SqlFlavor

LATEST = 3

_KG = """CREATE TABLE IF NOT EXISTS {p}kg_facts (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  agent TEXT, run_id TEXT, thread_id TEXT,
  subject TEXT NOT NULL, relation TEXT NOT NULL, object TEXT NOT NULL,
  valid_from {real} NOT NULL, valid_to {real}, recorded_at {real} NOT NULL,
  provenance TEXT NOT NULL, superseded_by TEXT)"""
_KG_INDEXES = (
    "CREATE INDEX IF NOT EXISTS {p}kg_facts_subject ON {p}kg_facts (tenant, subject, relation)",
    "CREATE INDEX IF NOT EXISTS {p}kg_facts_object ON {p}kg_facts (tenant, object, relation)",
    "CREATE INDEX IF NOT EXISTS {p}kg_facts_relation ON {p}kg_facts (tenant, relation)",
)
_META = "CREATE TABLE IF NOT EXISTS {p}memory_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
_COLUMNS = """
  id TEXT NOT NULL UNIQUE,
  tenant TEXT NOT NULL,
  agent TEXT, run_id TEXT, thread_id TEXT,
  text TEXT NOT NULL, metadata TEXT NOT NULL, importance {real} NOT NULL,
  created_at {real} NOT NULL, last_accessed_at {real} NOT NULL, access_count BIGINT NOT NULL,
  provenance TEXT NOT NULL"""


def version_table(flavor: SqlFlavor) -> str:
    real = "REAL" if flavor.name == "sqlite" else "DOUBLE PRECISION"
    return (
        f"CREATE TABLE IF NOT EXISTS {flavor.prefix}memory_schema "
        f"(version INTEGER PRIMARY KEY, applied_at {real} NOT NULL)"
    )


def _sqlite_v1(p: str) -> list[str]:
    cols = _COLUMNS.format(real="REAL")
    return [
        f"CREATE TABLE {p}memories (key INTEGER PRIMARY KEY AUTOINCREMENT,{cols},"
        " embedding BLOB NOT NULL)",
        f"CREATE INDEX {p}memories_scope ON {p}memories (tenant, created_at, id)",
        f"CREATE VIRTUAL TABLE {p}memories_fts USING fts5(text, content='{p}memories', "
        "content_rowid='key', tokenize='unicode61 remove_diacritics 2')",
        f"CREATE VIRTUAL TABLE {p}memories_vocab USING fts5vocab({p}memories_fts, 'row')",
        f"CREATE TABLE {p}memory_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "key INTEGER NOT NULL, op TEXT NOT NULL)",
        f"CREATE TRIGGER {p}memories_ai AFTER INSERT ON {p}memories BEGIN "
        f"INSERT INTO {p}memories_fts(rowid, text) VALUES (new.key, new.text); "
        f"INSERT INTO {p}memory_changes(key, op) VALUES (new.key, 'add'); END",
        f"CREATE TRIGGER {p}memories_ad AFTER DELETE ON {p}memories BEGIN "
        f"INSERT INTO {p}memories_fts({p}memories_fts, rowid, text) "
        "VALUES ('delete', old.key, old.text); "
        f"INSERT INTO {p}memory_changes(key, op) VALUES (old.key, 'del'); END",
        f"CREATE TRIGGER {p}memories_au_text BEFORE UPDATE OF text, embedding ON {p}memories "
        "BEGIN SELECT RAISE(ABORT, 'a memory''s text and embedding are immutable'); END",
        _META.format(p=p),
        _KG.format(p=p, real="REAL"),
        *(i.format(p=p) for i in _KG_INDEXES),
    ]


def _postgres_v1(p: str, dimensions: int) -> list[str]:
    cols = _COLUMNS.format(real="DOUBLE PRECISION")
    return [
        f"CREATE TABLE {p}memories (key BIGSERIAL PRIMARY KEY,{cols},"
        f" embedding vector({dimensions}) NOT NULL,"
        " words tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED)",
        f"CREATE INDEX {p}memories_scope ON {p}memories (tenant, created_at, id)",
        f"CREATE INDEX {p}memories_words ON {p}memories USING gin (words)",
        pg_hnsw_index(p),
        _META.format(p=p),
        _KG.format(p=p, real="DOUBLE PRECISION"),
        *(i.format(p=p) for i in _KG_INDEXES),
    ]


PG_WORDS = "to_tsvector('simple', regexp_replace(text, '[[:punct:]]+', ' ', 'g'))"
"""The keyword column's expression: the text with punctuation made blank, then PostgreSQL's
``simple`` configuration. Its parser alone read ``CVE-2024-3094`` as ``cve``, ``-2024``,
``-3094`` (signed numbers) and ``3.14`` as one number, so a query for ``3094`` missed; blank
punctuation leaves the runs of letters and digits FTS5 and ``fusion.tokens`` see."""


def _postgres_v2(p: str) -> list[str]:
    """The keyword column rebuilt from ``PG_WORDS`` (dropping it drops its GIN index)."""
    return [
        f"ALTER TABLE {p}memories DROP COLUMN words",
        f"ALTER TABLE {p}memories ADD COLUMN words tsvector GENERATED ALWAYS AS ({PG_WORDS}) "
        "STORED",
        f"CREATE INDEX {p}memories_words ON {p}memories USING gin (words)",
    ]


PG_FOLDED_WORDS = (
    "to_tsvector('simple', regexp_replace(normalize(regexp_replace(normalize(text, NFD), "
    "'([\\u0001-\\u024f\\u1e00-\\u1eff])[\\u0300-\\u036f]+', '\\1', 'g'), NFC), "
    "'[[:punct:]]+', ' ', 'g'))"
)
"""``PG_WORDS`` with the accents of Latin letters taken off first, as ``fusion.fold`` and FTS5's
``remove_diacritics 2`` do (decomposed, the marks after a Latin letter dropped, composed again):
before, ``ecole`` missed ``école``, and a text in decomposed form (NFD, as macOS file names
come) matched none of its accented words, its marks taken for punctuation."""


def _postgres_v3(p: str) -> list[str]:
    """The keyword column rebuilt from ``PG_FOLDED_WORDS``."""
    return [
        f"ALTER TABLE {p}memories DROP COLUMN words",
        f"ALTER TABLE {p}memories ADD COLUMN words tsvector GENERATED ALWAYS AS "
        f"({PG_FOLDED_WORDS}) STORED",
        f"CREATE INDEX {p}memories_words ON {p}memories USING gin (words)",
    ]


def pg_hnsw_index(p: str) -> str:
    """The HNSW index of the vectors (m=16, ef_construction=128: recall@10 0.76 at 64). A bulk
    load can drop it and create it again after (one parallel build beats row-by-row inserts)."""
    return (
        f"CREATE INDEX IF NOT EXISTS {p}memories_hnsw ON {p}memories USING hnsw "
        "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 128)"
    )


def migrations(flavor: SqlFlavor, dimensions: int) -> list[tuple[int, list[str]]]:
    p = flavor.prefix
    if flavor.name == "sqlite":
        # FTS5's unicode61 already splits at punctuation (2) and folds accents (3)
        return [(1, _sqlite_v1(p)), (2, []), (3, [])]
    return [(1, _postgres_v1(p, dimensions)), (2, _postgres_v2(p)), (3, _postgres_v3(p))]
