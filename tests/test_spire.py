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
            "bundleEndpointProfile": {"type": "https_spiffe", "endpointSPIFFEID": f"spiffe://{tds[other]}/spire/server"},
            # the mesh trust bundle as SPIFFE bundle JSON, filled at deploy time (test_trust_domain_bundle_*)
            "trustDomainBundle": Slot("ca", "trust_bundle_pem", transform=spire.BUNDLE_TRANSFORM)}
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


# ---------------------------------------------------------------------------------------------
# review findings (issue 16 items 4-5): each test names its defect and the upstream source


def _openssl():
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    return openssl


def _verify(openssl: str, d: Path, bundle: str, untrusted: list[str], leaf: str) -> subprocess.CompletedProcess:
    d.mkdir(parents=True, exist_ok=True)
    (d / "bundle.crt").write_text(bundle)
    (d / "untrusted.pem").write_text(ca.join_pems(*untrusted))
    (d / "leaf.pem").write_text(leaf)
    return subprocess.run([openssl, "verify", "-CAfile", str(d / "bundle.crt"), "-untrusted", str(d / "untrusted.pem"),
                           str(d / "leaf.pem")], capture_output=True, text=True)


def _first(pem: str) -> str:
    return ca.cert_to_pem(ca.load_certificates(pem)[0])


def _ca_state(cfg, now):
    return ca.apply_plan(cfg, None, ca.plan_changes(cfg, None, now), now)


def test_switching_an_existing_managed_ca_to_spire_is_refused_with_what_works(tmp_path):
    """Review item 1: a CA minted in managed mode has root pathlen 1 and intermediates pathlen 0; SPIRE
    signs its server CA below the intermediate anyway (spiffe/spire v1.14.5
    pkg/common/x509svid/upstreamca.go:44-88, disk.go:239 checks only the upstream certificate), so every
    SVID chain fails (openssl error 25, RFC 5280 4.2.1.9). plan_changes refuses it at ca.mode."""
    openssl = _openssl()
    now = dt.datetime.now(dt.timezone.utc)  # openssl verifies at the wall clock
    managed = load_mesh(mesh(ca={"mode": "managed"})).spec.ca_config()
    spire_cfg = load_mesh(mesh()).spec.ca_config()
    old = _ca_state(managed, now)
    # the defect itself: an SVID under the old chain does not verify
    m = old.material("east")
    server_ca, server_key = _spire_server_ca(m.ca_cert_pem, m.ca_key_pem, now, "shop.example")
    svid = ca.issue_workload_certificate(server_ca, server_key, now=now,
                                         spiffe_uri="spiffe://" + principal("shop.example", "shop", "web"))
    r = _verify(openssl, tmp_path / "old", old.trust_bundle_pem, [server_ca, m.ca_cert_pem], svid.cert_pem)
    assert r.returncode != 0 and "path length constraint exceeded" in (r.stdout + r.stderr)
    with pytest.raises(ca.CAError) as e:
        ca.plan_changes(spire_cfg, old, now)
    (path, message), = e.value.problems
    assert path == "ca.mode"
    assert "pathLenConstraint 1" in message and "needs 2" in message and "new stack" in message
    # a root rotation cannot get there: addNewRoot signs with the old root, and a root minted by a
    # managed-mode addNewRoot has pathlen 1 too
    rotating = ca.CAConfig(**{**vars(spire_cfg), "root_generation": 2, "rotation_stage": "addNewRoot"})
    with pytest.raises(ca.CAError) as e:
        ca.plan_changes(rotating, old, now)
    assert e.value.problems[0][0] == "ca.mode"
    m_rot = ca.CAConfig(**{**vars(managed), "root_generation": 2, "rotation_stage": "addNewRoot"})
    added = ca.apply_plan(m_rot, old, ca.plan_changes(m_rot, old, now), now)
    reissue = ca.CAConfig(**{**vars(spire_cfg), "root_generation": 2, "rotation_stage": "reissueIntermediates"})
    with pytest.raises(ca.CAError) as e:
        ca.plan_changes(reissue, added, now)
    assert "root g2 has pathLenConstraint 1" in e.value.problems[0][1]
    # a CA minted in spire mode plans nothing; managed stacks are untouched by the check
    fresh = _ca_state(spire_cfg, now)
    assert not ca.plan_changes(spire_cfg, fresh, now).changes
    assert not ca.plan_changes(managed, old, now).changes
    # intermediates whose pathlen differs from the mode's are re-issued (spire root, pathlen-0 intermediates)
    back = ca.apply_plan(managed, fresh, ca.plan_changes(managed, fresh, now), now)
    assert ca._path_length_of(back.intermediates["east"].cert) == 0
    plan = ca.plan_changes(spire_cfg, back, now)
    assert {r.reason for r in plan.reissue} == {"pathLenConstraint 0 -> 1"}


def _fake_state_bundle(now) -> str:
    """Two roots (a rotation's bundle): ECDSA P-256 and RSA, both as the CA core mints them."""
    ec_cfg = load_mesh(mesh()).spec.ca_config()
    rsa_cfg = ca.CAConfig(**{**vars(ec_cfg), "key_algorithm": "RSA_2048"})
    return ca.join_pems(ca.issue_root(ec_cfg, 1, now=now)[0], ca.issue_root(rsa_cfg, 2, now=now)[0])


def test_trust_domain_bundle_is_the_mesh_roots_as_spiffe_bundle_json():
    """Review item 2: ClusterFederatedTrustDomain needs trustDomainBundle (https_spiffe fetches nothing
    without a local bundle, spire v1.14.5 pkg/server/bundle/client/updater.go:120-131); SPIFFE Trust
    Domain and Bundle spec section 4: keys with use x509-svid, one x5c certificate, JWK coordinates."""
    import base64
    import json

    from cryptography.hazmat.primitives.serialization import Encoding

    now = dt.datetime.now(dt.timezone.utc)  # openssl verifies at the wall clock
    bundle = _fake_state_bundle(now)
    doc = json.loads(spire.spiffe_bundle_json(bundle))
    roots = ca.load_certificates(bundle)
    assert len(doc["keys"]) == len(roots) == 2

    def b64url_int(s: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")

    for key, root in zip(doc["keys"], roots):
        assert key["use"] == "x509-svid" and len(key["x5c"]) == 1
        back = x509.load_der_x509_certificate(base64.b64decode(key["x5c"][0]))
        assert back.public_bytes(Encoding.DER) == root.public_bytes(Encoding.DER)
        nums = root.public_key().public_numbers()
        if key["kty"] == "EC":
            assert key["crv"] == "P-256" and len(base64.urlsafe_b64decode(key["x"] + "==")) == 32
            assert (b64url_int(key["x"]), b64url_int(key["y"])) == (nums.x, nums.y)
        else:
            assert key["kty"] == "RSA" and (b64url_int(key["n"]), b64url_int(key["e"])) == (nums.n, nums.e)
    assert spire.spiffe_bundle_json(bundle) == spire.spiffe_bundle_json(bundle)  # deterministic
    with pytest.raises(ca.CAError):
        spire.spiffe_bundle_json("not a certificate")


class _Out:
    """A stand-in for pulumi.Output: ``apply`` runs at once (fill must transform through it)."""

    def __init__(self, value):
        self.value = value

    def apply(self, fn):
        return _Out(fn(self.value))


def test_trust_domain_bundle_is_filled_at_deploy_time_and_passes_the_crd_schema(tmp_path):
    """Review item 2: the bundle is known at deploy time only: a ca trust_bundle_pem slot with the
    spiffe-bundle transform; offline it stays a placeholder, a lookup's Output is transformed through
    apply, and the filled object passes the spire-crds 0.6.0 schema (validate-manifests)."""
    import json

    now = dt.datetime.now(dt.timezone.utc)  # openssl verifies at the wall clock
    spec, states = render(federated())
    state = _ca_state(spec.ca_config(), now)
    ftd = objects_of(states["east"], "ClusterFederatedTrustDomain")["west"]
    assert fill(ftd, Slot.placeholder)["spec"]["trustDomainBundle"] == \
        "$(deploy-time:ca/trust_bundle_pem|spiffe-bundle)"
    filled = fill(ftd, lambda s: _Out(state.trust_bundle_pem) if s.key == "trust_bundle_pem" else None)
    text = filled["spec"]["trustDomainBundle"].value
    assert text == spire.spiffe_bundle_json(state.trust_bundle_pem)
    der = json.loads(text)["keys"][0]["x5c"][0]
    import base64
    assert x509.load_der_x509_certificate(base64.b64decode(der)) == ca.load_certificate(state.trust_bundle_pem)
    plain = fill(ftd, lambda s: state.trust_bundle_pem)
    assert plain["spec"]["trustDomainBundle"] == text
    if not (TOOLS / "validate-manifests").exists():
        pytest.skip(f"validate-manifests is not beside the project ({TOOLS})")
    out = tmp_path / "east"
    out.mkdir()
    (out / "ftd.yaml").write_text(yaml.safe_dump(plain, sort_keys=False))
    v = subprocess.run([str(TOOLS / "validate-manifests"), str(out)], capture_output=True, text=True)
    assert v.returncode == 0 and "ClusterFederatedTrustDomain" in v.stdout, v.stdout + v.stderr
    assert " 0 invalid" in v.stdout.splitlines()[-1]


def test_federation_bundle_endpoint_exposure_is_a_notice():
    """Review item 3: federation.enabled only adds port 8443 to a ClusterIP Service
    (helm-charts-hardened spire-0.30.0 charts/spire/charts/spire-server/templates/service.yaml:23-29);
    the chart's federation.ingress needs TLS passthrough (templates/federation-ingress.yaml:9-18), so the
    exposure is the user's and spire.notices says so per cluster."""
    spec, _ = render(federated())
    got = dict(spire.notices(spec))
    assert sorted(got) == ["mesh.ca.spire.bundleEndpoints.east", "mesh.ca.spire.bundleEndpoints.west"]
    east = got["mesh.ca.spire.bundleEndpoints.east"]
    assert "spire-server/spire-server" in east and "8443" in east
    assert FEDERATION["bundleEndpoints"]["east"] in east and "spiffe://east.shop.example/spire/server" in east
    assert spire.notices(load_mesh(mesh()).spec) == []
    # nothing rendered for it: only the bundle endpoint itself is on
    assert release(render(federated())[1]["east"], "spire").values["spire-server"]["federation"] == {"enabled": True}


def test_federated_intermediates_are_name_constrained_to_their_trust_domain(tmp_path):
    """Review item 4: a leaked east intermediate key must not mint west identities: each federated
    intermediate carries a critical URI nameConstraints permitted subtree (RFC 5280 4.2.1.10, the host
    part). openssl: an SVID of the right trust domain verifies, of the other one fails; istiod's DNS
    serving certificate from the same intermediate (cacerts) still verifies (DNS is unconstrained)."""
    openssl = _openssl()
    now = dt.datetime.now(dt.timezone.utc)  # openssl verifies at the wall clock
    spec = load_mesh(federated()).spec
    cfg = spec.ca_config()
    assert dict(cfg.intermediate_uri_domains) == {"east": "east.shop.example", "west": "west.shop.example"}
    assert ca.CAConfig.from_inputs(cfg.to_inputs()) == cfg
    assert "intermediate_uri_domains" not in load_mesh(mesh()).spec.ca_config().to_inputs()
    state = _ca_state(cfg, now)
    for cluster, other in (("east", "west"), ("west", "east")):
        m = state.material(cluster)
        nc = x509.load_pem_x509_certificate(m.ca_cert_pem.encode()).extensions.get_extension_for_class(
            x509.NameConstraints)
        assert nc.critical and nc.value.permitted_subtrees == [x509.UniformResourceIdentifier(f"{cluster}.shop.example")]
        td, other_td = f"{cluster}.shop.example", f"{other}.shop.example"
        server_ca, server_key = _spire_server_ca(m.ca_cert_pem, m.ca_key_pem, now, td)
        chain = [server_ca, m.ca_cert_pem]
        good = ca.issue_workload_certificate(server_ca, server_key, now=now,
                                             spiffe_uri="spiffe://" + principal(td, "shop", "web"))
        r = _verify(openssl, tmp_path / cluster / "good", state.trust_bundle_pem, chain, good.cert_pem)
        assert r.returncode == 0, r.stdout + r.stderr
        bad = ca.issue_workload_certificate(server_ca, server_key, now=now,
                                            spiffe_uri="spiffe://" + principal(other_td, "shop", "web"))
        r = _verify(openssl, tmp_path / cluster / "bad", state.trust_bundle_pem, chain, bad.cert_pem)
        assert r.returncode != 0 and "permitted subtree violation" in (r.stdout + r.stderr), r.stdout + r.stderr
        # the leaked intermediate key itself, signing directly
        direct = ca.issue_workload_certificate(m.ca_cert_pem, m.ca_key_pem, now=now,
                                               spiffe_uri="spiffe://" + principal(other_td, "shop", "web"))
        r = _verify(openssl, tmp_path / cluster / "direct", state.trust_bundle_pem, [m.ca_cert_pem], direct.cert_pem)
        assert r.returncode != 0
        istiod = ca.issue_workload_certificate(m.ca_cert_pem, m.ca_key_pem, now=now,
                                               dns_names=["istiod.istio-system.svc"])
        r = _verify(openssl, tmp_path / cluster / "istiod", state.trust_bundle_pem, [m.ca_cert_pem], istiod.cert_pem)
        assert r.returncode == 0, r.stdout + r.stderr
    # one trust domain: no constraints; turning federation on re-issues the intermediates
    single = load_mesh(mesh(egress=None)).spec.ca_config()
    plain = _ca_state(single, now)
    assert all(ca._name_constraints_of(plain.intermediates[c].cert) is None for c in ("east", "west"))
    plan = ca.plan_changes(cfg, plain, now)
    assert sorted(r.cluster for r in plan.reissue) == ["east", "west"]
    assert all(r.reason.startswith("URI name constraints -> ") for r in plan.reissue)


def test_istio_vm_trust_domain_is_never_mesh_trust_domain_under_federation():
    """Review item 5: cluster.env's TRUST_DOMAIN was mesh.trustDomain, which under federated spire is
    neither cluster's. External workloads are refused with ca.mode spire (a path: message problem,
    core.external_workloads.spec_problems), and the bootstrap takes spire.trust_domain_of(spec,
    w.cluster), which is mesh.trustDomain outside spire."""
    from mesh_components.core import external_workloads as ew

    vm = [{"name": "web-vm", "namespace": "shop", "service": "web", "addresses": ["10.10.0.5"], "cluster": "west"}]
    m = federated()
    m["externalWorkloads"] = vm
    got = _problems(m)
    assert any(p.startswith("mesh.externalWorkloads: ca.mode: spire with external workloads is not supported")
               for p in got), got
    managed = mesh(ca={"mode": "managed"}, trustDomain="vm.example")
    managed["externalWorkloads"] = vm
    spec = load_mesh(managed).spec
    env = dict(line.split("=", 1) for line in ew.istio_bootstrap(spec, spec.external_workloads[0],
                                                                 None)["cluster.env"].splitlines())
    assert env["TRUST_DOMAIN"] == "vm.example" == spire.trust_domain_of(spec, "west")


def test_spire_namespace_is_pod_security_privileged_for_the_agent_and_csi_daemonsets():
    """Review item 6: with global.spire.recommendations off (spire-0.30.0 charts/spire/values.yaml:46-47)
    the agent and CSI driver run in the release namespace (spire-agent/templates/_helpers.tpl:29-41,
    spiffe-csi-driver/templates/_helpers.tpl:29-41) and mount hostPath, which Pod Security baseline and
    restricted forbid: our namespace enforces privileged."""
    spec, states = render(mesh())
    for st in states.values():
        ns = objects_of(st, "Namespace")["spire-server"]
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
        values = release(st, "spire").values
        assert "recommendations" not in values["global"]["spire"] and "namespaceOverride" not in values.get(
            "spire-agent", {}) and release(st, "spire").namespace == "spire-server"


def test_validate_reports_the_federation_exposure_as_spire_prerequisite_notices():
    """``validate`` prints spire.notices as ``spire-prerequisite`` notices (analysis.findings), one per
    cluster at its bundleEndpoints field; none for a single trust domain."""
    from mesh_components.analysis import findings
    loaded = load_mesh(federated())
    got = [f for f in findings.spec_findings(loaded, render_mesh(loaded)) if f.code == "spire-prerequisite"]
    assert [(f.severity, f.path) for f in got] == [("notice", "mesh.ca.spire.bundleEndpoints.east"),
                                                     ("notice", "mesh.ca.spire.bundleEndpoints.west")]
    assert "spire-prerequisite" in findings.FINDING_CODES
    single = load_mesh(mesh(ca={"mode": "spire"}))
    assert not [f for f in findings.spec_findings(single, render_mesh(single)) if f.code == "spire-prerequisite"]
