"""Options declared once, as dataclass fields: default, help, allowed values, conversion and checks.

Every stage owns a small frozen configuration (``FramesConf`` in :mod:`hardmatch.features.frames`,
``MatchingConf`` in :mod:`hardmatch.matching.matchers`, ...) whose fields are made by :func:`option`;
:class:`~hardmatch.twoview.config.PipelineConfig` composes them (:func:`compose`), the CLI builds its
options from the same fields, and the Python API takes them as keyword arguments. Values are
converted and checked by :func:`check_fields` when a configuration is made: text becomes the
field's type (``"0.8"`` -> 0.8, ``"true"`` -> True, ``"none"`` -> None for optional fields); the
wrong kind raises ``TypeError``, bad text or a value outside the choices or range ``ValueError``,
each with one line naming the field.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import MISSING, Field, field, fields, make_dataclass

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("none", "null", "")


def option(default, help: str, choices: tuple | None = None, *, range: str | None = None, check=None, parse=None,
         repeatable: bool = False):
    """A field of a stage's configuration. Everything :func:`convert_option` checks is declared here:

    ``choices`` the allowed values; ``range`` an interval such as ``"(0, 1]"`` or ``"[0, inf)"`` for
    numbers; ``check(value)`` raises ``ValueError`` for values a range cannot express; ``parse(value)``
    turns other accepted forms into the field's type first (e.g. a list of tilts into ``"2,4"``);
    ``repeatable``: the CLI option may be given several times (its values reach ``parse`` as a tuple).
    The field's type annotation (``int``, ``float``, ``str``, ``bool``, ``X | None``) gives the conversion.
    """
    return field(default=default, metadata={"help": help, "choices": choices, "range": range, "check": check,
                                            "parse": parse, "repeatable": repeatable})


# --------------------------------------------------------------------------------------------
# Converting and checking one option value from its field's declaration
# --------------------------------------------------------------------------------------------


def field_kind(f: Field) -> tuple[str, bool]:
    """``(base type name, optional)`` of a dataclass field whose annotation may be a string
    (``"float | None"`` -> ``("float", True)``)."""
    annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    parts = [p.strip() for p in annotation.replace("Optional[", "").rstrip("]").split("|")]
    base = next((p for p in parts if p != "None"), "str")
    return base, "None" in parts


def convert_option(f: Field, value):
    """``value`` converted to the type field ``f`` declares and checked against its choices, range and check.

    Text is converted for every type (``"0.8"``, ``"8000"``, ``"true"``, ``"none"`` for optional
    fields). Raises ``TypeError`` for a value of the wrong kind (a list for a number, a bool for a
    count), ``ValueError`` for text that does not parse or a value outside the choices or range.
    """
    meta = f.metadata
    base, optional = field_kind(f)
    if meta.get("parse") is not None:
        value = meta["parse"](value)
    if isinstance(value, str) and optional and value.strip().lower() in _NONE:
        return None
    if value is None:
        if optional:
            return None
        raise TypeError(f"expected {_KIND_NAMES.get(base, base)}, got None")
    value = _CONVERTERS.get(base, _to_text)(value)
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ValueError(f"expected one of {', '.join(map(str, choices))}, got {value!r}")
    if meta.get("range"):
        _check_range(value, meta["range"])
    if meta.get("check") is not None:
        meta["check"](value)
    return value


def _to_bool(value) -> bool:
    if isinstance(value, (bool, numbers.Integral)) and value in (0, 1):  # numpy bools and ints too
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, str):
        raise ValueError(f"expected a boolean (true/false), got {value!r}")
    raise TypeError(f"expected a boolean (true/false), got {type(value).__name__} {value!r}")


def _to_int(value) -> int:
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = _parse_float(text, "an integer")
            if not number.is_integer():
                raise ValueError(f"expected an integer, got {value!r}") from None
            return int(number)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not (math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _to_float(value) -> float:
    if isinstance(value, str):
        number = _parse_float(value.strip(), "a number")
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")
    else:
        number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _parse_float(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected {what}, got {text!r}") from None


def _to_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"expected text, got {type(value).__name__} {value!r}")


_CONVERTERS = {"bool": _to_bool, "int": _to_int, "float": _to_float, "str": _to_text}
_KIND_NAMES = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "text"}


def _check_range(value: float, interval: str) -> None:
    """``ValueError`` unless ``value`` lies in ``interval`` (``"(0, 1]"``, ``"[0, inf)"``: brackets include)."""
    low_text, high_text = (part.strip() for part in interval.strip()[1:-1].split(","))
    low, high = float(low_text), float(high_text)
    above = value > low if interval.startswith("(") else value >= low
    below = value < high if interval.endswith(")") else value <= high
    if not (above and below):
        raise ValueError(f"expected a value in {interval}, got {value!r}")


def check_fields(conf) -> None:
    """Convert and check every field of the dataclass instance ``conf`` in place (for ``__post_init__``
    of frozen dataclasses); errors name the field: ``"ratio: expected a value in (0, 1], got 2.0"``."""
    for f in fields(conf):
        value = getattr(conf, f.name)
        try:
            converted = convert_option(f, value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{f.name}: {exc}") from None
        if converted is not value:
            object.__setattr__(conf, f.name, converted)


def compose(name: str, parts: tuple[type, ...], namespace: dict, doc: str) -> type:
    """A frozen dataclass ``name`` whose fields are those of the stage configurations ``parts``, in order.

    Each field keeps its declaration (default, help, choices, checks); a name may appear in one part
    only (``ValueError`` otherwise). ``namespace``: the methods of the composed class.
    """
    declared: dict[str, type] = {}
    specs = []
    for part in parts:
        for f in fields(part):
            if f.name in declared:
                raise ValueError(f"option {f.name!r} is declared by both {declared[f.name].__name__} and {part.__name__}")
            declared[f.name] = part
            copy = field(default=f.default, metadata=f.metadata) if f.default is not MISSING else \
                field(default_factory=f.default_factory, metadata=f.metadata)
            specs.append((f.name, f.type, copy))
    composed = make_dataclass(name, specs, namespace={**namespace, "__doc__": doc}, frozen=True)
    composed.STAGES = parts
    return composed


def check_not_empty(value: str) -> None:
    """``check`` of options that name a thing or a path: ``ValueError`` for an empty or blank text."""
    if not value.strip():
        raise ValueError("expected a name or a path, got an empty string")


class CommandConf:
    """Base of a command's own option dataclass (``@dataclass(frozen=True) class XConf(CommandConf)`` with
    :func:`option` fields): values checked by :func:`check_fields` when made, and :meth:`from_options`."""

    def __post_init__(self):
        check_fields(self)

    @classmethod
    def from_options(cls, options: dict):
        """From a command's options (``None``: not given, the field's default)."""
        return cls(**{f.name: options[f.name] for f in fields(cls) if options.get(f.name) is not None})
