"""No cliffs past SMI: per-service timeouts, retries, circuit breaking and outlier detection,
rendered the way each mesh takes them, and refused where a mesh has no equivalent.

- Istio: ``DestinationRule`` (``trafficPolicy.connectionPool``, ``outlierDetection``;
  https://istio.io/latest/docs/reference/config/networking/destination-rule/) and, for timeouts
  and retries, a ``VirtualService`` (https://istio.io/latest/docs/reference/config/networking/virtual-service/)
  which then also carries the service's traffic split (one routing object per host).
- Linkerd: a GAMMA ``HTTPRoute`` on the Service with ``timeouts.request`` and the
  ``retry.linkerd.io/*`` annotations (https://linkerd.io/2/reference/retries/,
  https://linkerd.io/2/reference/timeouts/); it has no connection-pool limits, and its failure
  accrual is a Service annotation on a Service the application owns: both refused.
- OSM v1.2: ``UpstreamTrafficSetting`` connection settings and one ``Retry`` per calling identity
  (https://release-v1-2.docs.openservicemesh.io/docs/guides/traffic_management/); no request timeout
  and no outlier detection in its API: refused.
"""
from __future__ import annotations

from ..spec import names
from ..spec.errors import Problem, TranslationError
from .gamma import GATEWAY_API, TrafficModel, WeightedRoute
from .meta import k8s_object

NETWORKING = "networking.istio.io/v1"
OSM_POLICY = "policy.openservicemesh.io/v1alpha1"
LINKERD_RETRY_ON = {"5xx", "gateway-error"}


def host(namespace: str, service: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"


def _connection_limits(cb, pending_key: str, requests_key: str) -> dict:
    """``{tcp: {maxConnections}, http: {<pending_key>, <requests_key>}}`` with only what is set:
    Istio's ``connectionPool`` and OSM's ``connectionSettings`` differ only in the HTTP key names."""
    out: dict = {}
    if cb.max_connections:
        out["tcp"] = {"maxConnections": cb.max_connections}
    http = {k: v for k, v in ((pending_key, cb.max_pending_requests), (requests_key, cb.max_requests)) if v}
    if http:
        out["http"] = http
    return out


def _services(spec, cluster: str):
    for i, s in enumerate(spec.services):
        if s.resilience is not None and cluster in spec.service_clusters(s):
            yield i, s


def _split_of(model: TrafficModel, s) -> WeightedRoute | None:
    return next((r for r in model.routes if (r.namespace, r.service) == (s.namespace, s.name)), None)


def istio_virtual_services(spec) -> set[tuple[str, str]]:
    """``(namespace, service)`` of services whose routing Istio renders as a VirtualService (they
    have a timeout or retries), so their split is not also rendered as a GAMMA HTTPRoute."""
    return {(s.namespace, s.name) for s in spec.services
            if s.resilience and (s.resilience.timeout or s.resilience.retries)}


def istio_objects(spec, model: TrafficModel, cluster: str) -> list[dict]:
    """DestinationRules and VirtualServices for the services with ``resilience`` in ``cluster``."""
    out = []
    for _, s in _services(spec, cluster):
        r, h = s.resilience, host(s.namespace, s.name)
        policy: dict = {}
        if r.circuit_breaker:
            policy["connectionPool"] = _connection_limits(r.circuit_breaker, "http1MaxPendingRequests",
                                                          "http2MaxRequests")
        if r.outlier_detection:
            od = r.outlier_detection
            policy["outlierDetection"] = {"consecutive5xxErrors": od.consecutive_errors, "interval": od.interval,
                                          "baseEjectionTime": od.base_ejection_time,
                                          "maxEjectionPercent": od.max_ejection_percent}
        if policy:
            out.append(k8s_object(NETWORKING, "DestinationRule", s.name, s.namespace, spec.name,
                                  spec={"host": h, "trafficPolicy": policy}))
        if (s.namespace, s.name) in istio_virtual_services(spec):
            http_routes = []
            for match, route in _istio_split_routes(s, _split_of(model, s)):
                http_route: dict = {**({"match": match} if match else {}), "route": route}
                if r.timeout:
                    http_route["timeout"] = r.timeout
                if r.retries:
                    retries: dict = {"attempts": r.retries.attempts, "retryOn": ",".join(r.retries.retry_on)}
                    if r.retries.per_try_timeout:
                        retries["perTryTimeout"] = r.retries.per_try_timeout
                    http_route["retries"] = retries
                http_routes.append(http_route)
            out.append(k8s_object(NETWORKING, "VirtualService", s.name, s.namespace, spec.name,
                                  spec={"hosts": [h], "http": http_routes}))
    return out


def _istio_split_routes(s, split: WeightedRoute | None) -> list[tuple[list | None, list[dict]]]:
    """``(match, route)`` pairs of a VirtualService for service ``s``: without a split, one route
    to the service; with one, its weights as written. VirtualService weights are relative (Istio
    1.30.3 pkg/config/validation/validation.go validateHTTPRouteDestinations asks only weight >= 0
    and a positive total; pilot/pkg/config/kube/gateway/conversion.go copies Gateway API weights
    into them unscaled), so no rounding to percentages. A destination without a port is sent to
    the port the request came in on (pilot route.go processWeightedDestination ``listenerPort``),
    so where the backends serving each HTTP port differ (SMI leaves out a backend that lacks the
    port, gamma.WeightedRoute), each port gets its own ``match: [{port}]``."""
    h = host(s.namespace, s.name)
    if split is None:
        return [(None, [{"destination": {"host": h}}])]
    per_port = [(p, split.backends_on(p)) for p in split.ports]
    if len({b for _, b in per_port}) <= 1:
        backends = per_port[0][1] if per_port else split.backends
        return [(None, [{"destination": {"host": host(s.namespace, b)}, "weight": w} for b, w in backends])]
    return [([{"port": p}], [{"destination": {"host": host(s.namespace, b)}, "weight": w} for b, w in backends])
            for p, backends in per_port]


def linkerd_objects(spec, model: TrafficModel, cluster: str) -> tuple[list[dict], set[str]]:
    """GAMMA HTTPRoutes carrying timeouts and retries for ``cluster``, and the names of splits they
    replace (a split's weights move into the route). Raises :class:`TranslationError` for circuit
    breakers, outlier detection and retry conditions Linkerd lacks."""
    problems: list[Problem] = []
    out, replaced = [], set()
    for i, s in _services(spec, cluster):
        r, base = s.resilience, f"mesh.services[{i}].resilience"
        if r.circuit_breaker:
            problems.append((f"{base}.circuitBreaker", "Linkerd has no connection-pool limits; remove it for "
                                                       "this mesh (Linkerd sheds load with its own queues)"))
        if r.outlier_detection:
            problems.append((f"{base}.outlierDetection", "Linkerd's failure accrual is set by annotating the "
                                                         "Service (balancer.linkerd.io/failure-accrual), which the "
                                                         "application owns; annotate it there and remove this"))
        if r.retries:
            bad = sorted(set(r.retries.retry_on) - LINKERD_RETRY_ON)
            if bad:
                problems.append((f"{base}.retries.retryOn", f"Linkerd retries only on {sorted(LINKERD_RETRY_ON)}, "
                                                            f"not {bad}; use those conditions"))
        if not (r.timeout or r.retries):
            continue
        http_ports = [p for p in s.ports if p.is_http]
        if not http_ports:
            problems.append((base, "timeouts and retries apply to HTTP; the service has no HTTP port"))
            continue
        split = _split_of(model, s)
        annotations = {}
        if r.retries:
            annotations = {"retry.linkerd.io/http": ",".join(r.retries.retry_on),
                           "retry.linkerd.io/limit": str(r.retries.attempts)}
            if r.retries.per_try_timeout:
                annotations["retry.linkerd.io/timeout"] = r.retries.per_try_timeout
        for p in http_ports:
            backends = split.backends_on(p.port) if split else ((s.name, 1),)
            rule: dict = {"backendRefs": [{"name": b, "port": p.port, **({"weight": w} if split else {})}
                                          for b, w in backends]}
            if r.timeout:
                rule["timeouts"] = {"request": r.timeout}
            name = (split.name if split else s.name) + ("" if len(http_ports) == 1 else f"-{p.port}")
            out.append(k8s_object(GATEWAY_API, "HTTPRoute", name, s.namespace, spec.name, annotations=annotations or None,
                                  spec={"parentRefs": [{"group": "", "kind": "Service", "name": s.name, "port": p.port}],
                                        "rules": [rule]}))
        if split:
            replaced.add(split.name)
    if problems:
        raise TranslationError(problems)
    return out, replaced


def osm_objects(spec, model: TrafficModel, cluster: str) -> list[dict]:
    """UpstreamTrafficSettings and Retries for ``cluster``. Raises :class:`TranslationError` for
    timeouts and outlier detection, which OSM v1.2 cannot express."""
    problems: list[Problem] = []
    out = []
    for i, s in _services(spec, cluster):
        r, base = s.resilience, f"mesh.services[{i}].resilience"
        if r.timeout:
            problems.append((f"{base}.timeout", "OSM v1.2 has no request timeout setting; remove it for this mesh"))
        if r.outlier_detection:
            problems.append((f"{base}.outlierDetection", "OSM v1.2 has no outlier detection; remove it for this mesh"))
        if r.circuit_breaker:
            settings = _connection_limits(r.circuit_breaker, "maxPendingRequests", "maxRequests")
            out.append(k8s_object(OSM_POLICY, "UpstreamTrafficSetting", s.name, s.namespace, spec.name,
                                  spec={"host": host(s.namespace, s.name), "connectionSettings": settings}))
        if r.retries and not r.retries.per_try_timeout:
            problems.append((f"{base}.retries.perTryTimeout", "OSM's Retry needs a per-try timeout; set one"))
        elif r.retries:
            callers = sorted({src for a in model.authorizations
                              if (a.destination.namespace, a.destination.name) == (s.namespace, s.name)
                              for src in a.sources})
            for ns, sa in callers:
                # <source account>.<service>.<service namespace>: service and namespace are DNS labels
                # (no dots), so the name is unique per (caller, destination) by construction, unlike
                # "<sa>-to-<service>" ("a-to" + "b" = "a" + "to-b", or one service name in two namespaces)
                # a 253-character account leaves no room: cut and hashed there (names.bounded)
                name = names.bounded(f"{sa}.{s.name}.{s.namespace}", ("retry", ns, sa, s.namespace, s.name))
                out.append(k8s_object(OSM_POLICY, "Retry", name, ns, spec.name, spec={
                    "source": {"kind": "ServiceAccount", "name": sa, "namespace": ns},
                    "destinations": [{"kind": "Service", "name": s.name, "namespace": s.namespace}],
                    "retryPolicy": {"retryOn": ",".join(r.retries.retry_on),
                                    "perTryTimeout": r.retries.per_try_timeout,
                                    "numRetries": r.retries.attempts, "retryBackoffBaseInterval": "25ms"}}))
    if problems:
        raise TranslationError(problems)
    return out
