"""Consume a llama-cpp completion stream: stop strings, text deltas, exact token counts.

llama-cpp's stream carries no usage. The prompt is tokenized by us, so its count is exact; the
completion is counted from a stopping-criteria hook that llama.cpp calls after each sampled
token. The end-of-generation token is sampled but not part of the answer, so a stream that ended
on it (finish reason ``stop``) counts one less. Stop strings are applied here rather than by
llama-cpp, so that a stop is known to be ours and the count stays exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple


class Streamed(NamedTuple):
    text: str
    finish_reason: str
    completion_tokens: int
    id: str | None
    logprobs: tuple[float, ...] | None


class StopFilter:
    """Passes text through until a stop string appears, holding back any tail that could be
    the start of one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buffer = ""
        self.hit = False

    def feed(self, delta: str) -> str:
        self.buffer += delta
        found = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if found:
            out, self.buffer, self.hit = self.buffer[: min(found)], "", True
            return out
        hold = max(
            (k for s in self.stops for k in range(1, len(s)) if self.buffer.endswith(s[:k])),
            default=0,
        )
        out = self.buffer[: len(self.buffer) - hold]
        self.buffer = self.buffer[len(out) :]
        return out

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out


def stream_completion(
    chunks: Iterator[dict[str, Any]],
    stops: StopFilter,
    on_delta: Callable[[str], None],
    sampled: Callable[[], int],
) -> Streamed:
    """Push text deltas to ``on_delta`` until the stream or a stop string ends it; ``sampled``
    reads how many tokens llama.cpp has sampled so far."""
    parts: list[str] = []
    logprobs: list[float] = []
    with_logprobs = False
    finish = "length"
    completion_id: str | None = None

    def emit(text: str) -> None:
        if text:
            parts.append(text)
            on_delta(text)

    try:
        for chunk in chunks:
            completion_id = completion_id or chunk.get("id")
            choice = chunk["choices"][0]
            lp = choice.get("logprobs")
            if lp is not None:
                with_logprobs = True
                logprobs.extend(float(x) for x in lp["token_logprobs"] if x is not None)
            emit(stops.feed(choice.get("text") or ""))
            if stops.hit:
                finish, count = "stop", sampled()
                break
            finish = choice.get("finish_reason") or finish
        else:
            emit(stops.flush())
            count = sampled() - 1 if finish == "stop" else sampled()
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Streamed(
        "".join(parts),
        finish,
        max(0, count),
        completion_id,
        tuple(logprobs) if with_logprobs else None,
    )
