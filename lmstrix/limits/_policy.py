"""`Policy`: which labels may use which models and operations, checked before sending.

Client-side only: it keeps the users of one application in their lanes, but anyone
with the server's address and token can bypass it. The server's own API token
permissions are the real boundary.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, FrozenSet, Mapping, Optional, Tuple, Union

from ..errors import PermissionDeniedError
from ._facts import facts_of

if TYPE_CHECKING:
    from ..middleware import CallNext
    from ..transport._request import Request
    from ..transport._stdlib import Response

__all__ = ["ADMIN_OPERATIONS", "USER_OPERATIONS", "Policy", "Rule"]

USER_OPERATIONS: FrozenSet[str] = frozenset(
    ("models", "chat", "completion", "embedding", "respond")
)
"""What a label may do unless its rule says otherwise."""

ADMIN_OPERATIONS: FrozenSet[str] = frozenset(("load", "unload"))
"""Operations that change what the server holds in memory: only for admin rules."""


@dataclass(frozen=True)
class Rule:
    """What one label may do: ``models`` are key patterns (``fnmatch``: ``*``, ``?``),
    ``operations`` operation names; ``admin=True`` adds ``load`` and ``unload``."""

    models: Tuple[str, ...] = ("*",)
    operations: FrozenSet[str] = USER_OPERATIONS
    admin: bool = False

    @classmethod
    def coerce(cls, value: Union[Rule, Mapping[str, Any]]) -> Rule:
        """A rule from a :class:`Rule` or a mapping of its fields."""
        if isinstance(value, Rule):
            return value
        unknown = set(value) - {"models", "operations", "admin"}
        if unknown:
            raise ValueError(f"unknown policy rule field(s): {', '.join(sorted(unknown))}")
        models = value.get("models", ("*",))
        operations = value.get("operations", USER_OPERATIONS)
        return cls(
            (models,) if isinstance(models, str) else tuple(models),
            frozenset((operations,) if isinstance(operations, str) else operations),
            bool(value.get("admin", False)),
        )

    def allows(self, model: Optional[str], operation: str) -> bool:
        """True when this rule lets ``operation`` on ``model`` through."""
        allowed = self.operations | ADMIN_OPERATIONS if self.admin else self.operations
        if operation not in allowed and "*" not in allowed:
            return False
        if operation in ADMIN_OPERATIONS and not self.admin:
            return False
        if model is None:
            return True
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)


class Policy:
    """A middleware refusing, before anything is sent, what a label may not do.

    ``rules`` maps labels to a :class:`Rule` (or a mapping: ``{"models": [...],
    "operations": [...], "admin": True}``); ``default`` is the rule of labels not listed
    and of calls without a label (``None``: they may do nothing). Refusals raise
    :class:`~lmstrix.PermissionDeniedError`.
    """

    def __init__(
        self,
        rules: Mapping[str, Union[Rule, Mapping[str, Any]]],
        *,
        default: Union[Rule, Mapping[str, Any], None] = None,
    ) -> None:
        self.rules = {label: Rule.coerce(rule) for label, rule in rules.items()}
        self.default = None if default is None else Rule.coerce(default)

    def __repr__(self) -> str:
        return f"Policy(labels={sorted(self.rules)!r})"

    def rule_of(self, label: Optional[str]) -> Optional[Rule]:
        """The rule that applies to ``label``."""
        return self.rules.get(label, self.default) if label is not None else self.default

    def allows(self, label: Optional[str], model: Optional[str], operation: str) -> bool:
        """True when ``label`` may run ``operation`` on ``model``."""
        rule = self.rule_of(label)
        return rule is not None and rule.allows(model, operation)

    def check(self, label: Optional[str], model: Optional[str], operation: str) -> None:
        """Raise :class:`~lmstrix.PermissionDeniedError` unless the call is allowed."""
        if self.allows(label, model, operation):
            return
        what = f"{operation} on model {model!r}" if model is not None else operation
        raise PermissionDeniedError(
            f"the client-side policy does not let label {label!r} run {what}; "
            f"nothing was sent (labels with rules: {', '.join(sorted(self.rules)) or 'none'})",
            label=label,
            model=model,
            operation=operation,
        )

    def __call__(self, request: Request, call_next: CallNext) -> Response:
        facts = facts_of(request)
        self.check(facts.label, facts.model, facts.operation)
        return call_next(request)
