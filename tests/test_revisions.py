"""Istio revisions and canary upgrades: one istiod release per revision, a revision tag that
namespaces use and istiod serves, and an upgrade as two stack updates (new revision added beside
the old; old removed), as the mocked program registers them."""
from __future__ import annotations

import pytest

from mesh_components.components import STABLE_NAME
from mesh_components.spec.errors import SpecError
from mesh_components.spec import load_mesh

from cp_helpers import (by_type, find, program, release, render, set_kube_env, stack_mesh, with_clusters,
                        with_static_east_west)
from program_harness import ROOT

RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE_TYPES = ("kubernetes:core/v1:Namespace", "kubernetes:core/v1:NamespacePatch")
OLD = {"name": "1-29", "version": "1.29.4"}
NEW = {"name": "1-30"}


def staging(**istio) -> dict:
    mesh = stack_mesh("staging")
    mesh["backend"]["istio"] = {"dataPlane": "sidecar", **istio}
    return mesh


def problems(mesh) -> dict[str, str]:
    with pytest.raises(SpecError) as err:
        load_mesh(mesh, base_dir=ROOT)
    return dict(err.value.problems)


@pytest.mark.parametrize("istio,path,fragment", [
    ({"revision": "1-30", "revisions": [NEW]}, "mesh.backend.istio.revisions", "not both"),
    ({"tag": "stable"}, "mesh.backend.istio.tag", "list the revisions"),
    ({"revisions": [OLD, NEW]}, "mesh.backend.istio.tag", "name the revision tag"),
    ({"revisions": [OLD, NEW], "tag": "stable"}, "mesh.backend.istio.tagRevision", "which of 1-29, 1-30"),
    ({"revisions": [OLD, NEW], "tag": "stable", "tagRevision": "1-31"}, "mesh.backend.istio.tagRevision",
     "unknown revision '1-31'"),
    ({"revisions": [NEW], "tag": "1-30"}, "mesh.backend.istio.tag", "also a revision name"),
    ({"revisions": [NEW, NEW], "tag": "stable"}, "mesh.backend.istio.revisions[1]", "duplicate revision"),
    ({"revisions": [{"name": "1-30", "version": "latest"}]}, "mesh.backend.istio.revisions[0].version",
     "is not a chart version such as"),
])
def test_bad_revision_settings_name_the_field(istio, path, fragment):
    found = problems(staging(**istio))
    assert path in found, found
    assert fragment in found[path]


def test_single_revision_renders_as_before():
    st = render(stack_mesh("staging"))["staging-use1"]
    assert [r.name for r in st.releases if r.concern == "control-plane"] == ["istio-base", "istiod"]
    assert release(st, "istio-base").values == {"defaultRevision": "1-30"}
    assert release(st, "istiod").values["revision"] == "1-30" and "revisionTags" not in release(st, "istiod").values
    assert find(st.objects, "Namespace", "bookstore")["metadata"]["labels"]["istio.io/rev"] == "1-30"


def test_revisions_side_by_side_with_a_tag():
    st = render(staging(revisions=[OLD, NEW], tag="stable", tagRevision="1-30"))["staging-use1"]
    assert [(r.name, r.version) for r in st.releases if r.concern == "control-plane"] == [
        ("istio-base", "1.30.3"), ("istiod-1-29", "1.29.4"), ("istiod-1-30", "1.30.3")]
    old, new = release(st, "istiod-1-29"), release(st, "istiod-1-30")
    assert old.values["revision"] == "1-29" and "revisionTags" not in old.values
    assert new.values["revision"] == "1-30" and new.values["revisionTags"] == ["stable"]
    # the tag's holder installs after the other revision, which gives up the tag's webhook first
    assert new.depends_on == ("istio-base", "istiod-1-29") and old.depends_on == ("istio-base",)
    assert release(st, "istio-base").values == {"defaultRevision": "1-29"}
    for ns in ("bookstore", "bookbuyer"):
        assert find(st.objects, "Namespace", ns)["metadata"]["labels"]["istio.io/rev"] == "stable"


def test_gateways_follow_the_tag_and_ambient_parts_the_serving_revision():
    mesh = with_clusters(stack_mesh("prod"), 2, backend={"type": "istio", "istio": {
        "revisions": [OLD, NEW], "tag": "stable", "tagRevision": "1-29"}})
    st = render(mesh)["c1"]
    ew = release(st, "istio-eastwestgateway")
    assert ew.values["revision"] == "stable" and ew.version == "1.29.4" and ew.depends_on == ("istiod-1-29",)
    mesh = with_static_east_west(with_clusters(stack_mesh("dev"), 2, backend={"type": "istio", "istio": {
        "dataPlane": "ambient", "revisions": [OLD, NEW], "tag": "stable", "tagRevision": "1-30"}}))
    st = render(mesh)["c1"]
    assert (release(st, "ztunnel").values["revision"], release(st, "ztunnel").version) == ("1-30", "1.30.3")
    assert release(st, "istio-cni").depends_on == ("istiod-1-30",)
    gw = find(st.objects, "Gateway", "istio-eastwestgateway", "istio-system")
    assert gw["metadata"]["labels"]["istio.io/rev"] == "stable"


def test_upgrade_is_two_updates_in_the_mocked_program(monkeypatch):
    """Step 0: revision 1-29 serves tag ``stable``. Step 1: 1-30 is added and takes the tag, 1-29
    stays (pods not yet restarted keep their control plane). Step 2: 1-29 is removed."""
    steps = [staging(revisions=[OLD], tag="stable"),
             staging(revisions=[OLD, NEW], tag="stable", tagRevision="1-30"),
             staging(revisions=[NEW], tag="stable")]
    runs = []
    for mesh in steps:
        set_kube_env(monkeypatch, mesh)
        runs.append({(r.type, r.name): r for r in program(mesh, base="staging") if r.type != "pulumi:pulumi:Stack"})

    clusters = ("staging-use1", "staging-usw2")

    def istiods(regs, cluster):
        """One cluster's istiod releases by release name. Both clusters hold releases of the same
        name, so keying the whole program by name would depend on registration order."""
        prefix = f"{STABLE_NAME}-{cluster}-"
        found = [r for r in regs.values() if r.type == RELEASE and r.inputs["chart"] == "istiod"
                 and r.name.startswith(prefix)]
        assert len({r.inputs["name"] for r in found}) == len(found), [r.name for r in found]
        return {r.inputs["name"]: r for r in found}

    step0, step1, step2 = runs
    # step 1 adds exactly the new istiod release per cluster and removes nothing
    assert set(step0) <= set(step1)
    added = set(step1) - set(step0)
    assert added == {(RELEASE, f"{STABLE_NAME}-{c}-control-plane-istiod-1-30") for c in clusters}
    for c in clusters:
        assert set(istiods(step1, c)) == {"istiod-1-29", "istiod-1-30"}
        old1, new1 = istiods(step1, c)["istiod-1-29"], istiods(step1, c)["istiod-1-30"]
        assert old1.inputs["version"] == "1.29.4" and "revisionTags" not in old1.inputs["values"]
        # the new revision waits for the old one in its own cluster
        assert new1.inputs["values"]["revisionTags"] == ["stable"] and old1.urn in new1.dependencies
    # step 2 removes exactly the old istiod release per cluster
    assert set(step2) <= set(step1)
    removed = set(step1) - set(step2)
    assert removed == {(RELEASE, f"{STABLE_NAME}-{c}-control-plane-istiod-1-29") for c in clusters}
    for c in clusters:
        assert set(istiods(step2, c)) == {"istiod-1-30"}
        assert istiods(step2, c)["istiod-1-30"].inputs["values"]["revisionTags"] == ["stable"]
    # namespaces never change: they name the tag, not a revision
    namespaces = [{k: r.inputs for k, r in run.items() if r.type in NAMESPACE_TYPES} for run in runs]
    assert namespaces[0] == namespaces[1] == namespaces[2]
    labels = {r["metadata"]["name"]: r["metadata"]["labels"].get("istio.io/rev") for r in namespaces[0].values()}
    assert labels["bookstore"] == "stable"


def test_mocked_program_registers_one_release_per_revision(monkeypatch):
    mesh = staging(revisions=[OLD, NEW], tag="stable", tagRevision="1-30")
    set_kube_env(monkeypatch, mesh)
    regs = program(mesh, base="staging")
    names = sorted(r.inputs["name"] for r in by_type(regs, RELEASE) if "-control-plane-" in r.name)
    assert names == sorted(["istio-base", "istiod-1-29", "istiod-1-30"] * 2)
