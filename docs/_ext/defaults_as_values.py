"""Griffe extension for the API reference: show a parameter's default as its value.

A signature such as ``connect_timeout: float = DEFAULT_CONNECT_TIMEOUT`` tells a reader
nothing; the reference shows ``= 10.0`` instead. A default that names a module-level
constant of our packages with a literal value is replaced by that value; anything else
(an expression, an enum member, a call) stays as written.
"""

from __future__ import annotations

from typing import Any

import griffe


def _constant(obj: griffe.Object, name: str) -> str | None:
    """The literal value of the constant ``name`` as ``obj``'s module sees it."""
    try:
        target = obj.module.get_member(name)
        while isinstance(target, griffe.Alias):
            target = target.final_target
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    if not isinstance(target, griffe.Attribute) or target.value is None:
        return None
    value = str(target.value)
    if value[:1] in "'\"-0123456789(" or value in ("True", "False", "None"):
        return value
    return None


class DefaultsAsValues(griffe.Extension):
    """Replace constant names in parameter defaults by the constants' values."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _walk(pkg):
            if isinstance(obj, griffe.Function):
                for parameter in obj.parameters:
                    parameter.default = _value(obj, parameter.default)
            elif isinstance(obj, griffe.Attribute):
                # A dataclass field (its value is the default of the class's signature),
                # or a constant defined as another one (``TLS_HANDSHAKE_TIMEOUT``).
                obj.value = _value(obj, obj.value)


def _value(obj: griffe.Object, default: Any) -> Any:
    if isinstance(default, (str, griffe.ExprName)) and str(default).isidentifier():
        value = _constant(obj, str(default))
        if value is not None:
            return value
    return default


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found: list[griffe.Object] = []
    for member in obj.members.values():
        if isinstance(member, griffe.Alias):
            continue
        found.append(member)
        if isinstance(member, griffe.Function):
            found.extend(member.overloads or ())
        elif isinstance(member, (griffe.Class, griffe.Module)):
            found.extend(_walk(member))
    return found
