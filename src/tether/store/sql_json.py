"""Reading fields of the JSON event documents in SQL, per dialect: the one place that knows
how SQLite (``json_extract``/``json_type``) and PostgreSQL (``jsonb``) spell it. Used by the
usage sums (``usage``, ``run_usage``), which alias the decoded document as ``d``.

A path is dotted-by-commas (``"cache,hit"`` is ``d.cache.hit``), as PostgreSQL's ``#>`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JsonFields:
    dialect: str
    """``"sqlite"`` or ``"postgres"``."""

    @property
    def doc(self) -> str:
        """The expression decoding an event's ``data`` column into a document."""
        if self.dialect == "postgres":
            return "convert_from(data, 'UTF8')::jsonb"
        return "CAST(data AS TEXT)"

    def _sqlite_path(self, path: str) -> str:
        return "$." + path.replace(",", ".")

    def num(self, path: str) -> str:
        """The field as a number when it is a JSON number, else NULL."""
        if self.dialect == "postgres":
            node = f"(d #> '{{{path}}}')"
            return f"CASE WHEN jsonb_typeof({node}) = 'number' THEN ({node})::text::float8 END"
        p = self._sqlite_path(path)
        return (
            f"CASE WHEN json_type(d, '{p}') IN ('integer', 'real') THEN json_extract(d, '{p}') END"
        )

    def whole(self, path: str) -> str:
        """``num`` truncated to an integer."""
        if self.dialect == "postgres":
            return f"trunc({self.num(path)})::bigint"
        return f"CAST({self.num(path)} AS INTEGER)"

    def true(self, path: str) -> str:
        """1 when the field is JSON ``true``, else 0."""
        if self.dialect == "postgres":
            return f"CASE WHEN (d #> '{{{path}}}') = 'true'::jsonb THEN 1 ELSE 0 END"
        return f"CASE WHEN json_type(d, '{self._sqlite_path(path)}') = 'true' THEN 1 ELSE 0 END"

    def text(self, key: str) -> str:
        """The top-level field ``key`` as text, NULL when absent or empty."""
        if self.dialect == "postgres":
            return f"NULLIF(d ->> '{key}', '')"
        return f"NULLIF(CAST(json_extract(d, '$.{key}') AS TEXT), '')"

    @property
    def float_zero(self) -> str:
        return "CAST(0 AS float8)" if self.dialect == "postgres" else "0.0"
