"""Observers of model calls: :class:`Metrics`, :class:`AuditLog` and :func:`verify_audit_log`.

Each is a callable taking a :class:`~lmstrix.CallEvent`, attached with
``Client(observers=[...])``. OpenTelemetry spans and metrics are in
:mod:`lmstrix.observe.otel` (extra ``[otel]``), which this package does not import.
"""

from __future__ import annotations

from ._audit import AuditLog, AuditVerification, verify_audit_log
from ._metrics import Metrics

__all__ = ["AuditLog", "AuditVerification", "Metrics", "verify_audit_log"]
