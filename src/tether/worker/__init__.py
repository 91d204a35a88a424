"""Worker processes: ``Worker`` (and ``tether worker``) executes the runs of a store's queues,
registers itself in the store, and shuts down gracefully (see ``tether.worker.worker``)."""

from tether.worker.worker import Worker, default_concurrency

__all__ = ["Worker", "default_concurrency"]
