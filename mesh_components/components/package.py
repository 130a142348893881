"""The component package: our public components for every Pulumi language.

``provider/`` (at the repository root) is a source-based plugin package: ``PulumiPlugin.yaml``
says ``runtime: python`` and the Python language host runs ``provider/__main__.py``, which calls
:func:`main`. ``pulumi package add <path or git URL>/provider`` asks the plugin for its schema
(``GetSchema``) and generates an SDK in the consumer's language from it; the consumer's program
then creates ``mesh:index:<Component>`` resources, which the engine sends to this plugin as
``Construct`` calls, and the plugin constructs the Python component
(``pulumi/provider/experimental/component.py`` ``ComponentProvider.construct``).
Docs: https://www.pulumi.com/docs/iac/guides/building-extending/packages/source-based-plugin/ and
https://www.pulumi.com/docs/reference/pulumiplugin-yaml/.

The schema is the one Pulumi's analyzer (``pulumi.provider.experimental.analyzer.Analyzer``)
infers from the components' type hints: a component's ``__init__(self, name, args: XArgs, opts)``
gives the inputs (the ``XArgs`` TypedDict's fields, camelCased), its class-level
``pulumi.Output[...]`` annotations give the outputs, and the docstrings give the descriptions
(the class docstring, and the string literal right below each field: ``Analyzer.get_docstring``).
The analyzer reads the annotations unevaluated (``inspect.get_annotations`` without
``eval_str``, ``Analyzer.analyze_component`` / ``analyze_type``), so a module that defines a
public component or its Args must not use ``from __future__ import annotations``:
:func:`check_components` refuses that with the module's name.

:class:`MeshComponentProvider` is Pulumi's ``ComponentProvider`` with three changes:

- every schema description goes through :func:`inspect.cleandoc`. The analyzer keeps a multi-line
  docstring's source indentation (field docstrings come from the source text, class docstrings
  from ``__doc__``, which Python 3.13 dedents and 3.10-3.12 do not), so without this the schema
  would depend on the Python version, and the generated SDKs' docs (Markdown, where a line
  indented four spaces is a code block) would render every continuation line as code. It serves
  over ``GetSchema`` the same cleaned schema :func:`schema` returns and ``provider/schema.json``
  commits (``python3 tasks.py schema`` writes it; ``tests/test_component_package.py`` fails when
  it drifts from the code);
- ``integer`` inputs reach the component as ``int`` (the SDK leaves them floats), and input keys
  the schema does not have reach it too (the SDK drops them), for it to refuse;
- a component's :class:`~mesh_components.spec.errors.MeshError` (bad args, a refused policy) is
  answered with exactly its ``path: message`` text, as an invalid-argument error, not followed by
  a Python traceback.

So :func:`main` does what ``component_provider_host`` (``pulumi/provider/experimental/host.py``)
does, with this provider.
"""
import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Any, Optional, Sequence

PACKAGE = "mesh"
"""The package name: resource types are ``mesh:index:<Component>`` (the analyzer puts every
component in the ``index`` module, ``analyzer.py`` class docstring)."""

NAMESPACE: Optional[str] = None
"""No namespace: the generated SDKs are named as Pulumi's codegen names a package without one
(``@pulumi/mesh`` for Node.js, pulumi/pulumi ``pkg/codegen/nodejs/gen.go``
``genNPMPackageMetadata``; ``pulumi_mesh`` for Python, ``pkg/codegen/python/gen.go`` ``PyPack``),
which is also how ``pulumi package add`` names the local SDK it generates."""

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "provider" / "schema.json"
"""The committed schema, in the plugin directory beside ``PulumiPlugin.yaml``."""


COMPONENTS = {"MeshCertificateAuthority": "certificate_authority", "IstioControlPlane": "control_plane",
              "LinkerdControlPlane": "control_plane", "OsmControlPlane": "control_plane",
              "SmiPolicies": "smi_policies", "EgressRules": "egress_rules", "MeshGateway": "mesh_gateway",
              "MultiClusterLinks": "multicluster_links"}
"""The public components the package serves, in schema order: class name -> the module of
``mesh_components.components`` that defines it. Each is a ``pulumi.ComponentResource`` of type
``mesh:index:<ClassName>`` whose ``__init__`` takes ``args`` typed with its ``<ClassName>Args``
TypedDict. Imported on use (:func:`components`), so importing this module imports no component."""


def component(name: str) -> type:
    """The class :data:`COMPONENTS` names ``name``, imported."""
    import importlib

    return getattr(importlib.import_module(f"{__package__}.{COMPONENTS[name]}"), name)


def components() -> list[type]:
    """The classes :data:`COMPONENTS` names, imported, in its order."""
    return [component(name) for name in COMPONENTS]


def version() -> str:
    """The package version: this distribution's (:func:`mesh_components.cli.package_version`)."""
    from ..cli import package_version

    return package_version()


def check_components(classes: Sequence[type]) -> None:
    """Refuse, before the analyzer fails obscurely, a class the analyzer cannot read: not a
    ``ComponentResource`` (``component_provider_host`` would drop it with a warning,
    ``pulumi/provider/experimental/host.py`` ``_validate_explicit_components``), no ``args``
    annotation on ``__init__``, or annotations left as strings (``from __future__ import
    annotations`` in its module; the analyzer then fails with ``'str' object has no attribute
    '__mro__'``). Raises ``TypeError`` naming the class, its module and the fix."""
    import pulumi

    for cls in classes:
        where = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)!s}"
        if not (inspect.isclass(cls) and issubclass(cls, pulumi.ComponentResource)):
            raise TypeError(f"{where}: not a pulumi.ComponentResource; the component package serves components only")
        args = inspect.get_annotations(cls.__init__).get("args")
        if args is None:
            raise TypeError(f"{where}: __init__ has no annotated `args` parameter; type it with the component's "
                            f"Args TypedDict (the analyzer infers the inputs from it)")
        hints = [args, *inspect.get_annotations(cls).values()]
        if typing.is_typeddict(args):
            hints += list(inspect.get_annotations(args).values())
        if any(isinstance(h, (str, typing.ForwardRef)) for h in hints):
            raise TypeError(f"{where}: its annotations are strings (`from __future__ import annotations` in "
                            f"{cls.__module__}); Pulumi's analyzer reads annotations unevaluated, so remove that "
                            f"import from the module that defines the component and its Args")


def _clean(node: Any) -> Any:
    """``node`` (schema JSON) with every ``description`` string passed through
    :func:`inspect.cleandoc`."""
    if isinstance(node, dict):
        return {k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else _clean(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _whole_numbers(value: Any, prop: Any) -> Any:
    """``value`` with whole-number floats made ``int`` where ``prop`` (an analyzer
    ``PropertyDefinition``) says ``integer``, through lists and maps of them; Outputs and
    everything else unchanged."""
    from pulumi.provider.experimental.analyzer import PropertyType

    if prop.type == PropertyType.INTEGER and isinstance(value, float) and value.is_integer():
        return int(value)
    if prop.type == PropertyType.ARRAY and prop.items is not None and isinstance(value, list):
        return [_whole_numbers(v, prop.items) for v in value]
    if prop.type == PropertyType.OBJECT and prop.additional_properties is not None and isinstance(value, dict):
        return {k: _whole_numbers(v, prop.additional_properties) for k, v in value.items()}
    return value


def _component_provider_class():
    from pulumi.errors import InputPropertiesError
    from pulumi.provider.experimental.component import ComponentProvider
    from pulumi.provider.server import ComponentInitError

    from ..spec.errors import MeshError

    class MeshComponentProvider(ComponentProvider):
        """Pulumi's ``ComponentProvider`` (analysis, ``Construct``) serving the schema with cleaned
        descriptions (see the module docstring), and answering bad args with their message alone.

        A component refuses bad args with a :class:`~mesh_components.spec.errors.MeshError` (``ArgsError``,
        ``TranslationError``): ``path: message`` lines naming the component, its name and the field.
        Left to the SDK, that arrives as any other exception, the message followed by a Python
        traceback (``pulumi/provider/server.py`` ``Construct``, ``ComponentInitError``); as an
        ``InputPropertiesError`` it is answered ``INVALID_ARGUMENT`` with exactly the message
        (``create_grpc_invalid_properties_status``), which the engine prints as the resource's error
        (pulumi/pulumi ``pkg/resource/deploy/source_eval.go`` ``errorToMessage``). No per-property
        details (an empty list): the engine would print each property's value beside it, secret
        inputs included."""

        def __init__(self, classes: Sequence[type], name: str = PACKAGE, namespace: Optional[str] = NAMESPACE,
                     version_: Optional[str] = None) -> None:
            check_components(classes)
            super().__init__(list(classes), name, namespace, version_ or version())
            self.schema = json.dumps(_clean(json.loads(self.schema)))

        def map_input_properties(self, inputs, properties, mapping, component_name, property_path):
            """The SDK's mapping of schema names to Python names (recursive through this method for
            nested types), then every whole-number float of an ``integer`` property made an
            ``int``, as the schema promises a Python component: numbers travel as protobuf
            doubles, and pulumi 3.272.0 converts them and then overwrites the conversion with the
            float (``pulumi/provider/experimental/component.py`` lines 276-287, no ``continue``).
            Without this a Python program and a TypeScript one giving the same port would get
            different messages (``70000`` / ``70000.0``). Other floats are left for the
            component's own checks to refuse.

            Keys the schema does not have are passed on as given: the SDK drops them (it maps
            only the schema's properties), so a misspelt field from a program whose SDK does not
            check names (a stale SDK, or a map where a typed object is due) would be silently
            ignored; the component refuses it with the same "unknown field" message a Python
            program gets."""
            mapped = super().map_input_properties(inputs, properties, mapping, component_name, property_path)
            for schema_name, prop in properties.items():
                key = mapping.get(schema_name)
                if key in mapped:
                    mapped[key] = _whole_numbers(mapped[key], prop)
            if isinstance(inputs, dict):  # keys the schema does not have: kept, for the component to refuse
                mapped.update({k: v for k, v in inputs.items() if k not in properties and k not in mapped})
            return mapped

        def construct(self, name, resource_type, inputs, options=None):
            try:
                return super().construct(name, resource_type, inputs, options)
            except ComponentInitError as e:
                if isinstance(e.inner, MeshError):
                    # errors=[] not None: pulumi 3.272.0's server aborts with a status that has no
                    # trailing metadata otherwise, an AttributeError (server.py
                    # create_grpc_invalid_properties_status sets it only when errors is not None)
                    raise InputPropertiesError(str(e.inner), []) from e.inner
                raise

    return MeshComponentProvider


def provider(classes: Optional[Sequence[type]] = None):
    """A ``MeshComponentProvider`` (a ``pulumi.provider.experimental`` ``ComponentProvider``) for
    ``classes`` (default :func:`components`)."""
    return _component_provider_class()(components() if classes is None else classes)


def schema(classes: Optional[Sequence[type]] = None) -> dict:
    """The package schema (Pulumi package schema JSON as a dict) the analyzer infers for
    ``classes`` (default :func:`components`), descriptions cleaned: what ``GetSchema`` serves."""
    return json.loads(provider(classes).schema)


def schema_text(classes: Optional[Sequence[type]] = None) -> str:
    """:func:`schema` as the committed file holds it: keys sorted, two-space indent, final newline."""
    return json.dumps(schema(classes), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Serve the package as a plugin (what the language host runs through
    ``provider/__main__.py``): ``argv`` (default ``sys.argv[1:]``) is the engine address and
    flags. This is ``component_provider_host`` (``pulumi/provider/experimental/host.py``) with our
    provider: that function builds a plain ``ComponentProvider``, whose schema keeps the raw
    docstrings; it prints the port it serves on and serves until the engine stops it
    (``pulumi/provider/server.py`` ``main``)."""
    from pulumi.provider import main as serve

    serve(provider(), list(sys.argv[1:] if argv is None else argv))


def _cli(argv: Sequence[str]) -> int:
    """``python -m mesh_components.components.package [--check]``: write :data:`SCHEMA_FILE`
    from the code, or with ``--check`` say whether it is current (exit 1 when not)."""
    text = schema_text()
    if list(argv) == ["--check"]:
        current = SCHEMA_FILE.is_file() and SCHEMA_FILE.read_text(encoding="utf-8") == text
        print(f"{SCHEMA_FILE}: {'up to date' if current else 'out of date; run: python3 tasks.py schema'}")
        return 0 if current else 1
    if argv:
        print("usage: python -m mesh_components.components.package [--check]", file=sys.stderr)
        return 2
    SCHEMA_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
