"""A small in-memory index of unit vectors searched by cosine similarity (brute force).

Rows live in one float32 matrix that grows by doubling; removing a vector moves the last row
into its place. Adding and removing are O(1) (amortised) and a search multiplies the live rows
in place, so a search never re-stacks the vectors however often they change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.core.errors import ConfigurationError
from tether.llm.embeddings import numpy

if TYPE_CHECKING:
    from tether.llm.embeddings import Vectors


class VectorIndex:
    """Unit vectors by integer key. Keys are unique; the vectors must all have one length."""

    def __init__(self, capacity: int = 8) -> None:
        self._capacity = max(1, capacity)
        self._matrix: Vectors | None = None
        self._keys: list[int] = []
        self._rows: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def add(self, key: int, vector: Vectors) -> None:
        if key in self._rows:
            raise KeyError(f"key {key} is already in the index")
        np = numpy()
        if self._matrix is None:
            self._matrix = np.zeros((self._capacity, len(vector)), dtype=np.float32)
        elif len(vector) != self._matrix.shape[1]:
            raise ConfigurationError(
                f"a vector of {len(vector)} values cannot join an index of "
                f"{self._matrix.shape[1]}-value vectors: use one embedder per index"
            )
        count = len(self._keys)
        if count == len(self._matrix):
            grown = np.zeros((2 * count, self._matrix.shape[1]), dtype=np.float32)
            grown[:count] = self._matrix
            self._matrix = grown
        self._matrix[count] = vector
        self._rows[key] = count
        self._keys.append(key)

    def remove(self, key: int) -> None:
        row = self._rows.pop(key)
        last = self._keys.pop()
        if last != key:
            assert self._matrix is not None
            self._matrix[row] = self._matrix[len(self._keys)]
            self._keys[row] = last
            self._rows[last] = row

    def search(self, vector: Vectors, threshold: float) -> list[tuple[int, float]]:
        """(key, cosine similarity) of every vector at or above ``threshold``, best first."""
        if self._matrix is None or not self._keys:
            return []
        np = numpy()
        scores = self._matrix[: len(self._keys)] @ vector
        close = np.flatnonzero(scores >= threshold)
        order = close[np.argsort(-scores[close], kind="stable")]
        return [(self._keys[i], float(scores[i])) for i in order]
