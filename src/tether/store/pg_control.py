"""PostgreSQL ``take_tokens`` in one round trip: a plpgsql function installed by migration 2.

``tether_take_tokens(bucket, rate, burst, n, now)`` locks the bucket row (creating it full if it
is missing), refills, takes and writes back, all inside the caller's single statement, and
returns the seconds to wait (0.0: taken). Concurrent takers of one bucket queue on its row lock.

The arithmetic mirrors ``tether.store.control.refill`` and ``take`` operation for operation, in
``double precision`` (IEEE 754 like Python's float), so every backend grants and waits alike;
``tests/store/test_postgres.py`` checks the two agree bit for bit.
"""

from __future__ import annotations


def functions(p: str) -> list[str]:
    """DDL of the take function (``p``: the qualified table prefix)."""
    take = f"""CREATE FUNCTION {p}take_tokens(p_bucket text, p_rate double precision,
    p_burst double precision, p_n double precision, p_now double precision)
RETURNS double precision
LANGUAGE plpgsql AS $fn$
DECLARE
    t double precision;
    u double precision;
    wait double precision := 0;
BEGIN
    SELECT tokens, updated_at INTO t, u FROM {p}buckets WHERE bucket = p_bucket FOR UPDATE;
    IF NOT FOUND THEN
        -- a new bucket starts full; a concurrent creator wins the insert and we lock its row
        INSERT INTO {p}buckets (bucket, tokens, updated_at) VALUES (p_bucket, p_burst, p_now)
        ON CONFLICT (bucket) DO NOTHING;
        SELECT tokens, updated_at INTO STRICT t, u FROM {p}buckets
        WHERE bucket = p_bucket FOR UPDATE;
    END IF;
    -- refill(): min(burst, tokens + max(0.0, now - updated_at) * rate)
    t := LEAST(p_burst, t + GREATEST(0::double precision, p_now - u) * p_rate);
    -- take(): take n if there (within 1e-9), else take nothing and wait (n - tokens) / rate
    IF t + 1e-9::double precision >= p_n THEN
        t := GREATEST(0::double precision, t - p_n);
    ELSE
        wait := (p_n - t) / p_rate;
    END IF;
    UPDATE {p}buckets SET tokens = t, updated_at = p_now WHERE bucket = p_bucket;
    RETURN wait;
END
$fn$"""
    return [take]


def call(p: str) -> str:
    """The one statement ``PostgresStore.take_tokens`` sends (psycopg placeholders)."""
    return (
        f"SELECT {p}take_tokens(%s::text, %s::double precision, %s::double precision, "
        "%s::double precision, %s::double precision)"
    )
