"""The simulator's state: loaded instances, loads and unloads, prompt cache, costs, counters.

Shared by every request thread; all state changes happen under one lock, and nothing
sleeps while holding it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence

from ._models import SimModel, auto_fit_context

if TYPE_CHECKING:
    from ._downloads import DownloadDesk

__all__ = ["Counters", "Engine", "InstanceInfo", "LoadResult", "SimError", "common_prefix_len"]

_CRASH_EXIT_CODE = "18446744072635810000"


class SimError(Exception):
    """An error reply: HTTP status, message, and the fields of the error object.

    The server renders it in the shape of the endpoint family (v1 error object,
    OpenAI error object, or a bare string when ``plain``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request",
        code: Optional[str] = None,
        param: Optional[str] = None,
        plain: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.plain = plain


@dataclass(frozen=True)
class Counters:
    """A snapshot of what the simulator has done since start (or ``reset_counters``).

    ``loads`` counts load attempts (JIT loads and failed ones included);
    ``prompt_tokens`` the prompt tokens sent, ``processed_tokens`` those actually
    processed after prompt-cache reuse; ``simulated_seconds`` the modelled time of
    all loads, unloads, prompt processing and generation; ``max_in_flight`` the most
    requests each instance served at once; ``connections`` the TCP connections that
    clients opened (keep-alive reuse shows as few connections for many requests).
    """

    loads: int = 0
    load_failures: int = 0
    unloads: int = 0
    requests: Dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    processed_tokens: int = 0
    generated_tokens: int = 0
    simulated_seconds: float = 0.0
    streams: int = 0
    connections: int = 0
    loads_by_model: Dict[str, int] = field(default_factory=dict)
    max_in_flight: Dict[str, int] = field(default_factory=dict)

    @property
    def total_requests(self) -> int:
        """All requests, every path together."""
        return sum(self.requests.values())


@dataclass(frozen=True)
class InstanceInfo:
    """A loaded instance as the simulator holds it (``ttl_s``: idle seconds before it is
    unloaded, ``None`` for never)."""

    id: str
    key: str
    context_length: int
    parallel: int
    config: Dict[str, Any]
    ttl_s: Optional[float] = None


@dataclass(frozen=True)
class LoadResult:
    """The outcome of a successful load."""

    instance_id: str
    model: SimModel
    requested_context: int
    context_length: int
    seconds: float
    config: Dict[str, Any]


@dataclass
class _Instance:
    id: str
    model: SimModel
    context_length: int
    config: Dict[str, Any]
    slots: threading.BoundedSemaphore
    cache_text: str = ""
    in_flight: int = 0
    ttl_s: Optional[float] = None
    last_used: float = 0.0

    def info(self) -> InstanceInfo:
        return InstanceInfo(
            self.id,
            self.model.key,
            self.context_length,
            self.model.parallel,
            dict(self.config),
            self.ttl_s,
        )


def common_prefix_len(a: str, b: str) -> int:
    """Length of the longest common prefix of ``a`` and ``b`` (binary search on C compares)."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class Engine:
    """Loaded instances, counters and the cost model behind one simulated server."""

    def __init__(self, models: Sequence[SimModel], *, seed: int, time_scale: float) -> None:
        self.models: Dict[str, SimModel] = {}
        for model in models:
            if model.key in self.models:
                raise ValueError(f"duplicate simulated model key {model.key!r}")
            self.models[model.key] = model
        self.seed = seed
        self.time_scale = time_scale
        self._lock = threading.RLock()
        self._instances: Dict[str, _Instance] = {}
        self._mut: Dict[str, Any] = {}
        self._clock = 0.0  # simulated seconds since start: work and idle time
        self.downloads: Optional[DownloadDesk] = None  # set by FakeLMStudio
        self.reset_counters()

    # -- counters ---------------------------------------------------------------------

    def reset_counters(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._mut = {
                "loads": 0,
                "load_failures": 0,
                "unloads": 0,
                "requests": {},
                "prompt_tokens": 0,
                "processed_tokens": 0,
                "generated_tokens": 0,
                "simulated_seconds": 0.0,
                "streams": 0,
                "connections": 0,
                "loads_by_model": {},
                "max_in_flight": {},
            }

    def counters(self) -> Counters:
        """Return a snapshot of the counters."""
        with self._lock:
            data: Dict[str, Any] = {
                k: dict(v) if isinstance(v, dict) else v for k, v in self._mut.items()
            }
        return Counters(**data)

    def _bump(self, name: str, amount: Any = 1, key: Optional[str] = None) -> None:
        with self._lock:
            if key is None:
                self._mut[name] += amount
            else:
                table = self._mut[name]
                table[key] = table.get(key, 0) + amount

    def count_request(self, path: str) -> None:
        """Count one request for ``path``."""
        self._bump("requests", 1, path)

    def count_stream(self) -> None:
        """Count one streamed response."""
        self._bump("streams")

    def count_connection(self) -> None:
        """Count one TCP connection a client opened."""
        self._bump("connections")

    def note_sent_tokens(self, tokens: int) -> None:
        """Count prompt tokens a client sent that were never processed (an overflow)."""
        self._bump("prompt_tokens", tokens)

    def charge(self, seconds: float, *, sleep: bool = True) -> None:
        """Add simulated ``seconds``; sleep ``seconds * time_scale`` for real when asked."""
        self._bump("simulated_seconds", seconds)
        self.advance(seconds)
        if sleep:
            self.sleep(seconds)

    def advance(self, seconds: float) -> None:
        """Move the simulated clock on by ``seconds`` (idle time: no work is counted)."""
        with self._lock:
            self._clock += max(0.0, seconds)

    @property
    def clock(self) -> float:
        """Simulated seconds since the start (TTLs and downloads run on this clock)."""
        with self._lock:
            return self._clock

    def expire_idle(self) -> List[str]:
        """Unload the instances idle for their TTL or longer; return their ids."""
        with self._lock:
            gone = [
                inst
                for inst in self._instances.values()
                if inst.ttl_s is not None
                and inst.in_flight == 0
                and self._clock - inst.last_used >= inst.ttl_s
            ]
            for inst in gone:
                del self._instances[inst.id]
                self._mut["unloads"] += 1
        return [inst.id for inst in gone]

    def sleep(self, seconds: float) -> None:
        """Sleep the real-time equivalent of simulated ``seconds`` (nothing at scale 0)."""
        if self.time_scale > 0 and seconds > 0:
            time.sleep(seconds * self.time_scale)

    # -- instances --------------------------------------------------------------------

    def instances(self) -> List[InstanceInfo]:
        """The loaded instances, oldest first."""
        with self._lock:
            return [inst.info() for inst in self._instances.values()]

    def instances_of(self, key: str) -> List[InstanceInfo]:
        """The loaded instances of model ``key``."""
        return [info for info in self.instances() if info.key == key]

    def _new_id(self, key: str) -> str:
        if key not in self._instances:
            return key
        n = 2
        while f"{key}:{n}" in self._instances:
            n += 1
        return f"{key}:{n}"

    def _register(self, model: SimModel, context_length: int, options: Dict[str, Any]) -> str:
        if model.type == "llm":
            config: Dict[str, Any] = {
                "context_length": context_length,
                "eval_batch_size": options.get("eval_batch_size", 512),
                "parallel": model.parallel,
                "flash_attention": options.get("flash_attention", True),
                "offload_kv_cache_to_gpu": options.get("offload_kv_cache_to_gpu", True),
            }
            if "num_experts" in options:
                config["num_experts"] = options["num_experts"]
        else:
            config = {"context_length": context_length}
        ttl = options.get("ttl")
        with self._lock:
            instance_id = self._new_id(model.key)
            self._instances[instance_id] = _Instance(
                instance_id,
                model,
                context_length,
                config,
                threading.BoundedSemaphore(model.parallel),
                ttl_s=float(ttl) if ttl else None,
                last_used=self._clock,
            )
        return instance_id

    def preload(self, key: str, context_length: Optional[int] = None) -> str:
        """Load ``key`` at once, free of charge and uncounted (test set-up); return its id."""
        model = self.model(key)
        return self._register(model, context_length or model.default_load_context, {})

    def model(self, key: str) -> SimModel:
        """Return the model ``key``; raise the load endpoint's 404 when there is none."""
        model = self.models.get(key)
        if model is None:
            raise SimError(
                404, f"Model {key} not found in downloaded models", type="model_not_found"
            )
        return model

    def load(
        self,
        key: str,
        context_length: Optional[int] = None,
        options: Optional[Dict[str, Any]] = None,
        *,
        jit: bool = False,
    ) -> LoadResult:
        """Load ``key`` the way LM Studio would, charging the load time.

        Raises:
            SimError: unknown model (404), guardrail refusal (400), crash (500).
        """
        model = self.model(key)
        options = options or {}
        requested = context_length or model.default_load_context
        self._bump("loads")
        self._bump("loads_by_model", 1, key)
        applied = requested
        if requested > model.loadable_context:
            if model.auto_fit:
                applied = auto_fit_context(model)
            elif model.crash_on_overload:
                self._bump("load_failures")
                self.charge(model.load_seconds(requested))
                raise SimError(
                    500,
                    f'Failed to load model "{key}". Error: The model has crashed without '
                    f"additional information. (Exit code: {_CRASH_EXIT_CODE})",
                    type="internal_error",
                    code="model_load_failed",
                )
            else:
                self._bump("load_failures")
                self.charge(model.load_base_s * 0.25)
                raise SimError(
                    400,
                    f'Failed to load model "{key}". Error: Model loading was stopped due to '
                    "insufficient system resources. Continuing to load the model would likely "
                    "overload your system and cause it to freeze. If you believe this is a "
                    "mistake, you can try to change the model loading guardrails in the "
                    "settings.",
                    type="invalid_request",
                )
        seconds = model.load_seconds(applied)
        self.charge(seconds)
        if jit:
            with self._lock:
                for inst in self._instances.values():
                    if inst.model.key == key:  # a concurrent JIT load won the race
                        return LoadResult(
                            inst.id, model, requested, inst.context_length, seconds, inst.config
                        )
        instance_id = self._register(model, applied, options)
        with self._lock:
            config = dict(self._instances[instance_id].config)
        return LoadResult(instance_id, model, requested, applied, seconds, config)

    def unload(self, instance_id: str) -> None:
        """Unload one instance, charging ``unload_s``.

        Raises:
            SimError: 404 when no instance has that id.
        """
        with self._lock:
            inst = self._instances.pop(instance_id, None)
        if inst is None:
            raise SimError(
                404,
                f'No loaded model instance with identifier "{instance_id}"',
                type="model_not_found",
            )
        self._bump("unloads")
        self.charge(inst.model.unload_s)

    def resolve(
        self, ref: Any, *, jit: bool, lenient: bool, ttl: Optional[float] = None
    ) -> _Instance:
        """Find the instance that answers a request naming ``ref`` (id or key), JIT-loading it
        (with ``ttl``, the request's idle TTL, which applies only to a load it causes).
        Each use restarts the instance's idle time.

        Raises:
            SimError: unknown model (404) or a failed JIT load.
        """
        inst = self._find(ref, jit=jit, lenient=lenient, ttl=ttl)
        with self._lock:
            inst.last_used = self._clock
        return inst

    def _find(self, ref: Any, *, jit: bool, lenient: bool, ttl: Optional[float]) -> _Instance:
        with self._lock:
            if isinstance(ref, str) and ref in self._instances:
                return self._instances[ref]
            key = ref if isinstance(ref, str) and ref in self.models else None
            if key is None and isinstance(ref, str) and "@" in ref:
                base = ref.split("@", 1)[0]
                key = base if base in self.models else None
            if key is not None:
                for inst in self._instances.values():
                    if inst.model.key == key:
                        return inst
            elif lenient and len(self._instances) == 1:
                return next(iter(self._instances.values()))
        if key is None or not jit:
            if ref is None:
                raise SimError(
                    400, "'model' is required", param="model", code="missing_required_parameter"
                )
            listing = "\n".join(f"  - {k}" for k in self.models)
            raise SimError(
                404,
                f'Model "{ref}" not found. Please specify a valid model.'
                f"\n\nYour models:\n{listing}",
                type="invalid_request_error",
                param="model",
                code="model_not_found",
            )
        result = self.load(key, options={"ttl": ttl} if ttl else None, jit=True)
        with self._lock:
            return self._instances[result.instance_id]

    @contextlib.contextmanager
    def slot(self, inst: _Instance) -> Iterator[None]:
        """Hold one of the instance's ``parallel`` slots; extra requests wait here."""
        with inst.slots:
            with self._lock:
                inst.in_flight += 1
                table = self._mut["max_in_flight"]
                table[inst.id] = max(table.get(inst.id, 0), inst.in_flight)
            try:
                yield
            finally:
                with self._lock:
                    inst.in_flight -= 1

    def process_prompt(self, inst: _Instance, cache_text: str, prompt_tokens: int) -> float:
        """Account a prompt on ``inst``: reuse the cached prefix, charge the rest.

        The cached prefix is counted with the model's tokenizer (a prefix never counts
        more than the whole). Returns the simulated seconds of prompt processing (already
        charged and slept).
        """
        model = inst.model
        with self._lock:
            common = common_prefix_len(inst.cache_text, cache_text)
            inst.cache_text = cache_text
        cached = model.tokens(cache_text[:common]) if common else 0
        new_tokens = max(1, prompt_tokens - cached)
        self._bump("prompt_tokens", prompt_tokens)
        self._bump("processed_tokens", new_tokens)
        seconds = model.prefill_seconds(new_tokens)
        self.charge(seconds)
        return seconds

    def generate(self, inst: _Instance, tokens: int, *, sleep: bool = True) -> float:
        """Account ``tokens`` generated tokens; return their simulated seconds."""
        self._bump("generated_tokens", tokens)
        seconds = inst.model.decode_s_per_token * tokens
        self.charge(seconds, sleep=sleep)
        return seconds
