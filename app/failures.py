"""How failures reach the browser: a person's mistake (`UserError`, `semflow.limits.InvalidInput`) as its own
sentence; anything else is a bug, logged with its traceback, and the browser gets a generic sentence."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from semflow.limits import InvalidInput

from .errors import UserError, sentence

logger = logging.getLogger(__name__)
GENERIC = "Something went wrong on the server while doing that; please try again."


def queue_errors(fallback: Callable[[str], Any]) -> Callable[[Callable], Callable]:
    """Wrap a work-queue event so that a failure never leaves an error badge over the queue: the sentence shows as a
    warning toast, and the event returns ``fallback("⚠️ " + sentence)`` (the status line saying it)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except gr.Error as error:
                text = sentence(error.message if hasattr(error, "message") else error)
            except (UserError, InvalidInput) as error:
                text = sentence(error)
            except Exception:
                logger.exception("unexpected error in %s", fn.__name__)
                text = GENERIC
            gr.Warning(text)
            return fallback(f"⚠️ {text}")

        return wrapper

    return decorate


def user_errors(fn: Callable) -> Callable:
    """Wrap a Gradio event function so that only a person's mistakes reach the browser as what they are."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (UserError, InvalidInput) as error:
            raise gr.Error(sentence(error), print_exception=False) from None
        except Exception:
            logger.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(GENERIC, print_exception=False) from None

    return wrapper
