"""'Did you mean …?': the known name closest to a misspelt one (a kind, a field, a version).

Field names are found by walking a model's fields along the error's location (through
lists, dicts and optional values), so a misspelt `spec.selector.olderThanDay` is matched
against the selector's own fields, and a field written one level too high
(`spec.olderThanDays` in a v2 sweep) is found where it belongs.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

CUTOFF = 0.6  # difflib's default: 'SweepStaleVolume' → 'SweepStaleVolumes', 'Nope' → nothing


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name` (case does not count), or None if none is close."""
    by_folded = {candidate.casefold(): candidate for candidate in known}
    found = difflib.get_close_matches(name.casefold(), list(by_folded), n=1, cutoff=CUTOFF)
    return by_folded[found[0]] if found else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """'; did you mean 'X'?' for a close match, else ''. For appending to a message."""
    match = closest(name, known)
    return f"; did you mean {match!r}?" if match else ""


def field_names(model: type[BaseModel]) -> list[str]:
    """A model's fields as documents spell them (the alias)."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        models = [found for arg in get_args(annotation) if (found := _model_of(arg)) is not None]
        return models[0] if len(models) == 1 else None
    return None


def _step(annotation: Any, part: int | str) -> Any:
    """The type found at `part` inside a value of type `annotation` (None: unknown)."""
    model = _model_of(annotation)
    if model is not None:
        for name, field in model.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (Union, types.UnionType):
        stepped = [found for arg in args if (found := _step(arg, part)) is not None]
        return stepped[0] if len(stepped) == 1 else None
    return None


def _nested(model: type[BaseModel], name: str, depth: int = 3) -> str | None:
    """The dotted path of a field named `name` inside one of `model`'s fields, if there is one."""
    if depth == 0:
        return None
    for field_name, field in model.model_fields.items():
        inner = _model_of(field.annotation)
        if inner is None:
            continue
        alias = field.alias or field_name
        if name.casefold() in (known.casefold() for known in field_names(inner)):
            return f"{alias}.{closest(name, field_names(inner))}"
        deeper = _nested(inner, name, depth - 1)
        if deeper:
            return f"{alias}.{deeper}"
    return None


def unknown_field(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    """What `loc`'s last part (an unknown field) was probably meant to be, relative to its parent:
    a sibling spelt alike ('olderThanDays'), or a field of that name one level down
    ('selector.olderThanDays'). '' when nothing fits."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    annotation: Any = model
    for part in loc[:-1]:
        annotation = _step(annotation, part)
        if annotation is None:
            return ""
    parent = _model_of(annotation)
    if parent is None:
        return ""
    name = loc[-1]
    return closest(name, field_names(parent)) or _nested(parent, name) or ""
