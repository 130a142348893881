"""``python -m mesh_components workload-bootstrap``: the files a machine outside Kubernetes needs
to join the mesh as one of the stack's ``mesh.externalWorkloads``.

Usage::

    python -m mesh_components workload-bootstrap STACK --workload [NAMESPACE/]NAME --out DIR [--root-cert FILE]

Istio: what ``istioctl x workload entry configure`` writes (cluster.env, mesh.yaml, hosts,
root-cert.pem), from the stack instead of a live cluster; Linkerd: the proxy environment and
SPIRE registration of https://linkerd.io/2-edge/tasks/adding-non-kubernetes-workloads/ (see
:func:`mesh_components.core.external_workloads.istio_bootstrap` and ``linkerd_bootstrap``). The
root certificate is read from ``--root-cert`` (the mesh's root, e.g. the CA component's
``root_cert`` output saved to a file); tokens are never made offline: the folder holds the exact
command that makes one. DIR is created or must be empty; the same stack and certificate give the
same bytes. Exit codes: 0 written, 1 invalid input, an unknown workload or an unwritable DIR.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from . import exit_codes_epilog
from ..spec.errors import MeshError

__all__ = ["add_parser", "run", "write_bootstrap"]


class BootstrapOutputError(MeshError):
    """``--out`` cannot take the bootstrap (a file, or a folder holding files)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``workload-bootstrap`` sub-command on ``subparsers``; sets ``func=run``."""
    p = subparsers.add_parser(
        "workload-bootstrap", help="write the files a VM needs to join the mesh as an external workload",
        description=__doc__.split("\n\n")[2],
        epilog=exit_codes_epilog({0: "written", 1: "invalid input, an unknown workload, an output folder that is "
                                                   "not empty, or a usage error"}))
    p.add_argument("stack", metavar="STACK", help="stack name (stacks/Pulumi.<name>.yaml) or stack file")
    p.add_argument("--workload", required=True, metavar="[NAMESPACE/]NAME",
                   help="the external workload (mesh.externalWorkloads[].name)")
    p.add_argument("--out", required=True, metavar="DIR", help="new or empty folder to write the files into")
    p.add_argument("--root-cert", metavar="FILE",
                   help="PEM file of the mesh's root certificate (Istio root-cert.pem, Linkerd trust anchor); "
                        "without it the folder's README says how to get it")
    p.set_defaults(func=run)
    return p


def write_bootstrap(files: dict[str, str], out: Path) -> list[Path]:
    """Write ``files`` (name -> text) into ``out`` (created, or existing and empty), mode 0644
    (0600 for none: nothing here is secret, the token is not written); returns the paths, sorted.
    Raises :class:`BootstrapOutputError` (path ``--out``) for a file or a folder that holds files."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BootstrapOutputError([("--out", f"{out} is a file; give a new or empty folder")])
    if out.is_dir() and any(out.iterdir()):
        raise BootstrapOutputError([("--out", f"{out} is not empty; give a new or empty folder")])
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in sorted(files):
            path = out / name
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(files[name])
            os.chmod(path, 0o644)
            written.append(path)
    except OSError as e:
        raise BootstrapOutputError([("--out", f"cannot write {e.filename or out}: {e.strerror or e}")]) from None
    return written


def run(args) -> int:
    """Load the stack, build the workload's bootstrap files and write them; 0 on success."""
    from ..core.external_workloads import bootstrap_files
    from ..spec import load_stack

    root = None
    if args.root_cert:
        try:
            root = Path(args.root_cert).read_text(encoding="utf-8")
        except OSError as e:
            raise BootstrapOutputError([("--root-cert", f"cannot read {args.root_cert}: {e.strerror or e}")]) from None
        if "-----BEGIN CERTIFICATE-----" not in root:
            raise BootstrapOutputError([("--root-cert", f"{args.root_cert} holds no PEM certificate "
                                                        f"(-----BEGIN CERTIFICATE-----)")])
    loaded = load_stack(args.stack)
    files = bootstrap_files(loaded, args.workload, root)
    written = write_bootstrap(files, Path(args.out))
    for path in written:
        print(path)
    print(f"wrote {len(written)} files for external workload {args.workload}")
    return 0
