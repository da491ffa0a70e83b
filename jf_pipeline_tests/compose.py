"""Read a compose file the way `docker compose config` does, without Docker or root.

Validation is against the Compose Specification's JSON schema (schemas/compose_spec.json,
the copy docker-compose 1.29.2 validates with; see schemas/README.md), after variable
interpolation; the result is normalised as `config` prints it (environment and depends_on
as mappings, build contexts and bind-mount sources as absolute paths), so the deployment
tests can check what the file refers to."""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose_spec.json"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, $NAME, $$
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


class ComposeError(ValueError):
    """The compose file is invalid: the message says where and why."""


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _interpolate(node, env: dict[str, str]):
    if isinstance(node, dict):
        return {k: _interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return arg if unset else value
        if op in ("?", ":?"):
            if unset:
                raise ComposeError(f"required variable {name} is missing: {arg}")
            return value
        return value or ""

    return _VARIABLE.sub(substitute, node)


def _mapping(value) -> dict:
    """A compose list-or-dict (`["A=1", "B"]` or `{A: 1}`) as a dict."""
    if isinstance(value, dict):
        return dict(value)
    out: dict = {}
    for item in value or []:
        key, sep, val = str(item).partition("=")
        out[key] = val if sep else None
    return out


def load(path: Path, env: dict[str, str] | None = None) -> dict:
    """The compose file at `path`, interpolated, validated and normalised.

    Raises ComposeError naming the offending key when the schema rejects it."""
    env = dict(os.environ if env is None else env)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    config = _interpolate(raw, env)
    errors = sorted(_validator().iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors
        ]
        raise ComposeError(f"{path} is not a valid compose file:\n" + "\n".join(lines))
    base = path.resolve().parent
    for service in config.get("services", {}).values():
        if "environment" in service:
            service["environment"] = _mapping(service["environment"])
        if isinstance(service.get("depends_on"), list):
            service["depends_on"] = {
                name: {"condition": "service_started"} for name in service["depends_on"]
            }
        build = service.get("build")
        if isinstance(build, str):
            build = service["build"] = {"context": build}
        if build is not None:
            build["context"] = str((base / build.get("context", ".")).resolve())
            build.setdefault("dockerfile", "Dockerfile")
        volumes = []
        for volume in service.get("volumes", []):
            if isinstance(volume, str):
                source, sep, rest = volume.partition(":")
                if source.startswith((".", "/", "~")):
                    source = str((base / os.path.expanduser(source)).resolve())
                volume = source + sep + rest
            volumes.append(volume)
        if volumes:
            service["volumes"] = volumes
    return config
