// Our components from TypeScript, on a cluster whose Linkerd was installed by other means
// (provider/README.md). tests/test_component_package.py checks every type and property name here
// against provider/schema.json and the SmiPolicies inputs against the component's own checks.
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import * as mesh from "@pulumi/mesh";

const config = new pulumi.Config();

// The existing cluster: every component child goes to it through `providers`.
const cluster = new k8s.Provider("cluster", { kubeconfig: config.requireSecret("kubeconfig") });

// One root of trust and an intermediate CA for the cluster "east", for a Linkerd that is installed
// by other means: its identity trust anchors and issuer come from the outputs below.
const ca = new mesh.MeshCertificateAuthority("ca", {
    trustDomain: "cluster.local",
    mesh: "linkerd",
    clusters: ["east"],
    keyAlgorithm: "ECDSA_P256",
    intermediateValidityDays: 365,
});

// SMI on the existing Linkerd: bookstore may POST /restock-books to bookwarehouse, nothing else
// reaches bookwarehouse (Servers + AuthorizationPolicies, namespaces' default inbound policy deny).
const policy = new mesh.SmiPolicies("policy", {
    mesh: "linkerd",
    clusterName: "east",
    services: [
        { name: "bookstore", namespace: "bookstore", ports: [{ name: "http", port: 14001, protocol: "http" }] },
        { name: "bookwarehouse", namespace: "bookwarehouse", ports: [{ name: "http", port: 14001, protocol: "http" }] },
    ],
    documents: [
        {
            apiVersion: "specs.smi-spec.io/v1alpha4",
            kind: "HTTPRouteGroup",
            metadata: { name: "bookwarehouse-service-routes", namespace: "bookwarehouse" },
            spec: { matches: [{ name: "restock-books", methods: ["POST"], pathRegex: "/restock-books" }] },
        },
        {
            apiVersion: "access.smi-spec.io/v1alpha3",
            kind: "TrafficTarget",
            metadata: { name: "bookstore-access-bookwarehouse", namespace: "bookwarehouse" },
            spec: {
                destination: { kind: "ServiceAccount", name: "bookwarehouse", namespace: "bookwarehouse" },
                rules: [{ kind: "HTTPRouteGroup", name: "bookwarehouse-service-routes", matches: ["restock-books"] }],
                sources: [{ kind: "ServiceAccount", name: "bookstore", namespace: "bookstore" }],
            },
        },
    ],
}, { providers: [cluster] });

// For the existing Linkerd (chart linkerd-control-plane, or `linkerd upgrade`):
// identityTrustAnchorsPEM, identityTrustDomain, identity.issuer.tls.crtPEM/keyPEM. Secret.
export const linkerdValues = ca.linkerdValues;
export const trustAnchors = ca.trustBundle;
export const rootFingerprint = ca.rootFingerprint;
export const linkerdServers = policy.servers;
export const linkerdAuthorizationPolicies = policy.authorizationPolicies;
export const restartNamespaces = policy.restartNamespaces;
export const requirements = policy.requirements;
