"""``FakeLMStudio``: the simulated LM Studio server as a context manager, and ``serve``."""

from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional, Sequence

from ._downloads import DownloadDesk, demo_catalog
from ._engine import Counters, Engine, InstanceInfo
from ._faults import Fault, FaultBook
from ._fleet import demo_fleet
from ._models import SimModel
from ._routes import API_MODES, OVERFLOW_STREAM_MODES, Settings
from ._server import ReceivedRequest, Recorder, SimServer

__all__ = ["FakeLMStudio", "serve"]

_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class FakeLMStudio:
    """A simulated LM Studio server on ``127.0.0.1``, for tests, benchmarks and demos.

    Nothing listens until :meth:`start` (or ``with``). ``api`` picks the server
    generation: ``"v1"`` (LM Studio >= 0.4: ``/api/v1``, ``/api/v0`` and ``/v1``),
    ``"v0"`` (0.3.x: ``/api/v0`` and ``/v1``, JIT loading only) or ``"openai"`` (``/v1``
    only, every model loaded at its default context, like llama.cpp's server).
    ``time_scale`` turns simulated seconds into real sleeps (0 = never sleep); ``seed``
    drives the noisy models. ``overflow_stream`` picks how a streamed prompt that
    overflows the context is answered: ``"error_event"`` or ``"empty"``. ``catalog``
    lists the models ``/api/v1/models/download`` offers (default: two small ones),
    downloaded at ``download_bytes_per_s`` of simulated time; a model named in
    ``failing_downloads`` fails half-way. ``load_ttl`` makes ``/api/v1/models/load`` take
    a ``ttl`` (LM Studio documents none there and rejects unknown keys); a ``ttl`` on an
    inference request that JIT-loads the model is always honoured. An instance with a TTL
    is unloaded once idle that long on the simulated clock (see :meth:`advance`).
    """

    def __init__(
        self,
        models: Optional[Sequence[SimModel]] = None,
        *,
        api: str = "v1",
        api_token: Optional[str] = None,
        port: int = 0,
        time_scale: float = 0.0,
        seed: int = 0,
        lenient_model_names: bool = False,
        unknown_path_status: Optional[int] = None,
        overflow_stream: str = "error_event",
        keep_received: int = 1000,
        catalog: Optional[Sequence[SimModel]] = None,
        download_bytes_per_s: float = 250e6,
        failing_downloads: Sequence[str] = (),
        load_ttl: bool = False,
    ) -> None:
        if api not in API_MODES:
            raise ValueError(f"api must be one of {API_MODES}, got {api!r}")
        if overflow_stream not in OVERFLOW_STREAM_MODES:
            raise ValueError(
                f"overflow_stream must be one of {OVERFLOW_STREAM_MODES}, got {overflow_stream!r}"
            )
        if time_scale < 0:
            raise ValueError("time_scale must not be negative")
        self._engine = Engine(
            list(demo_fleet() if models is None else models), seed=seed, time_scale=time_scale
        )
        self._engine.downloads = DownloadDesk(
            self._engine,
            demo_catalog() if catalog is None else catalog,
            bytes_per_second=download_bytes_per_s,
            failing=failing_downloads,
        )
        self._settings = Settings(
            api=api,
            api_token=api_token,
            lenient_model_names=lenient_model_names,
            unknown_path_status=unknown_path_status,
            overflow_stream=overflow_stream,
            load_ttl=load_ttl,
        )
        self._port = port
        self._faults = FaultBook()
        self._recorder = Recorder(keep_received)
        self._server: Optional[SimServer] = None
        self._thread: Optional[threading.Thread] = None
        if api == "openai":  # an OpenAI-only server has everything loaded, no load endpoint
            for model in self._engine.models.values():
                self._engine.preload(model.key)

    def __repr__(self) -> str:
        state = self.base_url if self._server is not None else "stopped"
        return f"<FakeLMStudio api={self._settings.api} {state}>"

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> FakeLMStudio:
        """Bind 127.0.0.1 and serve in a daemon thread; return ``self``.

        Raises:
            RuntimeError: already started.
            OSError: the port is taken.
        """
        if self._server is not None:
            raise RuntimeError("FakeLMStudio is already running")
        server = SimServer(
            self._port,
            engine=self._engine,
            settings=self._settings,
            faults=self._faults,
            recorder=self._recorder,
        )
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeLMStudio:{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (safe to call twice)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeLMStudio:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port actually bound.

        Raises:
            RuntimeError: not started.
        """
        if self._server is None:
            raise RuntimeError("FakeLMStudio is not running; call start() or use 'with'")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # -- inspection and control -------------------------------------------------------

    @property
    def api(self) -> str:
        """The simulated server generation (``"v1"``, ``"v0"`` or ``"openai"``)."""
        return self._settings.api

    @property
    def models(self) -> List[SimModel]:
        """The simulated models, in listing order."""
        return list(self._engine.models.values())

    @property
    def counters(self) -> Counters:
        """A snapshot of the counters (loads, requests, tokens, simulated seconds...)."""
        return self._engine.counters()

    def reset_counters(self) -> None:
        """Zero every counter."""
        self._engine.reset_counters()

    @property
    def received(self) -> List[ReceivedRequest]:
        """The requests received, oldest first, as ``(method, path, headers, body)``.

        Header names are lower-case; ``authorization`` and ``x-api-key`` are never kept.
        ``body`` is the parsed JSON (``None`` without a body; the raw text if invalid).
        """
        return self._recorder.items()

    def clear_received(self) -> None:
        """Forget the recorded requests."""
        self._recorder.clear()

    def inject(self, fault: Fault) -> None:
        """Arm ``fault`` for ``fault.times`` matching requests after its ``skip``."""
        self._faults.arm(fault)

    def faults_pending(self) -> List[Fault]:
        """Armed faults not used up yet (``times``, ``skip``: what remains); ``[]`` once fired."""
        return self._faults.pending()

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._faults.clear()

    @property
    def clock(self) -> float:
        """Simulated seconds since the start: work (loads, prompts, answers) and idle time."""
        return self._engine.clock

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated idle time pass: TTLs run out (checked at the next
        request) and downloads move on. Nothing sleeps."""
        self._engine.advance(seconds)

    def loaded(self) -> List[InstanceInfo]:
        """The loaded instances, oldest first."""
        return self._engine.instances()

    def preload(self, key: str, context_length: Optional[int] = None) -> str:
        """Load ``key`` directly (no HTTP, not counted, no cost) and return the instance id.

        Raises:
            LookupError: no simulated model has that key.
        """
        if key not in self._engine.models:
            raise LookupError(f"no simulated model {key!r}")
        return self._engine.preload(key, context_length)


def serve(
    host: str = "127.0.0.1",
    port: int = 1234,
    models: Optional[Sequence[SimModel]] = None,
    *,
    on_ready: Optional[Callable[[FakeLMStudio], None]] = None,
    stop_event: Optional[threading.Event] = None,
    **options: Any,
) -> None:
    """Run a simulated server in the foreground until Ctrl-C (or ``stop_event`` is set).

    ``options`` are :class:`FakeLMStudio` keyword arguments; ``on_ready`` is called with
    the running server (to print its URL, for instance).

    Raises:
        ValueError: ``host`` is not a loopback name (the simulator never listens elsewhere).
    """
    if host not in _LOOPBACK_NAMES:
        raise ValueError(f"the simulator only listens on 127.0.0.1, not {host!r}")
    event = stop_event or threading.Event()
    with FakeLMStudio(models, port=port, **options) as fake:
        if on_ready is not None:
            on_ready(fake)
        try:
            while not event.wait(0.25):
                pass
        except KeyboardInterrupt:
            return
