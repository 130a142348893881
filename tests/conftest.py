"""Shared test set-up.

Every test starts with empty regex caches: the ``lru_cache``d regex helpers (``smi.regex_shape``,
``smi.re2_error``, ``smi.rust_regex_problem``, ``linkerd_policy.ascii_perl_classes``) would otherwise
hand a test the results an earlier test computed, so a test's outcome would depend on which tests ran
before it, and a mutation run (mutmut forks its workers from a process that already ran the tests)
would never call a mutated helper behind a cache (quality/findings.md).
"""
from __future__ import annotations

import asyncio

import pytest

from mesh_components.meshes import linkerd_policy
from mesh_components.spec import smi

_CACHED = (smi.regex_shape, smi.re2_error, smi.rust_regex_problem, linkerd_policy.ascii_perl_classes)


@pytest.fixture(autouse=True)
def _empty_regex_caches():
    for cached in _CACHED:
        cached.cache_clear()
    yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Every test, and every fixture it sets up (module-scoped ones included), starts with a
    current asyncio event loop. A ``pulumi.Output`` made outside a mocked program (an Args value
    built before ``pulumi.runtime.test`` runs) takes the current loop (``pulumi/output.py``
    ``from_input``: ``asyncio.Future()``), and a test before it that ran ``asyncio.run`` leaves none
    (``asyncio.run`` ends with ``set_event_loop(None)``), so without this such a test would pass or
    fail by the order tests run in. ``tryfirst``: before pytest's own setup of the fixtures."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
