"""The simulator's native chat, ``POST /api/v1/chat`` (API reference section 4.4).

Served only in the ``"v1"`` API mode. It JIT-loads the model (at the request's
``context_length`` when given), answers like the OpenAI endpoints do, adds reasoning
items for models made with ``SimModel(reasoning=True)``, and keeps stored answers
(``store``, default true) so that ``previous_response_id`` continues a conversation:
the prompt then holds the whole history, so its token count grows turn by turn.
Streaming sends the named events (``chat.start``, ``model_load.*`` when the request
loads the model, ``prompt_processing.*``, ``reasoning.*``, ``message.*``, ``error``,
``chat.end``); an error after the stream started is an ``error`` event followed by
``chat.end`` with whatever was generated.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ..client._native import OPTIONS
from ._engine import Engine, SimError, _Instance
from ._models import SimModel, answer_prompt

if TYPE_CHECKING:
    from ._routes import Exchange, StreamSink

__all__ = ["native_chat"]

KEYS = OPTIONS | {"model", "input", "stream"}
"""The request fields the endpoint takes (the reference's table); others are refused."""
REASONING = ("off", "low", "medium", "high", "on")
_LOAD_STEPS = (0.25, 0.5, 0.75, 1.0)
_PROMPT_STEPS = (0.5, 1.0)

Turn = Tuple[str, str]  # (role, text)


class _Stored:
    """The stored answers of one simulated server: response id -> (model key, history)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: Dict[str, Tuple[str, Tuple[Turn, ...]]] = {}


_STORES: weakref.WeakKeyDictionary[Engine, _Stored] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def _store_of(engine: Engine) -> _Stored:
    with _STORES_LOCK:
        found = _STORES.get(engine)
        if found is None:
            found = _STORES[engine] = _Stored()
        return found


def _bad(message: str, param: Optional[str] = None, code: Optional[str] = None) -> SimError:
    return SimError(400, message, type="invalid_request", param=param, code=code)


def _input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        raise _bad("'input' must be a string or a non-empty array of items", "input")
    parts = []
    for item in value:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind in ("message", "text") and isinstance(item.get("content"), str):
            parts.append(item["content"])
        elif kind == "image" and isinstance(item.get("data_url"), str):
            parts.append("[image]")
        else:
            raise _bad(f"unsupported input item {str(item)[:80]}", "input")
    return "\n".join(parts)


def _checked(body: Any) -> Dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object")
    unknown = sorted(k for k in body if k not in KEYS)
    if unknown:
        names = ", ".join(f"'{k}'" for k in unknown)
        raise _bad(f"Unrecognized key(s) in object: {names}", code="unrecognized_keys")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _bad('"model" is required', "model", "missing_required_parameter")
    if "input" not in body:
        raise _bad('"input" is required', "input", "missing_required_parameter")
    ctx = body.get("context_length")
    if ctx is not None and (isinstance(ctx, bool) or not isinstance(ctx, int) or ctx < 1):
        raise _bad("'context_length' must be a positive integer", "context_length")
    previous = body.get("previous_response_id")
    if previous is not None and not (isinstance(previous, str) and previous.startswith("resp_")):
        raise _bad("'previous_response_id' must start with 'resp_'", "previous_response_id")
    if body.get("reasoning") is not None and body["reasoning"] not in REASONING:
        raise _bad(f"'reasoning' must be one of {', '.join(REASONING)}", "reasoning")
    return body


def _history(ex: Exchange, body: Dict[str, Any], key: str) -> Tuple[Turn, ...]:
    previous = body.get("previous_response_id")
    if previous is None:
        return ()
    store = _store_of(ex.engine)
    with store.lock:
        found = store.items.get(previous)
    if found is None:
        raise _bad(f"No stored response with id '{previous}'", "previous_response_id")
    return found[1]


def _reasoning_on(model: SimModel, body: Dict[str, Any]) -> bool:
    asked = body.get("reasoning")
    if not model.reasoning:
        if asked not in (None, "off"):
            raise _bad(
                f"Model '{model.key}' does not support reasoning setting '{asked}'", "reasoning"
            )
        return False
    return asked != "off"


class _Turn:
    """One native chat request being answered (stream or not)."""

    def __init__(self, ex: Exchange, body: Dict[str, Any]) -> None:
        self.ex = ex
        self.body = body
        self.engine = ex.engine
        key = body["model"]
        self.key = key.split("@", 1)[0]
        model = self.engine.models.get(self.key)
        if model is None:
            raise SimError(404, f"Model '{key}' not found", type="model_not_found")
        self.model = model
        self.text = _input_text(body.get("input"))
        self.history = _history(ex, body, self.key)
        self.think = _reasoning_on(model, body)
        self.instance_id = key
        self.load_s: Optional[float] = None
        self.output: List[Dict[str, Any]] = []
        self.stats: Dict[str, Any] = {}

    def instance(self) -> _Instance:
        """The loaded instance, JIT-loading it (at ``context_length``) when there is none."""
        engine = self.engine
        if not engine.instances_of(self.key):
            loaded = engine.load(self.key, self.body.get("context_length"), jit=True)
            self.load_s = round(loaded.seconds, 3)
        inst = engine.resolve(self.key, jit=True, lenient=False)
        self.instance_id = inst.id
        return inst

    def prompt(self) -> Tuple[str, int]:
        """The whole prompt (system prompt, history, new input) and its token count."""
        turns: List[Turn] = []
        system = self.body.get("system_prompt")
        if isinstance(system, str) and system:
            turns.append(("system", system))
        turns.extend(self.history)
        turns.append(("user", self.text))
        flat = "".join(f"<|{role}|>{text}\n" for role, text in turns)
        tokens = sum(self.model.tokens(text) for _, text in turns)
        return flat, tokens + self.model.template_overhead_tokens

    def words(self, prompt_tokens: int) -> Tuple[List[str], List[str]]:
        """(reasoning words, answer words), cut to ``max_output_tokens`` together."""
        answer = list(
            answer_prompt(self.model, self.text, prompt_tokens, seed=self.engine.seed).words
        )
        thinking: List[str] = []
        if self.think:
            head = " ".join(self.text.split()[:6]) or "nothing"
            thinking = f"The user asks: {head}. Answer briefly.".split()
        limit = self.body.get("max_output_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
            thinking = thinking[:limit]
            answer = answer[: max(0, limit - len(thinking))]
        return thinking, answer

    def result(self) -> Dict[str, Any]:
        """The answer body (``chat.end``'s ``result``), storing it when ``store`` is on."""
        reply: Dict[str, Any] = {
            "model_instance_id": self.instance_id,
            "output": self.output,
            "stats": self.stats,
        }
        if self.body.get("store", True) is not False and self.stats:
            response_id = "resp_" + uuid.uuid4().hex + uuid.uuid4().hex[:16]
            answer = "".join(i["content"] for i in self.output if i["type"] == "message")
            history = (*self.history, ("user", self.text), ("assistant", answer))
            store = _store_of(self.engine)
            with store.lock:
                store.items[response_id] = (self.key, history)
            reply["response_id"] = response_id
        return reply

    def figures(self, prompt_tokens: int, thinking: int, answer: int, prefill_s: float) -> None:
        """Fill ``stats`` as the server reports them."""
        tokens = thinking + answer
        decode_s = self.model.decode_s_per_token * tokens
        self.stats = {
            "input_tokens": prompt_tokens,
            "total_output_tokens": tokens,
            "reasoning_output_tokens": thinking,
            "tokens_per_second": round(tokens / decode_s, 3) if decode_s > 0 else 0.0,
            "time_to_first_token_seconds": round(prefill_s, 4),
        }
        if self.load_s is not None:
            self.stats["model_load_time_seconds"] = self.load_s


def _overflow(prompt_tokens: int, context: int) -> SimError:
    return _bad(
        "The number of tokens to keep from the initial prompt is greater than the context "
        f"length (n_keep: {prompt_tokens}>= n_ctx: {context}). Try to load the model with a "
        "larger context length, or provide a shorter input."
    )


def _answer(turn: _Turn) -> Dict[str, Any]:
    inst = turn.instance()
    engine = turn.engine
    with engine.slot(inst):
        flat, prompt_tokens = turn.prompt()
        if prompt_tokens > inst.context_length:
            engine.note_sent_tokens(prompt_tokens)
            raise _overflow(prompt_tokens, inst.context_length)
        prefill_s = engine.process_prompt(inst, flat, prompt_tokens)
        thinking, words = turn.words(prompt_tokens)
        engine.generate(inst, len(thinking) + len(words))
    if thinking:
        turn.output.append({"type": "reasoning", "content": " ".join(thinking)})
    turn.output.append({"type": "message", "content": " ".join(words)})
    turn.figures(prompt_tokens, len(thinking), len(words), prefill_s)
    return turn.result()


def _send(sink: StreamSink, kind: str, **fields: Any) -> bool:
    return sink.content({"type": kind, **fields}, kind)


def _pieces(sink: StreamSink, kind: str, words: List[str]) -> bool:
    if not _send(sink, f"{kind}.start"):
        return False
    for i, word in enumerate(words):
        if not _send(sink, f"{kind}.delta", content=word if i == 0 else " " + word):
            return False
    return _send(sink, f"{kind}.end")


def _stream(turn: _Turn) -> None:
    engine = turn.engine
    sink = turn.ex.open_stream()
    engine.count_stream()
    if not _send(sink, "chat.start", model_instance_id=turn.key):
        return
    try:
        loading = not engine.instances_of(turn.key)
        if loading and not _send(sink, "model_load.start", model_instance_id=turn.key):
            return
        inst = turn.instance()
        if loading:
            for step in _LOAD_STEPS:
                if not _send(sink, "model_load.progress", progress=step):
                    return
            if not _send(sink, "model_load.end", load_time_seconds=turn.load_s):
                return
        if not _stream_answer(turn, sink, inst):
            return
    except SimError as err:
        error: Dict[str, Any] = {"type": err.type, "message": err.message}
        if err.code is not None:
            error["code"] = err.code
        if err.param is not None:
            error["param"] = err.param
        if not _send(sink, "error", error=error):
            return
    _send(sink, "chat.end", result=turn.result())
    sink.finish([], done=False)


def _stream_answer(turn: _Turn, sink: StreamSink, inst: _Instance) -> bool:
    engine = turn.engine
    with engine.slot(inst):
        flat, prompt_tokens = turn.prompt()
        if not _send(sink, "prompt_processing.start"):
            return False
        if prompt_tokens > inst.context_length:
            engine.note_sent_tokens(prompt_tokens)
            raise _overflow(prompt_tokens, inst.context_length)
        prefill_s = engine.process_prompt(inst, flat, prompt_tokens)
        for step in _PROMPT_STEPS:
            if not _send(sink, "prompt_processing.progress", progress=step):
                return False
        if not _send(sink, "prompt_processing.end"):
            return False
        thinking, words = turn.words(prompt_tokens)
        for kind, part in (("reasoning", thinking), ("message", words)):
            if kind == "reasoning" and not part:
                continue
            engine.generate(inst, len(part))
            if not _pieces(sink, kind, part):
                return False
            turn.output.append({"type": kind, "content": " ".join(part)})
    turn.figures(prompt_tokens, len(thinking), len(words), prefill_s)
    return True


def native_chat(ex: Exchange, body: Any) -> None:
    """Answer ``POST /api/v1/chat`` (JSON, or named events when ``stream`` is true)."""
    turn = _Turn(ex, _checked(body))
    if body.get("stream") is True:
        _stream(turn)
    else:
        ex.send_json(200, _answer(turn))
