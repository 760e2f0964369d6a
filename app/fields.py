"""Form fields and API arguments as numbers: what is empty or not a number is worded here; every range and rule is the
pipeline's (`semflow.limits`), whose sentence the person then reads."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

REQUIRED: Any = object()  # the `default` of a field that must be filled


def number(value: Any, label: str, default: Any = REQUIRED, whole: bool = False) -> Any:
    """A field's value as a number for the pipeline (or the app) to check: numbers as they are, text read as one
    ("2.5", " 7 "); None or blank text (an emptied field, or text a number field could not take) gives `default`.

    Raises:
        InputError: a required field is empty or not a number, or the value is not a number at all (``True``,
            "abc"); `whole` words what to type for a whole-number field.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is REQUIRED:
            raise InputError(f"{label} is empty or not a number: type {'a whole number' if whole else 'a number'}.")
        return default
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return value
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value.strip())
            except ValueError:
                pass
    raise InputError(f"{label} must be {'a whole number' if whole else 'a number'}, got {value!r}.")
