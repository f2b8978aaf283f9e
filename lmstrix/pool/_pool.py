"""`Pool`: one client over several servers, routed by what each has loaded and can hold.

A call goes to a server that offers the model, preferring one where it is loaded (no
JIT load, no eviction) and, among those, the one with the most free parallel slots
(an instance's ``parallel`` less the calls in flight from this pool). When every
loaded slot is busy the call waits for one rather than queue on the server. A server
that fails ``allowed_fails`` times in a row sits out ``cooldown_s`` (LiteLLM's
defaults: 3 and 5 s); a call it failed moves to another server when nothing of the
answer has been read (never in the middle of a stream). Health checks are lazy: the
model lists are refreshed on use when older than ``refresh_s``, or by a background
thread after an explicit :meth:`Pool.start`.
"""

from __future__ import annotations

import copy
import functools
import itertools
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from .._closing import ClosedByWith
from .._log import logger
from ..client import Client
from ..client._chain import FitSkip, ModelChoice, chain_of, run_chain
from ..client._tools import ToolsMixin
from ..errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    ContextOverflowError,
    ModelLoadError,
    ModelNotFoundError,
)
from ._choice import offers, rank, suitable
from ._health import HealthChecks
from ._member import Member
from ._routing import Preference, check_prefer, required

if TYPE_CHECKING:
    from ..client import ChatStream
    from ..middleware import RetryPolicy
    from ..registry import Registry
    from ..types import Completion, LoadedInstance, ModelInfo

__all__ = ["Pool"]

log = logger(__name__)

T = TypeVar("T")
COOLDOWN_S = 5.0
ALLOWED_FAILS = 3
REFRESH_S = 30.0
SLOT_WAIT_S = 600.0


class Pool(ToolsMixin, ClosedByWith):
    """A :class:`~lmstrix.Client` over several servers, with every ``Client`` method.

    Args:
        servers: base URLs, or :class:`~lmstrix.Client` objects (each with its own
            token, transport and timeouts).
        registry: a :class:`~lmstrix.Registry`; with it, calls skip servers (and, in a
            fallback chain, models) whose tested working context cannot hold the prompt.
        tokens: per-server API tokens, by base URL, for servers given as URLs.
        cooldown_s, allowed_fails: a server failing ``allowed_fails`` calls in a row
            is left out for ``cooldown_s`` seconds.
        refresh_s: how long a server's model list is trusted before it is asked again.
        slot_wait_s: how long a call waits for a free slot when every loaded instance
            is busy, before it is sent anyway.
        requires: capabilities a model must list to get a call (``vision``,
            ``tool_use``, ``reasoning``); in a fallback chain, models without them are
            skipped.
        prefer: ``"slots"`` (most free slots first), ``"speed"`` (the server where the
            model was measured fastest first; the registry's speed profile), or a router
            function given a ``Candidate`` per server, returning a sort key.
        client_options: passed to each :class:`~lmstrix.Client` made from a URL.
    """

    def __init__(
        self,
        servers: Sequence[Union[str, Client]],
        *,
        registry: Optional[Registry] = None,
        tokens: Optional[Dict[str, str]] = None,
        cooldown_s: float = COOLDOWN_S,
        allowed_fails: int = ALLOWED_FAILS,
        refresh_s: float = REFRESH_S,
        slot_wait_s: float = SLOT_WAIT_S,
        requires: Iterable[str] = (),
        prefer: Preference = "slots",
        **client_options: Any,
    ) -> None:
        if isinstance(servers, (str, Client)) or not servers:
            raise ValueError("Pool needs a list of one or more servers (URLs or Clients)")
        check_prefer(prefer)
        tokens = tokens or {}
        self.registry = registry
        self.requires = required(requires)
        self.prefer = prefer
        self.slot_wait_s = slot_wait_s
        self.members: List[Member] = []
        for given in servers:
            if isinstance(given, Client):
                client = given
            else:
                token = tokens.get(given) or tokens.get(given.rstrip("/"))
                options = dict(client_options)
                if token:
                    options["api_token"] = token
                options.setdefault("registry", registry)  # for fit_context=True
                client = Client(given, **options)
            self.members.append(
                Member(
                    client,
                    refresh_s=refresh_s,
                    allowed_fails=max(1, allowed_fails),
                    cooldown_s=cooldown_s,
                )
            )
        urls = [m.url for m in self.members]
        if len(set(urls)) != len(urls):
            raise ValueError(f"a server is listed twice in the pool: {urls}")
        self._freed = threading.Condition()
        self._turn = itertools.count()
        self._health = HealthChecks(self.members)

    def __repr__(self) -> str:
        return f"Pool({[m.url for m in self.members]!r})"

    def routed(
        self, *, requires: Optional[Iterable[str]] = None, prefer: Optional[Preference] = None
    ) -> Pool:
        """A view of this pool (same servers, slots and health) with other routing options.

        ``pool.routed(requires=["vision"]).chat([...], image_prompt)`` skips models
        that do not list vision; ``pool.routed(prefer="speed")`` sends to the fastest.
        """
        view = copy.copy(self)
        if requires is not None:
            view.requires = required(requires)
        if prefer is not None:
            view.prefer = check_prefer(prefer)
        return view

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy of the first server's client (batches pace their retries by it)."""
        return self.members[0].client.retry_policy

    @property
    def servers(self) -> List[str]:
        """The base URLs of the pool's servers, in the order given."""
        return [m.url for m in self.members]

    def close(self) -> None:
        """Stop the health thread (if started) and close every server's connections."""
        self._health.stop()
        for member in self.members:
            member.client.close()

    def start(self, interval_s: float = 10.0) -> Pool:
        """Check every server's health and models every ``interval_s`` in a thread (until
        :meth:`close`)."""
        self._health.start(interval_s)
        return self

    # ------------------------------------------------------------------ models

    def models_by_server(self) -> Dict[str, List[ModelInfo]]:
        """Each reachable server's models (servers that do not answer are left out)."""
        found: Dict[str, List[ModelInfo]] = {}
        for member in self.members:
            try:
                found[member.url] = list(member.models(force=True).values())
            except APIError as exc:
                log.warning("pool: %s did not list its models: %s", member.url, exc)
        return found

    def list_models(self) -> List[ModelInfo]:
        """Every model any server offers, once, with the loaded instances of all servers."""
        import dataclasses

        merged: Dict[str, ModelInfo] = {}
        for models in self.models_by_server().values():
            for info in models:
                seen = merged.get(info.key)
                if seen is None:
                    merged[info.key] = info
                else:
                    instances = seen.loaded_instances + info.loaded_instances
                    merged[info.key] = dataclasses.replace(seen, loaded_instances=instances)
        return [merged[key] for key in sorted(merged)]

    def get_model(self, key: str) -> ModelInfo:
        """One model by key (from any server), or :class:`ModelNotFoundError`."""
        models = self.list_models()
        for info in models:
            if info.key == key or any(inst.id == key for inst in info.loaded_instances):
                return info
        raise self.members[0].client.model_not_found(key, [m.key for m in models])

    def loaded_instances(self) -> List[LoadedInstance]:
        """Every loaded instance on every reachable server."""
        return [i for info in self.list_models() for i in info.loaded_instances]

    def load(
        self,
        key: str,
        *,
        context_length: Optional[int] = None,
        server: Optional[str] = None,
        **options: Any,
    ) -> LoadedInstance:
        """Load ``key`` on ``server``, or on the server offering it with the least loaded."""
        member = self._member(server) if server else None
        if member is None:
            found = offers(self.members, key, tried=())
            if not found:
                raise self._missing(key)
            member = min(found, key=lambda pair: (len(pair[0].loaded()), pair[0].in_flight()))[0]
        try:
            return member.client.load(key, context_length=context_length, **options)
        finally:
            member.stale()

    def unload(self, instance_id: str) -> None:
        """Unload an instance from the server that has it."""
        for member in self.members:
            try:
                info = member.find(instance_id)
            except APIError:
                continue
            if info is not None and any(i.id == instance_id for i in info.loaded_instances):
                try:
                    member.client.unload(instance_id)
                finally:
                    member.stale()
                return
        raise self._missing(instance_id)

    # ------------------------------------------------------------------ calls

    def chat(self, model: ModelChoice, messages: Any, **params: Any) -> Completion:
        """Chat on the best server for ``model`` (or the first model of a chain that fits)."""
        return self._chained(  # type: ignore[no-any-return]
            model, messages, params, lambda c, k: c.chat(k, messages, **params), False
        )

    def complete(self, model: ModelChoice, prompt: str, **params: Any) -> Completion:
        """Text completion, routed as :meth:`chat` is."""
        return self._chained(  # type: ignore[no-any-return]
            model, prompt, params, lambda c, k: c.complete(k, prompt, **params), False
        )

    def stream_chat(self, model: ModelChoice, messages: Any, **params: Any) -> ChatStream:
        """A stream from the best server; a server that fails before answering is left."""
        return self._chained(  # type: ignore[no-any-return]
            model, messages, params, lambda c, k: c.stream_chat(k, messages, **params), True
        )

    def stream_complete(self, model: ModelChoice, prompt: str, **params: Any) -> ChatStream:
        """A streamed text completion, routed as :meth:`stream_chat` is."""
        return self._chained(  # type: ignore[no-any-return]
            model, prompt, params, lambda c, k: c.stream_complete(k, prompt, **params), True
        )

    def embed(self, model: ModelChoice, texts: Union[str, Sequence[str]]) -> List[List[float]]:
        """Embeddings from a server offering ``model``."""

        def call(c: Client, k: str) -> Any:
            return c.embed(k, texts)

        return self._chained(model, "", {}, call, False)  # type: ignore[no-any-return]

    def _chained(
        self,
        model: ModelChoice,
        prompt: Any,
        params: Dict[str, Any],
        call: Callable[[Client, str], Any],
        stream: bool,
    ) -> Any:
        keys, is_chain = chain_of(model)
        max_tokens = params.get("max_tokens")
        if not is_chain:
            return self._call(keys[0], call, stream, prompt, max_tokens, strict_fit=False)
        return run_chain(
            keys,
            lambda key: self._call(key, call, stream, prompt, max_tokens, strict_fit=True),
            where=f" on the pool {self.servers}",
        )

    def _call(
        self,
        key: str,
        call: Callable[[Client, str], Any],
        stream: bool,
        prompt: Any,
        max_tokens: Optional[int],
        *,
        strict_fit: bool,
    ) -> Any:
        """Send to the best server for ``key``; fail over before anything was read."""
        self._health.revive()
        tried: List[Member] = []
        last: Optional[BaseException] = None
        while True:
            picked = self._pick(key, tried, prompt, max_tokens, strict_fit)
            if picked is None:
                if last is not None:
                    raise last
                raise self._missing(key)
            member, info = picked
            tried.append(member)
            try:
                result = call(member.client, key)
            except (APIConnectionError, APIStatusError) as exc:
                self._release(member, info.key)
                if isinstance(exc, ModelNotFoundError):
                    member.stale()  # the server no longer has it: ask the others
                elif not _server_fault(exc):
                    raise
                else:
                    member.failed(str(exc))
                    log.info("pool: %s failed for %s (%s); trying another", member.url, key, exc)
                last = exc
                continue
            except BaseException:
                self._release(member, info.key)
                raise
            member.succeeded()
            if not info.loaded_instances:
                member.stale()  # a JIT load happened: see it on the next call
            if stream:  # the slot is freed when the stream lets go of its connection
                result.on_release(functools.partial(self._release, member, info.key))
                return result
            self._release(member, info.key)
            return result

    def _release(self, member: Member, key: str) -> None:
        member.release(key)
        with self._freed:
            self._freed.notify_all()

    def _pick(
        self,
        key: str,
        tried: Sequence[Member],
        prompt: Any,
        max_tokens: Optional[int],
        strict_fit: bool,
    ) -> Optional[Tuple[Member, ModelInfo]]:
        """The member to send ``key`` to (slot counted), or None when none is left."""
        waited = 0.0
        while True:
            found = offers(self.members, key, tried=tried) or offers(
                self.members, key, tried=tried, cooling=True
            )
            found, problems = suitable(
                key,
                found,
                requires=self.requires,
                registry=self.registry,
                prompt=prompt,
                max_tokens=max_tokens,
            )
            if not found:
                if problems and strict_fit:
                    raise FitSkip("; ".join(problems))
                if problems:
                    raise self._missing(key, problems)
                return None
            turn = next(self._turn)
            with self._freed:
                ranked = sorted(
                    found,
                    key=lambda offer: rank(
                        offer,
                        turn=turn,
                        members=self.members,
                        prefer=self.prefer,
                        registry=self.registry,
                    ),
                )
                member, info = ranked[0]
                slots, busy = member.slots(info)
                if slots == 0 or busy < slots or waited >= self.slot_wait_s:
                    member.acquire(info.key)
                    return member, info
                step = min(1.0, self.slot_wait_s - waited)
                self._freed.wait(step)
                waited += step

    def _member(self, server: str) -> Member:
        for member in self.members:
            if member.url == server.rstrip("/"):
                return member
        raise ValueError(f"{server} is not a server of this pool ({self.servers})")

    def _missing(self, key: str, problems: Sequence[str] = ()) -> ModelNotFoundError:
        why = f": {'; '.join(problems)}" if problems else " (or every one that does failed)"
        return ModelNotFoundError(
            f"no server of the pool {self.servers} can take {key!r}{why}; "
            "`lmstrix list` shows what each has",
            url=self.servers[0],
            status_code=404,
            model=key,
        )

    def status(self) -> List[Dict[str, Any]]:
        """Per server: URL, healthy, calls in flight, loaded models, last error."""
        return [
            {
                "server": m.url,
                "healthy": m.healthy(),
                "in_flight": m.in_flight(),
                "loaded": m.loaded(),
                "last_error": m.last_error,
            }
            for m in self.members
        ]

    def free_slots(self, key: Optional[str] = None) -> int:
        """Free parallel slots of loaded instances (of ``key``, or of every model)."""
        total = 0
        for member in self.members:
            if not member.healthy():
                continue
            try:
                models = member.models()
            except APIError:
                continue
            for info in models.values():
                if info.loaded_instances and (key is None or info.key == key):
                    slots, busy = member.slots(info)
                    total += max(0, slots - busy)
        return total

    def __iter__(self) -> Iterator[Client]:
        return iter([m.client for m in self.members])


def _server_fault(exc: BaseException) -> bool:
    """True for failures of the server rather than of the request or the model."""
    if isinstance(exc, APIConnectionError):
        return True
    if isinstance(exc, (ContextOverflowError, ModelLoadError, ModelNotFoundError)):
        return False
    return isinstance(exc, APIStatusError) and (exc.status_code >= 500 or exc.status_code == 429)
