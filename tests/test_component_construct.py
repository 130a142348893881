"""``Construct`` over gRPC of the components ``tests/test_component_package.py`` does not construct
there, and ``pulumi preview``'s form of a Construct, as the engine drives them.

The engine builds the ``ConstructRequest`` in pulumi/pulumi ``sdk/go/common/resource/plugin/
provider_plugin.go`` ``(*provider).Construct`` (lines 1991-2216 at 1b5949891b, pkg/v3.259.0-14;
``pkg/resource/plugin/provider_plugin.go`` until commit dfab571aac, v1.13 in 2020, moved it): the inputs
marshalled with secrets and output values kept (lines 2038-2048), the program's ``providers``
option as package -> provider reference (line 2159), ``dryRun`` = ``req.Info.DryRun`` (line 2151:
``true`` in a preview), the monitor to register with (``monitorEndpoint``, line 2153); it reads the
answer back keeping unknowns only in a preview (``KeepUnknowns: req.Info.DryRun``, line 2191) and
secrets always (line 2192). The helpers that play the engine (``Engine``, ``construct``, the
``plugin`` and ``engine`` fixtures, the wire helpers) are ``tests/test_component_package.py``'s;
``tests/construct_helpers.py`` adds the preview engine and the mocks runner.

- ``EgressRules`` (Istio sidecar, ``istioOutboundTrafficPolicy: REGISTRY_ONLY``, one rule),
  ``MeshGateway`` (Istio's own implementation), ``IstioControlPlane`` and ``OsmControlPlane``
  (minimal args, the CA key sent as a secret) register, on the provider reference of the
  request, exactly what the same Python class registers in a Python program under the SDK's
  mocks (types, names ``<component name>:...`` / ``<component name>-...``, parents,
  dependencies, inputs, which inputs are secret), Helm releases after what they wait for; and
  they register and return the same outputs.
- A preview (``dryRun: true``) Construct of ``SmiPolicies`` and of the CA registers what the
  update registers; outputs the engine cannot know in a preview (the CA's material: its dynamic
  resource is not created) come back unknown, and the CA's key material comes back as secrets,
  never in plain text.
- ``EgressRules`` with a bad field fails naming the component and the field before anything is
  registered, with the text a Python program gets.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import grpc
import pytest

from mesh_components.components.args import ArgsError, schema_name
from mesh_components.components.package import component as component_class

from construct_helpers import DryRun, PreviewEngine, is_secret_value, run_python, whole
from program_harness import _secret_paths
from test_component_package import (CA_NAME, K8S_PROVIDER_REF, SMI_NAME, STACK_URN, UNKNOWN, ca_inputs, construct,
                                    downgrade, documented_secret, engine, new_urn, outside_secrets, plugin, secret,
                                    smi_inputs, to_dict, unwrap)
from test_component_control_plane import material_args

assert engine and plugin  # the module-scoped fixtures, imported to be used here

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
MOCK_PROVIDER_TYPE = "pulumi:providers:kubernetes"


# ---------------------------------------------------------------------------------------------
# the cases: schema-named inputs as another language's program sends them


def camel(args: dict) -> dict:
    """Python Args (snake_case at the top) -> the schema names the engine sends."""
    return {schema_name(k): v for k, v in args.items()}


EGRESS_RULE = {"name": "book-publisher-api", "hosts": ["api.bookpublisher.example.com"],
               "ports": [{"port": 443, "protocol": "https"}],
               "sources": [{"service": "bookwarehouse", "namespace": "bookwarehouse"}]}


def egress_inputs() -> dict:
    """Istio sidecar egress with one rule, stating istiod's REGISTRY_ONLY (without it the rules
    are refused: Istio's default ALLOW_ANY, istio 1.30.3 ``pkg/config/mesh/mesh.go:83``)."""
    return {"mesh": "istio", "istioOutboundTrafficPolicy": "REGISTRY_ONLY", "rules": [copy.deepcopy(EGRESS_RULE)],
            "services": [{"name": "bookwarehouse", "namespace": "bookwarehouse"}]}


def gateway_inputs() -> dict:
    """The least a MeshGateway on Istio takes: hosts, one route, the routed service with its port."""
    return {"mesh": "istio", "hosts": ["bookstore.localtest.me"],
            "routes": [{"service": "bookstore", "namespace": "bookstore", "port": 14001}],
            "services": [{"name": "bookstore", "namespace": "bookstore", "ports": [{"port": 14001}]}]}


def control_plane_inputs(mesh: str) -> dict:
    """The required args of a control plane: the CA material (``test_component_control_plane``'s
    real chain) with the key sent as a secret, as a program passes a CA's secret output; Istio's
    cluster name."""
    inputs = camel(material_args(mesh))
    inputs["caKeyPem"] = secret(inputs["caKeyPem"])
    if mesh == "istio":
        inputs["clusterName"] = "c1"
    return inputs


def python_form(inputs: dict) -> dict:
    """The wire inputs as a Python program passes them: secrets as their values (the components
    make key material secret whatever they get), schema names accepted as given."""
    return unwrap(inputs)[0]


CASES = {
    "EgressRules": ("egress", egress_inputs),
    "MeshGateway": ("gateway", gateway_inputs),
    "IstioControlPlane": ("cp", lambda: control_plane_inputs("istio")),
    "OsmControlPlane": ("osm", lambda: control_plane_inputs("osm")),
}
"""component -> (name, its inputs)."""


class Built:
    """One Construct as the engine saw it: the answer, the registrations (URN, request) in arrival
    order, and the outputs each component registered (``RegisterResourceOutputs``), by URN."""

    def __init__(self, answer, registered, outputs):
        self.answer, self.registered, self.outputs = answer, registered, outputs

    @property
    def component(self):
        return self.registered[0][1]

    @property
    def children(self) -> list:
        return [r for _, r in self.registered[1:]]

    def by_urn(self) -> dict:
        return dict(self.registered)


def run_construct(stub, eng, typ: str, name: str, inputs: dict) -> Built:
    answer = construct(stub, eng, typ, name, inputs)
    with eng.lock:
        outputs = dict(eng.outputs)
    return Built(answer, eng.registered(), outputs)


@pytest.fixture(scope="module")
def preview_engine(tmp_path_factory):
    e = PreviewEngine(tmp_path_factory.mktemp("preview-engine"))
    yield e
    e.close()


@pytest.fixture(scope="module")
def built(plugin, engine):
    """component -> its Construct (an update), one each."""
    return {c: run_construct(plugin, engine, f"mesh:index:{c}", name, make()) for c, (name, make) in CASES.items()}


@pytest.fixture(scope="module")
def mocked():
    """component -> (registrations, registered outputs) of the same class and args in a Python
    program under the SDK's mocks (``program_harness``), the cluster's provider in ``providers``."""
    return {c: run_python(component_class(c), name, python_form(make())) for c, (name, make) in CASES.items()}


# ---------------------------------------------------------------------------------------------
# what the engine sees, in the forms compared


def shape(items: list[tuple[str, str, str, Any]]) -> list[tuple]:
    """(type, name, the parent's (type, name) or "stack") rows, sorted: concurrent registrations
    arrive in any order, so order is compared only where dependencies fix it."""
    return sorted(items)


def construct_rows(b: Built) -> list[tuple]:
    urns = b.by_urn()

    def parent(urn):
        return "stack" if urn == STACK_URN else (urns[urn].type, urns[urn].name)
    return shape([(r.type, r.name, parent(r.parent)) for _, r in b.registered])


def mock_rows(regs) -> list[tuple]:
    urns = {r.urn: r for r in regs}

    def parent(urn):
        return (urns[urn].type, urns[urn].name) if urn in urns else "stack"
    return shape([(r.type, r.name, parent(r.parent)) for r in regs if r.type != MOCK_PROVIDER_TYPE])


def key_of(urn_to: dict, urn: str) -> tuple[str, str]:
    r = urn_to[urn]
    return (r.type, r.name)


def construct_children(b: Built) -> dict:
    """(type, name) -> {inputs, secret input paths, dependencies as (type, name)} of every child."""
    urns = b.by_urn()
    return {(r.type, r.name): {"inputs": whole(unwrap(downgrade(to_dict(r.object)))[0]),
                               "secret": set(_secret_paths(r.object)),
                               "deps": sorted(key_of(urns, d) for d in r.dependencies),
                               "additionalSecretOutputs": sorted(set(r.additionalSecretOutputs))}
            for r in b.children}


def mock_children(regs, component_type: str) -> dict:
    urns = {r.urn: r for r in regs}
    return {(r.type, r.name): {"inputs": whole(r.inputs), "secret": set(r.secret_inputs),
                               "deps": sorted(key_of(urns, d) for d in r.dependencies),
                               "additionalSecretOutputs": sorted(set(r.additional_secret_outputs))}
            for r in regs if r.type not in (MOCK_PROVIDER_TYPE, component_type)}


# ---------------------------------------------------------------------------------------------
# 1-3: EgressRules, MeshGateway, IstioControlPlane, OsmControlPlane


@pytest.mark.parametrize("component", list(CASES))
def test_construct_registers_the_component_under_the_stack_and_every_child_on_the_requests_provider(built, component):
    """The component is registered under the request's parent (the stack) with the request's
    ``providers`` map; every child is parented to it, named after it, and every custom child
    registers with the kubernetes provider reference the request carried (the SDK rebuilds it
    from ``providers``: ``pulumi/provider/server.py`` ``_construct_options``), no other."""
    name, _ = CASES[component]
    b = built[component]
    component_urn, comp = b.registered[0]
    typ = f"mesh:index:{component}"
    assert (comp.type, comp.name, comp.parent, comp.custom) == (typ, name, STACK_URN, False)
    assert dict(comp.providers) == {"kubernetes": K8S_PROVIDER_REF}
    assert b.answer.urn == component_urn == new_urn(STACK_URN, typ, name)
    assert b.children
    for r in b.children:
        assert r.parent == component_urn, (r.type, r.name)
        assert r.name.startswith((f"{name}:", f"{name}-")), (r.type, r.name)
        assert r.custom and not r.remote and r.type.startswith("kubernetes:"), (r.type, r.name)
        assert r.provider == K8S_PROVIDER_REF, (r.type, r.name)


@pytest.mark.parametrize("component", list(CASES))
def test_construct_registers_what_the_python_class_registers_under_mocks(built, mocked, component):
    """The same resources (type, name, parent), each with the same inputs, the same secret
    inputs, the same dependencies and additional secret outputs, as the Python class registers
    in a Python program given the same args under the SDK's mocks."""
    b = built[component]
    regs, _ = mocked[component]
    assert construct_rows(b) == mock_rows(regs)
    over_grpc, in_python = construct_children(b), mock_children(regs, f"mesh:index:{component}")
    assert sorted(over_grpc) == sorted(in_python)
    for key in over_grpc:
        assert over_grpc[key] == in_python[key], key
    # and the Python program's children are on its own provider, as the Construct's are on the request's
    (provider,) = [r for r in regs if r.type == MOCK_PROVIDER_TYPE]
    assert {r.provider for r in regs if r.type.startswith("kubernetes:")} == {f"{provider.urn}::{provider.name}-id"}


@pytest.mark.parametrize("component", list(CASES))
def test_construct_returns_and_registers_the_outputs_the_python_class_registers(built, mocked, component):
    """The outputs the component registers (``register_outputs``) are the Python class's under
    mocks, and the Construct answer carries each under its schema name (``get_state``,
    ``pulumi/provider/experimental/component.py``), none secret: none holds key material."""
    b = built[component]
    _, python_outputs = mocked[component]
    registered = whole(unwrap(b.outputs[b.answer.urn])[0])
    assert python_outputs and registered == whole(python_outputs)
    raw = to_dict(b.answer.state)
    state, any_secret = unwrap(raw)
    assert not any_secret
    assert whole(state) == {schema_name(k): v for k, v in registered.items()}


def test_egress_rules_registers_the_istio_sidecar_allow_list_and_returns_the_allowed_egress(built):
    """One https rule on Istio sidecars: its ServiceEntry, Gateway, VirtualService and
    AuthorizationPolicy in ``mesh-egress``, the egress gateway's DestinationRule, after the
    egress gateway release (chart ``gateway``) and the ``mesh-egress`` namespace it waits for."""
    b = built["EgressRules"]
    kinds = sorted((r.type, r.name) for r in b.children)
    assert kinds == sorted([
        ("kubernetes:core/v1:NamespacePatch", "egress:mesh-egress"),
        (RELEASE_TYPE, "egress-istio-egressgateway"),
        ("kubernetes:networking.istio.io/v1:ServiceEntry", "egress:mesh-egress/book-publisher-api"),
        ("kubernetes:networking.istio.io/v1:Gateway", "egress:mesh-egress/book-publisher-api"),
        ("kubernetes:networking.istio.io/v1:VirtualService", "egress:mesh-egress/book-publisher-api"),
        ("kubernetes:security.istio.io/v1:AuthorizationPolicy", "egress:mesh-egress/book-publisher-api"),
        ("kubernetes:networking.istio.io/v1:DestinationRule", "egress:mesh-egress/istio-egressgateway")])
    order = [r.name for r in b.children]
    release = order.index("egress-istio-egressgateway")
    assert order.index("egress:mesh-egress") < release < min(
        i for i, r in enumerate(b.children) if r.type.startswith("kubernetes:networking.istio.io/"))
    release_values, _ = unwrap(downgrade(to_dict(b.children[release].object)))
    assert release_values["chart"] == "gateway" and release_values["namespace"] == "mesh-egress"

    state = whole(unwrap(to_dict(b.answer.state))[0])
    assert state["allowed"] == [{"source": "bookwarehouse/bookwarehouse", "host": "api.bookpublisher.example.com",
                                 "protocol": "https", "port": 443}]
    assert (state["enforcedBy"], state["egressGateway"]) == ("istio-egressgateway", "mesh-egress/istio-egressgateway")
    assert (state["serviceEntries"], state["namespaces"], state["objects"]) == (
        ["book-publisher-api"], ["mesh-egress"], 6)
    assert any("REGISTRY_ONLY" in line for line in state["requirements"])
    assert "meshConfig" not in state  # nothing patched on Istio


def test_mesh_gateway_on_istio_registers_istios_gateway_and_route_and_returns_where_it_listens(built):
    b = built["MeshGateway"]
    assert sorted((r.type, r.name) for r in b.children) == sorted([
        ("kubernetes:core/v1:NamespacePatch", "gateway:mesh-ingress"),
        ("kubernetes:gateway.networking.k8s.io/v1:ReferenceGrant", "gateway:bookstore/ingress-from-mesh-ingress"),
        ("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "gateway:mesh-ingress/ingress-bookstore-bookstore"),
        ("kubernetes:gateway.networking.k8s.io/v1:Gateway", "gateway:mesh-ingress/ingress")])
    assert not any(r.type == RELEASE_TYPE for r in b.children)  # Istio's own controller: no Envoy Gateway release
    (gateway,) = [r for r in b.children if r.type.endswith(":Gateway")]
    body, _ = unwrap(downgrade(to_dict(gateway.object)))
    assert body["spec"]["gatewayClassName"] == "istio"
    assert "status" not in body  # an output only: nothing sent for it
    state = whole(unwrap(to_dict(b.answer.state))[0])
    assert (state["gateways"], state["hosts"], state["implementation"], state["service"]) == (
        ["mesh-ingress/ingress"], ["bookstore.localtest.me"], "istio", "mesh-ingress/ingress-istio")
    assert state["addresses"] == []  # no address published by the (absent) controller yet


@pytest.mark.parametrize("mesh, releases", [("istio", ["cp-istio-base", "cp-istiod"]), ("osm", ["osm-osm"])])
def test_control_plane_registers_its_helm_releases_in_order_after_the_ca_secret(built, mesh, releases):
    """The releases arrive in install order, each after what it depends on (istiod after ``base``
    and the ``cacerts`` Secret it reads at start; OSM after ``osm-ca-bundle``): the SDK sends a
    registration only once its dependencies' URNs are known, so arrival order follows them."""
    component = {"istio": "IstioControlPlane", "osm": "OsmControlPlane"}[mesh]
    b = built[component]
    urns = b.by_urn()
    order = [r.name for r in b.children]
    got = [r.name for r in b.children if r.type == RELEASE_TYPE]
    assert got == releases
    secret_name = {"istio": "cp:istio-system/cacerts", "osm": "osm:osm-system/osm-ca-bundle"}[mesh]
    for i, rel in enumerate(r for r in b.children if r.type == RELEASE_TYPE):
        deps = {urns[d].name for d in rel.dependencies}
        assert secret_name in deps and set(releases[:i]) <= deps, (rel.name, deps)
        assert all(order.index(d) < order.index(rel.name) for d in deps), rel.name
    state = whole(unwrap(to_dict(b.answer.state))[0])
    if mesh == "istio":
        assert state["releases"] == {"istio-base": "base@1.30.3", "istiod": "istiod@1.30.3"}
        assert (state["namespaces"], state["clusterName"], state["revisions"]) == (
            ["istio-system"], "c1", {"default": "1.30.3"})
    else:
        assert state["releases"] == {"osm": "osm@1.2.4"}
        assert state["namespaces"] == ["osm-system"]
        assert state["namespaceLabels"] == {"openservicemesh.io/monitored-by": "mesh"}


@pytest.mark.parametrize("mesh", ["istio", "osm"])
def test_control_plane_keeps_the_ca_key_secret_in_every_registration_and_the_answer(built, mesh):
    component = {"istio": "IstioControlPlane", "osm": "OsmControlPlane"}[mesh]
    b = built[component]
    key = material_args(mesh)["ca_key_pem"].strip()
    for r in b.children:
        assert key not in json.dumps(outside_secrets(to_dict(r.object))), (r.type, r.name)
    assert key not in json.dumps(to_dict(b.answer.state)) and key not in json.dumps(b.outputs)
    (holder,) = [r for r in b.children if r.type == "kubernetes:core/v1:Secret"]
    assert outside_secrets(to_dict(holder.object))["stringData"] == "[secret]"
    assert {"data", "stringData"} <= set(holder.additionalSecretOutputs)


# ---------------------------------------------------------------------------------------------
# 4: preview


def test_a_preview_construct_of_smi_policies_registers_what_an_update_does_with_the_same_outputs(
        plugin, engine, preview_engine):
    """Everything SmiPolicies registers and returns is computed from its inputs, so a preview
    (``dryRun: true``) knows it all: the same registrations on the same provider, the same
    outputs, none unknown, none secret."""
    token = "mesh:index:SmiPolicies"
    update = run_construct(plugin, engine, token, SMI_NAME, smi_inputs())
    preview = run_construct(DryRun(plugin), preview_engine, token, SMI_NAME, smi_inputs())
    assert construct_rows(preview) == construct_rows(update)
    assert construct_children(preview) == construct_children(update)
    assert all(r.provider == K8S_PROVIDER_REF for r in preview.children)
    raw = to_dict(preview.answer.state)
    assert raw == to_dict(update.answer.state)
    assert UNKNOWN not in json.dumps(raw) and not unwrap(raw)[1]
    assert preview.outputs[preview.answer.urn] == update.outputs[update.answer.urn]


def test_a_preview_construct_of_the_ca_registers_what_an_update_does_and_returns_its_material_unknown_and_secret(
        plugin, engine, preview_engine):
    """The CA's material comes from its dynamic resource, which a preview does not create: every
    output is unknown, and those that hold keys are secret on the wire even unknown (the
    ``4dabf18193072939515e22adb298388d`` marker, ``pulumi/runtime/rpc.py`` ``serialize_property``),
    exactly the outputs the schema documents as secret; the update's answer has them secret too."""
    token = "mesh:index:MeshCertificateAuthority"
    update = run_construct(plugin, engine, token, CA_NAME, ca_inputs())
    preview = run_construct(DryRun(plugin), preview_engine, token, CA_NAME, ca_inputs())
    assert construct_rows(preview) == construct_rows(update)
    assert construct_children(preview) == construct_children(update)

    fields = preview.answer.state.fields
    assert set(fields) == set(update.answer.state.fields)
    secret_now = {k for k, v in fields.items() if is_secret_value(v)}
    assert secret_now == documented_secret(token) & set(fields) == {"intermediateKeys", "linkerdValues"}
    assert secret_now == {k for k, v in update.answer.state.fields.items() if is_secret_value(v)}
    values = {k: unwrap(v)[0] for k, v in to_dict(preview.answer.state).items()}
    assert values == {k: UNKNOWN for k in fields}
    assert "PRIVATE KEY" not in json.dumps(to_dict(preview.answer.state))
    assert "PRIVATE KEY" not in json.dumps(preview.outputs)


@pytest.mark.parametrize("sent_as_secret", [True, False], ids=["key-sent-secret", "key-sent-plain"])
def test_a_preview_of_a_ca_with_your_root_key_never_shows_the_key(plugin, preview_engine, tmp_path, sent_as_secret):
    """``byoRoot``: the root key is an input, which the preview engine echoes as the dynamic
    resource's outputs (the dynamic provider has no preview): registered secret whether the
    program sent it secret or plain (``ca_provider`` wraps the secret inputs), and nowhere in the
    clear: not in the registration, not in the component's outputs, not in the answer."""
    from ca_helpers import openssl_root

    token = "mesh:index:MeshCertificateAuthority"
    cert, key = openssl_root(tmp_path)
    inputs = ca_inputs(mode="byoRoot", rootCertPem=cert, rootKeyPem=secret(key) if sent_as_secret else key)
    preview = run_construct(DryRun(plugin), preview_engine, token, CA_NAME, inputs)
    ((_, dynamic),) = [(u, r) for u, r in preview.registered if r.type == "pulumi-python:dynamic:Resource"]
    assert {"root_key_pem", "root_cert_pem"} <= set(_secret_paths(dynamic.object))
    body = key.strip().splitlines()[1]  # a line of the key's base64 body
    for _, r in preview.registered:
        assert body not in json.dumps(outside_secrets(to_dict(r.object))), (r.type, r.name)
    assert body not in json.dumps(to_dict(preview.answer.state)) and body not in json.dumps(preview.outputs)
    fields = preview.answer.state.fields
    secret_now = {k for k, v in fields.items() if is_secret_value(v)}
    assert documented_secret(token) & set(fields) == {"intermediateKeys", "linkerdValues"} <= secret_now
    # what the preview knows is only the inputs echoed back: the root certificate, plain (a
    # certificate is public; the engine marks it secret as its input was, annotateSecrets, and the
    # component unsecrets it, as the schema documents it); every other plain output is unknown
    values = {k: unwrap(v)[0] for k, v in to_dict(preview.answer.state).items()}
    assert "rootCert" not in secret_now and values["rootCert"] == cert
    assert all(v == UNKNOWN for k, v in values.items() if k not in secret_now | {"rootCert"}), values


# ---------------------------------------------------------------------------------------------
# 5: bad args


BAD_EGRESS = {
    "port": (lambda i: i["rules"][0]["ports"][0].update(port=70000), "rules[0].ports[0].port"),
    "policy": (lambda i: i.update(istioOutboundTrafficPolicy="ALLOW_ANY"), "istioOutboundTrafficPolicy"),
    "unknown": (lambda i: i["rules"][0].update(allowWildcards=True), "rules[0].allowWildcards"),
}


@pytest.mark.parametrize("case", list(BAD_EGRESS))
def test_construct_egress_rules_with_a_bad_field_fails_naming_component_and_field_before_registering(
        plugin, engine, case):
    """Refused with the component's own ``EgressRules <name>: <field>: ...`` text, exactly what a
    Python program gets for the same args, as an invalid-argument error
    (``MeshComponentProvider.construct``), and nothing is registered, not even the component."""
    from mesh_components.components.egress_rules import plan

    change, field = BAD_EGRESS[case]
    inputs = egress_inputs()
    change(inputs)
    with pytest.raises(ArgsError) as python:
        plan("egress", python_form(inputs))
    with pytest.raises(grpc.RpcError) as failed:
        construct(plugin, engine, "mesh:index:EgressRules", "egress", inputs)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details() == str(python.value)
    assert f"EgressRules egress: {field}: " in failed.value.details()
    assert "Traceback" not in failed.value.details()
    assert engine.registered() == []
