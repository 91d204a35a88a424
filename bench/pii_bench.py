"""PII redaction throughput in KB/s: detection alone and detection plus vault tokenisation
(memory store), pattern-only and with NER (en_core_web_sm), on Faker-generated support tickets.

    .venv/bin/python bench/pii_bench.py [--kb 64]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from faker import Faker

from tether.governance import PiiDetector, PiiKey, PiiVault
from tether.store.memory import MemoryStore


def tickets(kb: int) -> list[str]:
    f = Faker("en_US")
    f.seed_instance(7)
    out, size = [], 0
    while size < kb * 1024:
        text = (
            f"Hi, this is {f.name()}. {f.paragraph(nb_sentences=3)} Reach me at {f.email()} or "
            f"{f.phone_number()}; card {f.credit_card_number()}, IBAN {f.iban()}, SSN {f.ssn()}, "
            f"logged in from {f.ipv4()}. {f.paragraph(nb_sentences=2)}"
        )
        out.append(text)
        size += len(text.encode())
    return out


async def measure(ner: bool, texts: list[str]) -> tuple[float, float, int]:
    detector = PiiDetector(ner=ner)
    detector.warm()
    detector.detect(texts[0])
    total = sum(len(t.encode()) for t in texts) / 1024
    t0 = time.perf_counter()
    found = sum(len(detector.detect(t)) for t in texts)
    detect_kbs = total / (time.perf_counter() - t0)
    vault = PiiVault(MemoryStore(), PiiKey.generate(), detector=detector)
    t0 = time.perf_counter()
    for t in texts:
        await vault.redact("bench", t)
    redact_kbs = total / (time.perf_counter() - t0)
    return detect_kbs, redact_kbs, found


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", type=int, default=64)
    texts = tickets(ap.parse_args().kb)
    print(f"PII redaction throughput: {len(texts)} tickets, {sum(map(len, texts)) // 1024} KB")
    print(f"{'mode':<14} {'detect KB/s':>12} {'redact KB/s':>12} {'entities':>9}")
    for ner in (False, True):
        d, r, n = await measure(ner, texts)
        print(f"{'patterns+NER' if ner else 'patterns':<14} {d:>12.1f} {r:>12.1f} {n:>9}")


if __name__ == "__main__":
    asyncio.run(main())
