"""Fleet mode: one mesh spec run as a *root* stack plus one *cluster* stack per cluster.

A stack file opts in with the config key ``service-mesh:fleet`` beside (root) or instead of (cluster)
``service-mesh:mesh``:

.. code-block:: yaml

    # stacks/Pulumi.prod.yaml: the root stack; it keeps the mesh spec, owns the CA and the registry
    config:
      service-mesh:fleet: {role: root, clusterStacks: "prod-{cluster}"}
      service-mesh:mesh: {...}

    # stacks/Pulumi.prod-aws.yaml: the stack of cluster prod-aws; the spec is the root's file
    config:
      service-mesh:fleet: {role: cluster, root: prod, cluster: prod-aws}

- ``role``: ``root`` or ``cluster``.
- ``clusterStacks`` (root): the name of each cluster's stack, ``{cluster}`` standing for the
  cluster's name (and ``{root}`` for the root stack's); default ``"{cluster}"`` (the cluster's name). Names may be
  fully qualified (``acme/service-mesh/prod-{cluster}``), as ``pulumi stack select`` takes them.
- ``root`` (cluster): the root stack, as a StackReference names it (``prod``, ``acme/service-mesh/prod``).
- ``cluster`` (cluster): the cluster of ``mesh.clusters`` this stack owns.
- ``meshFile`` (cluster): the stack file that holds the spec, relative to the project folder (or absolute);
  default ``stacks/Pulumi.<root stack's last segment>.yaml``. One file, so the root and every cluster
  stack read the same spec.

Why stacks joined this way (https://www.pulumi.com/docs/iac/concepts/stacks/#stackreferences,
https://www.pulumi.com/docs/iac/guides/continuous-delivery/): a stack per cluster refreshes and updates
only its cluster, fails alone and runs beside the others. The names here are pure data:
:mod:`mesh_components.core.fleet` holds what the stacks export and check, the components
(:mod:`mesh_components.components.fleet`) what they register.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from .errors import Problem, SpecError

FLEET_KEY = "fleet"
"""The config key (``service-mesh:fleet``) of a stack file in fleet mode."""

DEFAULT_CLUSTER_STACKS = "{cluster}"

_STACK_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
"""One segment of a stack name (Pulumi: letters, digits, ``-``, ``_``, ``.``; a fully qualified
name is ``org/project/stack``: pulumi/pulumi ``sdk/go/common/tokens/names.go`` ``IsName``, and
``pkg/backend/httpstate/backend.go`` ``ParseStackReference``)."""

_KNOWN = {"root": {"role", "clusterStacks"}, "cluster": {"role", "root", "cluster", "meshFile"}}


@dataclass(frozen=True)
class Fleet:
    """A stack's place in a fleet (:func:`parse_fleet`).

    ``role``: ``root`` or ``cluster``; ``root_stack``: the root stack's name as StackReferences name
    it; ``cluster``: the cluster a cluster stack owns (None for the root); ``cluster_stacks``: the
    pattern of the cluster stacks' names (``{cluster}``, ``{root}``), known to the root (a cluster
    stack reads the names from the root's ``registry`` output at deploy time, and offline from the
    root's stack file); ``mesh_file``: where a cluster stack's spec is (None for the root)."""

    role: Literal["root", "cluster"]
    root_stack: str
    cluster: str | None = None
    cluster_stacks: str = DEFAULT_CLUSTER_STACKS
    mesh_file: str | None = None

    def stack_of(self, cluster: str) -> str:
        """The stack name of ``cluster`` (:attr:`cluster_stacks` filled in)."""
        return cluster_stack_name(self.cluster_stacks, self.root_stack, cluster)


def cluster_stack_name(pattern: str, root_stack: str, cluster: str) -> str:
    """``pattern`` with ``{cluster}`` and ``{root}`` (the root's last name segment) filled in."""
    return pattern.replace("{root}", root_stack.rsplit("/", 1)[-1]).replace("{cluster}", cluster)


def stack_name_problem(name: str) -> str | None:
    """Why ``name`` is not a stack name Pulumi takes (``stack`` or ``org/project/stack``), or None."""
    parts = name.split("/")
    if len(parts) not in (1, 3) or not all(_STACK_SEGMENT.match(p) for p in parts):
        return (f"{name!r} is not a stack name: give 'stack' or 'org/project/stack', each part letters, "
                f"digits, '-', '_' or '.'")
    return None


def parse_fleet(data: Any, stack: str, path: str = f"config.service-mesh:{FLEET_KEY}") -> Fleet:
    """``data`` (the ``service-mesh:fleet`` config object) of the stack named ``stack`` -> :class:`Fleet`.
    Raises :class:`SpecError` with ``path: message`` problems (unknown role or field, a missing field,
    a stack name Pulumi refuses, a ``clusterStacks`` without ``{cluster}``)."""
    if not isinstance(data, Mapping):
        raise SpecError([(path, "expected a mapping: {role: root} or {role: cluster, root: <stack>, cluster: <name>}")])
    role = data.get("role")
    if role not in _KNOWN:
        raise SpecError([(f"{path}.role", f"expected 'root' or 'cluster', got {role!r}")])
    problems: list[Problem] = [(f"{path}.{k}", f"unknown field for role {role}; known: {', '.join(sorted(_KNOWN[role]))}")
                               for k in sorted(map(str, data)) if k not in _KNOWN[role]]
    for k in sorted(_KNOWN[role] - {"role"}):
        if k in data and not isinstance(data[k], str):
            problems.append((f"{path}.{k}", f"expected a string, got {type(data[k]).__name__}"))
    if problems:
        raise SpecError(problems)
    if role == "root":
        pattern = data.get("clusterStacks", DEFAULT_CLUSTER_STACKS)
        if "{cluster}" not in pattern:
            problems.append((f"{path}.clusterStacks", "must hold {cluster}, e.g. 'prod-{cluster}': one stack per cluster"))
        elif why := stack_name_problem(cluster_stack_name(pattern, stack, "c")):
            problems.append((f"{path}.clusterStacks", why))
        if problems:
            raise SpecError(problems)
        return Fleet("root", stack, cluster_stacks=pattern)
    for k in ("root", "cluster"):
        if not data.get(k):
            problems.append((f"{path}.{k}", "required for role cluster"))
    root = data.get("root") or ""
    if root and (why := stack_name_problem(root)):
        problems.append((f"{path}.root", why))
    if problems:
        raise SpecError(problems)
    mesh_file = data.get("meshFile") or f"stacks/Pulumi.{root.rsplit('/', 1)[-1]}.yaml"
    return Fleet("cluster", root, cluster=data["cluster"], mesh_file=mesh_file)


def root_fleet_of(doc: Any, project: str, root_stack: str) -> Fleet | None:
    """The root's :class:`Fleet` read from its stack file ``doc`` (parsed YAML), or None when the
    file has no ``service-mesh:fleet`` key (a single stack: not a fleet root yet). Raises
    :class:`SpecError` for a fleet key that is not a root's."""
    config = doc.get("config") if isinstance(doc, Mapping) else None
    data = config.get(f"{project}:{FLEET_KEY}") if isinstance(config, Mapping) else None
    if data is None:
        return None
    fleet = parse_fleet(data, root_stack)
    if fleet.role != "root":
        raise SpecError([(f"config.{project}:{FLEET_KEY}.role", "the stack a cluster stack names as root must be "
                                                                 "role root")])
    return fleet


def member_problems(fleet: Fleet, clusters: list[str], path: str = f"config.service-mesh:{FLEET_KEY}") -> list[Problem]:
    """A cluster stack whose ``cluster`` is not one of the spec's ``clusters``."""
    if fleet.role == "cluster" and fleet.cluster not in clusters:
        return [(f"{path}.cluster", f"unknown cluster {fleet.cluster!r}; the mesh has {', '.join(clusters)}")]
    return []


def cluster_stack_problems(clusters: list[str], fleet: Fleet) -> list[Problem]:
    """Cluster stack names (:attr:`Fleet.cluster_stacks` filled in for each of ``clusters``) that
    Pulumi refuses, that two clusters share, or that are the root's own name."""
    path = f"config.service-mesh:{FLEET_KEY}.clusterStacks"
    seen: dict[str, str] = {}
    problems: list[Problem] = []
    root = fleet.root_stack.rsplit("/", 1)[-1]
    for c in clusters:
        stack = fleet.stack_of(c)
        if why := stack_name_problem(stack):
            problems.append((path, f"cluster {c}: {why}"))
        elif stack.rsplit("/", 1)[-1] == root:
            problems.append((path, f"cluster {c}'s stack would be the root stack {stack}; give a pattern such as "
                                   f"'{root}-{{cluster}}'"))
        elif stack in seen:
            problems.append((path, f"clusters {seen[stack]} and {c} would share the stack {stack}"))
        seen.setdefault(stack, c)
    return problems
