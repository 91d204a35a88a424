"""Server-Sent Events lines as the format defines them, for every SSE reader in tether (the
model providers' streams, the client's event streams)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator

_EOL = re.compile(r"\r\n|\r|\n")


async def sse_lines(chunks: AsyncIterable[str]) -> AsyncIterator[str]:
    """The lines of a stream of text as Server-Sent Events define them: ended by CRLF, LF or a
    lone CR, wherever the chunks were cut. Not ``str.splitlines`` (nor httpx's ``aiter_lines``,
    which follows it): that also ends a line at U+2028, U+2029, NEL (U+0085) and a few control
    characters, which JSON carries unescaped inside a string, so an answer holding one was cut
    in two halves that are not JSON."""
    held: list[str] = []
    for_cr = False  # the text held ends with CR: the first half of a CRLF, maybe
    async for chunk in chunks:
        if not chunk:
            continue
        if not for_cr and "\r" not in chunk and "\n" not in chunk:
            held.append(chunk)  # a piece of a long line: no join until its end comes
            continue
        text = "".join(held) + chunk
        for_cr = text.endswith("\r")
        *lines, rest = _EOL.split(text[:-1] if for_cr else text)
        for line in lines:
            yield line
        held = [rest + "\r"] if for_cr else [rest]
    text = "".join(held)
    if text:
        yield text.removesuffix("\r")
