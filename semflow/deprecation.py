"""Names kept for one release after a rename: each use still works, and warns (`DeprecationWarning`) of the new one."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any


def warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that `old` (as the caller wrote it) is now `new`."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release: use {new}", DeprecationWarning,
                  stacklevel=stacklevel)


def renamed_keywords(**renames: str) -> Callable[[Callable], Callable]:
    """A decorator: keyword arguments accepted under their former names too (``old="new"``), each with a warning.

    Raises:
        TypeError: a call gives both the former and the new name.
    """

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{fn.__qualname__}() got both {new}= and {old}= (its former name)")
                    warn_renamed(f"{fn.__qualname__}({old}=...)", f"{new}=")
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def renamed_function(old: str, new: Callable) -> Callable:
    """`new` under its former name `old`: the same function, warning at each call."""

    @functools.wraps(new)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warn_renamed(old, new.__name__)
        return new(*args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = old.rsplit(".", 1)[-1]
    wrapper.__doc__ = f"Deprecated: `{new.__name__}` under its former name."
    return wrapper


def renamed_attribute(old: str, new: str) -> property:
    """A read-only property `old` that returns the attribute `new`, warning at each read."""

    def get(self: Any) -> Any:
        warn_renamed(f"{type(self).__name__}.{old}", f".{new}")
        return getattr(self, new)

    return property(get, doc=f"Deprecated: `{new}` under its former name.")
