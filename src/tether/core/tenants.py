"""What a tenant's name may be: one rule for runs, schedules, API keys and limits."""

from __future__ import annotations

from tether.core.errors import InvalidInputError

MAX_TENANT = 200
"""Longest tenant name accepted."""


def check_tenant_name(tenant: object) -> str:
    """A tenant's name, checked: non-empty, at most ``MAX_TENANT`` characters, no spaces or
    control characters (``"acme "`` would be a second tenant beside ``"acme"``: its runs
    outside acme's quotas and invisible to acme's API keys, which refuse such a name)."""
    if not isinstance(tenant, str) or not tenant.strip() or len(tenant) > MAX_TENANT:
        raise InvalidInputError(
            f"a tenant is a non-empty name of at most {MAX_TENANT} characters, got {tenant!r}"
        )
    if any(c.isspace() or not c.isprintable() for c in tenant):
        raise InvalidInputError(
            f"a tenant name has no spaces or control characters, got {tenant!r}"
            + (f" (did you mean {tenant.strip()!r}?)" if tenant.strip() != tenant else "")
        )
    return tenant
