"""Client-side governance middleware: rate limits, daily budgets, a policy, usage records.

``RateLimit`` and ``Budget`` count tokens (estimated before sending, reconciled with the
server's usage after), in this process or, given a path, in a SQLite file shared by
processes; ``Policy`` says which labels (``Client(label=...)``) may use which models and
operations; ``UsageLog`` writes billing-style records; ``SLAWatch`` is an observer that
raises events when p95 time to first token or the error rate passes a threshold. All of
it is client-side: the server's own API token permissions are the real boundary. See
``docs/user-guide/governance.md``.
"""

from __future__ import annotations

from ._facts import estimate_tokens
from ._policy import ADMIN_OPERATIONS, USER_OPERATIONS, Policy, Rule
from ._quota import Budget, RateLimit
from ._sla import SLAEvent, SLAWatch
from ._usage import UsageLog, UsageRecord

__all__ = [
    "ADMIN_OPERATIONS",
    "USER_OPERATIONS",
    "Budget",
    "Policy",
    "RateLimit",
    "Rule",
    "SLAEvent",
    "SLAWatch",
    "UsageLog",
    "UsageRecord",
    "estimate_tokens",
]
