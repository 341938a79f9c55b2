"""Help screens that read like az's: no Python types (`<bool>`, `<list[Path]>`) beside flags and arguments."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _NamedArgument(TyperArgument):
    """An argument shown by its metavar alone (NAME, PATH...), without the annotation's type."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _plain(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # a flag takes no value: nothing to show after it
        elif isinstance(param, TyperArgument) and not isinstance(param, _NamedArgument):
            param.__class__ = _NamedArgument
    return params


class Command(TyperCommand):
    """A command whose help shows value names (N, PREFIX, table|json), not Python types."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


class Group(TyperGroup):
    """The top-level command, same help style as its commands."""

    command_class = Command

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))
