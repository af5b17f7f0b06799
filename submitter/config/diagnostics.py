"""Turn pydantic validation errors into `file:line:col: message` errors."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from submitter.config.yamlfile import YamlDocument
from submitter.errors import ConfigError
from submitter.units import abridged_repr

_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


# Words users bring from other schedulers and tools, and the key they mean here.
_SYNONYMS = {
    "cpus": "cores",
    "cpu": "cores",
    "ncpus": "cores",
    "threads": "cores",
    "ppn": "cores",
    "cpus_per_task": "cores",
    "memory": "mem",
    "time": "walltime",
    "wallclock": "walltime",
    "runtime": "walltime",
    "walltime_limit": "walltime",
    "partition": "queue",
    "project": "account",
    "gres": "gpus",
    "gpu": "gpus",
    "command": "run",
    "cmd": "run",
    "script": "run",
    "input": "inputs",
    "output": "outputs",
    "environment": "env",
    "queue_name": "queue",
    "hostname": "address",
    "user": "address",
    "workdir": "work_dir",
    "scratch": "work_dir",
}


def closest_key(word: str, valid: Sequence[str]) -> str | None:
    synonym = _SYNONYMS.get(word.lower())
    if synonym in valid:
        return synonym
    matches = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.5)
    return matches[0] if matches else None


def config_errors(
    exc: ValidationError,
    doc: YamlDocument,
    model: type[BaseModel],
    base: tuple[str | int, ...] = (),
    what: str = "",
) -> list[ConfigError]:
    """One ConfigError per pydantic error, located in `doc` under `base`."""
    found: list[ConfigError] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        full = base + loc
        context = f"{what}: " if what else ""
        dotted = ".".join(str(part) for part in loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            valid = _field_names(model, loc[:-1])
            hint = closest_key(key, valid)
            suggestion = f"; did you mean '{hint}'?" if hint else ""
            parent = ".".join(str(p) for p in loc[:-1]) or (
                "the task" if what.startswith("task") else "the top level"
            )
            message = (
                f"{context}unknown key '{key}' in {parent}{suggestion} "
                f"(expected one of: {', '.join(valid)})"
            )
            found.append(ConfigError(message, doc.locate(full, key=True)))
        elif kind == "missing":
            message = f"{context}missing required key '{loc[-1]}'"
            found.append(ConfigError(message, doc.locate(full[:-1])))
        else:
            found.append(ConfigError(f"{context}{dotted}: {_explain(error)}", doc.locate(full)))
    return found


def _explain(error: Any) -> str:
    kind = error["type"]
    given = error.get("input")
    got = _got(given)
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type" and isinstance(given, bool | int | float):
        written = str(given).lower() if isinstance(given, bool) else str(given)
        return f'expected a string, got {written}; quote it if you mean the text, as "{written}"'
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}{got}"
    if kind == "greater_than":
        return f"expected a number greater than {error['ctx']['gt']}{got}"
    if kind == "greater_than_equal":
        return f"expected a number of at least {error['ctx']['ge']}{got}"
    if kind == "less_than_equal":
        return f"expected a number of at most {error['ctx']['le']}{got}"
    if kind == "literal_error":
        return f"expected {error['ctx']['expected']}{got}"
    return f"{error['msg']}{got}"


def _got(given: Any) -> str:
    if isinstance(given, list):
        return ", got a list"
    if isinstance(given, dict):
        return ", got a mapping"
    return f", got {abridged_repr(given)}" if given is not None else ""


def _field_names(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    target: Any = model
    for step in loc:
        target = _step_into(target, step)
        if target is None:
            return []
    if isinstance(target, type) and issubclass(target, BaseModel):
        return list(target.model_fields)
    return []


def _step_into(annotation: Any, step: str | int) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(step))
        return _unwrap(field.annotation) if field else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return _unwrap(args[1])
    if origin is list and args:
        return _unwrap(args[0])
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip Optional and Annotated so a BaseModel inside is found."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union or origin is types.UnionType:
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            annotation = models[0] if models else args[0]
        else:
            return annotation
