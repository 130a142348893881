"""Lookups: where each deploy-time value (a :class:`~mesh_components.core.slots.Slot`) comes from."""
from __future__ import annotations

from typing import Any

import pulumi
from pulumi import Output

from ..core.egress import CONFIG_SOURCE
from ..core.slots import Slot
from .registration import Lookup


def _field(obj: Any, *names: str) -> Any:
    """A field of a typed Pulumi output object or of a plain dict, by any of ``names``."""
    for n in names:
        value = getattr(obj, n, None) if not isinstance(obj, dict) or hasattr(type(obj), n) else None
        if value is None and isinstance(obj, dict):
            value = obj.get(n)
        if value is not None:
            return value
    return None


def mesh_lookup(*lookups: Lookup) -> Lookup:
    """A lookup that asks ``ca`` slots of the first and every other source of the second."""
    ca, clusters = lookups

    def lookup(slot: Slot):
        return ca(slot) if slot.source == "ca" else clusters(slot)
    return lookup


def config_secret_lookup(inner: Lookup, config: pulumi.Config | None = None) -> Lookup:
    """A lookup for slots of source ``config`` (egress credentials, ``egress.credential_objects``):
    the Pulumi secret config value named by the slot's key (``pulumi config set --secret <key>
    <value>``), kept a secret; every other slot goes to ``inner``. Raises ``pulumi.RunError`` naming
    the key and the command when the value is not set."""
    cache: dict[str, Any] = {}

    def lookup(slot: Slot):
        if slot.source != CONFIG_SOURCE:
            return inner(slot)
        if slot.key not in cache:
            value = (config or pulumi.Config()).get_secret(slot.key)
            if value is None:
                raise pulumi.RunError(f"secret config {slot.key!r} is not set (an egress credential names it): run "
                                      f"`pulumi config set --secret {slot.key} <header value>`")
            cache[slot.key] = Output.secret(value)
        return cache[slot.key]
    return lookup


def ca_lookup(authority) -> Lookup:
    """Slot -> Output of the ``MeshCertificateAuthority``: mesh-wide bundle, per-cluster material."""
    def lookup(slot: Slot):
        if slot.source != "ca":
            raise KeyError(f"no producer for deploy-time value {slot.placeholder()}")
        if slot.cluster is None:
            return getattr(authority, slot.key)
        value = authority.intermediates.apply(lambda i, c=slot.cluster, k=slot.key: i[c][k])
        return Output.secret(value) if slot.secret else Output.unsecret(value)
    return lookup
