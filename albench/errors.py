"""Errors a user can act on. The CLI prints their message (one paragraph: the problem
and the fix) instead of a traceback and exits with status 2."""

from __future__ import annotations


class AlbenchError(Exception):
    """Base class: the message names the problem and how to fix it."""


class DatasetError(AlbenchError):
    """A dataset is missing, unreadable or malformed."""


class ConfigError(AlbenchError):
    """A run was asked for with settings that cannot work (unknown name, bad budget...)."""


class SelectionError(AlbenchError):
    """A strategy returned a selection that breaks the loop's invariants."""


class OracleError(AlbenchError):
    """Labels were requested for images the loop has not accepted."""


class RunFolderError(AlbenchError):
    """A run folder is damaged, belongs to other data, or is in use by another process."""
