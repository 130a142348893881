"""``ca.mode: spire`` (mesh_components.core.spire): SPIRE releases, ClusterSPIFFEIDs, Istio's SPIRE
wiring, the mesh CA as SPIRE's upstream authority, federation, and the refusals.

Upstream facts the assertions rest on are cited in ``mesh_components/core/spire.py``; the chain
test mints the SPIRE server CA as SPIRE's ``disk`` UpstreamAuthority would (spiffe/spire v1.14.5
``doc/plugin_server_upstreamauthority_disk.md``: the upstream CA signs the server's CA, whose
bundle is ``bundle_file_path``)."""
from __future__ import annotations

import copy
import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mesh_components.core import ca, spire
from mesh_components.core.render import render_mesh
from mesh_components.core.slots import Slot, fill
from mesh_components.meshes.istio_policy import principal
from mesh_components.spec import load_mesh
from mesh_components.spec.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT.parent / "shared" / "tools"

MESH = {
    "name": "shop", "trustDomain": "shop.example", "backend": {"type": "istio"}, "ca": {"mode": "spire"},
    "clusters": [
        {"name": "east", "cloud": "gcp", "region": "us-east1", "network": "net-east",
         "kubeconfig": {"env": "EAST_KUBECONFIG"}, "eastWestGateway": {"addresses": ["203.0.113.10"]}},
        {"name": "west", "cloud": "gcp", "region": "us-west1", "network": "net-west",
         "kubeconfig": {"env": "WEST_KUBECONFIG"}, "eastWestGateway": {"addresses": ["203.0.113.20"]}},
    ],
    "namespaces": [{"name": "shop"}, {"name": "shop-admin", "clusters": ["east"]}],
    "services": [
        {"name": "web", "namespace": "shop", "ports": [{"port": 8080}]},
        {"name": "api", "namespace": "shop", "ports": [{"port": 9090}]},
        {"name": "admin", "namespace": "shop-admin", "ports": [{"port": 8000}]},
    ],
    "accessRules": [{"name": "web-to-api", "namespace": "shop", "destination": {"serviceAccount": "api"},
                     "sources": [{"serviceAccount": "web"}],
                     "http": [{"name": "all", "pathRegex": "/.*", "approximate": "prefix"}]}],
    "ingress": {"name": "edge", "namespace": "shop-ingress", "hosts": ["shop.example.com"],
                "routes": [{"service": "web", "namespace": "shop", "port": 8080, "pathPrefix": "/"}]},
    "egress": [{"name": "payments", "hosts": ["api.payments.example"], "ports": [{"port": 443, "protocol": "https"}],
                "sources": [{"namespace": "shop", "service": "api"}]}],
}
FEDERATION = {"trustDomains": {"east": "east.shop.example", "west": "west.shop.example"},
              "bundleEndpoints": {"east": "https://spire-east.shop.example:8443",
                                  "west": "https://spire-west.shop.example:8443"}}


def mesh(**changes) -> dict:
    m = copy.deepcopy(MESH)
    for key, value in changes.items():
        if value is None:
            m.pop(key, None)
        else:
            m[key] = value
    return m


def federated() -> dict:
    return mesh(ca={"mode": "spire", "spire": FEDERATION}, egress=None)


def render(m: dict):
    loaded = load_mesh(m)
    return loaded.spec, render_mesh(loaded)


def objects_of(st, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in st.objects if o["kind"] == kind}


def release(st, name: str):
    return next(r for r in st.releases if r.name == name)


def spiffe_id(template: str, td: str, ns: str, sa: str) -> str:
    """The controller manager's Go template for one pod (only the fields Istio's identity uses)."""
    out = template.replace("{{ .TrustDomain }}", td).replace("{{ .PodMeta.Namespace }}", ns)
    return out.replace("{{ .PodSpec.ServiceAccountName }}", sa)


# ---------------------------------------------------------------------------------------------
# upstream tools on a rendered tree


def _write_stack(tmp_path: Path, m: dict) -> Path:
    path = tmp_path / "Pulumi.spire.yaml"
    path.write_text(yaml.safe_dump({"config": {"service-mesh:mesh": m}}, sort_keys=False))
    return path


@pytest.mark.parametrize("make", [lambda: mesh(), federated], ids=["one-trust-domain", "federated"])
def test_rendered_tree_passes_check_helm_values_and_validate_manifests(tmp_path, make):
    if not (TOOLS / "check-helm-values").exists() or not (TOOLS / "validate-manifests").exists():
        pytest.skip(f"the upstream checks are not beside the project ({TOOLS})")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "mesh_components", "render", str(_write_stack(tmp_path, make())),
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    helm = subprocess.run([str(TOOLS / "check-helm-values"), str(out)], capture_output=True, text=True)
    assert helm.returncode == 0, helm.stdout + helm.stderr
    assert "release spire-server/spire (chart spire 0.30.0)" in helm.stdout
    assert "release spire-server/spire-crds (chart spire-crds 0.6.0)" in helm.stdout
    assert re.search(r"checked, 0 with problems", helm.stdout.splitlines()[-1])
    for cluster in ("east", "west"):
        v = subprocess.run([str(TOOLS / "validate-manifests"), str(out / cluster)], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
        assert "ClusterSPIFFEID" in v.stdout and " 0 invalid" in v.stdout.splitlines()[-1]


# ---------------------------------------------------------------------------------------------
# releases and order


def test_spire_releases_install_before_istiod_with_our_trust_domain():
    spec, states = render(mesh())
    for cluster, st in states.items():
        names = [r.name for r in st.releases]
        assert names.index("spire-crds") < names.index("spire") < names.index("istiod")
        crds, rel = release(st, "spire-crds"), release(st, "spire")
        assert (crds.chart, crds.version, rel.chart, rel.version) == ("spire-crds", "0.6.0", "spire", "0.30.0")
        assert crds.repository == rel.repository == "https://spiffe.github.io/helm-charts-hardened/"
        assert rel.depends_on == ("spire-crds",) and "spire" in release(st, "istiod").depends_on
        values = rel.values
        assert values["global"]["spire"] == {"clusterName": cluster, "trustDomain": "shop.example"}
        server = values["spire-server"]
        assert server["controllerManager"]["className"] == spire.CLASS_NAME
        assert server["controllerManager"]["identities"]["clusterSPIFFEIDs"]["default"] == {"enabled": False}
        disk = server["upstreamAuthority"]["disk"]
        assert disk["enabled"] is True and disk["secret"]["create"] is False
        assert disk["secret"]["name"] == spire.UPSTREAM_SECRET
        assert disk["secret"]["data"]["bundle"] == Slot("ca", "trust_bundle_pem")  # non-empty: bundle_file_path on
        assert "federation" not in server
        # istiod keeps its plug-in CA (cacerts) chaining to the same root
        assert "cacerts" in objects_of(st, "Secret")
        assert release(st, "istiod").values["meshConfig"]["trustDomain"] == "shop.example"


def test_upstream_authority_secret_holds_the_cluster_intermediate_and_is_redacted(tmp_path):
    from mesh_components.core.render import redact

    spec, states = render(mesh())
    for cluster, st in states.items():
        secret = objects_of(st, "Secret")[spire.UPSTREAM_SECRET]
        assert secret["metadata"]["namespace"] == "spire-server"
        assert secret in st.concerns["ca"]
        data = secret["stringData"]
        assert data == {"tls.crt": Slot("ca", "chain_pem", cluster),
                        "tls.key": Slot("ca", "key_pem", cluster, secret=True),
                        "bundle.crt": Slot("ca", "trust_bundle_pem")}
        shown = redact(secret, include_secrets=False)["stringData"]
        assert all(v.startswith("$(deploy-time:") for v in shown.values())
        assert "PRIVATE KEY" not in yaml.safe_dump(shown)


# ---------------------------------------------------------------------------------------------
# registration


def test_cluster_spiffe_ids_register_every_injected_namespace_and_gateway():
    spec, states = render(mesh())
    for cluster, st in states.items():
        ids = objects_of(st, "ClusterSPIFFEID")
        injected = sorted(o["metadata"]["name"] for o in st.concerns["namespaces"]
                          if o["kind"] == "Namespace" and (o["metadata"].get("labels") or {}).get("istio-injection")
                          == "enabled")
        assert injected == sorted(n for n in ["shop", "shop-admin"] if cluster in spec.namespace_clusters(n))
        gateways = [(r.namespace, r.name) for r in st.releases if r.chart == "gateway"]
        assert sorted(gateways) == [("istio-system", "istio-eastwestgateway"), ("mesh-egress", "istio-egressgateway")]
        expected = ({f"sidecars-{n}" for n in injected} | {f"gateway-{ns}-{n}" for ns, n in gateways}
                    | {"gateway-shop-ingress-edge"})
        assert set(ids) == expected
        for name, o in ids.items():
            s = o["spec"]
            assert s["className"] == spire.CLASS_NAME and "federatesWith" not in s
            ns = s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            # the SPIFFE ID a pod gets is the principal Istio policies name, with spiffe://
            assert spiffe_id(s["spiffeIDTemplate"], "shop.example", ns, "web") == \
                "spiffe://" + principal(spec.trust_domain, ns, "web")
        assert ids["sidecars-shop"]["spec"]["podSelector"] == {"matchLabels": {spire.MANAGED_LABEL: "true"}}
        assert ids["gateway-istio-system-istio-eastwestgateway"]["spec"]["podSelector"] == \
            {"matchLabels": {"app": "istio-eastwestgateway"}}
        assert ids["gateway-shop-ingress-edge"]["spec"]["podSelector"] == \
            {"matchLabels": {"gateway.networking.k8s.io/gateway-name": "edge"}}
        # registered in the control plane, which orders them after SPIRE, before istiod
        assert all(o in st.concerns["control-plane"] for o in ids.values())
        assert all(spire.is_spire_object(o) for o in ids.values())


# ---------------------------------------------------------------------------------------------
# Istio's SPIRE wiring


def _workload_socket(volumes: list[dict]) -> dict:
    return next(v for v in volumes if v["name"] == "workload-socket")


def test_sidecars_and_gateways_mount_the_agent_socket_through_the_csi_driver():
    spec, states = render(mesh())
    for st in states.values():
        inj = release(st, "istiod").values["sidecarInjectorWebhook"]
        assert inj["defaultTemplates"] == ["sidecar", "spire"]
        template = yaml.safe_load(inj["templates"]["spire"])
        assert template["metadata"]["labels"] == {spire.MANAGED_LABEL: "true"}
        assert _workload_socket(template["spec"]["volumes"]) == {
            "name": "workload-socket", "csi": {"driver": "csi.spiffe.io", "readOnly": True}}
        for r in st.releases:
            if r.chart == "gateway":
                assert r.values["podAnnotations"] == {"inject.istio.io/templates": "gateway,spire"}
        gw = objects_of(st, "Gateway")["edge"]
        ref = gw["spec"]["infrastructure"]["parametersRef"]
        assert ref == {"group": "", "kind": "ConfigMap", "name": "edge-spire"}
        overlay = objects_of(st, "ConfigMap")["edge-spire"]
        assert overlay["metadata"]["namespace"] == gw["metadata"]["namespace"]
        patch = yaml.safe_load(overlay["data"]["deployment"])
        vol = _workload_socket(patch["spec"]["template"]["spec"]["volumes"])
        assert vol == {"name": "workload-socket", "emptyDir": None, "csi": {"driver": "csi.spiffe.io", "readOnly": True}}
        concern = next(c for c, objs in st.concerns.items() if gw in objs)
        objs = st.concerns[concern]
        assert objs.index(overlay) < objs.index(gw)


def test_stacks_without_spire_render_no_spire_and_keep_their_gateways():
    m = mesh(ca={"mode": "managed"})
    spec, states = render(m)
    for st in states.values():
        assert not any(spire.is_spire_object(o) for o in st.objects)
        assert not any(r.name.startswith("spire") for r in st.releases)
        assert "sidecarInjectorWebhook" not in release(st, "istiod").values
        assert "parametersRef" not in (objects_of(st, "Gateway")["edge"]["spec"].get("infrastructure") or {})
        assert spire.UPSTREAM_SECRET not in objects_of(st, "Secret")


# ---------------------------------------------------------------------------------------------
# the upstream authority chain, with the real CA core


def _spire_server_ca(intermediate_pem: str, intermediate_key_pem: str, now: dt.datetime, td: str):
    """The SPIRE server's X.509 CA as the disk UpstreamAuthority signs it: a CA under the cluster's
    intermediate, whose URI SAN is the trust domain (SPIRE's server CA is ``spiffe://<td>``)."""
    issuer = x509.load_pem_x509_certificate(intermediate_pem.encode())
    issuer_key = ca.load_private_key(intermediate_key_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "SPIRE")]))
            .issuer_name(issuer.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=24))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"spiffe://{td}")]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))
    return ca.cert_to_pem(cert), ca.private_key_pem(key)


def test_upstream_authority_chain_verifies_with_openssl(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    spec, states = render(mesh())
    cfg = spec.ca_config()
    assert cfg.mode == "managed"  # the CA resource mints the root as in managed mode
    now = dt.datetime.now(dt.timezone.utc)
    plan = ca.plan_changes(cfg, None, now)
    state = ca.apply_plan(cfg, None, plan, now)  # the provider's own path: one root, an intermediate per cluster

    def path_length(pem: str):
        return x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
            x509.BasicConstraints).value.path_length

    # SPIRE's server CA sits below the intermediate: pathlen 1 (root 2); managed meshes keep 0 (root 1)
    assert (path_length(state.trust_bundle_pem), path_length(state.material("east").ca_cert_pem)) == (2, 1)
    plain = ca.apply_plan(mesh_cfg := load_mesh(mesh(ca={"mode": "managed"})).spec.ca_config(), None,
                          ca.plan_changes(mesh_cfg, None, now), now)
    assert (path_length(plain.trust_bundle_pem), path_length(plain.material("east").ca_cert_pem)) == (1, 0)
    assert "intermediate_path_length" not in mesh_cfg.to_inputs()  # existing stacks keep their CA inputs
    assert ca.CAConfig.from_inputs(cfg.to_inputs()) == cfg
    for cluster, st in states.items():
        m = state.material(cluster)
        values = {"trust_bundle_pem": m.trust_bundle_pem, "cert_pem": m.ca_cert_pem, "key_pem": m.ca_key_pem,
                  "chain_pem": m.cert_chain_pem}
        secret = fill(objects_of(st, "Secret")[spire.UPSTREAM_SECRET], lambda s: values[s.key])["stringData"]
        server_ca, server_key = _spire_server_ca(secret["tls.crt"].split("-----END CERTIFICATE-----")[0]
                                                 + "-----END CERTIFICATE-----\n", secret["tls.key"], now,
                                                 spec.trust_domain)
        svid_uri = "spiffe://" + principal(spec.trust_domain, "shop", "web")
        svid = ca.issue_workload_certificate(server_ca, server_key, now=now, spiffe_uri=svid_uri)
        d = tmp_path / cluster
        d.mkdir()
        (d / "bundle.crt").write_text(secret["bundle.crt"])
        (d / "untrusted.pem").write_text(ca.join_pems(server_ca, secret["tls.crt"]))
        (d / "svid.pem").write_text(svid.cert_pem)
        r = subprocess.run([openssl, "verify", "-CAfile", str(d / "bundle.crt"), "-untrusted",
                            str(d / "untrusted.pem"), str(d / "svid.pem")], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip().endswith(": OK"), r.stdout + r.stderr
        assert x509.load_pem_x509_certificate(svid.cert_pem.encode()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier) == [svid_uri]
        # the other cluster's bundle is the same root: cross-cluster trust is unchanged
        assert m.trust_bundle_pem == state.material("west").trust_bundle_pem
        # and without the cluster's intermediate the SVID does not verify
        (d / "server-only.pem").write_text(server_ca)
        bad = subprocess.run([openssl, "verify", "-CAfile", str(d / "bundle.crt"), "-untrusted",
                              str(d / "server-only.pem"), str(d / "svid.pem")], capture_output=True, text=True)
        assert bad.returncode != 0


# ---------------------------------------------------------------------------------------------
# refusals


def _problems(m: dict) -> list[str]:
    with pytest.raises(SpecError) as e:
        load_mesh(m)
    return [f"{p}: {msg}" for p, msg in e.value.problems]


def test_linkerd_osm_and_ambient_refuse_spire_with_what_would_work():
    lk = mesh(backend={"type": "linkerd"}, ingress=None, egress=None)
    got = _problems(lk)
    assert any(p.startswith("mesh.ca.mode: Linkerd") and "linkerd-identity" in p and "managed" in p for p in got), got
    osm = mesh(backend={"type": "osm"}, clusters=[MESH["clusters"][0]], ingress=None, egress=None,
               namespaces=[{"name": "shop"}], services=MESH["services"][:2])
    got = _problems(osm)
    assert any(p.startswith("mesh.ca.mode: OSM v1.2.4") and "tresor" in p for p in got), got
    amb = mesh(backend={"type": "istio", "istio": {"dataPlane": "ambient"}}, egress=None)
    got = _problems(amb)
    assert any(p.startswith("mesh.ca.mode: Istio 1.30.3's ztunnel") and "dataPlane: sidecar" in p for p in got), got


def test_spire_options_need_spire_mode_and_known_clusters():
    got = _problems(mesh(ca={"mode": "managed", "spire": {}}))
    assert any(p.startswith("mesh.ca.spire: SPIRE options given but ca.mode is 'managed'") for p in got), got
    got = _problems(mesh(ca={"mode": "spire", "spire": {"trustDomains": {"north": "n.example"}}}))
    assert any(p.startswith("mesh.ca.spire.trustDomains.north: unknown cluster 'north'") for p in got), got
    got = _problems(mesh(ca={"mode": "spire", "spire": {"bundleEndpoints": {"east": "https://e:8443"}}}))
    assert any(p.startswith("mesh.ca.spire.bundleEndpoints: every cluster runs one trust domain") for p in got), got


def test_federation_refuses_what_it_cannot_make_exact():
    no_endpoint = federated()
    no_endpoint["ca"]["spire"] = {"trustDomains": FEDERATION["trustDomains"],
                                  "bundleEndpoints": {"east": FEDERATION["bundleEndpoints"]["east"]}}
    got = _problems(no_endpoint)
    assert any(p.startswith("mesh.ca.spire.bundleEndpoints.west: federated trust domain 'west.shop.example'")
               for p in got), got
    with_egress = federated()
    with_egress["egress"] = MESH["egress"]
    assert any(p.startswith("mesh.egress: the egress gateway's policy") for p in _problems(with_egress))
    three = federated()
    three["clusters"] = MESH["clusters"] + [{"name": "south", "cloud": "gcp", "region": "us-south1",
                                             "network": "net-south", "kubeconfig": {"env": "S"},
                                             "eastWestGateway": {"addresses": ["203.0.113.30"]}}]
    three["ca"]["spire"] = {"trustDomains": {"east": "a.example", "west": "b.example", "south": "a.example"},
                            "bundleEndpoints": {c: f"https://{c}:8443" for c in ("east", "west", "south")}}
    got = _problems(three)
    assert any(p.startswith("mesh.ca.spire.trustDomains.south: clusters 'east' and 'south' share") for p in got), got


# ---------------------------------------------------------------------------------------------
# federation


def test_federation_renders_federated_trust_domains_and_principals_per_trust_domain():
    spec, states = render(federated())
    tds = {"east": "east.shop.example", "west": "west.shop.example"}
    assert spire.trust_domains(spec) == ("east.shop.example", "west.shop.example")
    for cluster, st in states.items():
        other = "west" if cluster == "east" else "east"
        ftds = objects_of(st, "ClusterFederatedTrustDomain")
        assert list(ftds) == [other]
        assert ftds[other]["spec"] == {
            "className": spire.CLASS_NAME, "trustDomain": tds[other],
            "bundleEndpointURL": FEDERATION["bundleEndpoints"][other],
            "bundleEndpointProfile": {"type": "https_spiffe", "endpointSPIFFEID": f"spiffe://{tds[other]}/spire/server"}}
        values = release(st, "spire").values
        assert values["global"]["spire"]["trustDomain"] == tds[cluster]
        assert values["spire-server"]["federation"] == {"enabled": True}
        mc = release(st, "istiod").values["meshConfig"]
        assert mc["trustDomain"] == tds[cluster] and mc["trustDomainAliases"] == [tds[other]]
        for o in objects_of(st, "ClusterSPIFFEID").values():
            assert o["spec"]["federatesWith"] == [tds[other]]
        policy = objects_of(st, "AuthorizationPolicy")["web-to-api-api"]
        principals = policy["spec"]["rules"][0]["from"][0]["source"]["principals"]
        # the source in each cluster carries that cluster's trust domain
        assert principals == sorted(principal(tds[c], "shop", "web") for c in ("east", "west"))


def test_one_trust_domain_principals_are_unchanged():
    spec, states = render(mesh())
    for st in states.values():
        policy = objects_of(st, "AuthorizationPolicy")["web-to-api-api"]
        assert policy["spec"]["rules"][0]["from"][0]["source"]["principals"] == [principal("shop.example", "shop", "web")]
        assert not objects_of(st, "ClusterFederatedTrustDomain")
