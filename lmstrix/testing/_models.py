"""Simulated models: their hidden limits, the simulated tokenizer, how they answer, what they cost.

Everything here is pure (no sockets, no threads): the server in ``_server`` and the state
in ``_engine`` call into it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

from ..context import _probe
from ._echo import echo_answer
from ._embedding import embedding_vector
from ._tokenizer import TOKENIZERS, count_tokens

if TYPE_CHECKING:
    from ._tools import ToolScript

__all__ = [
    "Answer",
    "SimModel",
    "answer_prompt",
    "auto_fit_context",
    "chat_prompt_text",
    "count_tokens",
    "embedding_vector",
]

_ARITHMETIC_RE = re.compile(r"(-?[0-9]+(?:\.[0-9]+)?)\s*([-+*/x\u00d7])\s*(-?[0-9]+(?:\.[0-9]+)?)")


@dataclass(frozen=True)
class SimModel:
    """One simulated model: what it declares, what it really does, and what it costs.

    ``loadable_context`` (0 means ``declared_context``) is the largest load that works;
    ``working_context`` (0 means ``loadable_context``) is the largest prompt, in simulated
    tokens, at which the model still answers the probe correctly. ``tokenizer`` is
    ``"words"`` (realistic: words, pieces, digits and punctuation, about
    ``chars_per_token`` characters per token on prose) or ``"chars"`` (exactly
    ``ceil(len / chars_per_token)``). Costs are simulated seconds (see
    :class:`~lmstrix.testing.FakeLMStudio` ``time_scale``). ``vision`` and
    ``trained_for_tool_use`` are the capabilities the model lists report; a ``reasoning``
    model thinks before it answers (native chat gives reasoning items). ``tool_script``
    (a :class:`~lmstrix.testing.ToolScript`) says which tools it calls when offered some.
    ``echo_pattern`` (a regular expression) makes the model a deterministic
    "summarizer" that answers with the matches in the prompt (see ``_echo``).
    """

    key: str
    declared_context: int
    loadable_context: int = 0
    working_context: int = 0
    type: str = "llm"
    display_name: str = ""
    publisher: str = ""
    architecture: str = "llama"
    quantization: str = "Q4_K_M"
    bits_per_weight: float = 4.0
    format: str = "gguf"
    size_bytes: int = 0
    params_string: Optional[str] = None
    trained_for_tool_use: bool = False
    description: Optional[str] = None
    auto_fit: bool = False
    crash_on_overload: bool = False
    broken: bool = False
    truncates: bool = False
    noise: float = 0.0
    noise_band: float = 0.15
    chars_per_token: float = 4.0
    template_overhead_tokens: int = 12
    parallel: int = 4
    default_context: int = 4096
    load_base_s: float = 2.0
    load_s_per_1k_ctx: float = 0.25
    prefill_s_per_1k_tokens: float = 0.4
    decode_s_per_token: float = 0.02
    unload_s: float = 0.2
    tokenizer: str = "words"
    vision: bool = False
    reasoning: bool = False
    tool_script: Optional[ToolScript] = None
    echo_pattern: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("SimModel.key must not be empty")
        if self.type not in ("llm", "embedding"):
            raise ValueError(f"SimModel.type must be 'llm' or 'embedding', got {self.type!r}")
        if self.declared_context < 1:
            raise ValueError(f"SimModel {self.key}: declared_context must be positive")
        if self.chars_per_token <= 0 or self.parallel < 1:
            raise ValueError(f"SimModel {self.key}: chars_per_token and parallel must be > 0")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(
                f"SimModel {self.key}: unknown tokenizer {self.tokenizer!r}; "
                f"use one of {list(TOKENIZERS)}"
            )
        if self.echo_pattern is not None:
            try:
                re.compile(self.echo_pattern)
            except re.error as exc:
                raise ValueError(f"SimModel {self.key}: bad echo_pattern: {exc}") from exc
        loadable = self.loadable_context or self.declared_context
        fills = {
            "loadable_context": loadable,
            "working_context": self.working_context or loadable,
            "display_name": self.display_name or self.key.rsplit("/", 1)[-1],
            "publisher": self.publisher
            or (self.key.split("/", 1)[0] if "/" in self.key else "lmstrix"),
            "size_bytes": self.size_bytes or _default_size(self),
        }
        for name, value in fills.items():
            object.__setattr__(self, name, value)

    @property
    def default_load_context(self) -> int:
        """The size a JIT or argument-less load asks for: ``default_context`` up to declared."""
        return min(self.default_context, self.declared_context)

    def tokens(self, text: str) -> int:
        """Count ``text`` with this model's simulated tokenizer."""
        return count_tokens(text, self.chars_per_token, self.tokenizer)

    def load_seconds(self, context_length: int) -> float:
        """Simulated seconds a load (or a crash) at ``context_length`` takes."""
        return self.load_base_s + self.load_s_per_1k_ctx * context_length / 1000.0

    def prefill_seconds(self, new_tokens: int) -> float:
        """Simulated seconds to process ``new_tokens`` prompt tokens."""
        return self.prefill_s_per_1k_tokens * new_tokens / 1000.0


def _default_size(model: SimModel) -> int:
    """A plausible file size: parameters times bits per weight (1B parameters if unknown)."""
    params = 1.0
    text = (model.params_string or "").strip().upper()
    if text.endswith("B"):
        try:
            params = float(text[:-1])
        except ValueError:
            params = 1.0
    if model.type == "embedding":
        params = 0.15
    return int(params * 1e9 * model.bits_per_weight / 8)


def auto_fit_context(model: SimModel) -> int:
    """The context an auto-fitting load applies: the largest multiple of 256 <= loadable."""
    return max(256, model.loadable_context // 256 * 256)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def chat_prompt_text(messages: Any, tokens: Callable[[str], int]) -> Tuple[str, str, int]:
    """Flatten chat ``messages`` to (cache text, last user text, content tokens).

    Content tokens are counted per message with ``tokens`` (a model's
    :meth:`SimModel.tokens`); the chat template's overhead is not included.

    Raises:
        ValueError: ``messages`` is not a non-empty list of ``{"role", "content"}`` objects.
    """
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty array")
    flat: List[str] = []
    last_user = ""
    total = 0
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ValueError("each message must be an object with a 'role' and a 'content'")
        text = _content_text(message.get("content"))
        total += tokens(text)
        flat.append(f"<|{message['role']}|>{text}\n")
        if message["role"] == "user":
            last_user = text
    return "".join(flat), last_user, total


def _hash_unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64)


def _wrong_secret(secret: str, *salt: str) -> str:
    value = 100000 + int(_hash_unit("wrong", secret, *salt) * 900000)
    if str(value) == secret:
        value = 100000 + (value - 100000 + 1) % 900000
    return str(value)


@dataclass(frozen=True)
class Answer:
    """What a simulated model replies: the words it would generate and why."""

    words: Tuple[str, ...]
    probe_secret: Optional[str] = None
    probe_correct: Optional[bool] = None


def _words(text: str) -> Tuple[str, ...]:
    return tuple(text.split())


def _format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def _arithmetic(text: str) -> Optional[str]:
    match = _ARITHMETIC_RE.search(text)
    if match is None:
        return None
    left, op, right = float(match.group(1)), match.group(2), float(match.group(3))
    if op == "+":
        return _format_number(left + right)
    if op == "-":
        return _format_number(left - right)
    if op in ("*", "x", "\u00d7"):
        return _format_number(left * right)
    if right == 0:
        return "undefined"
    return _format_number(left / right)


def answer_prompt(
    model: SimModel,
    text: str,
    prompt_tokens: int,
    *,
    seed: int,
    truncated: bool = False,
) -> Answer:
    """Decide what ``model`` answers to ``text`` (the last user message, or a raw prompt).

    A probe is answered right when ``prompt_tokens <= working_context``, the model is not
    broken, nothing was truncated, and the noise draw (a hash of seed, model key and text,
    so a given prompt always gets the same answer) does not fail it. Arithmetic questions
    get the result; anything else a short deterministic sentence.
    """
    secret = _probe.parse_probe(text)
    if secret is not None:
        correct = not (truncated or model.broken or prompt_tokens > model.working_context)
        if correct and model.noise > 0:
            band_floor = model.working_context * (1.0 - model.noise_band)
            if prompt_tokens > band_floor:
                draw = _hash_unit("noise", str(seed), model.key, text)
                correct = draw >= model.noise
        reply = secret if correct else _wrong_secret(secret, model.key, str(prompt_tokens))
        return Answer((reply,), secret, correct)
    if model.echo_pattern is not None:
        return Answer(echo_answer(model.echo_pattern, text))
    result = _arithmetic(text)
    if result is not None:
        return Answer((result,))
    head = " ".join(text.split()[:8]) or "(empty prompt)"
    return Answer(_words(f"Simulated answer from {model.key} to: {head}"))
