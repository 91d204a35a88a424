"""Tool names as provider APIs take them, and back.

OpenAI's and Anthropic's APIs refuse a function name outside ``^[A-Za-z0-9_-]{1,64}$`` (a 400:
"string does not match pattern"), while a tether tool name may hold dots and be longer
(``shop.lookup``: an ``McpToolset(prefix="shop.")``'s tools, a dotted ``@tool(name=...)``). So
a request's tool names are mapped to names those APIs take on the way out (the tools offered,
a forced ``tool_choice``, the tool calls and tool messages of the history) and the model's tool
calls are mapped back on the way in: the calls a provider returns always carry the tools' own
names. A name the APIs take is sent as it is; another gets its other characters replaced by
``_`` (cut to 64 with a digest when longer), and a digest as well when that would collide with
another tool's name in the same request.

A chat message's participant ``name`` (``Message(role="user", name="Ann Lee")``: who spoke, in
a conversation of several agents or people) is held to the same pattern by OpenAI's API, so it
goes out the same way: as it is when the API takes it, else its other characters replaced by
``_`` (``Ann_Lee``), with a digest when longer than 64 or when two participants of the request
would get one name. Nothing comes back under those names, so nothing is mapped back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

from tether.core.messages import Message, ToolCall
from tether.llm.types import ModelRequest, ModelResponse

MAX_LEN = 64
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_OTHER = re.compile(r"[^A-Za-z0-9_-]")
_CHOICES = ("auto", "none", "required")


def wire_name(name: str) -> str:
    """``name`` as the APIs take it (itself when they do)."""
    if _SAFE.fullmatch(name):
        return name
    safe = _OTHER.sub("_", name) or "tool"
    return safe if len(safe) <= MAX_LEN else _digested(name)


def _digested(name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{(_OTHER.sub('_', name) or 'tool')[: MAX_LEN - 9]}_{digest}"


def _mapping(names: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``names`` to wire names and back: a name the APIs take stays, another is made one that
    no other name of ``names`` has."""
    unique = list(dict.fromkeys(names))
    out = {n: n for n in unique if _SAFE.fullmatch(n)}
    back = dict(out)
    for name in unique:
        if name in out:
            continue
        wire = wire_name(name)
        if wire in back:  # "a.b" beside a tool named "a_b"
            wire = _digested(name)
        out[name] = wire
        back[wire] = name
    return out, back


class WireNames:
    """The names of one request's tools on the wire (see the module)."""

    __slots__ = ("_in", "_out", "_who")

    def __init__(self, names: Iterable[str], participants: Iterable[str] = ()) -> None:
        self._out, self._in = _mapping(names)
        self._who, _ = _mapping(participants)

    @classmethod
    def of(cls, request: ModelRequest) -> WireNames | None:
        """The mapping ``request`` needs (None: every name in it goes as it is)."""
        names = [t.name for t in request.tools]
        history = [c.name for m in request.messages for c in m.tool_calls]
        history += [m.name for m in request.messages if m.role == "tool" and m.name]
        who = [m.name for m in request.messages if m.role != "tool" and m.name]
        if all(_SAFE.fullmatch(n) for n in (*names, *history, *who)):
            return None
        return cls(names, who)

    def out(self, name: str) -> str:
        return self._out.get(name) or wire_name(name)

    def back(self, name: str) -> str:
        return self._in.get(name, name)

    def outbound(self, request: ModelRequest) -> ModelRequest:
        """``request`` with the wire names in place of the tools' own."""
        tools = tuple(t.model_copy(update={"name": self.out(t.name)}) for t in request.tools)
        choice = request.tool_choice
        return request.model_copy(
            update={
                "tools": tools,
                "tool_choice": choice if choice in _CHOICES else self.out(choice),
                "messages": tuple(self._message(m) for m in request.messages),
            }
        )

    def _message(self, m: Message) -> Message:
        update: dict[str, object] = {}
        if m.tool_calls:
            update["tool_calls"] = tuple(self._call(c, self.out) for c in m.tool_calls)
        if m.role == "tool" and m.name:
            update["name"] = self.out(m.name)
        elif m.name and not _SAFE.fullmatch(m.name):  # who spoke: a participant's name
            update["name"] = self._who.get(m.name) or wire_name(m.name)
        return m.model_copy(update=update) if update else m

    def inbound(self, response: ModelResponse) -> ModelResponse:
        """``response`` with its tool calls named as the tools are."""
        if not response.tool_calls:
            return response
        calls = tuple(self._call(c, self.back) for c in response.tool_calls)
        return response.model_copy(update={"tool_calls": calls})

    @staticmethod
    def _call(call: ToolCall, rename: Callable[[str], str]) -> ToolCall:
        name = rename(call.name)
        return call if name == call.name else call.model_copy(update={"name": name})
