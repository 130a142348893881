"""Deploy-time values: placeholders the pure core leaves for Pulumi outputs to fill.

The core renders desired state without Pulumi, but some values exist only once a resource has
been created: the CA's certificates and keys, a remote cluster's API server address and token.
The core puts a :class:`Slot` where such a value goes. The offline renderer writes
``Slot.placeholder()`` (never a secret), and the Pulumi components replace every slot with the
matching ``pulumi.Output`` (see ``mesh_components.components.resolve_slots``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

PLACEHOLDER_PREFIX = "$(deploy-time:"


@dataclass(frozen=True, order=True)
class Slot:
    """A value known only at deploy time.

    ``source`` names the producing resource (``"ca"``, ``"cluster"``), ``key`` the value
    (``"root_cert_pem"``, ``"intermediate_key_pem"``...), ``cluster`` the cluster it is for (or
    ``None`` when mesh-wide), ``secret`` whether it must stay a Pulumi secret. ``transform``
    (optional) names a pure function of :data:`TRANSFORMS` that :func:`fill` applies to the value
    the lookup gives for the slot (lookups answer by ``source``/``key``/``cluster`` alone).
    """

    source: str
    key: str
    cluster: str | None = None
    secret: bool = False
    transform: str | None = None

    def placeholder(self) -> str:
        """The text written in offline render output, e.g. ``$(deploy-time:ca/c1/root_cert_pem)``
        (with a transform: ``$(deploy-time:ca/trust_bundle_pem|spiffe-bundle)``)."""
        where = f"{self.cluster}/" if self.cluster else ""
        how = f"|{self.transform}" if self.transform else ""
        return f"{PLACEHOLDER_PREFIX}{self.source}/{where}{self.key}{how})"


TRANSFORMS: dict[str, Callable[[str], str]] = {}
"""Transform name -> pure ``str -> str`` function, registered by the core module that defines it
(:func:`register_transform`; ``core.spire`` registers ``spiffe-bundle``)."""


def register_transform(name: str, fn: Callable[[str], str]) -> str:
    """Register ``fn`` under ``name`` for :attr:`Slot.transform` and return ``name``."""
    TRANSFORMS[name] = fn
    return name


def _transformed(slot: Slot, value: Any) -> Any:
    """``value`` (a lookup's answer for ``slot``) with ``slot.transform`` applied: through
    ``.apply`` for a ``pulumi.Output`` (secretness kept), directly for plain text; a placeholder
    (offline render) is returned as it is. Raises ``KeyError`` for an unknown transform."""
    if not slot.transform or is_placeholder(value):
        return value
    fn = TRANSFORMS[slot.transform]
    apply = getattr(value, "apply", None)
    return apply(fn) if callable(apply) else fn(value)


def is_placeholder(value: Any) -> bool:
    """True for a :class:`Slot` or for the text a slot renders to."""
    return isinstance(value, Slot) or (isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX))


def iter_slots(value: Any) -> Iterator[Slot]:
    """Every :class:`Slot` inside nested dicts, lists and tuples, depth first."""
    if isinstance(value, Slot):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_slots(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from iter_slots(v)


_LEAVES = frozenset({str, int, bool, float, type(None)})
"""Types :func:`fill` returns as they are without a call: most values of a rendered object."""


def fill(value: Any, lookup) -> Any:
    """Copy ``value`` with every :class:`Slot` replaced by ``lookup(slot)`` (then its ``transform``)."""
    if isinstance(value, Slot):
        return _transformed(value, lookup(value)) if value.transform else lookup(value)
    if isinstance(value, dict):  # plain leaves inline: one call per container, not per value
        return {k: v if type(v) in _LEAVES else fill(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _LEAVES else fill(v, lookup) for v in value]
    if isinstance(value, tuple):
        return tuple(fill(v, lookup) for v in value)
    return value
