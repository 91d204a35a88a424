"""Policy rules written in YAML (or already parsed into Python lists and dicts).

A document is either a list of rules, or a mapping with ``rules`` and optionally ``defaults``
(true/false) and ``otherwise`` (the action when no rule matches)::

    defaults: true
    rules:
      - name: big-refunds
        tool: refund
        args: {"$.amount": {">": 1000}}
        action: escalate
        reason: refunds over $1000 need a manager
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tether.core.errors import ConfigurationError
from tether.governance.policy_rules import Rule

DOCUMENT_KEYS = ("rules", "defaults", "otherwise")


def read_yaml(source: str | Path) -> Any:
    """The parsed YAML of ``source``: a path to a file, or the YAML text itself."""
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:  # pragma: no cover - PyYAML ships with the governance extra
        raise ConfigurationError(
            "PolicySet.from_yaml needs PyYAML: pip install 'tether[governance]'"
        ) from exc
    where = "policy YAML"
    if isinstance(source, Path) or ("\n" not in source and source.endswith((".yaml", ".yml"))):
        path = Path(source)
        if not path.is_file():
            raise ConfigurationError(f"policy file {str(path)!r} does not exist")
        where, text = f"policy file {str(path)!r}", path.read_text(encoding="utf-8")
    else:
        text = source
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{where} is not valid YAML: {exc}") from None


def parse_document(doc: Any) -> tuple[list[Rule], dict[str, Any]]:
    """The rules of a parsed document and its options (``defaults``, ``otherwise``)."""
    options: dict[str, Any] = {}
    if isinstance(doc, Mapping):
        unknown = sorted(str(k) for k in doc if k not in DOCUMENT_KEYS)
        if unknown:
            raise ConfigurationError(
                f"policy document: unknown key(s) {unknown}; it takes {list(DOCUMENT_KEYS)}"
            )
        options = {k: doc[k] for k in ("defaults", "otherwise") if k in doc}
        items = doc.get("rules", [])
    elif isinstance(doc, list):
        items = doc
    else:
        raise ConfigurationError(
            "policy document: write a list of rules or a mapping with 'rules', got "
            f"{type(doc).__name__}"
        )
    if not isinstance(items, list):
        raise ConfigurationError(f"policy document: 'rules' must be a list, got {items!r}")
    return [Rule.from_dict(r, f"rule #{i + 1}") for i, r in enumerate(items)], options
