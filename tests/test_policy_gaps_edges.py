"""Edges of the access-deciding code that the mutation run of issue 18 found untested: limits at
their exact value, and the identity (name, namespace) a mesh reads an object by. Each test asserts
what the mesh as pinned would admit, refuse or read, citing it; the helpers are those of
``test_policy_gaps`` (one-cluster meshes judged by the evaluators of ``policy_eval``).
Upstream, as pinned: OSM v1.2.4 with Envoy v1.22.2, Istio 1.30.3, Linkerd edge-26.8.3.
"""
from __future__ import annotations

import pytest

from mesh_components.errors import TranslationError
from mesh_components.smi import re2_compile

from test_policy_gaps import assert_exact, group, http_rule, mesh_of, objects_for, target

API = ("shop", "api", [(8080, "http", None), (9090, "http", None)])


# --- OSM ----------------------------------------------------------------------------------------------

def test_osm_takes_a_regex_of_exactly_envoys_program_size_limit_and_refuses_one_more(tmp_path):
    """Envoy refuses a regex only when its RE2 program is LARGER than
    ``re2.max_program_size.error_level`` (default 100): envoy v1.22.2
    source/common/common/regex.cc ``CompiledGoogleReMatcher``: ``if (regex_program_size >
    max_program_size_error_level) throw EnvoyException(...)``. A regex of size exactly 100 is
    served; refusing it would be an outage, taking 101 a NACKed route table."""
    at_limit, over = "/abx{1,47}", "/ax{1,48}"
    (tmp_path / "at").mkdir(), (tmp_path / "over").mkdir()
    assert (re2_compile(at_limit).programsize, re2_compile(over).programsize) == (100, 101)
    docs = [group("g", [{"name": "m", "methods": ["GET"], "pathRegex": at_limit}]), target("t", "api", [http_rule("g")])]
    objects = assert_exact(docs, [API], tmp_path / "at", "osm")
    (g,) = [o for o in objects if o["kind"] == "HTTPRouteGroup"]
    assert [m["pathRegex"] for m in g["spec"]["matches"]] == [at_limit]
    docs = [group("g", [{"name": "m", "methods": ["GET"], "pathRegex": over}]), target("t", "api", [http_rule("g")])]
    with pytest.raises(TranslationError) as err:
        objects_for(mesh_of([API], docs, tmp_path / "over"), "osm")
    (where, message), = err.value.problems
    assert where == "smi.yaml#TrafficTarget/shop/t" and "program of size 101" in message


def test_osm_traffic_split_keeps_its_name_in_the_namespace_of_its_root_service(tmp_path):
    """OSM applies a TrafficSplit to the root service of the split's OWN namespace (v1.2.4
    pkg/smi/client.go:113 ``FilterTrafficSplit``: ``o.ApexService.Namespace != trafficSplit.Namespace``
    -> not this service's split), so the rendered split lives in the root's namespace under the
    SMI document's name (a second split of the same root is refused: tests/test_splits.py)."""
    services = [("shop", "api", [(8080, "http", None)]), ("shop", "api-v1", [(8080, "http", None)]),
                ("shop", "api-v2", [(8080, "http", None)])]
    docs = [{"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
             "metadata": {"name": "api-canary", "namespace": "shop"},
             "spec": {"service": "api", "backends": [{"service": "api-v1", "weight": 9},
                                                     {"service": "api-v2", "weight": 1}]}}]
    (ts,) = [o for o in objects_for(mesh_of(services, docs, tmp_path), "osm") if o["kind"] == "TrafficSplit"]
    assert ts["apiVersion"] == "split.smi-spec.io/v1alpha2"
    assert (ts["metadata"]["name"], ts["metadata"]["namespace"]) == ("api-canary", "shop")
    assert ts["spec"] == {"service": "api", "backends": [{"service": "api-v1", "weight": 9},
                                                         {"service": "api-v2", "weight": 1}]}
