"""``diff`` never prints a secret (issue 13, item 9): Helm values, Secret data and any other field or
text that holds a key, password, token or credential is redacted in the text, Markdown and JSON
reports alike (``diff.redact_report``), while the drift next to it stays visible and a changed
secret still reads as changed."""
from __future__ import annotations

import base64
import copy
import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from diff_helpers import (add_noise, fake_desired, app_pods, helm_secret, installed_gateway_api_crds, live_from_desired,
                          sample_desired, write_dump)
from mesh_components.cli import drift_cli
from mesh_components.cli import main
from mesh_components.drift.diff import (MISSING, ClusterReport, DriftReport, FieldChange, Finding, ObjectDrift, ObjectRef, ReleaseDrift, compare_values, diff_cluster, is_der_private_key, is_secret_name, redact_report, redact_text)
from mesh_components.core.render import render_mesh
from mesh_components.spec import load_stack

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("text", "json", "markdown")


@pytest.fixture(autouse=True)
def _project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def ec_key_pem() -> str:
    """A fresh ECDSA P-256 key as SEC1 PEM, the form Linkerd's issuer key takes."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def rsa_key_pem() -> str:
    """A fresh RSA key as PKCS#8 PEM (``-----BEGIN PRIVATE KEY-----``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def key_body(pem: str) -> list[str]:
    """The base64 lines of a PEM block: what must never be printed."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def assert_hidden(out: str, *secrets: str) -> None:
    assert "PRIVATE KEY" not in out
    for s in secrets:
        for part in key_body(s) if "-----BEGIN" in s else [s]:
            assert part[:40] not in out, part[:40]


def stack_live(stack: str):
    """(mesh, cluster -> ClusterState, cluster -> live objects after a clean deploy) of a stack."""
    loaded = load_stack(str(ROOT / "stacks" / f"Pulumi.{stack}.yaml"), root=ROOT)
    states = render_mesh(loaded)
    live = {c: live_from_desired(st.objects, st.releases) + installed_gateway_api_crds(st) + app_pods(loaded.spec, c)
            for c, st in states.items()}
    return loaded.spec.name, states, live


def run_formats(capsys, stack: str, directory: Path) -> dict[str, str]:
    out = {}
    for fmt in FORMATS:
        assert main(["diff", stack, "--live", str(directory), "--format", fmt]) == 2
        out[fmt] = capsys.readouterr().out
    return out


def replace_release_secret(objs: list[dict], release, config: dict) -> None:
    """Swap the Helm storage Secret of ``release`` for one whose user values are ``config``."""
    name = f"sh.helm.release.v1.{release.name}.v1"
    objs[:] = [o for o in objs if o["metadata"]["name"] != name] + [helm_secret(release, values=config)]


# ---------------------------------------------------------------------------------------------
# end to end: the three formats


def test_linkerd_issuer_key_in_helm_values_and_a_key_added_to_a_secret_are_redacted_in_every_format(
        tmp_path, capsys):
    # Linkerd's chart takes the issuer key as values identity.issuer.tls.keyPEM
    # (linkerd/linkerd2 edge-26.8.3 charts/linkerd-control-plane/values.yaml:472-489); someone
    # installed it that way by hand, and left an old key in the issuer Secret
    _mesh, states, live = stack_live("linkerd")
    cluster = next(iter(live))
    release = next(r for r in states[cluster].releases if r.chart == "linkerd-control-plane")
    from diff_helpers import deployed
    config = copy.deepcopy(deployed(release.values))
    issuer_key, old_key = ec_key_pem(), ec_key_pem()
    config["identity"]["issuer"] = {**config["identity"].get("issuer", {}),
                                    "tls": {"crtPEM": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                                            "keyPEM": issuer_key}}
    config["proxy"] = {"logLevel": "debug"}  # a non-secret change next to it
    replace_release_secret(live[cluster], release, config)
    issuer = next(o for o in live[cluster] if o["kind"] == "Secret" and o["metadata"]["name"] == "linkerd-identity-issuer")
    issuer["data"]["old-issuer.key"] = b64(old_key)
    for c, objs in live.items():
        write_dump(tmp_path, c, objs)

    out = run_formats(capsys, "linkerd", tmp_path)
    for fmt, text in out.items():
        assert_hidden(text, issuer_key, old_key, b64(old_key))
        assert "identity.issuer.tls" in text and "<redacted #" in text, fmt
        assert "proxy" in text and "debug" in text, fmt  # the drift beside the secret is shown
        assert "old-issuer.key" in text, fmt  # which Secret key changed is shown, not its value
    doc = json.loads(out["json"])
    (rel,) = [r for c in doc["clusters"] for r in c["releases"]]
    by_path = {ch["path"]: ch for ch in rel["changes"]}
    shown = json.dumps(by_path)
    assert "debug" in shown and "BEGIN CERTIFICATE" in shown  # certificates are public
    secret = next(d for c in doc["clusters"] for d in c["changed"] if d["name"] == "linkerd-identity-issuer")
    assert secret["changes"] == [{"path": 'data["old-issuer.key"]', "live": secret["changes"][0]["live"]}]
    assert secret["changes"][0]["live"].startswith("<redacted #")


def test_istiod_values_and_secret_data_redacted_in_every_format_with_changed_secrets_still_changed(
        monkeypatch, tmp_path, capsys):
    # a hand-made desired state with a literal Secret (the renderer's own are deploy-time values,
    # never compared): its data changed in the cluster, and the istiod release got a CA key and
    # a token in its values, beside a non-secret change
    desired = sample_desired()
    ca_key = rsa_key_pem()
    for st in desired.values():
        st["objects"].append({"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "db", "namespace": "bookstore", "labels": {}},
                              "stringData": {"password": "s3cr3t-desired", "username": "bookstore"}})
    fake_desired(monkeypatch, desired)
    live = {c: live_from_desired(s["objects"], s["releases"]) for c, s in desired.items()}
    east = live["east"]
    db = next(o for o in east if o["metadata"]["name"] == "db")
    db["data"]["password"] = b64("s3cr3t-live")
    istiod = desired["east"]["releases"][1]
    from diff_helpers import deployed
    config = copy.deepcopy(deployed(istiod["values"]))
    config["pilot"]["env"]["PILOT_TRACE_SAMPLING"] = "10"  # non-secret
    config["pilot"]["caKey"] = ca_key
    config["global"]["remotePilotAddress"] = "istiod.example.com"  # non-secret
    config["global"]["jwtToken"] = "tok-9f8e7d6c5b4a"
    east[:] = [o for o in east if o["metadata"]["name"] != "sh.helm.release.v1.istiod-1-30.v1"]
    east.append(helm_secret(istiod, values=config))
    for c, objs in live.items():
        write_dump(tmp_path, c, objs)

    out = run_formats(capsys, "x", tmp_path)
    for fmt, text in out.items():
        assert_hidden(text, ca_key, "s3cr3t", b64("s3cr3t-live"), b64("s3cr3t-desired"), "tok-9f8e7d6c5b4a")
        assert "PILOT_TRACE_SAMPLING" in text and "istiod.example.com" in text, fmt
        assert "caKey" in text and "jwtToken" in text, fmt
    doc = json.loads(out["json"])
    (db_drift,) = [d for d in doc["clusters"][0]["changed"] if d["name"] == "db"]
    (change,) = db_drift["changes"]
    assert change["path"] == "data.password"
    assert change["desired"] != change["live"]  # still reported as changed
    assert {change["desired"][:11], change["live"][:11]} == {"<redacted #"}
    assert "data.password" in out["text"] and "data.password" in out["markdown"]


def test_a_pem_private_key_in_an_arbitrary_field_is_redacted_everywhere(tmp_path, capsys):
    mesh, states, live = stack_live("staging")
    cluster = next(iter(live))
    key = ec_key_pem()
    ns = next(o for o in live[cluster] if o["kind"] == "Namespace" and o["metadata"]["name"] == "istio-system")
    ns["metadata"]["labels"]["topology.istio.io/network"] = "moved"  # visible drift
    svc = next(o for o in live[cluster] if o["kind"] == "Service")
    svc["spec"]["selector"]["notes"] = key  # a field with no secret name
    svc["spec"]["selector"]["blob"] = b64(key)  # and base64 of one
    for c, objs in live.items():
        write_dump(tmp_path, c, objs)
    out = run_formats(capsys, "staging", tmp_path)
    for fmt, text in out.items():
        assert_hidden(text, key, b64(key)[:60])
        assert "moved" in text and "spec.selector.notes" in text and "spec.selector.blob" in text, fmt


def test_formatters_redact_a_report_nobody_redacted():
    # the pure core keeps values as they are; every formatter redacts on its own
    key = ec_key_pem()
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
               "data": {"config.yaml": "level: info\n"}}
    live = add_noise(desired)
    live["data"]["config.yaml"] = f"level: debug\npassword: hunter2\ntls.key: |\n  {key_body(key)[0]}\n"
    live["data"]["ca.pem"] = key
    report = DriftReport("s", "m", (diff_cluster("east", "m", [desired], [live]),))
    raw = json.dumps(report.to_dict())
    assert "hunter2" in raw  # not redacted before formatting
    for fmt, formatter in drift_cli.FORMATTERS.items():
        text = formatter(report)
        assert_hidden(text, key, "hunter2")
        assert "level: debug" in text, fmt


# ---------------------------------------------------------------------------------------------
# what is a secret: names


@pytest.mark.parametrize("name", [
    "password", "token", "secret", "credentials", "apiKey", "APIKey", "x-api-key", "keyPEM", "tls.key", "ca.key",
    "ca-key.pem", "client-key-data", "secretAccessKey", "clientSecret", "DB_PASSWORD", "GITHUB_TOKEN",
    "privateKey", "private_key", "kubeconfig", "jwtToken", "bearerToken", "key", "auth", "passphrase",
    "imagePullSecrets", "applicationCredentials", "refresh-token",
    # issue 13 review, finding 5(c)
    "MYSQL_PWD", "DB_PWD", "DB_PASS", "dbPass", "MYSQL_ROOT_PASSWD", "redis_passwd", "sshPassphrase", "PRIVATE_KEY",
    "client_secret", ".dockerconfigjson", ".dockercfg"])
def test_secret_field_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "crtPEM", "tls.crt", "ca.crt", "ca-cert.pem", "client-certificate-data", "identityTrustAnchorsPEM",
    "secretName", "caBundleSecretName", "tokenFile", "clientKeyPath", "keyManager", "caKeyType", "topologyKey",
    "publicKey", "matchLabelKeys", "accessKeyID", "serviceAccountTokenProjection", "name", "value", "logLevel",
    # a bare PWD/OLDPWD is the shell's working directory; references and switches stay visible
    "PWD", "OLDPWD", "passwordRef", "passwordSecretRef", "tokenSecretName", "bypass", "passthrough", "sslPassthrough"])
def test_names_that_only_look_secret(name):
    assert not is_secret_name(name)


def test_header_names_are_secret_only_as_headers():
    assert is_secret_name("Authorization", header=True) and is_secret_name("Set-Cookie", header=True)
    assert not is_secret_name("Authorization") and not is_secret_name("cookie")


def one_change(path, desired, live, ref=ObjectRef("apps", "Deployment", "n", "d", "apps/v1")) -> FieldChange:
    report = DriftReport("s", "m", (ClusterReport("c", changed=(ObjectDrift(ref, "changed", (
        FieldChange(path, desired, live),)),)),))
    return redact_report(report).clusters[0].changed[0].changes[0]


def test_key_that_names_a_key_stays_visible():
    # LabelSelectorRequirement, Toleration, KeyToPath, Istio Condition, SecretKeySelector
    for path in ("spec.selector.matchExpressions[0].key", "spec.template.spec.tolerations[1].key",
                 "spec.template.spec.volumes[name=v].secret.items[0].key", "spec.rules[0].when[0].key",
                 "spec.template.spec.containers[name=a].env[name=P].valueFrom.secretKeyRef.key"):
        assert one_change(path, "app", "version") == FieldChange(path, "app", "version"), path
    assert one_change("values.signing.key", "a", "b") == FieldChange("values.signing.key", "<redacted #1>",
                                                                     "<redacted #2>")


def test_env_and_header_values_are_secret_by_their_name():
    path = "spec.template.spec.containers[name=a].env[name=DB_PASSWORD].value"
    assert one_change(path, "x", "y") == FieldChange(path, "<redacted #1>", "<redacted #2>")
    path = "spec.template.spec.containers[name=a].env[name=LOG_LEVEL].value"
    assert one_change(path, "info", "debug") == FieldChange(path, "info", "debug")
    env = [{"name": "API_TOKEN", "value": "t0k"}, {"name": "LOG_LEVEL", "value": "debug"},
           {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}}]
    shown = one_change("spec.template.spec.containers[name=a].env", MISSING, env).live
    assert shown == [{"name": "API_TOKEN", "value": "<redacted #1>"}, {"name": "LOG_LEVEL", "value": "debug"},
                     {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}}]
    headers = {"set": [{"name": "Authorization", "value": "Bearer abc.def"}, {"name": "x-b3", "value": "1"}]}
    shown = one_change("spec.rules[0].filters[0].requestHeaderModifier", MISSING, headers).live
    assert shown == {"set": [{"name": "Authorization", "value": "<redacted #1>"}, {"name": "x-b3", "value": "1"}]}


def test_references_inside_a_secret_field_stay_visible():
    pulls = one_change("spec.template.spec.imagePullSecrets", MISSING, [{"name": "regcred"}]).live
    assert pulls == [{"name": "regcred"}]
    settings = one_change("spec.privateKey", {"algorithm": "RSA", "size": 2048}, {"algorithm": "ECDSA", "size": 256})
    assert (settings.desired, settings.live) == ({"algorithm": "RSA", "size": 2048}, {"algorithm": "ECDSA", "size": 256})


def test_secret_data_keys_named_like_references_are_still_redacted():
    ref = ObjectRef("", "Secret", "n", "s", "v1")
    shown = one_change("data", MISSING, {"name": b64("x"), "type": b64("y")}, ref=ref)
    assert shown.live == {"name": "<redacted #1>", "type": "<redacted #2>"}


# ---------------------------------------------------------------------------------------------
# what is a secret: shapes, and text that holds one


def test_pem_private_keys_plain_base64_wrapped_and_twice_encoded():
    key, cert = ec_key_pem(), "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
    assert redact_text(cert + key) == cert + "<redacted #1>\n"
    assert redact_text(b64(key)) == "<redacted #1>"
    wrapped = base64.encodebytes(rsa_key_pem().encode()).decode()  # 76 columns, as base64(1) writes
    text = redact_text(f"blob:\n{wrapped}tail: 1\n")
    assert text == "blob:\n<redacted #1>\ntail: 1\n"
    assert redact_text(b64(b64(key))) == "<redacted #1>"
    assert redact_text(b64(cert)) == b64(cert)  # a certificate is public


def test_tokens_urls_flags_and_secret_lines_in_text():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl"
    assert redact_text(f"token {jwt} end") == "token <redacted #1> end"
    assert redact_text("Authorization: Bearer abc123.def") == "Authorization: <redacted #1>"
    assert redact_text("uses basic authentication") == "uses basic authentication"
    assert redact_text("postgres://app:pa55@db:5432/x") == "postgres://app:<redacted #1>@db:5432/x"
    assert redact_text("--token=abc") == "--token=<redacted #1>"
    assert redact_text("export API_KEY=abc\nLOG=1") == "export API_KEY=<redacted #1>\nLOG=1"
    assert redact_text("password:\n  value: x\n  other: y\nnext: 1") == "password:\n  <redacted #1>\nnext: 1"
    marks: dict = {}
    assert one_change("spec.containers[name=a].args", ["--token", "t1", "-v"], ["--token", "t2", "-v"]) == \
        FieldChange("spec.containers[name=a].args", ["--token", "<redacted #1>", "-v"], ["--token", "<redacted #2>", "-v"])
    assert redact_text("", marks) == "" and marks == {}


def test_kubeconfig_and_json_inside_strings():
    key = ec_key_pem()
    kubeconfig = ("apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    token: sa-t0ken-value\n"
                  f"    client-key-data: {b64(key)}\n    client-certificate-data: {b64('cert')}\n")
    text = redact_text(kubeconfig)
    assert "sa-t0ken-value" not in text and b64(key)[:40] not in text
    assert "client-certificate-data: " + b64("cert") in text and "- name: admin" in text
    assert redact_text(b64(kubeconfig)) == "<redacted #1>"
    doc = json.loads(redact_text(json.dumps({"auths": {"r.io": {"auth": b64("u:p")}}, "n": 1})))
    assert doc == {"auths": {"r.io": {"auth": "<redacted #1>"}}, "n": 1}


# ---------------------------------------------------------------------------------------------
# the report as a whole


def sample_report(values_first: bool = True) -> DriftReport:
    values = {"a": "1", "token": "t", "nested": {"password": "p", "plain": "x"}}
    if not values_first:
        values = dict(reversed(list(values.items())))
    ref = ObjectRef("", "Secret", "n", "s", "v1")
    return DriftReport("s", "m", (ClusterReport(
        "east",
        changed=(ObjectDrift(ref, "changed", (FieldChange("data.k", b64("one"), b64("two")),
                                              FieldChange("data.j", b64("one"), MISSING))),),
        releases=(ReleaseDrift("ns", "r", "changed", (FieldChange("values", values, MISSING),
                                                      FieldChange("values.proxy.logLevel", "warn", "debug"))),),
        notes=("note with password: hunter2",)),),
        (Finding("x", "east", "subject", "saw Bearer abcdef123456"),))


def test_equal_secrets_share_a_number_different_ones_do_not_and_dict_order_does_not_matter():
    red = redact_report(sample_report())
    (obj,) = red.clusters[0].changed
    assert [(c.desired, c.live) for c in obj.changes] == [("<redacted #1>", "<redacted #2>"), ("<redacted #1>", MISSING)]
    rel = red.clusters[0].releases[0]
    assert rel.changes[0].desired == {"a": "1", "token": "<redacted #4>",
                                      "nested": {"password": "<redacted #3>", "plain": "x"}}
    assert rel.changes[1] == FieldChange("values.proxy.logLevel", "warn", "debug")
    other = redact_report(sample_report(values_first=False))
    assert other.clusters[0].releases[0].changes[0].desired == rel.changes[0].desired
    assert red.clusters[0].notes == ("note with password: <redacted #5>",)
    assert red.findings[0].message == "saw Bearer <redacted #6>"


def test_markdown_shows_that_text_was_redacted():
    md = drift_cli.format_markdown(sample_report())
    assert "hunter2" not in md and "abcdef123456" not in md
    # outside code spans "<redacted #5>" would be an unknown HTML tag, which GitHub drops
    assert "> note: note with password: &lt;redacted #5>" in md and "saw Bearer &lt;redacted #6>" in md
    assert '`"<redacted #1>"`' in md  # inside code spans it is shown as it is


def test_redaction_is_idempotent_and_keeps_identities_and_counts():
    report = sample_report()
    red = redact_report(report)
    assert redact_report(red) == red
    assert red.summary() == report.summary() and red.has_drift == report.has_drift
    assert [d.ref for d in red.clusters[0].changed] == [d.ref for d in report.clusters[0].changed]
    assert [c.path for c in red.clusters[0].releases[0].changes] == ["values", "values.proxy.logLevel"]


def test_error_lines_and_kubeconfig_errors_never_echo_a_token(tmp_path, capsys, monkeypatch):
    drift_cli._print_problems([("kubeconfig", "cannot load: token: abc-123-secret")], __import__("sys").stderr)
    assert "abc-123-secret" not in capsys.readouterr().err
    bad = tmp_path / "kc.yaml"
    bad.write_text("users:\n- name: a\n  user:\n    token: leaked-token-value\n   bad: [\n")
    from mesh_components.drift.live import LiveError, kubeconfig_contexts
    with pytest.raises(LiveError) as e:
        kubeconfig_contexts(bad)
    assert "leaked-token-value" not in str(e.value) and "line" in str(e.value)

    class Source:
        file, env, context = None, "KUBECONFIG_EAST", None

    class Cluster:
        name, kubeconfig = "east", Source()

    with pytest.raises(LiveError) as e:
        drift_cli.resolve_kubeconfigs([Cluster()], [], [], environ={"KUBECONFIG_EAST": bad.read_text()})
    assert "leaked-token-value" not in str(e.value)
    assert "environment variable KUBECONFIG_EAST is neither a file nor a kubeconfig" in str(e.value)


# ---------------------------------------------------------------------------------------------
# issue 13 review, finding 5: secrets that still reached the reports


def istiod_drift(monkeypatch, tmp_path, capsys, desired_pilot: dict, live_values: dict) -> dict[str, str]:
    """The three formats of ``diff`` for the sample stack (:func:`diff_helpers.sample_desired`)
    whose east istiod release declares ``desired_pilot`` under ``pilot`` and whose deployed values
    are the desired ones merged with ``live_values`` (one level deep), beside a non-secret change
    (``pilot.env.PILOT_TRACE_SAMPLING: "10"``)."""
    desired = sample_desired()
    istiod = desired["east"]["releases"][1]
    istiod["values"]["pilot"].update(copy.deepcopy(desired_pilot))
    fake_desired(monkeypatch, desired)
    live = {c: live_from_desired(s["objects"], s["releases"]) for c, s in desired.items()}
    from diff_helpers import deployed
    config = copy.deepcopy(deployed(istiod["values"]))
    for k, v in copy.deepcopy(live_values).items():
        config[k] = {**config.get(k, {}), **v} if isinstance(v, dict) else v
    config["pilot"]["env"] = {**config["pilot"]["env"], "PILOT_TRACE_SAMPLING": "10"}
    east = live["east"]
    east[:] = [o for o in east if o["metadata"]["name"] != f"sh.helm.release.v1.{istiod['name']}.v1"]
    east.append(helm_secret(istiod, values=config))
    for c, objs in live.items():
        write_dump(tmp_path, c, objs)
    return run_formats(capsys, "x", tmp_path)


def release_changes(json_text: str) -> dict[str, dict]:
    """``path -> change`` of the one changed Helm release of a JSON report."""
    (rel,) = [r for c in json.loads(json_text)["clusters"] for r in c["releases"]]
    return {ch["path"]: ch for ch in rel["changes"]}


def assert_redacted(change: dict, *sides: str) -> None:
    for side in sides:
        assert str(change[side]).startswith("<redacted #"), change


def test_a_flag_value_changed_alone_in_a_list_is_redacted_by_its_neighbour(monkeypatch, tmp_path, capsys):
    # only the item after "--token" differs, so the change is the single item extraArgs[2]: its
    # neighbour in the list it came from (FieldChange.within) says it is a secret
    desired = {"extraArgs": ["--log_output_level=default:info", "--token", "old-t0ken-1a2b"],
               # a list of name/value pairs with a repeated name is paired by position
               "extraEnv": [{"name": "MODE", "value": "a"}, {"name": "MODE", "value": "b"},
                            {"name": "DB_PASS", "value": "old-pa55-5e6f"}],
               "command": "pilot-discovery --client_secret old-cl1ent-7a8b discovery"}
    live = {"pilot": {"extraArgs": ["--log_output_level=default:info", "--token", "new-t0ken-3c4d"],
                      "extraEnv": [{"name": "MODE", "value": "a"}, {"name": "MODE", "value": "b"},
                                   {"name": "DB_PASS", "value": "new-pa55-9a0b"}],
                      "command": "pilot-discovery --client_secret new-cl1ent-1c2d discovery"}}
    out = istiod_drift(monkeypatch, tmp_path, capsys, desired, live)
    for fmt, text in out.items():
        assert_hidden(text, "t0ken-", "pa55-", "cl1ent-")
        assert "values.pilot.extraArgs[2]" in text and "values.pilot.extraEnv[2].value" in text, fmt
        assert "PILOT_TRACE_SAMPLING" in text and "10" in text, fmt  # the drift beside it is shown
    changes = release_changes(out["json"])
    for path in ("values.pilot.extraArgs[2]", "values.pilot.extraEnv[2].value"):
        assert_redacted(changes[path], "desired", "live")
        assert changes[path]["desired"] != changes[path]["live"], path  # still reads as changed
    command = changes["values.pilot.command"]
    assert command["desired"] != command["live"]
    assert command["live"].startswith("pilot-discovery --client_secret <redacted #") and command["live"].endswith(
        "> discovery")
    assert changes["values.pilot.env.PILOT_TRACE_SAMPLING"] == {"path": "values.pilot.env.PILOT_TRACE_SAMPLING",
                                                                "live": "10"}


def test_the_neighbour_of_a_changed_item_counts_on_either_side():
    # the list grew or shrank around the flag: the value is judged by the side that holds it
    grown = compare_values(["-v", "--password"], ["-v", "--password", "hunter2"], "args")
    shrunk = compare_values(["--token", "t0k", "-v"], ["-v"], "args")
    report = DriftReport("s", "m", (ClusterReport("c", changed=(ObjectDrift(
        ObjectRef("apps", "Deployment", "n", "d", "apps/v1"), "changed", tuple(grown + shrunk)),)),))
    red = redact_report(report).clusters[0].changed[0].changes
    assert [(c.path, c.desired, c.live) for c in red] == [
        ("args[2]", MISSING, "<redacted #1>"),
        ("args[0]", "--token", "-v"), ("args[1]", "<redacted #2>", MISSING), ("args[2]", "-v", MISSING)]
    assert all(c.within == (None, None) for c in red)  # the raw containers do not leave redaction
    (beside,) = compare_values(["--token", "s3cr3t", "-v"], ["--token", "s3cr3t", "-vv"], "args")
    assert beside.within[1][1] == "s3cr3t" and "s3cr3t" not in repr(beside)  # carried, never shown


def test_redacting_twice_keeps_the_numbers():
    # every formatter redacts again what build_report already redacted: a flag's value keeps its N
    values = {"key": "MHcC", "extraArgs": ["--token", "t1"]}
    report = DriftReport("s", "m", (ClusterReport("c", releases=(ReleaseDrift("ns", "r", "changed", (
        FieldChange("values.password", MISSING, "p4ss"), FieldChange("values.b", MISSING, values))),)),))
    once = redact_report(report)
    assert once.clusters[0].releases[0].changes[1].live == {"key": "<redacted #3>",
                                                           "extraArgs": ["--token", "<redacted #2>"]}
    assert redact_report(once) == once
    assert redact_report(once).clusters[0].releases[0].changes[1].live == once.clusters[0].releases[0].changes[1].live


def der_keys() -> dict[str, bytes]:
    """One private key in each DER form a chart value may hold, keyed by its form."""
    ec_key, rsa_key = ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)
    enc = serialization.Encoding.DER
    plain = serialization.NoEncryption()
    return {"sec1": ec_key.private_bytes(enc, serialization.PrivateFormat.TraditionalOpenSSL, plain),
            "pkcs8_ec": ec_key.private_bytes(enc, serialization.PrivateFormat.PKCS8, plain),
            "pkcs8_rsa": rsa_key.private_bytes(enc, serialization.PrivateFormat.PKCS8, plain),
            "pkcs1_rsa": rsa_key.private_bytes(enc, serialization.PrivateFormat.TraditionalOpenSSL, plain),
            "pkcs8_encrypted": ec_key.private_bytes(enc, serialization.PrivateFormat.PKCS8,
                                                    serialization.BestAvailableEncryption(b"pw")),
            "ed25519": ed25519.Ed25519PrivateKey.generate().private_bytes(
                enc, serialization.PrivateFormat.PKCS8, plain),
            "pkcs12": pkcs12.serialize_key_and_certificates(b"issuer", ec_key, None, None, plain)}


def public_der() -> dict[str, bytes]:
    """A public key and a self-signed certificate in DER: public, never redacted."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.linkerd.cluster.local")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(datetime.datetime(2026, 1, 1))
            .not_valid_after(datetime.datetime(2027, 1, 1)).sign(key, hashes.SHA256()))
    return {"spki": key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo),
            "cert": cert.public_bytes(serialization.Encoding.DER)}


def test_base64_der_private_keys_under_fields_of_no_secret_name_are_redacted_in_every_format(
        monkeypatch, tmp_path, capsys):
    keys, public = der_keys(), public_der()
    shown = {name: base64.b64encode(der).decode() for name, der in keys.items()}
    wrapped = base64.encodebytes(keys["pkcs8_rsa"]).decode()  # 76 columns, as base64(1) writes
    ssh = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    ssh_body = "\n".join(ssh.splitlines()[1:-1])  # the armour lines dropped
    live = {"debugContainer": {"image": {"name": shown["sec1"]}},  # the reviewer's case
            "pilot": {"podAnnotations": {f"example.com/{n}": v for n, v in shown.items()},
                      "bootstrap": f"certs:\n  blob: |\n    {wrapped.replace(chr(10), chr(10) + '    ')}\nlevel: 2\n",
                      "sshConfig": ssh_body,
                      "caBundle": base64.b64encode(public["cert"]).decode(),
                      "publicKeyDER": base64.b64encode(public["spki"]).decode()}}
    out = istiod_drift(monkeypatch, tmp_path, capsys, {}, live)
    for fmt, text in out.items():
        assert_hidden(text, *(v[:40] for v in shown.values()), *(v[40:80] for v in shown.values()),
                      wrapped.splitlines()[1], ssh_body.splitlines()[0][:40], ssh_body.splitlines()[1][:40])
        assert "PILOT_TRACE_SAMPLING" in text and "debugContainer" in text, fmt
        assert "MHcC" not in text and "MIIE" not in text.replace("MIIB", ""), fmt
    changes = release_changes(out["json"])
    assert_redacted({"x": changes["values.debugContainer"]["live"]["image"]["name"]}, "x")
    pilot = {p.rpartition(".")[2]: ch["live"] for p, ch in changes.items() if p.startswith("values.pilot.")}
    assert all(str(v).startswith("<redacted #") for v in pilot["podAnnotations"].values())
    assert len(set(pilot["podAnnotations"].values())) == len(shown)  # each key its own number
    assert pilot["bootstrap"].startswith("certs:\n  blob: |\n    <redacted #") and pilot["bootstrap"].endswith("\nlevel: 2\n")
    assert pilot["sshConfig"].startswith("<redacted #")
    # certificates and public keys are public: shown in full
    assert pilot["caBundle"] == base64.b64encode(public["cert"]).decode()
    assert pilot["publicKeyDER"] == base64.b64encode(public["spki"]).decode()


def test_der_private_key_detection():
    for name, der in der_keys().items():
        assert is_der_private_key(der), name
        b = base64.b64encode(der).decode()
        assert redact_text(b) == "<redacted #1>", name
        assert redact_text(f"blob={b}&next=1") == "blob=<redacted #1>&next=1", name
        assert redact_text(f"blob:\n  {base64.encodebytes(der).decode()}") == "blob:\n  <redacted #1>\n", name
    for name, der in public_der().items():
        assert not is_der_private_key(der), name
        assert redact_text(base64.b64encode(der).decode()) == base64.b64encode(der).decode(), name
    key = der_keys()["sec1"]
    assert not is_der_private_key(key[:-1]) and not is_der_private_key(key + b"\0")  # exactly one DER value
    assert not is_der_private_key(b"0\x03\x02\x01\x01")  # too short to be a key
    # a key read as YAML !!binary is redacted as the bytes it is
    change = one_change("spec.blob", MISSING, key)
    assert change.live == "<redacted #1>"
    # words, and base64 that starts like a key but is not one, are left alone
    text = "MAXIMUM_CONNECTIONS=4 MIIEvQIBADAN" + "A" * 80 + " MHcCAQEE" + "B" * 200 + "=="
    assert redact_text(text) == text


def test_more_secret_names_redacted_in_every_format_and_names_that_only_look_secret_shown(
        monkeypatch, tmp_path, capsys):
    config = b64(json.dumps({"auths": {"registry.example.com": {"auth": b64("robot:r3g-pa55")}}}))
    secret_values = {"MYSQL_PWD": "my5ql-pwd-1", "DB_PASS": "db-pa55-2", "REPLICA_PASSWD": "r3pl-pa55-3",
                     "passphrase": "pa55phrase-4", "private_key": "priv-k3y-5", "privateKey": "priv-k3y-6",
                     "client_secret": "cl1ent-s3c-7", "auth": "au7h-8", ".dockerconfigjson": config}
    visible = {"tokenFile": "/var/run/secrets/tokens/istio-token", "secretName": "istiod-tls",
               "passwordRef": {"name": "db", "key": "password"}, "PWD": "/home/istio",
               # cert-manager Certificate spec.privateKey: settings, not key material
               "certificate": {"privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always",
                                              "encoding": "PKCS8"}}}
    live = {"global": {**secret_values, **visible},
            "pilot": {"env": {"MYSQL_PWD": "my5ql-pwd-9"},
                      "dbConfig": "MYSQL_PWD=my5ql-pwd-10\nDB_PASS: db-pa55-11\n.dockerconfigjson: " + config + "\n",
                      "args": "--passphrase pa55phrase-12 --private_key=priv-k3y-13 --verbose"}}
    out = istiod_drift(monkeypatch, tmp_path, capsys, {}, live)
    needles = [v for v in secret_values.values()] + [config[:40], "r3g-pa55", "my5ql-pwd", "db-pa55", "pa55phrase",
                                                     "priv-k3y"]
    for fmt, text in out.items():
        assert_hidden(text, *needles)
        assert "PILOT_TRACE_SAMPLING" in text and "MYSQL_PWD" in text and ".dockerconfigjson" in text, fmt
        for shown in ("/var/run/secrets/tokens/istio-token", "istiod-tls", "/home/istio", "ECDSA", "rotationPolicy",
                      "PKCS8", "--verbose"):
            assert shown in text, (fmt, shown)
    changes = release_changes(out["json"])
    glob = {p.removeprefix("values.global").lstrip(".").strip('["]'): ch["live"]
            for p, ch in changes.items() if p.startswith("values.global")}
    assert all(glob[k].startswith("<redacted #") for k in secret_values), glob
    assert {k: glob[k] for k in visible} == visible
    pilot = {p.rpartition(".")[2]: ch.get("live") for p, ch in changes.items() if p.startswith("values.pilot.")}
    assert pilot["MYSQL_PWD"].startswith("<redacted #")
    assert pilot["dbConfig"].startswith("MYSQL_PWD=<redacted #") and "\nDB_PASS: <redacted #" in pilot["dbConfig"]
    assert "\n.dockerconfigjson: <redacted #" in pilot["dbConfig"]
    assert pilot["args"].startswith("--passphrase <redacted #") and pilot["args"].endswith(" --verbose")
