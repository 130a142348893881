"""The pure drift core: normalisation, comparison, orphans, Helm releases, intent checks."""
from __future__ import annotations

import base64
import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diff_helpers import (FAKE_ROOT_PEM, MESH, OTHER_ROOT_PEM, add_noise, deployed, helm_secret,
                          injector_webhook, live_from_desired, revision_tag_webhook, sample_cluster,
                          sample_desired)
from mesh_components.drift.diff import (MISSING, ClusterReport, DriftReport, FieldChange, LiveRelease, ObjectDrift, ObjectRef, compare_object, compare_release, compare_values, diff_cluster, diff_releases, find_orphans, normalize_pair, object_ref, redact_report)
from mesh_components.drift.intent import (ClusterView, check_intent, check_mesh_identity, check_peer_authentication, check_registry_only, check_revision_tags, check_trust_anchors)
from mesh_components.drift.live import LiveError, decode_helm_release, releases_from_objects
from mesh_components.core.slots import Slot


def svc(**spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"},
            "spec": {"ports": [{"name": "http", "port": 80}], **spec}}


def paths(changes):
    return [c.path for c in changes]


# ---------------------------------------------------------------------------------------------
# normalisation: server noise is not drift


@pytest.mark.parametrize("index", range(len(sample_cluster("east")["objects"])))
def test_every_sample_object_with_server_noise_has_no_changes(index):
    desired = sample_cluster("east")["objects"][index]
    live = add_noise(deployed(desired), index)
    assert compare_object(desired, live) == []


def test_service_defaults_and_allocations_are_not_drift():
    live = add_noise(svc(selector={"app": "a"}))
    live["spec"]["ports"][0]["nodePort"] = None
    assert compare_object(svc(selector={"app": "a"}), live) == []


def test_service_field_changed_by_hand_is_reported_with_path_and_values():
    live = add_noise(svc(selector={"app": "a"}))
    live["spec"]["ports"][0]["targetPort"] = 8080
    live["spec"]["selector"]["extra"] = "x"
    changes = compare_object(svc(selector={"app": "a"}), live)
    assert changes == [FieldChange("spec.ports[name=http].targetPort", 80, 8080),
                       FieldChange("spec.selector.extra", MISSING, "x")]


def test_declared_cluster_ip_is_compared():
    live = add_noise(svc(clusterIP="None"))
    assert compare_object(svc(clusterIP="None"), live) == []
    live["spec"]["clusterIP"] = "10.0.0.9"
    assert paths(compare_object(svc(clusterIP="None"), live)) == ["spec.clusterIP"]


def test_load_balancer_defaults_depend_on_type():
    desired = svc(type="LoadBalancer")
    live = copy.deepcopy(desired)
    live["spec"].update({"externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True})
    live["spec"]["ports"][0]["nodePort"] = 31234
    assert compare_object(desired, live) == []
    live["spec"]["externalTrafficPolicy"] = "Local"
    assert paths(compare_object(desired, live)) == ["spec.externalTrafficPolicy"]


def test_namespace_label_and_finalizer_are_not_drift_but_a_changed_label_is():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"istio.io/rev": "1-30"}}}
    live = add_noise(ns)
    assert compare_object(ns, live) == []
    live["metadata"]["labels"]["istio.io/rev"] = "1-29"
    assert compare_object(ns, live) == [FieldChange('metadata.labels["istio.io/rev"]', "1-30", "1-29")]


def test_removed_ownership_label_is_drift():
    desired = sample_cluster("east")["objects"][3]
    live = add_noise(desired)
    del live["metadata"]["labels"]["mesh-components.io/mesh"]
    assert paths(compare_object(desired, live)) == ['metadata.labels["mesh-components.io/mesh"]']


def test_secret_string_data_matches_base64_data_and_values_are_redacted():
    desired = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "n"},
               "stringData": {"a": "hello"}}
    live = add_noise(desired)
    assert live["data"] == {"a": base64.b64encode(b"hello").decode()}
    assert compare_object(desired, live) == []
    live["data"]["a"] = base64.b64encode(b"tampered").decode()
    (change,) = compare_object(desired, live)
    assert change.path == "data.a"  # compared as they are; printed only through redact_report
    ref = object_ref(desired)
    report = DriftReport("s", MESH, (ClusterReport("east", changed=(ObjectDrift(ref, "changed", (change,)),)),))
    (shown,) = redact_report(report).clusters[0].changed[0].changes
    assert (shown.desired, shown.live) == ("<redacted #1>", "<redacted #2>")
    assert "aGVsbG8" not in json.dumps(shown.to_dict()) and "dGFtcGVyZWQ" not in json.dumps(shown.to_dict())


def test_deploy_time_values_are_never_compared_but_their_absence_is_reported():
    desired = sample_cluster("east")["objects"][2]  # cacerts, every value a Slot
    live = add_noise(deployed(desired))
    live["data"]["ca-cert.pem"] = base64.b64encode(b"anything at all").decode()
    assert compare_object(desired, live) == []
    del live["data"]["ca-key.pem"]
    (change,) = compare_object(desired, live)
    assert change.path == 'data["ca-key.pem"]' and change.live is MISSING
    assert change.to_dict() == {"path": 'data["ca-key.pem"]', "desired": "$(deploy-time:ca/east/key_pem)"}


def test_placeholder_strings_count_as_deploy_time_values():
    assert compare_values({"a": "$(deploy-time:ca/root_cert_pem)", "b": "x $(deploy-time:c/k) y"},
                          {"a": "PEM", "b": "x real y"}) == []


def test_crd_defaults_apply_to_both_sides():
    desired = sample_cluster("east")["objects"][6]  # HTTPRoute
    desired["spec"]["parentRefs"] = [{"name": "ingress", "namespace": "mesh-ingress"}]
    live = copy.deepcopy(desired)
    live["spec"]["parentRefs"][0].update({"group": "gateway.networking.k8s.io", "kind": "Gateway"})
    live["spec"]["rules"][0]["matches"] = [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert compare_object(desired, live) == []
    # a default is a value like any other: a Service parent is not the default Gateway
    live["spec"]["parentRefs"][0].pop("group")
    desired["spec"]["parentRefs"][0]["group"] = ""
    assert paths(compare_object(desired, live)) == ["spec.parentRefs[name=ingress].group"]
    desired["spec"]["parentRefs"][0].pop("group")
    live["spec"]["rules"][0]["backendRefs"][1]["weight"] = 1
    del live["spec"]["rules"][0]["backendRefs"][0]["weight"]
    assert compare_object(desired, live) == [
        FieldChange("spec.rules[0].backendRefs[name=bookstore-v1].weight", 90, 1),
        FieldChange("spec.rules[0].backendRefs[name=bookstore-v2].weight", 10, 1)]


def test_empty_values_equal_absent_but_added_content_is_drift():
    assert compare_values({"a": {}, "b": [], "c": None}, {"d": {}}) == []
    assert compare_values({"rules": [{}]}, {"rules": []}) == [FieldChange("rules[0]", {}, MISSING)]
    assert compare_values({"rules": []}, {"rules": [{}]}) == [FieldChange("rules[0]", MISSING, {})]
    assert compare_values({"x": 1}, {"x": 1, "y": {"z": 1}}) == [FieldChange("y", MISSING, {"z": 1})]


def test_list_paths_by_name_and_by_index():
    assert compare_values({"l": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]},
                          {"l": [{"name": "b", "v": 2}, {"name": "a", "v": 3}, {"name": "c"}]}) == [
        FieldChange("l[name=a].v", 1, 3), FieldChange("l[name=c]", MISSING, {"name": "c"})]
    assert compare_values({"l": [1, 2]}, {"l": [1, 3, 4]}) == [
        FieldChange("l[1]", 2, 3), FieldChange("l[2]", MISSING, 4)]


def test_types_matter_for_leaves():
    assert compare_values({"p": "8080"}, {"p": 8080}) == [FieldChange("p", "8080", 8080)]
    assert compare_values({"w": 50}, {"w": 50.0}) == []


def test_api_version_is_not_part_of_identity():
    a = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "d", "namespace": "n"}}
    b = dict(a, apiVersion="security.istio.io/v1beta1")
    assert object_ref(a) == object_ref(b)
    report = diff_cluster("c", MESH, [a], [b])
    assert report.count == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_a_value_never_differs_from_itself(value):
    assert compare_values(value, copy.deepcopy(value)) == []


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=4), json_values, max_size=4),
       st.dictionaries(st.text(min_size=1, max_size=4), json_values, max_size=4))
def test_changes_are_empty_exactly_when_the_values_are_equal_up_to_empties(a, b):
    def prune(v):  # empties are absent; list items stay (a list item is never absent)
        if isinstance(v, dict):
            v = {k: prune(x) for k, x in v.items()}
            return {k: x for k, x in v.items() if x is not None} or None
        if isinstance(v, list):
            return [prune(x) for x in v] or None
        return v
    same = prune(a) == prune(b)
    assert (compare_values(a, b) == []) == same


def test_normalisation_does_not_mutate_its_inputs():
    desired = sample_cluster("east")["objects"][6]
    live = add_noise(desired)
    before = (copy.deepcopy(desired), copy.deepcopy(live))
    normalize_pair(desired, live)
    compare_object(desired, live)
    assert (desired, live) == before


# ---------------------------------------------------------------------------------------------
# cluster diff: missing, changed, orphaned


def test_clean_cluster_has_no_drift_and_three_changes_give_three_entries():
    state = sample_cluster("east")
    live = live_from_desired(state["objects"], state["releases"])
    clean = diff_cluster("east", MESH, state["objects"], live, state["releases"], releases_from_objects(live))
    assert clean.count == 0, clean

    route = next(o for o in live if o["kind"] == "HTTPRoute")
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 50
    live = [o for o in live if o["metadata"]["name"] != "bookstore-allow-bookbuyer"]
    live.append({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "stray", "namespace": "bookstore",
                              "labels": {"app.kubernetes.io/managed-by": "mesh-components",
                                         "mesh-components.io/mesh": MESH}}})
    report = diff_cluster("east", MESH, state["objects"], live, state["releases"], releases_from_objects(live))
    assert [str(d.ref) for d in report.missing] == [
        "AuthorizationPolicy bookstore/bookstore-allow-bookbuyer (security.istio.io/v1)"]
    assert [(str(d.ref), d.changes) for d in report.changed] == [
        ("HTTPRoute bookstore/bookstore-split (gateway.networking.k8s.io/v1)",
         (FieldChange("spec.rules[0].backendRefs[name=bookstore-v1].weight", 90, 50),))]
    assert [str(d.ref) for d in report.orphaned] == ["ConfigMap bookstore/stray (v1)"]
    assert report.releases == () and report.count == 3


def test_orphans_need_both_ownership_labels_of_this_mesh_and_skip_helm_objects():
    def obj(name, labels, annotations=None):
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "n", "labels": labels, "annotations": annotations or {}}}
    own = {"app.kubernetes.io/managed-by": "mesh-components", "mesh-components.io/mesh": MESH}
    live = [obj("ours", own), obj("other-mesh", {**own, "mesh-components.io/mesh": "other"}),
            obj("no-mesh-label", {"app.kubernetes.io/managed-by": "mesh-components"}),
            obj("helm", own, {"meta.helm.sh/release-name": "istiod-1-30"}), obj("declared", own)]
    declared = {object_ref(live[-1]).key}
    assert [d.ref.name for d in find_orphans(live, declared, MESH, ["istiod-1-30"])] == ["ours"]


# ---------------------------------------------------------------------------------------------
# Helm releases


def test_helm_storage_secret_decodes_gzip_and_plain():
    rel = sample_cluster("east")["releases"][1]
    for gz in (True, False):
        got = decode_helm_release(helm_secret(rel, 3, gzip_it=gz))
        assert (got.name, got.namespace, got.chart, got.chart_version, got.status, got.revision) == (
            "istiod-1-30", "istio-system", "istiod", "1.30.3", "deployed", 3)
        assert got.values["global"]["meshID"] == MESH


def test_highest_deployed_revision_wins_and_a_newer_failed_one_is_reported():
    rel = sample_cluster("east")["releases"][1]
    secrets = [helm_secret(rel, 1, "superseded"), helm_secret(rel, 2, "deployed"),
               helm_secret(rel, 3, "failed", chart_version="1.31.0")]
    got = releases_from_objects(secrets)[("istio-system", "istiod-1-30")]
    assert (got.revision, got.chart_version, got.latest_status) == (2, "1.30.3", "failed")
    assert compare_release(rel, got) == [FieldChange("status", "deployed", "failed")]


def test_undecodable_helm_secret_is_an_error_naming_it():
    bad = helm_secret(sample_cluster("east")["releases"][0])
    bad["data"]["release"] = base64.b64encode(b"H4sI" + b"not gzip").decode()
    with pytest.raises(LiveError) as e:
        releases_from_objects([bad])
    assert e.value.problems[0][0] == "secret istio-system/sh.helm.release.v1.istio-base.v1"


def test_release_version_values_and_missing_are_reported_and_slots_skipped():
    releases = sample_cluster("east")["releases"]
    releases[1]["values"]["global"]["caAddress"] = Slot("cluster", "ca_address", "east")
    live_values = deployed(releases[1]["values"])
    live_values["meshConfig"]["outboundTrafficPolicy"]["mode"] = "ALLOW_ANY"
    live = {("istio-system", "istiod-1-30"): decode_helm_release(
        helm_secret(releases[1], values=live_values, chart_version="1.29.0"))}
    (missing, changed) = diff_releases(releases, live)
    assert (missing.name, missing.state) == ("istio-base", "missing")
    assert changed.changes == (FieldChange("version", "1.30.3", "1.29.0"),
                               FieldChange("values.meshConfig.outboundTrafficPolicy.mode", "REGISTRY_ONLY", "ALLOW_ANY"))


# ---------------------------------------------------------------------------------------------
# intent checks


def views(live_objects_by_cluster, releases_by_cluster=None):
    return {c: ClusterView(objs, list((releases_by_cluster or {}).get(c, [])))
            for c, objs in live_objects_by_cluster.items()}


def deployed_views(desired=None, mutate=None):
    desired = desired or sample_desired()
    out = {}
    for c, st_ in desired.items():
        objs = live_from_desired(st_["objects"])
        rels = [decode_helm_release(helm_secret(r)) for r in st_["releases"]]
        if mutate:
            mutate(c, objs, rels)
        out[c] = ClusterView(objs, rels)
    return out


def desired_views(desired=None):
    desired = desired or sample_desired()
    return {c: ClusterView(s["objects"], s["releases"]) for c, s in desired.items()}


def test_clean_deploy_has_no_intent_findings():
    assert check_intent(desired_views(), deployed_views()) == []


def _set_root(cluster, pem):
    def mutate(c, objs, rels):
        if c == cluster:
            cacerts = next(o for o in objs if o["metadata"]["name"] == "cacerts")
            cacerts["data"]["root-cert.pem"] = base64.b64encode(pem.encode()).decode()
    return mutate


def test_trust_anchor_mismatch_fires_and_reordered_bundles_do_not():
    findings = check_trust_anchors(deployed_views(mutate=_set_root("west", OTHER_ROOT_PEM)))
    assert [(f.check, f.cluster) for f in findings] == [("trust-anchors", None)]
    assert "east" in findings[0].message and "west" in findings[0].message
    both = FAKE_ROOT_PEM + OTHER_ROOT_PEM
    v = deployed_views(mutate=lambda c, o, r: (_set_root("east", both)(c, o, r),
                                                _set_root("west", OTHER_ROOT_PEM + "\n" + FAKE_ROOT_PEM)(c, o, r)))
    assert check_trust_anchors(v) == []


def test_linkerd_trust_roots_compared_and_a_cluster_without_them_reported():
    def cm(pem):
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "linkerd-identity-trust-roots", "namespace": "linkerd"},
                "data": {"ca-bundle.crt": pem}}
    assert check_trust_anchors(views({"a": [cm(FAKE_ROOT_PEM)], "b": [cm(FAKE_ROOT_PEM)]})) == []
    assert [f.cluster for f in check_trust_anchors(views({"a": [cm(FAKE_ROOT_PEM)], "b": [cm(OTHER_ROOT_PEM)]}))] == [None]
    (f,) = check_trust_anchors(views({"a": [cm(FAKE_ROOT_PEM)], "b": []}))
    assert (f.cluster, f.subject) == ("b", "Linkerd ca-bundle.crt")


def test_mesh_id_and_network_mismatches_fire():
    def mutate(c, objs, rels):
        if c == "west":
            rels[1] = LiveRelease(**{**rels[1].__dict__, "values": {**rels[1].values, "global": {
                **rels[1].values["global"], "meshID": "other", "network": "net-2"}}})
    findings = check_mesh_identity(deployed_views(mutate=mutate))
    assert sorted((f.check, f.cluster) for f in findings) == [("mesh-id", None), ("network", "west")]
    assert check_mesh_identity(deployed_views()) == []


def test_revision_tag_pointing_at_missing_revision_fires():
    ok = deployed_views(mutate=lambda c, o, r: o.append(revision_tag_webhook("prod-stable", "1-30")))
    assert check_revision_tags(ok) == []
    bad = deployed_views(mutate=lambda c, o, r: o.append(revision_tag_webhook("prod-stable", "1-29")))
    assert [(f.cluster, f.subject) for f in check_revision_tags(bad)] == [
        ("east", "MutatingWebhookConfiguration istio-revision-tag-prod-stable"),
        ("west", "MutatingWebhookConfiguration istio-revision-tag-prod-stable")]
    # without Helm storage, an injector webhook is evidence of a revision
    v = views({"a": [revision_tag_webhook("default", "1-29"), injector_webhook("1-29")]})
    assert check_revision_tags(v) == []


def test_registry_only_switched_off_fires_only_when_desired():
    def allow_any(c, objs, rels):
        rels[1] = LiveRelease(**{**rels[1].__dict__, "values": {**rels[1].values, "meshConfig": {
            "outboundTrafficPolicy": {"mode": "ALLOW_ANY"}}}})
    findings = check_registry_only(desired_views(), deployed_views(mutate=allow_any))
    assert [(f.check, f.cluster) for f in findings] == [("registry-only", "east"), ("registry-only", "west")]
    desired = sample_desired()
    for s in desired.values():
        s["releases"][1]["values"]["meshConfig"]["outboundTrafficPolicy"]["mode"] = "ALLOW_ANY"
    assert check_registry_only(desired_views(desired), deployed_views(mutate=allow_any)) == []


def test_weak_peer_authentication_fires_at_workload_and_port_level():
    def pa(name, spec):
        return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                "metadata": {"name": name, "namespace": "n"}, "spec": spec}
    v = views({"a": [pa("strict", {"mtls": {"mode": "STRICT"}}), pa("unset", {}),
                     pa("permissive", {"mtls": {"mode": "PERMISSIVE"}}),
                     pa("port", {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"8080": {"mode": "DISABLE"}}})]})
    found = check_peer_authentication(v)
    assert [f.subject for f in found] == ["PeerAuthentication n/permissive", "PeerAuthentication n/port"]
    assert "port 8080 mode DISABLE" in found[1].message


def test_findings_the_stack_declares_are_marked_and_are_not_drift():
    desired = sample_desired()
    for s in desired.values():
        s["objects"][7]["spec"]["mtls"]["mode"] = "PERMISSIVE"
    live = deployed_views(desired)
    findings = check_intent(desired_views(desired), live)
    assert {(f.check, f.declared) for f in findings} == {("peer-authentication", True)}
    from mesh_components.drift.diff import DriftReport
    assert not DriftReport("s", MESH, (), tuple(findings)).has_drift


def test_object_ref_str_and_dict():
    ref = ObjectRef("", "Namespace", "", "a", "v1")
    assert str(ref) == "Namespace a (v1)"
    assert ref.to_dict() == {"apiVersion": "v1", "kind": "Namespace", "namespace": "", "name": "a"}


def test_registry_only_through_the_shared_mesh_config_configmap():
    def shared(mode):
        def mutate(c, objs, rels):
            rels[1] = LiveRelease(**{**rels[1].__dict__, "values": {"revision": "1-30",
                                                                     "env": {"SHARED_MESH_CONFIG": "mesh-shared"}}})
            objs.append({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "mesh-shared", "namespace": "istio-system"},
                         "data": {"mesh": f"outboundTrafficPolicy:\n  mode: {mode}\n"}})
        return mutate
    assert check_registry_only(desired_views(), deployed_views(mutate=shared("REGISTRY_ONLY"))) == []
    assert len(check_registry_only(desired_views(), deployed_views(mutate=shared("ALLOW_ANY")))) == 2
