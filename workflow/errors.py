"""Errors the user can act on. Each renders as one line naming the key, the value and what is allowed."""

from __future__ import annotations

from typing import Any


class WorkflowError(Exception):
    """Base class: the CLI prints ``str(error)`` as one line and exits non-zero (``exit_code``)."""

    exit_code = 2


class ConfigError(WorkflowError):
    """A configuration value is not acceptable."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"config error: {key}={format_value(value)}: {allowed}")


class RunDirError(WorkflowError):
    """The run directory cannot be used as asked (different config, locked, corrupt)."""


class ClusterError(WorkflowError):
    """The cluster rejected the request or answered something we cannot use."""


class SearchStopped(WorkflowError):
    """The search stopped early on purpose (e.g. every evaluation of a generation failed); it can be resumed."""

    exit_code = 4


def format_value(value: Any) -> str:
    """A value as config errors show it: strings quoted, lists bracketed."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)
