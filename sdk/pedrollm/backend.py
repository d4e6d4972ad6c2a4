"""The ``Backend`` interface every server module implements."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from dataclasses_json import DataClassJsonMixin

from .errors import (
    ConnectionFailed,
    ContextOverflow,
    InputTooLarge,
    ModelLoading,
    PedroLLMError,
    Timeout,
    UnsupportedFeature,
)
from .structured import StructuredStream, parse_structured, structured_request
from .tokens import TokenCount, estimate_request_tokens, estimate_text_tokens
from .types import InferenceRequest, InferenceResponse, ModelInfo, ServerInfo, StreamDelta

T = TypeVar("T")

HealthState = Literal["ok", "loading", "unreachable", "error"]

USABLE_CONTEXT_FRACTION = 0.75


@dataclass
class Health(DataClassJsonMixin):
    """The answer of a readiness probe: ready or not, and why."""

    state: HealthState
    detail: str = ""

    @property
    def ready(self) -> bool:
        """True when the server can take requests now."""
        return self.state == "ok"


class Backend(ABC):
    """One local LLM server behind one synchronous interface.

    Use it as a context manager so its connections are closed::

        with new_backend(config) as backend:
            print(backend.infer(InferenceRequest(user_prompt="Hi")).text)
    """

    name: str = "backend"
    #: Where this kind of server listens unless told otherwise (None: no default).
    default_url: str | None = None

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: Any, session: Any = None) -> Self:
        """Build the backend from a ``ModelConfig`` (``session``: a requests.Session)."""

    @abstractmethod
    def infer(self, req: InferenceRequest) -> InferenceResponse:
        """Send a request and return the whole reply."""

    @abstractmethod
    def stream(self, req: InferenceRequest) -> Iterator[StreamDelta]:
        """Send a request streamed; the last delta carries the reply ``infer`` would give."""

    def infer_many(
        self,
        requests: Sequence[InferenceRequest],
        *,
        max_workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[InferenceResponse | PedroLLMError]:
        """Send many requests at once; return each one's reply or typed error, in order.

        They run on threads sharing this backend's connections, ``max_workers`` at a
        time (None: :meth:`parallel_slots`, what the server can work on at once). One
        request's failure loses none of the others: its place in the list holds its
        :class:`PedroLLMError`. ``progress(done, total)`` is called as each finishes.
        """
        items = list(requests)
        if max_workers is None:
            max_workers = self.parallel_slots()
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive integer, got {max_workers!r}")
        results: list[InferenceResponse | PedroLLMError | None] = [None] * len(items)
        if not items:
            return []
        done = 0
        with ThreadPoolExecutor(max_workers=min(max_workers, len(items)),
                                thread_name_prefix="pedrollm-infer-many") as pool:
            futures = {pool.submit(self.infer, req): i for i, req in enumerate(items)}
            for future in as_completed(futures):
                try:
                    results[futures[future]] = future.result()
                except PedroLLMError as exc:
                    results[futures[future]] = exc
                done += 1
                if progress is not None:
                    progress(done, len(items))
        return [r for r in results if r is not None]

    def parallel_slots(self) -> int:
        """How many requests the server works on at once (1 when it does not say)."""
        return 1

    # -- embeddings ------------------------------------------------------------------

    def embed(
        self,
        texts: str | Sequence[str],
        *,
        model: str | None = None,
        normalize: bool = False,
        batch_size: int | None = None,
    ) -> list[list[float]]:
        """Return one embedding per text, in the order given.

        ``texts`` is a list of strings; one string is taken as a list of one, so the
        result is always a list of vectors (``embed("hi")[0]`` is the vector). An empty
        list returns ``[]`` without a request; an item that is not a string is a
        ValueError naming its index. At most ``batch_size`` texts go in one request
        (default :data:`~pedrollm.embeddings.DEFAULT_EMBED_BATCH`, 32). ``model``
        overrides the configured model. ``normalize`` scales each vector to unit length
        here, whatever the server did. A server without embeddings raises
        :class:`UnsupportedFeature` saying what it needs (llama-server: ``--embeddings``);
        a text longer than llama-server's physical batch raises :class:`InputTooLarge`
        naming its index and ``--ubatch-size``.
        """
        from .embeddings import batches, check_batch_size, check_inputs, normalized

        items = check_inputs(texts)
        size = check_batch_size(batch_size)
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize: must be true or false, got {normalize!r}")
        out: list[list[float]] = []
        for start, chunk in batches(items, size):
            try:
                vectors = self.embed_batch(chunk, model=model)
            except InputTooLarge as exc:
                raise self._too_large(exc, chunk, start) from exc
            if normalize:
                vectors = [normalized(v) for v in vectors]
            out.extend(vectors)
        return out

    def embed_batch(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        """Send one embeddings request for checked texts; ``embed`` batches and normalises."""
        raise UnsupportedFeature(f"the {self.name} backend has no embeddings")

    def locate_too_large(self, texts: list[str], n_tokens: int | None) -> int | None:
        """Which of ``texts`` (its position) has ``n_tokens`` tokens, when the server can tell."""
        return None

    #: What to change on the server when a text is longer than its batch.
    too_large_hint = "shorten the text or raise the server's batch size"

    def _too_large(self, exc: InputTooLarge, chunk: list[str], start: int) -> InputTooLarge:
        """The same error, naming the text's index in the caller's list and the fix."""
        offset = 0 if len(chunk) == 1 else self.locate_too_large(chunk, exc.n_tokens)
        index = None if offset is None else start + offset
        which = (f"texts[{index}]" if index is not None
                 else f"one of texts[{start}..{start + len(chunk) - 1}]")
        message = (f"{which} has {exc.n_tokens} tokens, more than the {exc.batch_size} the "
                   f"server embeds in one batch; {self.too_large_hint} (server: {exc.message})")
        return InputTooLarge(message, n_tokens=exc.n_tokens, batch_size=exc.batch_size,
                             index=index, status=exc.status, error_type=exc.error_type,
                             body=exc.body, url=exc.url)

    def chat_body(self, req: InferenceRequest, *, stream: bool = False) -> dict[str, Any]:
        """Return the body ``infer`` would send for ``req``, without sending it."""
        raise UnsupportedFeature(f"the {self.name} backend does not show its request bodies")

    # -- token counting ------------------------------------------------------------

    def count_tokens(self, req: InferenceRequest) -> TokenCount:
        """Count the prompt tokens ``req`` would take, as sent (template and tools included).

        Exact (``exact=True``) where the server tokenizes for its clients (llama-server,
        vLLM); elsewhere an estimate (``exact=False``). Nothing is generated.
        """
        return estimate_request_tokens(req)

    def count_text_tokens(self, text: str) -> TokenCount:
        """Count the tokens of a piece of text with the server's tokenizer, else estimate."""
        return estimate_text_tokens(text)

    def reply_token_limit(self, req: InferenceRequest) -> int | None:
        """The most tokens the reply to ``req`` may take (its ``max_tokens``; None: no limit)."""
        return req.max_tokens

    def check_fits(self, req: InferenceRequest) -> TokenCount:
        """Count ``req``'s prompt and raise ContextOverflow if it and its reply cannot fit.

        The reply needs ``max_tokens`` (one token at least when unset), so a request fits
        when prompt + max_tokens <= the context window. Returns the count when it fits.
        """
        count = self.count_tokens(req)
        n_ctx = self.get_context_window()
        limit = self.reply_token_limit(req)
        reply = limit if limit is not None else 1
        if count.n + reply > n_ctx:
            about = "" if count.exact else "about "
            asked = f"max_tokens {limit}" if limit is not None else "at least 1 reply token"
            raise ContextOverflow.before_sending(
                f"request ({about}{count.n} prompt tokens + {asked}) exceeds the "
                f"{n_ctx}-token context window of the {self.name} server; shorten the "
                f"prompt or lower max_tokens (counted by {count.method})",
                n_prompt_tokens=count.n, n_ctx=n_ctx)
        return count

    # -- typed structured output ---------------------------------------------------

    def infer_structured(self, req: InferenceRequest, cls: type[T]) -> T:
        """Send ``req`` constrained to dataclass ``cls``'s JSON schema; return a ``cls``.

        The schema comes from the type hints (see :mod:`pedrollm.structured`); a field
        type with no JSON form raises TypeError naming it. A reply that does not decode
        raises StructuredOutputError with ``raw_text`` and ``reason``.
        """
        return parse_structured(self.infer(structured_request(req, cls)), cls)

    def stream_structured(self, req: InferenceRequest, cls: type[T]) -> StructuredStream[T]:
        """Stream ``req`` constrained to ``cls``'s schema: iterate the deltas, then ``.result``."""
        return StructuredStream(self.stream(structured_request(req, cls)), cls)

    @abstractmethod
    def get_context_window(self) -> int:
        """Return the context window in tokens (configured, else discovered)."""

    @abstractmethod
    def get_configured_usable_context(self) -> int | None:
        """Return the configured usable context, or None when not configured."""

    def get_usable_context(self) -> int:
        """Return the tokens a caller should fill: configured, else 75% of the window."""
        configured = self.get_configured_usable_context()
        if configured is not None:
            return configured
        return int(self.get_context_window() * USABLE_CONTEXT_FRACTION)

    @abstractmethod
    def supports_native_tools(self) -> bool:
        """True when the server returns tool calls natively (not only as text)."""

    @abstractmethod
    def health(self) -> Health:
        """Probe readiness once; never raises for a server's fault."""

    def wait_until_ready(self, timeout: float = 60.0, interval: float = 0.5) -> Health:
        """Poll ``health`` until ready; raise ModelLoading/ConnectionFailed/Timeout at the bound."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.health()
            if status.ready:
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                message = f"{self.name} server not ready after {timeout:g}s: {status.detail}"
                if status.state == "loading":
                    raise ModelLoading(message, status=503)
                if status.state == "unreachable":
                    raise ConnectionFailed(message)
                raise Timeout(message)
            time.sleep(min(interval, remaining))

    @abstractmethod
    def list_models(self) -> list[ModelInfo]:
        """Return the models the server offers."""

    @abstractmethod
    def server_info(self) -> ServerInfo:
        """Return what discovery learned: model, context window, tools, version."""

    @abstractmethod
    def close(self) -> None:
        """Release the backend's connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["Backend", "Health", "HealthState", "PedroLLMError", "USABLE_CONTEXT_FRACTION"]
