"""Kubernetes providers, one per cluster, and the kubeconfig inputs they are made from."""
from __future__ import annotations

import os
from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from ..spec import KubeconfigSource, MeshSpec, expand_path, minify_kubeconfig


def kubeconfig_input(source: KubeconfigSource | None, cluster: str,
                     stack_references: dict[str, pulumi.StackReference] | None = None) -> Any:
    """The kubeconfig for ``cluster`` as a Pulumi input (text or secret Output), or None for the
    ambient kubeconfig. Text read here (``file``, or ``env`` holding the text or a path) is
    minified to the chosen context (``spec.minify_kubeconfig``): only that context's cluster and
    user reach the provider's inputs, and so the state, and the text changes only when they do;
    relative file references in a file (``certificate-authority``, ``client-key``, ``exec.command``
    with a ``/``, ...) are made absolute against its directory, as client-go would.
    A ``stackReference`` output is used as its stack publishes it. ``stack_references``: stack name
    -> the ``StackReference`` already made for it, shared by every cluster that reads that stack
    (a second one would register the same URN, which the engine rejects) and filled here. Raises
    ``pulumi.RunError`` naming the cluster when a file or variable is missing or the kubeconfig
    has no such context."""
    if source is None:
        return None
    if source.file or source.env:
        return _minified(*_read_kubeconfig(source, cluster), source, cluster)
    refs = stack_references if stack_references is not None else {}
    if source.stack_reference not in refs:
        refs[source.stack_reference] = pulumi.StackReference(source.stack_reference)
    return refs[source.stack_reference].get_output(source.output)


def _read_kubeconfig(source: KubeconfigSource, cluster: str) -> tuple[str, str | None]:
    """(kubeconfig text, the directory of the file it was read from, or None for text held in the
    variable itself): relative paths in a file are relative to that file, as for client-go."""
    if source.file:
        path = expand_path(source.file)
        if not path.exists():
            raise pulumi.RunError(f"cluster {cluster}: kubeconfig file {path} does not exist "
                                  f"(mesh.clusters[].kubeconfig.file)")
        return path.read_text(), os.path.dirname(path)
    value = os.environ.get(source.env)
    if not value:
        raise pulumi.RunError(f"cluster {cluster}: environment variable {source.env} is not set; export the "
                              f"kubeconfig text or its path in it")
    if "apiVersion" in value or "\n" in value:
        return value, None
    path = expand_path(value)
    return path.read_text(), os.path.dirname(path)


def _minified(text: str, base_dir: str | None, source: KubeconfigSource, cluster: str) -> str:
    try:
        return minify_kubeconfig(text, source.context, base_dir=base_dir)
    except ValueError as e:
        where = source.file or f"${source.env}"
        raise pulumi.RunError(f"cluster {cluster}: kubeconfig {where}: {e} (mesh.clusters[].kubeconfig)") from None


def kubeconfig_inputs(spec: MeshSpec) -> dict[str, Any]:
    """Cluster name -> :func:`kubeconfig_input` of every cluster of ``spec``, with one
    ``StackReference`` per referenced stack."""
    refs: dict[str, pulumi.StackReference] = {}
    return {c.name: kubeconfig_input(c.kubeconfig, c.name, refs) for c in spec.clusters}


def cluster_providers(name: str, spec: MeshSpec, parent: pulumi.Resource | None = None,
                      kubeconfigs: Mapping[str, Any] | None = None) -> dict[str, k8s.Provider]:
    """One kubernetes Provider per cluster, named ``<name>-<cluster>-k8s``, kubeconfig kept secret.
    ``kubeconfigs``: cluster -> kubeconfig input already read (default: read with
    :func:`kubeconfig_inputs`)."""
    kubeconfigs = kubeconfigs if kubeconfigs is not None else kubeconfig_inputs(spec)
    providers = {}
    for c in spec.clusters:
        kc = kubeconfigs[c.name]
        providers[c.name] = k8s.Provider(
            f"{name}-{c.name}-k8s",
            kubeconfig=Output.secret(kc) if kc is not None else None,
            context=c.kubeconfig.context if c.kubeconfig and c.kubeconfig.context else None,
            cluster_identifier=c.name,
            opts=ResourceOptions(parent=parent))
    return providers
