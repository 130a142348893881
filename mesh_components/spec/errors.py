"""Errors the core raises for bad input. Each carries ``(path, message)`` problems.

A *path* names where the problem is, as the user wrote it: ``mesh.clusters[1].cloud`` for the stack
spec, ``policies/smi/access.yaml#TrafficTarget/bookstore.spec.rules[0]`` for an SMI document. A
*message* says what is wrong and how to fix it. The CLI prints one ``path: message`` line per
problem and exits 1; ``__main__.py`` raises them as a single readable Pulumi error.
"""
from __future__ import annotations

Problem = tuple[str, str]


class MeshError(ValueError):
    """Bad input, with every problem found (not only the first).

    ``problems``: list of ``(path, message)``. ``str(err)`` is one ``path: message`` per line.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(f"{p}: {m}" for p, m in self.problems))


class SpecError(MeshError):
    """The stack spec (or an SMI file it names) is invalid: nothing has been rendered or applied."""


class TranslationError(MeshError):
    """A policy the target mesh cannot express exactly: refused rather than widened.

    Raised by the renderers (``istio``, ``linkerd``, ``osm``); each message names the document, the
    match and what would translate exactly.
    """
