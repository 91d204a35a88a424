"""What a tenant's name may be: one rule for runs, schedules, API keys and limits."""

from __future__ import annotations

from tether.core.errors import InvalidInputError

MAX_TENANT = 200
"""Longest tenant name accepted."""


def check_tenant_name(tenant: object) -> str:
    """A tenant's name, checked: non-empty, at most ``MAX_TENANT`` characters, no space at
    either end and no control character (``"acme "`` would be a second tenant beside
    ``"acme"``: its runs outside acme's limits and quotas and invisible to acme's API keys).
    Spaces inside are fine (``"Acme Corp"``)."""
    if not isinstance(tenant, str) or not tenant.strip() or len(tenant) > MAX_TENANT:
        raise InvalidInputError(
            f"a tenant is a non-empty name of at most {MAX_TENANT} characters, got {tenant!r}"
        )
    if tenant.strip() != tenant:
        raise InvalidInputError(
            f"a tenant name has no space at either end, got {tenant!r} (did you mean "
            f"{tenant.strip()!r}?)"
        )
    if not tenant.isprintable() or any(c.isspace() and c != " " for c in tenant):
        raise InvalidInputError(f"a tenant name has no control characters, got {tenant!r}")
    return tenant
