"""open_store(url): every accepted form, and actionable errors for the rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tether.core.errors import ConfigurationError
from tether.store import MemoryStore, SqliteStore, open_store


async def test_memory_and_passthrough() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    assert open_store(store) is store


@pytest.mark.parametrize(
    ("url", "path", "durability"),
    [
        ("sqlite:///runs.db", "runs.db", "process"),
        ("sqlite:///sub/runs.db?durability=power-loss", "sub/runs.db", "power-loss"),
        ("sqlite:///:memory:", ":memory:", "process"),
        ("sqlite://", ":memory:", "process"),
        ("runs.db", "runs.db", "process"),
        ("data/runs.sqlite", "data/runs.sqlite", "process"),
    ],
)
async def test_sqlite_urls(
    url: str, path: str, durability: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert (store.path, store.durability) == (path, durability)
    await store.close()


async def test_absolute_sqlite_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/runs.db")  # four slashes: absolute
    assert isinstance(store, SqliteStore) and store.path == f"{tmp_path}/runs.db"
    await store.close()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls(scheme: str) -> None:
    from tether.store.postgres import PostgresStore

    store = open_store(f"{scheme}://u@db.example:5433/app?schema=tenant_a&sslmode=require")
    assert isinstance(store, PostgresStore)
    assert store.schema == "tenant_a"
    assert store.dsn == f"{scheme}://u@db.example:5433/app?sslmode=require"
    assert open_store(f"{scheme}://u@h/app").schema == "public"  # type: ignore[attr-defined]


def test_postgres_retry_for_from_the_url() -> None:
    store = open_store("postgresql://u@h/app?retry_for=2.5&sslmode=require")
    assert store.retry.give_up_after == 2.5  # type: ignore[attr-defined]
    assert store.dsn == "postgresql://u@h/app?sslmode=require"  # type: ignore[attr-defined]
    assert open_store("postgresql://u@h/app").retry.give_up_after == 30  # type: ignore[attr-defined]
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(ConfigurationError, match="retry_for must be a number of seconds"):
            open_store(f"postgresql://u@h/app?retry_for={bad}")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "runs.txt",
        "sqlite:/runs.db",
        "sqlite:///x.db?durability=maybe",
        "sqlite:///x.db?mode=ro",
        "sqlite:///",  # f"sqlite:///{path}" with an empty path: before, a private in-memory DB
        "sqlite:///?durability=power-loss",
    ],
)
def test_bad_urls_say_what_works(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        open_store(url)
    message = str(info.value)
    assert "sqlite:///" in message or "durability" in message


def test_postgres_without_psycopg_says_how_to_install() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import tether.store\n"
        "try:\n"
        "    tether.store.PostgresStore\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigurationError")
    assert "pip install 'tether[postgres]'" in out.stdout
