"""Loading a configuration: YAML, dotted overrides, and pydantic's errors turned into one line each."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from workflow.config.checks import check_config
from workflow.config.legacy import current_key, upgrade
from workflow.config.sections import Config
from workflow.config.space import GENE_TYPES, seed_space
from workflow.errors import ConfigError


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML file, apply ``key.sub=value`` overrides, validate."""
    data = read_mapping(path)
    if overrides:
        # Overrides edit the file's genes as today's form has them (the seed's when the file has none).
        data = with_space(data)
    for item in overrides:
        apply_override(data, item)
    return from_mapping(data)


def with_space(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` in today's form with its genes spelled out (the seed's when it has none), ready to be edited."""
    data = upgrade(data)
    data.setdefault("space", {name: gene.model_dump(exclude_none=True) for name, gene in seed_space().items()})
    return data


def read_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a plain mapping (not yet validated)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("CONFIG", str(path), f"cannot read the file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("CONFIG", str(path), f"not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError("CONFIG", str(path), "must be a YAML mapping of sections")
    return data


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override in place; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError("override", item, "expected key=value, e.g. optimizer.generations=3")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError("override", item, "expected a dotted key such as optimizer.generations")
    parts = current_key(parts)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parent_section(data, parts)[parts[-1]] = value


def parent_section(data: dict[str, Any], parts: list[str]) -> dict[str, Any]:
    """The section of ``data`` that holds the dotted key ``parts`` (made on the way where missing)."""
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(".".join(parts[: i + 1]), child, "is a value, not a section")
        node = child
    return node


def from_mapping(data: dict[str, Any]) -> Config:
    """Validate a plain mapping into a :class:`Config` (raises :class:`ConfigError`).

    Keys of earlier versions are translated first (:func:`~workflow.config.legacy.upgrade`).
    """
    data = upgrade(data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _to_config_error(exc, data) from None
    check_config(config)
    return config


def _to_config_error(exc: ValidationError, data: dict[str, Any]) -> ConfigError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    gene_type = None
    if len(loc) >= 3 and loc[0] == "space" and loc[2] in GENE_TYPES:
        gene_type = loc.pop(2)  # pydantic names the gene's type (the union's tag) in the location
    key = ".".join(loc)
    value = _lookup(data, loc)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        got = value.get("type", "<missing>") if isinstance(value, dict) else value
        return ConfigError(f"{key}.type", got, f"a gene's type is one of {', '.join(GENE_TYPES)}")
    if err["type"] in ("model_attributes_type", "dict_type") and loc[0] == "space" and len(loc) == 2:
        return ConfigError(key, value, f"a gene is a mapping with a type ({', '.join(GENE_TYPES)}), e.g. "
                           "{type: int, low: 1, high: 5}")
    if err["type"] == "extra_forbidden":
        fields = _gene_keys(gene_type) if gene_type else _allowed_keys(loc[:-1])
        return ConfigError(key, value, f"unknown key; allowed: {', '.join(fields)}")
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return ConfigError(key, value, f"must be one of {expected}")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return ConfigError(key, value, msg[0].lower() + msg[1:])


def _gene_keys(gene_type: str) -> list[str]:
    """A gene type's keys, its own first (``when`` is every gene's)."""
    keys = list(GENE_TYPES[gene_type].model_fields)
    return [k for k in keys if k != "when"] + ["when"]


def _lookup(data: Any, loc: list[str]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, (list, tuple)) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return "<missing>"
    return data


def _allowed_keys(section: list[str]) -> list[str]:
    model: type[BaseModel] = Config
    for part in section:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
