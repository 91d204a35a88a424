"""A throwaway PostgreSQL server for tests that stop and restart it (``pgserver`` ships the
PostgreSQL 16 binaries): never the shared server other tests use.

It listens only on a unix socket in its data directory; ``dsn`` reaches it there (psycopg takes
``host=/path/to/dir``). ``stop()`` is a fast shutdown (every session gets ``AdminShutdown``, new
connections are refused); ``start()`` brings it back on the same socket, with the same data.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def quiet() -> Iterator[None]:
    """pgserver asks platformdirs for a runtime dir, which warns where XDG_RUNTIME_DIR is unset
    (containers, CI): not this project's warning to show."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class ThrowawayPostgres:
    def __init__(self, datadir: Path) -> None:
        with quiet():
            import pgserver

            self._server: Any = pgserver.get_server(datadir, cleanup_mode="delete")
        self.datadir = datadir
        self.dsn = f"dbname=postgres user=postgres host={datadir}"

    @classmethod
    def create(cls) -> ThrowawayPostgres:
        """In a fresh directory of its own: not under pytest's temporary root, which another
        pytest session on the machine may prune while this one runs."""
        datadir = Path(tempfile.mkdtemp(prefix="tether-pg-"))
        try:
            return cls(datadir)
        except BaseException:
            shutil.rmtree(datadir, ignore_errors=True)
            raise

    def stop(self) -> None:
        """Fast shutdown: sessions are terminated (57P01), the socket goes away."""
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.datadir, user=self._server.system_user)

    def start(self) -> None:
        """Start it again on the same socket; returns once it accepts connections."""
        with quiet():
            self._server.ensure_postgres_running()

    def close(self) -> None:
        try:
            with quiet():
                self._server.cleanup()
        finally:
            shutil.rmtree(self.datadir, ignore_errors=True)
