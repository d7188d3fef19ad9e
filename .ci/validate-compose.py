#!/usr/bin/env python3
"""Validate a Compose file without Docker.

Requirements (Python 3.11; install them into a venv, this script installs nothing):
    jsonschema>=4.18,<5
    PyYAML>=6,<7
The Compose Specification schema comes from .ci/fetch-compose-schema.sh:

    schema=$(bash .ci/fetch-compose-schema.sh /tmp/compose-schema)
    python -m venv /tmp/composevenv
    /tmp/composevenv/bin/pip install 'jsonschema>=4.18,<5' 'PyYAML>=6,<7'
    /tmp/composevenv/bin/python .ci/validate-compose.py --schema "$schema" docker-compose.yml

Checks, each reported as passed or failed:
  * the file is YAML with no duplicate mapping keys (Compose rejects those; PyYAML alone
    would silently keep the last one) and a mapping at the top;
  * no top-level `version:` (obsolete in the Compose Specification);
  * every `$` in a value is a valid Compose interpolation (`$$`, `$NAME`, `${...}`);
  * the file validates against the Compose Specification JSON schema;
  * every service reference (depends_on, extends, network_mode/volumes_from
    "service:NAME") names a defined service;
  * every named volume, config, secret and network a service uses is declared at the
    top level;
  * every service with a `build:` has a build context directory holding its Dockerfile.

Values are checked before interpolation, as written in the file. YAML is read as
PyYAML reads it (YAML 1.1), so quote values like "no", "on" or "50051:50051".

Exit status: 0 when every check passed, 1 when one failed, 2 on bad usage.
The last line printed is "N passed, N failed".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

try:
    import jsonschema
    import yaml
except ImportError as error:  # pragma: no cover - environment problem
    print(
        f"validate-compose: missing dependency ({error}); "
        "pip install 'jsonschema>=4.18,<5' 'PyYAML>=6,<7' into a venv first",
        file=sys.stderr,
    )
    sys.exit(2)


# --------------------------------------------------------------------------- YAML


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys in a mapping (merge keys `<<` excepted)."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r} (first at line {seen[key].line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
            except TypeError:  # unhashable key: SafeLoader reports it itself
                pass
        return super().construct_mapping(node, deep=deep)


# ------------------------------------------------------------------------ helpers


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, problems: list[str]) -> bool:
        if problems:
            self.failed += 1
            print(f"FAIL {name}:")
            for problem in problems:
                print(f"  - {problem}")
            return False
        self.passed += 1
        print(f"ok   {name}")
        return True


def services_of(doc: dict) -> dict[str, dict]:
    services = doc.get("services")
    if not isinstance(services, dict):
        return {}
    return {name: svc for name, svc in services.items() if isinstance(svc, dict)}


def declared(doc: dict, section: str) -> set[str]:
    value = doc.get(section)
    return set(value) if isinstance(value, dict) else set()


def walk_strings(value: Any, path: str):
    """Yields (path, string) for every string value (not key) in a YAML document."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, f"{path}[{index}]")


# Compose interpolation: $$ (a literal $), $NAME, ${NAME}, ${NAME:-default},
# ${NAME-default}, ${NAME:?err}, ${NAME?err}, ${NAME:+alt}, ${NAME+alt}. Defaults may
# nest further interpolations, so braces are matched by depth below.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+]).*)?", re.DOTALL)


def interpolation_errors(text: str) -> list[str]:
    errors = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            i += 2
        elif nxt == "{":
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                errors.append(f"unclosed '${{' at offset {i}")
                break
            inner = text[i + 2 : j - 1]
            if not _BRACED.fullmatch(inner):
                errors.append(f"invalid interpolation '${{{inner}}}'")
            else:
                errors.extend(interpolation_errors(inner))
            i = j
        elif _NAME.match(nxt or " "):
            i += 2
        else:
            errors.append(
                f"'$' at offset {i} starts no variable: write '$$' for a literal '$'"
            )
            i += 1
    return errors


# ------------------------------------------------------------------------- checks


def check_interpolation(doc: dict) -> list[str]:
    problems = []
    for path, text in walk_strings(doc, ""):
        for error in interpolation_errors(text):
            problems.append(f"{path}: {error}")
    return problems


# The compose-spec schema says "$schema": "https://json-schema.org/draft-07/schema", a
# spelling jsonschema's lookup does not know (it would fall back to the newest draft).
_DRAFTS = [
    ("draft/2020-12", jsonschema.Draft202012Validator),
    ("draft/2019-09", jsonschema.Draft201909Validator),
    ("draft-07", jsonschema.Draft7Validator),
    ("draft-06", jsonschema.Draft6Validator),
    ("draft-04", jsonschema.Draft4Validator),
]


def validator_class(schema: dict):
    declared_draft = str(schema.get("$schema", ""))
    for marker, cls in _DRAFTS:
        if marker in declared_draft:
            return cls
    return jsonschema.Draft7Validator  # the Compose Specification's draft


def check_schema(doc: dict, schema: dict) -> list[str]:
    cls = validator_class(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        location = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        # For oneOf/anyOf failures, the deepest sub-error usually names the real cause.
        best = jsonschema.exceptions.best_match([error] + list(error.context or []))
        message = error.message
        if best is not error and best.message != error.message:
            message += f" (most likely: {best.message})"
        problems.append(f"{location}: {message}")
    return problems


def service_references(name: str, svc: dict) -> list[tuple[str, str]]:
    """(where, referenced service) pairs for one service."""
    refs = []
    depends = svc.get("depends_on")
    if isinstance(depends, list):
        refs += [("depends_on", d) for d in depends if isinstance(d, str)]
    elif isinstance(depends, dict):
        refs += [("depends_on", d) for d in depends]
    extends = svc.get("extends")
    if isinstance(extends, str):
        refs.append(("extends", extends))
    elif isinstance(extends, dict) and "file" not in extends and "service" in extends:
        refs.append(("extends", extends["service"]))
    mode = svc.get("network_mode")
    if isinstance(mode, str) and mode.startswith("service:"):
        refs.append(("network_mode", mode.split(":", 1)[1]))
    for entry in svc.get("volumes_from") or []:
        if isinstance(entry, str) and not entry.startswith("container:"):
            target = entry.split(":", 1)[1] if entry.startswith("service:") else entry
            refs.append(("volumes_from", target.split(":", 1)[0]))
    return refs


def check_service_references(doc: dict) -> list[str]:
    services = services_of(doc)
    problems = []
    for name, svc in services.items():
        for where, target in service_references(name, svc):
            if target not in services:
                problems.append(f"services.{name}.{where}: no service named {target!r}")
            elif target == name:
                problems.append(f"services.{name}.{where}: refers to itself")
    return problems


def named_volumes_used(svc: dict) -> list[str]:
    names = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, str):
            parts = entry.split(":")
            if len(parts) < 2:
                continue  # anonymous volume: only a container path
            source = parts[0]
            if source.startswith(("/", ".", "~", "$")) or re.match(r"^[A-Za-z]$", source):
                continue  # bind mount, interpolated, or a Windows drive letter
            names.append(source)
        elif isinstance(entry, dict) and entry.get("type") == "volume":
            source = entry.get("source")
            if isinstance(source, str) and source and not source.startswith("$"):
                names.append(source)
    return names


def refs_by_source(svc: dict, key: str) -> list[str]:
    names = []
    for entry in svc.get(key) or []:
        if isinstance(entry, str):
            names.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("source"), str):
            names.append(entry["source"])
    return names


def networks_used(svc: dict) -> list[str]:
    networks = svc.get("networks")
    if isinstance(networks, list):
        return [n for n in networks if isinstance(n, str)]
    if isinstance(networks, dict):
        return list(networks)
    return []


def check_declared(doc: dict, section: str, used: Callable[[dict], list[str]],
                   implicit: set[str] = frozenset()) -> list[str]:
    known = declared(doc, section) | set(implicit)
    problems = []
    for name, svc in services_of(doc).items():
        for item in used(svc):
            if item not in known:
                problems.append(
                    f"services.{name} uses {section[:-1]} {item!r}, "
                    f"which is not declared under top-level '{section}:'"
                )
    return problems


def check_build_contexts(doc: dict, base: Path) -> list[str]:
    problems = []
    for name, svc in services_of(doc).items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            context, dockerfile, inline = build, "Dockerfile", None
        elif isinstance(build, dict):
            context = build.get("context", ".")
            dockerfile = build.get("dockerfile", "Dockerfile")
            inline = build.get("dockerfile_inline")
        else:
            continue  # the schema check reports the wrong type
        if not isinstance(context, str) or "$" in context:
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*://", context) or context.startswith("git@"):
            continue  # remote context: nothing to look at locally
        context_dir = (base / context).resolve()
        if not context_dir.is_dir():
            problems.append(f"services.{name}.build: context {context!r} is not a directory ({context_dir})")
            continue
        if inline is not None:
            continue
        if not isinstance(dockerfile, str) or "$" in dockerfile:
            continue
        dockerfile_path = Path(dockerfile)
        if not dockerfile_path.is_absolute():
            dockerfile_path = context_dir / dockerfile_path
        if not dockerfile_path.is_file():
            problems.append(f"services.{name}.build: no Dockerfile at {dockerfile_path}")
    return problems


def schema_source(schema_path: Path, schema: dict) -> str:
    """Names the schema: its title and $id, and the npm package it came from if any."""
    label = schema.get("title") or "JSON schema"
    if schema.get("$id"):
        label += f" ({schema['$id']})"
    for parent in schema_path.resolve().parents:
        manifest = parent / "package.json"
        if manifest.is_file():
            try:
                meta = json.loads(manifest.read_text(encoding="utf-8"))
                rel = schema_path.resolve().relative_to(parent)
                return f"{label} from npm {meta['name']}@{meta['version']} ({rel})"
            except (ValueError, KeyError):
                break
    return f"{label} at {schema_path}"


# --------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", required=True, type=Path,
                        help="Compose Specification JSON schema (from fetch-compose-schema.sh)")
    parser.add_argument("compose_file", type=Path, help="the Compose file, e.g. docker-compose.yml")
    args = parser.parse_args(argv)

    for path in (args.schema, args.compose_file):
        if not path.is_file():
            print(f"validate-compose: no such file: {path}", file=sys.stderr)
            return 2
    try:
        schema = json.loads(args.schema.read_text(encoding="utf-8"))
    except ValueError as error:
        print(f"validate-compose: {args.schema} is not JSON: {error}", file=sys.stderr)
        return 2
    source = schema_source(args.schema, schema)
    name = args.compose_file.name
    report = Report()

    problems: list[str] = []
    doc: Any = None
    try:
        doc = yaml.load(args.compose_file.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except yaml.YAMLError as error:
        problems.append(str(error).replace("\n", "\n    "))
    if not problems and not isinstance(doc, dict):
        problems.append(f"the top level is a {type(doc).__name__}, not a mapping")
    if not report.check(f"{name} parses as YAML with unique keys", problems):
        print(f"compose: {name} INVALID against {source}")
        print(f"{report.passed} passed, {report.failed} failed")
        return 1

    report.check("no obsolete top-level 'version:'",
                 ["remove the top-level 'version:' key"] if "version" in doc else [])
    report.check("interpolation syntax", check_interpolation(doc))
    report.check(f"schema: {source}", check_schema(doc, schema))
    report.check("service references (depends_on, extends, ...) exist",
                 check_service_references(doc))
    report.check("named volumes are declared", check_declared(doc, "volumes", named_volumes_used))
    report.check("configs are declared",
                 check_declared(doc, "configs", lambda s: refs_by_source(s, "configs")))
    report.check("secrets are declared",
                 check_declared(doc, "secrets", lambda s: refs_by_source(s, "secrets")))
    report.check("networks are declared",
                 check_declared(doc, "networks", networks_used, implicit={"default"}))
    report.check("build contexts have their Dockerfile",
                 check_build_contexts(doc, args.compose_file.resolve().parent))

    if report.failed:
        print(f"compose: {name} INVALID against {source}")
    else:
        print(f"compose: {name} valid against {source}")
    print(f"{report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
