"""A command objective's argument list: placeholders filled with an evaluation's values, never a shell.

Placeholders
    ``{name}`` where ``name`` is a Python identifier, as a whole argument or inside one (``--lr={learning_rate}``);
    ``{{`` and ``}}`` are literal braces. Anything else inside braces (``{a.b}``, ``{a[0]}``, ``{x:3}``,
    ``{x!r}``, ``{}``, ``{ x }``) and any unmatched brace is an error. Each argument stays exactly one argument
    whatever the value contains (spaces, quotes, ``;``, ``$(...)``, newlines): values are never seen by a shell.
    Values are formatted by :func:`format_value` (``true``/``false``, ``3``, ``0.001``, ``64,32,16``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from numbers import Integral


def check_argv_type(argv: Sequence[str]) -> None:
    if isinstance(argv, (str, bytes)):
        raise ValueError(f"the command must be a list of arguments, not one string: {argv!r}")
    for index, arg in enumerate(argv):
        if not isinstance(arg, str):
            raise ValueError(f"argument {index} of the command is a {type(arg).__name__}, not a string: {arg!r}")


def _parse(arg: str) -> list[tuple[str, str | None]]:
    """``arg`` as pieces: ``(literal, None)`` or ``("", name)``. ValueError naming ``arg`` for bad syntax."""
    pieces: list[tuple[str, str | None]] = []
    literal: list[str] = []
    i, n = 0, len(arg)
    while i < n:
        char = arg[i]
        if char == "{":
            if arg.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = arg.find("}", i + 1)
            if end < 0:
                raise ValueError(f"argument {arg!r}: unclosed '{{' at position {i} (write '{{{{' for a literal brace)")
            name = arg[i + 1 : end]
            if not name.isidentifier():
                raise ValueError(
                    f"argument {arg!r}: {arg[i : end + 1]!r} is not a placeholder; placeholders are "
                    "{name} with name a Python identifier (no attributes, indexes, formats or conversions; "
                    "write '{{' and '}}' for literal braces)"
                )
            if literal:
                pieces.append(("".join(literal), None))
                literal = []
            pieces.append(("", name))
            i = end + 1
        elif char == "}":
            if arg.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise ValueError(f"argument {arg!r}: unmatched '}}' at position {i} (write '}}}}' for a literal brace)")
        else:
            literal.append(char)
            i += 1
    if literal:
        pieces.append(("".join(literal), None))
    return pieces


def placeholders(argv: Sequence[str]) -> list[str]:
    """The placeholder names ``argv`` uses, in order of first use. ValueError naming the argument for bad syntax."""
    check_argv_type(argv)
    names: list[str] = []
    for arg in argv:
        for _, name in _parse(arg):
            if name is not None and name not in names:
                names.append(name)
    return names


def check_argv(argv: Sequence[str], known: Collection[str]) -> None:
    """ValueError (one line) for an empty argv, a non-string argument, bad syntax, or a name not in ``known``."""
    check_argv_type(argv)
    if len(argv) == 0:
        raise ValueError("the command is empty: argv needs at least the program to run")
    listed = ", ".join(sorted(known)) or "(nothing)"
    for arg in argv:
        for _, name in _parse(arg):
            if name is not None and name not in known:
                raise ValueError(f"placeholder {{{name}}} in argument {arg!r} names nothing; known: {listed}")


def _is_numpy(value: object, kinds: str) -> bool:
    """A numpy scalar (or 0-d array) whose dtype kind is in ``kinds``, recognised without importing numpy."""
    if not type(value).__module__.startswith("numpy"):
        return False
    dtype = getattr(value, "dtype", None)
    return getattr(dtype, "kind", None) in set(kinds) and getattr(value, "ndim", None) == 0


def _is_int(value: object) -> bool:
    return (isinstance(value, Integral) and not isinstance(value, bool)) or _is_numpy(value, "iu")


def format_value(value: object) -> str:
    """The canonical text of a gene value in an argument.

    bool (and numpy bool) -> ``true``/``false``; int (and numpy integers) -> ``str(int)``; float (and numpy
    floats) -> ``repr(float(value))``, the shortest text that reads back as the same float; str -> itself; a list
    or tuple of ints (a ``layers`` gene: one width per layer) -> ``64,32,16`` (empty: ``""``). Anything else:
    ValueError.
    """
    if isinstance(value, bool) or _is_numpy(value, "b"):
        return "true" if value else "false"
    if _is_int(value):
        return str(int(value))  # type: ignore[call-overload]
    if isinstance(value, float) or _is_numpy(value, "f"):
        return repr(float(value))  # type: ignore[arg-type]
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        if all(_is_int(item) for item in value):
            return ",".join(str(int(item)) for item in value)
        raise ValueError(f"cannot put {value!r} into an argument: a list or tuple must hold only ints")
    raise ValueError(f"cannot put a {type(value).__name__} ({value!r}) into an argument")


def render_argv(argv: Sequence[str], values: Mapping[str, object]) -> list[str]:
    """``argv`` with its placeholders filled by ``format_value(values[name])``; one argument per argument."""
    check_argv(argv, values.keys())
    return [
        "".join(literal if name is None else format_value(values[name]) for literal, name in _parse(arg))
        for arg in argv
    ]


# ---------------------------------------------------------------------------------------------------- metrics
