"""A small Server-Sent Events reader over httpx (what a browser's EventSource does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Frame:
    event: str
    data: Any
    id: int | None
    comment: bool = False


def frames(response: httpx.Response) -> Iterator[Frame]:
    event, data, ident, comment = "message", [], None, False
    for line in response.iter_lines():
        if line == "":
            if data or comment:
                yield Frame(event, json.loads("\n".join(data)) if data else None, ident, comment)
            event, data, ident, comment = "message", [], None, False
        elif line.startswith(":"):
            comment = True
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                ident = int(value)
