"""Reading the rendered mesh back: what it allows and what the guardrails say of it.

:mod:`.graph` (who may call whom), :mod:`.egress_access` (what may leave the mesh),
:mod:`.override_access` (what ``mesh.overrides`` change in access), :mod:`.findings` (``validate``'s
notices) and :mod:`.guardrails` (the mesh-guardrails rules, standard library only, shared with the
CrossGuard pack in ``policies/mesh-guardrails``). No Pulumi import.
"""
