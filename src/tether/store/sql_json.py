"""Reading fields of the JSON event documents in SQL, per dialect: the one place that knows
how SQLite (``json_extract``/``json_type``) and PostgreSQL (``jsonb``) spell it. Used by the
usage sums (``usage``, ``run_usage``), which alias the decoded document as ``d``.

A path is dotted-by-commas (``"cache,hit"`` is ``d.cache.hit``), as PostgreSQL's ``#>`` reads it.

Sums (``total``) never overflow, whatever a provider reported (2^62 tokens, a cost of 1e308):
PostgreSQL reads numbers as ``numeric`` (a ``bigint`` or ``float8`` sum past its range is an
error there), SQLite adds with ``TOTAL`` (its integer ``SUM`` past 2^63 is an error). A cost
past the largest float reads as infinite on every backend, as Python's own sum would be: the
reports say what no float can as null (``--json``, the HTTP API) or "inf".
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
            return f"CASE WHEN jsonb_typeof({node}) = 'number' THEN ({node})::text::numeric END"
        p = self._sqlite_path(path)
        return (
            f"CASE WHEN json_type(d, '{p}') IN ('integer', 'real') THEN json_extract(d, '{p}') END"
        )

    def whole(self, path: str) -> str:
        """``num`` truncated to an integer."""
        if self.dialect == "postgres":
            return f"trunc({self.num(path)})"
        return f"CAST({self.num(path)} AS INTEGER)"

    def total(self, expr: str) -> str:
        """The sum of ``expr`` over a group, 0 when none: one that cannot overflow."""
        if self.dialect == "postgres":
            return f"COALESCE(SUM({expr}), 0)"
        return f"TOTAL({expr})"

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
    def zero(self) -> str:
        """0 of the type ``num`` reads (a UNION with its values keeps that type)."""
        return "CAST(0 AS numeric)" if self.dialect == "postgres" else "0.0"
