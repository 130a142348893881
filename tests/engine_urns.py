"""URNs and aliases as the Pulumi engine computes them, for registrations recorded under mocks.

The mock monitor's URNs keep only the parent's last type (``pulumi/runtime/mocks.py``,
``MockMonitor.make_urn``) and never resolve aliases, so a test of what a real ``pulumi up`` does
with stored state rebuilds both here, following the engine at pulumi/pulumi
(``sdk/go/common/resource/urn/urn.go`` ``New``: the parent's qualified type ``$`` the type, the
root stack left out; ``sdk/go/common/resource/alias.go`` ``CreateURN``;
``pkg/resource/deploy/step_generator.go`` ``getOldResource`` (the URN first, then each alias; a
match through an alias is recorded in ``sg.aliases``), ``collapseAliasToUrn`` (an alias spec's
empty name/type/parent default to the resource's own; a parent the alias names, and only such a
parent, stands for its old URN when it matched through an alias itself) and ``generateAliases``/``inheritedChildAlias`` (a child of a
parent that matched through an alias also gets the parent's old URN as parent, with the parent's
old name in place of a name prefix equal to the parent's new name)), and the engine's refusals
there: an old URN claimed through an alias by two registrations, or claimed through an alias while
another registration has it as its own URN (``GetDuplicateResourceAliasError``,
``GetDuplicateResourceAliasedError``), raise :class:`EngineRefusal`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class AliasSpec:
    """One ``pulumirpc.Alias`` of a RegisterResource request: a whole ``urn`` or a spec whose
    empty fields mean "the resource's own"."""

    urn: str = ""
    name: str = ""
    type: str = ""
    parent_urn: str = ""
    no_parent: bool = False

    @classmethod
    def from_proto(cls, alias) -> "AliasSpec":
        if alias.urn:
            return cls(urn=alias.urn)
        s = alias.spec
        return cls(name=s.name, type=s.type, parent_urn=s.parentUrn, no_parent=s.noParent)


class EngineRefusal(AssertionError):
    """The engine would stop the update: an alias claims an old URN twice, or claims a URN that
    another registration has (pulumi/pulumi v3.259.0 ``step_generator.go`` ``getOldResource``)."""


def qualified_type(urn: str) -> str:
    return urn.split("::")[2]


def urn_name(urn: str) -> str:
    return urn.split("::", 3)[3]


def new_urn(stack: str, project: str, parent_type: str, typ: str, name: str) -> str:
    """``urn.New``: ``urn:pulumi:<stack>::<project>::[<parent qualified type>$]<type>::<name>``."""
    if parent_type and parent_type != ROOT_STACK_TYPE:
        typ = f"{parent_type}${typ}"
    return f"urn:pulumi:{stack}::{project}::{typ}::{name}"


def engine_urns(regs: Sequence, stack: str, project: str = "service-mesh") -> dict[str, str]:
    """Mock URN -> the URN the engine gives the same registration (full parent type chain)."""
    by_mock = {}
    for r in regs:  # a child registers after its parent: its request carries the parent's URN
        parent = by_mock.get(r.parent, "")
        by_mock[r.urn] = new_urn(stack, project, qualified_type(parent) if parent else "", r.type, r.name)
    return by_mock


def match_old_state(regs: Sequence, aliases: Mapping[str, Iterable[AliasSpec]], olds: set[str], stack: str,
                    project: str = "service-mesh") -> dict[str, str | None]:
    """For each registration (by mock URN): the URN in ``olds`` the engine would take as its old
    state (itself or an alias), or None (a create). ``aliases``: mock URN -> the request's aliases."""
    real = engine_urns(regs, stack, project)
    own = set(real.values())  # sg.urns, at the end of the run
    matched_alias: dict[str, str] = {}  # engine URN -> the old URN it matched through an alias (sg.aliases)
    aliased: dict[str, str] = {}  # old URN -> the engine URN that claimed it through an alias (sg.aliased)
    out: dict[str, str | None] = {}
    for r in regs:
        urn = real[r.urn]
        parent = real.get(r.parent, "")

        def collapse(a: AliasSpec) -> str:
            if a.urn:
                return a.urn
            # collapseAliasToUrn (v3.259.0 step_generator.go 561-569): an alias naming no parent
            # takes the resource's own (new) parent as it is; only a named parent that matched
            # through an alias stands for its old URN. (A named parent arrives as its mock URN.)
            if a.parent_urn:
                p = real.get(a.parent_urn, a.parent_urn)
                p = matched_alias.get(p, p)
            else:
                p = parent
            if a.no_parent or (p and qualified_type(p) == ROOT_STACK_TYPE):
                p = ""
            if not p:
                return new_urn(stack, project, "", a.type or r.type, a.name or r.name)
            return f"{p.rsplit('::', 1)[0]}${a.type or r.type}::{a.name or r.name}"

        def inherited(typ: str, name: str, parent_alias: str) -> str:
            parent_name = urn_name(parent)
            if name.startswith(parent_name):
                name = urn_name(parent_alias) + name[len(parent_name):]
            return new_urn(stack, project, qualified_type(parent_alias), typ, name)

        candidates = [collapse(a) for a in aliases.get(r.urn, ())]
        if parent in matched_alias:
            candidates.append(inherited(r.type, r.name, matched_alias[parent]))
            candidates += [inherited(qualified_type(c).split("$")[-1], urn_name(c), matched_alias[parent])
                           for c in list(candidates[:-1])]
        hit = next((c for c in [urn, *candidates] if c in olds), None)
        if hit is not None and hit != urn:
            if hit in aliased or hit in own:
                raise EngineRefusal(f"{urn} claims {hit} through an alias, which "
                                    f"{aliased.get(hit, 'another registration')} claims too")
            aliased[hit] = urn
            matched_alias[urn] = hit
        out[r.urn] = hit
    return out


RENAMED_TYPES = {"mesh:index:MeshGateway": "mesh:index:EnvoyGateway",
                 "mesh:index:IstioControlPlane": "mesh:index:ControlPlane",
                 "mesh:index:LinkerdControlPlane": "mesh:index:ControlPlane",
                 "mesh:index:OsmControlPlane": "mesh:index:ControlPlane"}
"""Component type -> the type releases before it registered it under (``FORMER_TYPES`` of the
component, given as a type alias): every stored URN list here predates these renames."""


NEW_PARENTS = {"mesh:index:MeshCertificateAuthority"}
"""Component types put above resources that every stored URN list here registered straight under
the component's parent: ``ServiceMesh``'s CA dynamic resource
(``...ServiceMesh$pulumi-python:dynamic:Resource::mesh-ca``) is now the child of a
``MeshCertificateAuthority`` component of the same name, found through
``Alias(parent=<the ServiceMesh>)`` (``certificate_authority.MeshCertificateAuthority._of_service_mesh``).
The components themselves are new: no stored state holds them, so the engine creates them (a
component has no state beyond its outputs)."""


def before_type_renames(urn: str) -> str:
    """``urn`` with each component type of its qualified type as :data:`RENAMED_TYPES` had it, and
    the :data:`NEW_PARENTS` above its own type left out (where the stored URN had none)."""
    head, qtype, name = urn.split("::")[0:2], qualified_type(urn), urn_name(urn)
    parts = qtype.split("$")
    parts = [t for t in parts[:-1] if t not in NEW_PARENTS] + parts[-1:]
    qtype = "$".join(RENAMED_TYPES.get(t, t) for t in parts)
    return "::".join([*head, qtype, name])


def is_new_component(urn: str) -> bool:
    """Whether ``urn`` (an engine URN) is one of the :data:`NEW_PARENTS` components, which no
    stored state holds."""
    return qualified_type(urn).rsplit("$", 1)[-1] in NEW_PARENTS


def readable_counterpart(urn: str) -> str:
    """Where the release of readable names registered the object of ``urn`` (an engine URN whose
    name is ``<component>:[<namespace>/]<name>``): ``<component>-<kind>[.<group>]-<namespace, or
    cluster>-<name>``, kind and group read from the URN's type token (``kubernetes:core/v1:Service``,
    ``kubernetes:<group>/<version>:<Kind>``, a patch type ``<Kind>Patch``). Other URNs as they are."""
    qtype, name = qualified_type(urn), urn_name(urn)
    typ = qtype.rsplit("$", 1)[-1]
    if not qtype.startswith("mesh:index:") or "$kubernetes:yaml/v2:ConfigFile$" in qtype \
            or not typ.startswith("kubernetes:") or ":" not in name:
        return before_type_renames(urn)  # a component, release, manifest or provider, or an object a ConfigFile names
    _, api, kind = typ.split(":")
    group = api.rpartition("/")[0]
    kind = kind[:-len("Patch")] if kind.endswith("Patch") else kind  # NamespacePatch, MeshConfigPatch...
    component, _, rest = name.partition(":")
    ns, _, obj = rest.rpartition("/")
    kind = kind.lower() + (f".{group}" if group != "core" else "")
    return before_type_renames(f"{urn.rsplit('::', 1)[0]}::{component}-{kind}-{ns or 'cluster'}-{obj}")
