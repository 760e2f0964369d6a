"""Errors worded for the person using the app (the only exceptions whose message reaches the browser, with the
pipeline's `semflow.limits.InvalidInput`), and the one way any of them becomes a sentence."""

from __future__ import annotations


class UserError(Exception):
    """A problem the person can act on, in a plain sentence (what is wrong, and what to do)."""


class InputError(UserError, ValueError):
    """Something the person gave us (a file, a setting) is not usable."""


class StorageError(UserError, OSError):
    """Saving could not complete for a reason the person can act on (no space left, read-only, not a folder)."""


def sentence(error: Exception) -> str:
    """The error's message as a sentence: a first Latin letter capitalised (a name like β stays), a full stop."""
    text = str(error).strip() or type(error).__name__
    text = text[0].upper() + text[1:] if text[0].isascii() else text
    return text if text.endswith((".", "!", "?")) else text + "."
