"""Desired against live: :mod:`.diff` (normalisation and comparison), :mod:`.live` (reading a
cluster), :mod:`.workloads` (what the stack assumes of running pods) and :mod:`.intent` (checks across
clusters a per-object diff cannot see). Used by ``python -m mesh_components diff``. No Pulumi import.
"""
