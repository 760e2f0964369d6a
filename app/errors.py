"""Errors worded for the person using the app: the only exceptions whose message reaches the browser."""

from __future__ import annotations


class UserError(Exception):
    """A problem the person can act on, in a plain sentence (what is wrong, and what to do)."""


class InputError(UserError, ValueError):
    """Something the person gave us (a file, a setting) is not usable."""


class StorageError(UserError, OSError):
    """Saving could not complete for a reason the person can act on (no space left, read-only, not a folder)."""
