"""The offline render contract and the CLI: golden output for dev, byte-identical re-renders,
redaction, the upstream schema and chart checks in ../shared/tools, and error output."""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mesh_components.cli import main
from mesh_components.core.gateway_api import channel_of_url
from mesh_components.core import render
from mesh_components.core.render import (DEPLOY_TIME_DIR, MARKER, REDACTED, RELEASES_DIR, object_filename, render_mesh, translate, write_tree)
from mesh_components.core.slots import PLACEHOLDER_PREFIX, Slot, iter_slots
from mesh_components.spec import load_stack

from program_harness import ROOT

STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
GOLDEN = ROOT / "tests" / "golden"
TOOLS = ROOT.parent / "shared" / "tools"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mesh_components", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dev_render_matches_golden(tmp_path):
    """Golden output: regenerate with `python -m mesh_components render dev --out tests/golden/dev`."""
    result = cli("render", "dev", "--out", str(tmp_path / "dev"))
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "dev") == tree(GOLDEN / "dev")


@pytest.mark.parametrize("stack", STACKS)
def test_render_is_byte_identical(stack, tmp_path):
    for run in ("a", "b"):
        assert main(["render", stack, "--out", str(tmp_path / run)]) == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.is_dir()) == \
        sorted(c.name for c in load_stack(stack, root=ROOT).spec.clusters)


def test_rerender_replaces_the_previous_output_and_refuses_foreign_folders(tmp_path):
    out = tmp_path / "out"
    assert main(["render", "prod", "--out", str(out)]) == 0
    assert main(["render", "dev", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["dev"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    result = cli("render", "dev", "--out", str(foreign))
    assert result.returncode == 1 and "--out:" in result.stderr
    assert (foreign / "keep.txt").read_text() == "mine"


def test_secret_values_are_redacted_unless_asked(tmp_path):
    states = render_mesh(load_stack("dev", root=ROOT))
    st = states["dev"]
    st.concerns["egress"].append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                  "metadata": {"name": "api-key", "namespace": "mesh-egress"},
                                  "stringData": {"token": "s3cr3t-value"}})
    write_tree(states, tmp_path / "redacted")
    write_tree(states, tmp_path / "plain", include_secrets=True)
    red = "\n".join(p.read_text() for p in (tmp_path / "redacted").rglob("*.yaml"))
    assert "s3cr3t-value" not in red and REDACTED in red
    assert "s3cr3t-value" in (tmp_path / "plain" / "dev" / "mesh-egress--secret--api-key.yaml").read_text()
    # CA keys are deploy-time values: never in render output, with or without --include-secrets
    cacerts = yaml.safe_load((tmp_path / "plain" / "dev" / DEPLOY_TIME_DIR / "istio-system--secret--cacerts.yaml")
                             .read_text())
    assert cacerts["stringData"]["ca-key.pem"] == "$(deploy-time:ca/dev/key_pem)"
    assert "PRIVATE KEY" not in red


@pytest.mark.skipif(not TOOLS.is_dir(), reason="../shared/tools is not beside the project")
@pytest.mark.parametrize("stack", STACKS)
def test_rendered_stacks_pass_the_upstream_checks(stack, tmp_path):
    out = tmp_path / stack
    assert main(["render", stack, "--out", str(out)]) == 0
    states = render_mesh(load_stack(stack, root=ROOT))
    for cluster in sorted(p for p in out.iterdir() if p.is_dir()):
        # against the Gateway API channel the cluster installs (Linkerd: experimental; managed: the cloud's standard)
        manifests = yaml.safe_load((cluster / RELEASES_DIR / "remote-manifests.yaml").read_text()) or []
        channel = next((channel_of_url(m["url"]) for m in manifests if m["name"] == "gateway-api-crds"), "standard")
        v = subprocess.run([str(TOOLS / "validate-manifests"), "--quiet", "--gateway-api", channel, str(cluster)],
                           capture_output=True, text=True)
        assert v.returncode == 0, v.stdout[-3000:] + v.stderr[-2000:]
        # every object, deploy-time/ ones too (it searches recursively; their placeholders stand for strings)
        assert f": {len(states[cluster.name].objects)} documents checked, 0 invalid" in v.stdout.splitlines()[-1]
    h = subprocess.run([str(TOOLS / "check-helm-values"), str(out)], capture_output=True, text=True)
    assert h.returncode == 0, h.stdout[-3000:] + h.stderr[-2000:]
    assert h.stdout.splitlines()[-1].endswith(" 0 with problems")
    # it found every cluster's releases/helm-releases.yaml (it searches the folder recursively by that name)
    assert f" {sum(len(st.releases) for st in states.values())} releases in {len(states)} files checked" \
        in h.stdout.splitlines()[-1]


BAD_STACKS = {
    "typo-enum": ("backend: {type: istoi}\n    clusters: [{name: c1, cloud: aws, region: r}]\n",
                  "mesh.backend.type: 'istoi' is not one of 'istio', 'linkerd' or 'osm'; did you mean 'istio'?"),
    "dangling": ("backend: {type: istio}\n    clusters: [{name: c1, cloud: aws, region: r}]\n"
                 "    namespaces: [{name: shop, clusters: [c9]}]\n",
                 "mesh.namespaces[0].clusters[0]: unknown cluster 'c9'; known: c1"),
    "bad-name": ("backend: {type: istio}\n    clusters: [{name: Cluster_1, cloud: aws, region: r}]\n",
                 "mesh.clusters[0].name: 'Cluster_1' is not a DNS-1123 label"),
    "bad-port": ("backend: {type: istio}\n    clusters: [{name: c1, cloud: aws, region: r}]\n"
                 "    services: [{name: web, namespace: shop, ports: [{port: 99999}]}]\n",
                 "mesh.services[0].ports[0].port: 99999 is not a port number: use 1-65535"),
    "bad-weight": ("backend: {type: istio}\n    clusters: [{name: c1, cloud: aws, region: r}]\n"
                   "    services: [{name: web, namespace: shop, ports: [{port: 80}], versions: [{name: v1}]}]\n"
                   "    trafficSplits: [{name: s, namespace: shop, service: web, backends: [{service: web-v1, weight: 0}]}]\n",
                   "mesh.trafficSplits[0].backends: every weight is 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_STACKS))
def test_bad_stack_files_exit_1_with_path_message_lines(case, tmp_path):
    body, expected = BAD_STACKS[case]
    f = tmp_path / f"Pulumi.{case}.yaml"
    f.write_text(f"config:\n  service-mesh:mesh:\n    name: shop\n    {body}")
    for command in (["validate", str(f)], ["render", str(f), "--out", str(tmp_path / "out")]):
        result = cli(*command)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr and result.stdout == ""
        lines = result.stderr.strip().splitlines()
        # the spec path, after the stack file's line:column where the loader knows it (issue 13, item 3)
        where = f"(?:{re.escape(str(f))}:\\d+:\\d+: )?"
        assert any(re.match(where + re.escape(expected), line) for line in lines), lines
        assert all(": " in line for line in lines)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_unreadable_inputs_exit_1(tmp_path):
    (tmp_path / "Pulumi.x.yaml").write_text("config: [1")
    for target, fragment in ((str(tmp_path / "Pulumi.x.yaml"), "not valid YAML"), ("nosuch", "no such stack")):
        result = cli("validate", target)
        assert result.returncode == 1 and fragment in result.stderr and "Traceback" not in result.stderr


def test_validate_reports_counts():
    result = cli("validate", "prod")
    assert result.returncode == 0
    assert "valid: mesh 'bookstore-prod' (istio 1.30.3), 3 cluster(s)" in result.stdout


# --- atomic, safe output (issue 13, items 5 and 7) ----------------------------------------------------

def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``folder`` (``folder`` itself too): content hash and mode."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir",
                                          stat.S_IMODE(p.lstat().st_mode))
            for p in sorted([folder, *folder.rglob("*")])}


def leftovers(parent: Path) -> list[str]:
    """Hidden folders a render made beside its target and did not remove."""
    return sorted(p.name for p in parent.iterdir() if ".mesh-render-" in p.name)


def with_secret(states):
    """``states`` with a Secret holding a literal value (as a user's egress credential could)."""
    st = next(iter(states.values()))
    st.concerns["egress"].append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                  "metadata": {"name": "api-key", "namespace": "mesh-egress"},
                                  "stringData": {"token": "s3cr3t-value"}})
    return states


def flaky_writes(monkeypatch, nth: int, exc: BaseException) -> list:
    """Make the ``nth`` file write of a render raise ``exc`` (a full disk, Ctrl-C...)."""
    real, calls = render._write_text, []

    def write(path, text, mode):
        calls.append(path)
        if len(calls) == nth:
            raise exc
        real(path, text, mode)

    monkeypatch.setattr(render, "_write_text", write)
    return calls


def long_named(states):
    """``states`` with an object whose file name is over the 255 bytes a file system allows, last of
    its cluster, so the failure comes after most files are written."""
    st = next(iter(states.values()))
    st.concerns["multicluster"].append({"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "x" * 260, "namespace": "istio-system"}})
    return states


def duplicated(states):
    st = next(iter(states.values()))
    st.concerns["multicluster"].append(dict(st.objects[0]))
    return states


FAILURES = ["translation", "spec", "write-error", "ctrl-c", "long-file-name", "duplicate-file", "swap-error",
            "fallback-swap-error"]


@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_render_leaves_the_earlier_output_byte_identical(failure, tmp_path, monkeypatch):
    """Issue 13 item 5: the render is written beside the target and swapped in only when whole."""
    out = tmp_path / "out"
    assert main(["render", "prod", "--out", str(out)]) == 0
    before = snapshot(out)
    states = render_mesh(load_stack("dev", root=ROOT))
    if failure == "translation":  # valid spec, refused by the Linkerd translation (a closed service)
        inventory = "      - {name: inventory, namespace: bookstore, ports: [{port: 8080}]}\n"
        text = (ROOT / "stacks" / "Pulumi.linkerd.yaml").read_text().replace(
            "    services:\n", "    services:\n" + inventory, 1)
        bad = tmp_path / "Pulumi.bad.yaml"
        bad.write_text(text.replace("smiFiles: [policies/smi]", f"smiFiles: [{ROOT / 'policies' / 'smi'}]"))
        assert main(["render", str(bad), "--out", str(out)]) == 1
    elif failure == "spec":
        bad = tmp_path / "Pulumi.bad.yaml"
        bad.write_text(f"config:\n  service-mesh:mesh:\n    name: shop\n    {BAD_STACKS['dangling'][0]}")
        assert main(["render", str(bad), "--out", str(out)]) == 1
    elif failure in ("write-error", "ctrl-c"):
        exc = OSError(errno.ENOSPC, "No space left on device") if failure == "write-error" else KeyboardInterrupt()
        calls = flaky_writes(monkeypatch, 10, exc)
        with pytest.raises(render.OutputError if failure == "write-error" else KeyboardInterrupt) as e:
            write_tree(states, out)
        assert len(calls) == 10
        if failure == "write-error":
            (path, message), = e.value.problems
            assert path == "--out" and "No space left on device" in message and f"{out} is left as it was" in message
    elif failure == "long-file-name":  # a real ENAMETOOLONG from the file system, after 36 files
        # names.object_filenames keeps every file name within 255 bytes (a 260-character object name is
        # cut and hashed), so the file system's own refusal is reached only by bypassing it: as on a file
        # system whose NAME_MAX is smaller than the 255 bytes names.py allows for
        real = render.names.object_filenames
        monkeypatch.setattr(render.names, "object_filenames",
                            lambda objs: [n if len(n) < 200 else n[:-5] + "x" * 60 + ".yaml" for n in real(objs)])
        with pytest.raises(render.OutputError) as e:
            write_tree(long_named(states), out)
        (path, message), = e.value.problems
        assert path == "--out" and "File name too long" in message and "255 bytes" in message
    elif failure == "duplicate-file":  # two objects of one identity: refused before anything is written
        with pytest.raises(render.SpecError, match="would both be written to"):
            write_tree(duplicated(states), out)
    elif failure == "swap-error":
        def exchange(a, b):
            raise OSError(errno.EIO, "Input/output error", str(b))
        monkeypatch.setattr(render, "_exchange", exchange)
        with pytest.raises(render.OutputError, match="Input/output error"):
            write_tree(states, out)
    else:  # no renameat2: the earlier render moves aside, the new one fails to move in, the earlier moves back
        real, moves_in = os.rename, []

        def rename(src, dst):
            if Path(dst) == out:
                moves_in.append(src)
                if len(moves_in) == 1:  # the new render's move in; the earlier one's move back succeeds
                    raise OSError(errno.EIO, "Input/output error", str(dst))
            real(src, dst)
        monkeypatch.setattr(render, "_exchange", lambda a, b: False)
        monkeypatch.setattr(os, "rename", rename)
        with pytest.raises(render.OutputError, match="Input/output error"):
            write_tree(states, out)
    assert snapshot(out) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fresh", ["absent", "absent-parents", "empty"])
def test_a_failed_render_into_a_fresh_folder_leaves_it_as_it_was(fresh, tmp_path, monkeypatch):
    out = tmp_path / "a" / "b" / "out" if fresh == "absent-parents" else tmp_path / "out"
    if fresh == "empty":
        out.mkdir()
    flaky_writes(monkeypatch, 5, OSError(errno.EDQUOT, "Disk quota exceeded"))
    with pytest.raises(render.OutputError, match="Disk quota exceeded"):
        write_tree(render_mesh(load_stack("dev", root=ROOT)), out)
    assert sorted(tmp_path.iterdir()) == ([out] if fresh == "empty" else [])  # no parent made for it stays
    if fresh == "empty":
        assert list(out.iterdir()) == []


def test_rerender_swaps_without_renameat2_too(tmp_path, monkeypatch):
    """Where the kernel or file system has no RENAME_EXCHANGE, two renames swap the folders."""
    monkeypatch.setattr(render, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    write_tree(render_mesh(load_stack("prod", root=ROOT)), out)
    written = write_tree(render_mesh(load_stack("dev", root=ROOT)), out)
    assert tree(out) == tree(GOLDEN / "dev") and sorted(tmp_path.iterdir()) == [out]
    assert written == sorted(p for p in out.rglob("*") if p.is_file() and p.name != MARKER)


def test_an_earlier_render_with_files_it_did_not_write_is_refused(tmp_path):
    """A render deletes nothing but its own earlier output: the marker lists what it wrote."""
    out = tmp_path / "out"
    assert main(["render", "dev", "--out", str(out)]) == 0
    (out / "dev" / "kustomization.yaml").write_text("resources: []\n")
    before = snapshot(out)
    result = cli("render", "dev", "--out", str(out))
    assert result.returncode == 1 and result.stderr.startswith("--out: ") and "dev/kustomization.yaml" in result.stderr
    assert snapshot(out) == before
    # a render of a release before the marker listed its files: its cluster folders are its own,
    # files beside them (which it kept) are not
    legacy = tmp_path / "legacy"
    (legacy / "dev").mkdir(parents=True)
    (legacy / MARKER).write_text("written by python -m mesh_components render; replaced on every render\n")
    (legacy / "dev" / "helm-releases.yaml").write_text("[]\n")
    assert main(["render", "dev", "--out", str(legacy)]) == 0
    assert tree(legacy) == tree(GOLDEN / "dev")
    (legacy / MARKER).write_text("written by python -m mesh_components render; replaced on every render\n")
    (legacy / "NOTES.md").write_text("mine")
    assert main(["render", "dev", "--out", str(legacy)]) == 1
    assert (legacy / "NOTES.md").read_text() == "mine"


def test_a_symlinked_out_keeps_its_link(tmp_path):
    real = tmp_path / "real"
    link = tmp_path / "link"
    assert main(["render", "prod", "--out", str(real)]) == 0
    link.symlink_to(real)
    assert main(["render", "dev", "--out", str(link)]) == 0
    assert link.is_symlink() and tree(real) == tree(GOLDEN / "dev")


def test_include_secrets_writes_0600_files_in_0700_folders_and_says_where(tmp_path, capsys):
    from mesh_components.cli import _secrets_notice

    states = with_secret(render_mesh(load_stack("dev", root=ROOT)))
    out = tmp_path / "plain"
    write_tree(states, out, include_secrets=True)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    assert modes and all(m == (0o700 if p.is_dir() else 0o600) for p, m in modes.items()), modes
    _secrets_notice(states, str(out))
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{out / 'dev' / 'mesh-egress--secret--api-key.yaml'}: notice: secret values in the clear "
                   "(--include-secrets; files 0600, folders 0700): keep it out of version control and CI logs"]
    # without --include-secrets: the umask's usual modes, nothing said
    write_tree(states, tmp_path / "redacted")
    assert stat.S_IMODE((tmp_path / "redacted" / "dev" / "mesh-egress--secret--api-key.yaml").stat().st_mode) \
        == 0o666 & ~_umask()
    # the CLI: dev's Secrets hold only deploy-time placeholders, and it says so
    result = cli("render", "dev", "--out", str(tmp_path / "cli"), "--include-secrets")
    assert result.returncode == 0 and "no secret value in the clear" in result.stderr
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "cli").rglob("*") if p.is_file()} == {0o600}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("case", ["is-a-file", "under-a-file", "name-too-long", "mount-point"])
def test_an_out_that_cannot_be_written_exits_1_and_writes_nothing(case, tmp_path):
    """Issue 13 item 7: ``path: message``, exit 1, nothing half-written (these fail as root too)."""
    (tmp_path / "file").write_text("mine")
    out = {"is-a-file": tmp_path / "file", "under-a-file": tmp_path / "file" / "sub" / "out",
           "name-too-long": tmp_path / "new" / ("n" * 256), "mount-point": Path("/")}[case]
    before = snapshot(tmp_path)
    result = cli("render", "dev", "--out", str(out))
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    expected = {"is-a-file": f"--out: {out} is a file, not a folder",
                "under-a-file": f"--out: {tmp_path / 'file'} is a file, not a folder",
                "name-too-long": f"--out: cannot write {tmp_path / 'new'}/{'n' * 32}...(256 bytes): File name too long",
                "mount-point": "--out: / is a mount point"}[case]
    assert line.startswith(expected), line
    assert snapshot(tmp_path) == before


# --- the output can be applied and piped (issue 13, item 6) --------------------------------------------

def objects_of_folder(folder: Path) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))]


def identity(obj: dict) -> tuple:
    return obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def with_slots(obj) -> bool:
    """The object still holds a deploy-time value (found independently of render's own check)."""
    return any(True for _ in iter_slots(obj))


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_folder_holds_only_kubernetes_objects_at_its_top_level(stack, tmp_path):
    """kubectl apply -f DIR reads every .json/.yaml/.yml file of DIR itself, subfolders only with -R
    (kubernetes/cli-runtime pkg/resource/visitor.go ExpandPathsToFileVisitors, builder.go
    FileExtensions): everything there must be one Kubernetes object ready to apply; Helm releases
    and remote manifests live in releases/, objects with deploy-time placeholders in deploy-time/."""
    out = tmp_path / "out"
    states = render_mesh(load_stack(stack, root=ROOT))
    write_tree(states, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, *states])
    for name, st in states.items():
        folder = out / name
        later = [o for o in st.objects if with_slots(o)]
        assert sorted(p.name for p in folder.iterdir() if not p.is_file()) == \
            ([DEPLOY_TIME_DIR] if later else []) + [RELEASES_DIR]
        assert all(p.suffix == ".yaml" for p in folder.iterdir() if p.is_file())
        docs = [list(yaml.safe_load_all(p.read_text())) for p in sorted(folder.glob("*"))
                if p.suffix in (".json", ".yaml", ".yml")]
        assert all(len(d) == 1 and isinstance(d[0], dict) and {"apiVersion", "kind", "metadata"} <= set(d[0])
                   for d in docs)
        assert sorted(identity(d[0]) for d in docs) == sorted(identity(o) for o in st.objects if not with_slots(o))
        assert sorted(p.name for p in (folder / RELEASES_DIR).iterdir()) == ["helm-releases.yaml",
                                                                            "remote-manifests.yaml"]
        releases = yaml.safe_load((folder / RELEASES_DIR / "helm-releases.yaml").read_text())
        assert [r["name"] for r in releases] == [r.name for r in st.releases]


@pytest.mark.parametrize("include_secrets", [False, True])
@pytest.mark.parametrize("stack", STACKS)
def test_no_placeholder_where_kubectl_reads(stack, include_secrets, tmp_path, capsys):
    """Reviewer finding 2 (issue 13 item 6): an object still holding a deploy-time placeholder (a CA
    key, another cluster's credentials; --include-secrets cannot fill them: mesh_components/core/slots.py)
    applied as it is would replace the live value with placeholder text, and istiod would fail at
    its next start (istio 1.30.3 pilot/pkg/bootstrap/istio_ca.go:508). So no file kubectl reads
    (the folder's top level, the --out - stream) holds one; deploy-time/ holds exactly those objects,
    one file each, and nothing else."""
    out = tmp_path / "out"
    args = ["--include-secrets"] if include_secrets else []
    assert main(["render", stack, "--out", str(out), *args]) == 0
    states = render_mesh(load_stack(stack, root=ROOT))
    assert any(with_slots(o) for st in states.values() for o in st.objects)  # every shipped stack has a CA
    for name, st in states.items():
        top = [p for p in (out / name).iterdir() if p.is_file()]
        assert top and not [p.name for p in top if PLACEHOLDER_PREFIX in p.read_text()]
        later = sorted((out / name / DEPLOY_TIME_DIR).iterdir())
        assert all(p.is_file() and PLACEHOLDER_PREFIX in p.read_text() for p in later)
        assert sorted(identity(yaml.safe_load(p.read_text())) for p in later) == \
            sorted(identity(o) for o in st.objects if with_slots(o))
        capsys.readouterr()
        assert main(["render", stack, "--out", "-", "--cluster", name, *args]) == 0
        streamed = capsys.readouterr().out
        assert streamed.count("\n---\n") and PLACEHOLDER_PREFIX not in streamed


@pytest.mark.parametrize("include_secrets", [False, True])
def test_the_stream_leaves_out_objects_with_placeholders_and_says_so(include_secrets):
    args = ["--include-secrets"] if include_secrets else []
    states = render_mesh(load_stack("linkerd", root=ROOT))
    for name, st in states.items():
        result = cli("render", "linkerd", "--out", "-", "--cluster", name, *args)
        assert result.returncode == 0, result.stderr
        assert PLACEHOLDER_PREFIX not in result.stdout
        later = [o for o in st.objects if with_slots(o)]
        assert sorted(identity(d) for d in yaml.safe_load_all(result.stdout)) == \
            sorted(identity(o) for o in st.objects if not with_slots(o))
        (notice,) = [line for line in result.stderr.splitlines() if "deploy-time placeholders" in line]
        assert notice.startswith(f"-: notice: cluster {name}: not in the stream: ")
        assert notice.endswith(f"a folder render writes them to DIR/{name}/{DEPLOY_TIME_DIR}/")
        assert all(f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}" in notice for o in later)
        assert f"{len(st.objects) - len(later)} objects on stdout" in result.stderr


def test_any_object_with_a_slot_goes_to_deploy_time_whatever_its_kind(tmp_path, capsys):
    """A Slot anywhere (a ConfigMap's nested list here) sends the object to deploy-time/; text that
    only looks like a placeholder (a user's literal) keeps it where kubectl reads it. A Secret with
    a literal value and a slot is named at its deploy-time/ path by the --include-secrets notice."""
    from mesh_components.cli import _secrets_notice

    states = render_mesh(load_stack("dev", root=ROOT))
    st = states["dev"]
    meta = {"namespace": "istio-system"}
    st.concerns["multicluster"] += [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "name": "slotted"},
         "data": {"x": "1"}, "binaryData": [{"y": [Slot("cluster", "token", "dev")]}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "name": "literal"},
         "data": {"x": f"{PLACEHOLDER_PREFIX}user/text)"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {**meta, "name": "mixed"},
         "stringData": {"token": "s3cr3t-value", "ca": Slot("ca", "cert_pem", "dev")}}]
    out = tmp_path / "out"
    files = {str(f.relative_to(out)) for f in write_tree(states, out, include_secrets=True)}
    assert {"dev/deploy-time/istio-system--configmap--slotted.yaml", "dev/istio-system--configmap--literal.yaml",
            "dev/deploy-time/istio-system--secret--mixed.yaml"} <= files
    assert "dev/istio-system--configmap--slotted.yaml" not in files
    stream, left_out = render.cluster_stream_and_left_out("dev", st, include_secrets=True)
    assert sorted(o["metadata"]["name"] for o in left_out) == ["cacerts", "mixed", "slotted"]
    assert "name: literal" in stream and "s3cr3t-value" not in stream
    _secrets_notice(states, str(out))
    assert capsys.readouterr().err.startswith(f"{out / 'dev' / DEPLOY_TIME_DIR / 'istio-system--secret--mixed.yaml'}: "
                                              "notice: secret values in the clear")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl on this machine")
def test_kubectl_reads_the_cluster_folder_and_the_stream_as_they_are(tmp_path):
    """The real kubectl, offline (``--local``: the builder reads files, no server): the folder and
    the stream both give exactly the cluster's objects that hold no deploy-time placeholder (the
    folder's top-level files), Namespaces first; with -R it would also read deploy-time/ and
    releases/ and fail on the lists, which is why those live in subfolders."""
    out = tmp_path / "out"
    assert main(["render", "prod", "--out", str(out)]) == 0
    st = render_mesh(load_stack("prod", root=ROOT))["prod-aws"]

    def kubectl(*args, stdin=None):
        return subprocess.run(["kubectl", "annotate", "--local", "-o", "name", *args, "checked=yes"],
                              capture_output=True, text=True, input=stdin, cwd=tmp_path,
                              env={**os.environ, "KUBECONFIG": str(tmp_path / "none")})

    folder = kubectl("-f", str(out / "prod-aws"))
    assert folder.returncode == 0, folder.stderr
    names = folder.stdout.split()
    top = objects_of_folder(out / "prod-aws")
    assert len(names) == len(top) == len([o for o in st.objects if not with_slots(o)]) < len(st.objects)
    # kubectl's "<kind>[.<group>]/<name>" (annotate -o name) of each top-level object, none of deploy-time/
    group = {o["apiVersion"]: "." + o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else "" for o in top}
    assert sorted(names) == sorted(f"{o['kind'].lower()}{group[o['apiVersion']]}/{o['metadata']['name']}" for o in top)
    namespaces = [i for i, n in enumerate(names) if n.startswith("namespace/")]
    assert namespaces == list(range(len(namespaces)))  # _cluster-- sorts first: Namespaces before their objects
    stream = cli("render", "prod", "--out", "-", "--cluster", "prod-aws").stdout
    piped = kubectl("-f", "-", stdin=stream)
    assert piped.returncode == 0, piped.stderr
    assert sorted(piped.stdout.split()) == sorted(names)
    assert piped.stdout.split()[0].startswith("namespace/")
    recursive = kubectl("-R", "-f", str(out / "prod-aws"))
    assert recursive.returncode != 0 and f"{RELEASES_DIR}/helm-releases.yaml" in recursive.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_the_stream_is_the_folder_objects_of_one_cluster(stack, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["render", stack, "--out", str(out)]) == 0
    capsys.readouterr()
    clusters = [c.name for c in load_stack(stack, root=ROOT).spec.clusters]
    for cluster in clusters:
        assert main(["render", stack, "--out", "-", "--cluster", cluster]) == 0
        streamed = capsys.readouterr().out
        assert streamed.startswith(f"# cluster: {cluster}\n---\n")
        docs = list(yaml.safe_load_all(streamed))
        assert sorted(docs, key=identity) == sorted(objects_of_folder(out / cluster), key=identity)
        kinds = [d["kind"] for d in docs]
        assert kinds[:kinds.count("Namespace")] == ["Namespace"] * kinds.count("Namespace")  # apply order
    assert not list(tmp_path.glob("-"))  # '-' is stdout, never a folder


def test_the_stream_needs_one_named_cluster(tmp_path):
    several = cli("render", "prod", "--out", "-")
    assert several.returncode == 1 and several.stdout == ""
    assert several.stderr.splitlines() == ["--cluster: --out - streams one cluster and the stack has 3: give "
                                           "--cluster with one of prod-aws, prod-azure, prod-gcp"]
    unknown = cli("render", "prod", "--out", "-", "--cluster", "prod-eu")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.splitlines() == ["--cluster: unknown cluster 'prod-eu'; the stack's clusters: "
                                           "prod-aws, prod-azure, prod-gcp"]
    folder = cli("render", "prod", "--out", str(tmp_path / "out"), "--cluster", "prod-aws")
    assert folder.returncode == 1 and folder.stderr.startswith("--cluster: only with --out -")
    assert not (tmp_path / "out").exists()
    single = cli("render", "dev", "--out", "-")  # one cluster: no need to name it
    assert single.returncode == 0 and single.stdout.startswith("# cluster: dev\n")
    assert "not in the stream" in single.stderr and "4 Helm release(s)" in single.stderr
    translated = cli("translate", "--to", "linkerd", "--stack", "prod", "--out", "-", "--cluster", "prod-gcp")
    assert translated.returncode == 0, translated.stderr
    assert {d["metadata"].get("namespace") for d in yaml.safe_load_all(translated.stdout)} >= {"bookstore"}
    assert all(identity(d) for d in yaml.safe_load_all(translated.stdout))


def test_the_stream_redacts_secrets_unless_asked():
    states = with_secret(render_mesh(load_stack("dev", root=ROOT)))
    redacted = render.cluster_stream("dev", states["dev"])
    assert "s3cr3t-value" not in redacted and REDACTED in redacted
    plain = render.cluster_stream("dev", states["dev"], include_secrets=True)
    secret = next(d for d in yaml.safe_load_all(plain) if d["metadata"]["name"] == "api-key")
    assert secret["stringData"] == {"token": "s3cr3t-value"}
    assert "PRIVATE KEY" not in plain  # CA keys exist only at deploy time


def test_a_long_object_name_gets_a_file_name_within_255_bytes(tmp_path):
    """Issue 13 item 1: file names are safe by construction (names.object_filenames cuts and hashes
    the readable ``<namespace>--<kind>.<group>--<name>.yaml`` only when it would pass 255 bytes, the
    NAME_MAX of Linux file systems), so an object the API server accepts (names up to 253) always renders."""
    states = long_named(render_mesh(load_stack("dev", root=ROOT)))
    files = write_tree(states, tmp_path / "out")
    longest = max(len(f.name.encode()) for f in files)
    assert longest <= 255
    (hashed,) = [f for f in files if f.name.startswith("istio-system--configmap--xxx")]
    assert yaml.safe_load(hashed.read_text())["metadata"]["name"] == "x" * 260
