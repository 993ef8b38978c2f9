"""Base classes of the Voxta catalog and the integer-to-enum normalizer; pure data, no I/O.

Every message and shared object is a frozen, camelCase msgspec Struct with
``omit_defaults``: optional fields default to ``None`` and vanish from the JSON when unset,
required fields have no default. Messages carry their ``$type`` tag, which msgspec writes
first.

Fields annotated ``Lenient[SomeEnum]`` accept integers on decode. A class that has such a
field gets a ``__post_init__`` (installed once, when the class is created) that replaces
the integer by the enum member; classes without one get no ``__post_init__`` at all, so the
hot messages (``replyChunk``) pay nothing. For the usual single enum field it is a closure
that costs one attribute read and one class check when there is nothing to replace (a
decoded name, or a member passed by the caller).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Callable
from typing import Any, Final, Union, get_args, get_origin

import msgspec

from voxta_proto.voxta.enums import VoxtaEnum

__all__ = ["VoxtaMessage", "VoxtaShape", "has_enum_normalizer"]

_UNION_TYPES: Final = (Union, types.UnionType)

_EnumPlan = tuple[tuple[str, type[VoxtaEnum], bool], ...]
"""(attribute, enum class, holds a tuple of them) for every lenient enum field."""

_PLANS: dict[type, _EnumPlan] = {}
"""The plan of every class that got the normalizer."""

_NORMALIZERS: set[Callable[[Any], None]] = set()
"""Every ``__post_init__`` installed by this module."""


def _lenient_enum(hint: Any) -> type[VoxtaEnum] | None:
    """The enum of a ``SomeEnum | int`` union (``None`` allowed in it), else None."""
    if get_origin(hint) not in _UNION_TYPES:
        return None
    args = get_args(hint)
    enums = [a for a in args if isinstance(a, type) and issubclass(a, VoxtaEnum)]
    if len(enums) == 1 and int in args:
        return enums[0]
    return None


def _mentions_lenient_enum(hint: Any) -> bool:
    if _lenient_enum(hint) is not None:
        return True
    return any(_mentions_lenient_enum(arg) for arg in get_args(hint))


def _field_plan(name: str, hint: Any) -> tuple[str, type[VoxtaEnum], bool] | None:
    """How to normalize one field, or None if it holds no lenient enum.

    Raises:
        TypeError: the lenient enum sits somewhere the normalizer cannot reach.
    """
    if not _mentions_lenient_enum(hint):
        return None
    direct = _lenient_enum(hint)
    if direct is not None:
        return name, direct, False
    candidates = [hint]
    if get_origin(hint) in _UNION_TYPES:
        candidates = [a for a in get_args(hint) if a is not type(None)]
    if len(candidates) == 1 and get_origin(candidates[0]) is tuple:
        item, *rest = get_args(candidates[0])
        inner = _lenient_enum(item)
        if inner is not None and rest == [Ellipsis]:
            return name, inner, True
    raise TypeError(f"field {name!r}: a Lenient enum is only supported as the field's type "
                    f"or as the item of tuple[..., ...] (got {hint!r})")


def _plan_from_hints(hints: dict[str, Any]) -> _EnumPlan:
    plan = []
    for name, hint in hints.items():
        entry = _field_plan(name, hint)
        if entry is not None:
            plan.append(entry)
    return tuple(plan)


def _own_and_inherited_annotations(cls: type) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(inspect.get_annotations(klass))
    return merged


def _early_plan(cls: type) -> _EnumPlan | None:
    """The plan, from the class's own source annotations; None if some cannot be evaluated
    yet (a forward reference), in which case it is worked out on first use."""
    namespace = dict(vars(sys.modules[cls.__module__]))
    hints: dict[str, Any] = {}
    for name, annotation in _own_and_inherited_annotations(cls).items():
        if name.startswith("__"):
            continue
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)
            except NameError:
                return None
        hints[name] = annotation
    return _plan_from_hints(hints)


def _coerce(field: str, enum_type: type[VoxtaEnum], value: Any) -> VoxtaEnum:
    if isinstance(value, enum_type):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{field}: expected a {enum_type.__name__} name or number, "
                        f"got {value!r}")
    try:
        return enum_type(value)
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not a valid {enum_type.__name__}") from None


def _normalize_enums(self: msgspec.Struct) -> None:
    """``__post_init__`` of classes with lenient enum fields: numbers become members."""
    cls = type(self)
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _plan_from_hints(
            {f.name: f.type for f in msgspec.structs.fields(cls)}
        )
    for name, enum_type, many in plan:
        value = getattr(self, name)
        if value is None:
            continue
        if many:
            if not all(isinstance(item, enum_type) for item in value):
                msgspec.structs.force_setattr(
                    self, name, tuple(_coerce(name, enum_type, item) for item in value)
                )
        elif not isinstance(value, enum_type):
            msgspec.structs.force_setattr(self, name, _coerce(name, enum_type, value))


def _single_field_normalizer(name: str, enum_type: type[VoxtaEnum]) -> Callable[[Any], None]:
    """The ``__post_init__`` for a plan of one plain field (all but a few classes): one
    attribute read and one class check when the value is already a member or None."""
    def normalize_field(self: msgspec.Struct) -> None:
        value = getattr(self, name)
        if value.__class__ is not enum_type and value is not None:
            msgspec.structs.force_setattr(self, name, _coerce(name, enum_type, value))
    return normalize_field


def _install_enum_normalizer(cls: type) -> None:
    plan = _early_plan(cls)
    if plan == ():
        return
    normalizer: Callable[[Any], None] = _normalize_enums
    if plan is not None:
        _PLANS[cls] = plan
        if len(plan) == 1 and not plan[0][2]:
            normalizer = _single_field_normalizer(plan[0][0], plan[0][1])
    _NORMALIZERS.add(normalizer)
    cls.__post_init__ = normalizer  # type: ignore[attr-defined]


def has_enum_normalizer(cls: type) -> bool:
    """Whether instances of ``cls`` turn enum numbers into members (for tests)."""
    return getattr(cls, "__post_init__", None) in _NORMALIZERS


class VoxtaShape(
    msgspec.Struct,
    rename="camel",
    omit_defaults=True,
    frozen=True,
    kw_only=True,
    gc=False,
):
    """Base of the shared objects nested in messages (§6 of the protocol reference)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install_enum_normalizer(cls)


class VoxtaMessage(
    msgspec.Struct,
    tag_field="$type",
    rename="camel",
    omit_defaults=True,
    frozen=True,
    kw_only=True,
    gc=False,
):
    """Base of every Voxta hub message; the ``$type`` string is the tag."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _install_enum_normalizer(cls)

