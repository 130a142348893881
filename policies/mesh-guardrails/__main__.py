"""The mesh-guardrails CrossGuard policy pack (run by the Pulumi CLI, never imported by tests:
``PolicyPack()`` starts the analyzer's gRPC server and blocks).

Usage: ``pulumi preview --policy-pack policies/mesh-guardrails`` (see README.md). The rules live in
the library, ``mesh_components/analysis/guardrails.py`` (re-exported by ``mesh_guardrails.py``), pure
functions the tests and ``python -m mesh_components validate`` call directly.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from mesh_guardrails import build_policies  # noqa: E402  (re-exports mesh_components.analysis.guardrails)

PolicyPack(
    name="mesh-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(),
)
