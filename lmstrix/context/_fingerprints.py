"""Fingerprints as the server shows them now, and marking records whose fingerprint changed."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from .._log import logger
from ..registry._fingerprint import Fingerprint, fingerprint_changes, neighbours_of

if TYPE_CHECKING:
    from ..client._client import Client
    from ..registry._records import ModelRecord
    from ..registry._registry import Registry
    from ..types import LoadedInstance, ModelInfo

__all__ = ["current_fingerprint", "mark_stale"]

log = logger(__name__)


def current_fingerprint(
    client: Client,
    info: ModelInfo,
    *,
    instance: Optional[LoadedInstance] = None,
    models: Optional[Sequence[ModelInfo]] = None,
    server_version: Optional[str] = None,
    neighbours: Optional[Tuple[str, ...]] = None,
) -> Fingerprint:
    """The fingerprint the server shows now for ``info``.

    ``instance`` is the instance under test (its parallel slots are recorded; without it,
    the first loaded instance of the model, if any, gives them). ``models`` is a model
    list for the neighbours (or give ``neighbours`` directly; none are recorded without
    either).
    """
    parallel = instance.parallel if instance is not None else None
    if parallel is None and instance is None and info.loaded_instances:
        parallel = info.loaded_instances[0].parallel
    own = instance.id if instance is not None else None
    return Fingerprint(
        api=client.server_api,
        server_version=server_version,
        format=info.format,
        quantization=info.quantization,
        size_bytes=info.size_bytes,
        parallel=parallel,
        neighbours=neighbours
        if neighbours is not None
        else (neighbours_of(models, own) if models is not None else ()),
    )


def mark_stale(client: Client, registry: Registry) -> Dict[str, List[str]]:
    """Compare every tested record of ``client``'s server with the server; flag changes.

    Records whose fingerprint changed get ``stale=True`` and a ``stale_reason`` naming
    the changes (one write per changed record; nothing else is touched). Returns
    ``{model key: changes}`` for the records found stale now. One model list request.
    """
    infos = {info.key: info for info in client.list_models()}
    server = client.base_url
    found: Dict[str, List[str]] = {}
    for record in registry.records(server=server):
        info = infos.get(record.key)
        if info is None or record.fingerprint is None or record.stale:
            continue
        changes = fingerprint_changes(record.fingerprint, current_fingerprint(client, info))
        if not changes:
            continue
        found[record.key] = changes
        reason = "fingerprint changed: " + "; ".join(changes)
        log.warning("%s on %s: %s", record.key, server, reason)

        def apply(rec: Optional[ModelRecord], reason: str = reason) -> Optional[ModelRecord]:
            if rec is None:
                return None
            return dataclasses.replace(rec, stale=True, stale_reason=reason)

        registry.update(record.key, apply, server=server)
    return found
