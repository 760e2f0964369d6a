"""The page's own script: names on the mask editor's class swatches (a title and an aria-label each, so the colours
can be told apart by name and by screen readers) and keyboard shortcuts for the classes and the work queue."""

from __future__ import annotations

import json

# Keys that pick the classes, in class order (1 → the first class, ..., 0 → the tenth, - → the eleventh, = → the 12th).
CLASS_KEYS = "1234567890-="
# Keys that press the work queue's buttons (by their elem_id in `ui`).
QUEUE_KEYS = {"n": "queue-next", "p": "queue-previous", "s": "queue-save"}
# Keys that press the mask editor's own buttons (by their aria-label).
EDITOR_KEYS = {"z": "Undo", "y": "Redo", "b": "Brush", "e": "Erase"}
# Keys that make the brush smaller or larger, and by how many pixels.
SIZE_KEYS, SIZE_STEP = {"[": -1, "]": 1}, 4
# Inputs that take no text: with the focus on one (a checkbox just ticked), the keys still work.
NON_TEXT_INPUTS = ("checkbox", "radio", "range", "button", "submit", "reset", "color", "file", "image")

SCRIPT = """
() => {
  const names = %(names)s, keys = %(keys)s, queueKeys = %(queue_keys)s, editorKeys = %(editor_keys)s;
  const sizeKeys = %(size_keys)s, sizeStep = %(size_step)s, nonText = %(non_text)s;
  const swatches = () => document.querySelectorAll("#mask-editor menu.swatch button.color");
  const name = () => swatches().forEach((button, i) => {
    if (i < names.length && button.title !== names[i]) {
      button.title = names[i] + (i < keys.length ? " (key " + keys[i] + ")" : "");
      button.setAttribute("aria-label", names[i]);
    }
  });
  new MutationObserver(name).observe(document.body, {childList: true, subtree: true});
  const button = (label) => document.querySelector('#mask-editor button[aria-label="' + label + '"]');
  // Keys are for typing only where text is typed: a ticked checkbox, a radio button or a slider keeps the focus, and
  // the next class key must still pick its brush.
  const typing = (target) => target.closest && (target.closest("textarea, select, [contenteditable=true]") ||
    (target.matches("input") && !nonText.includes((target.type || "").toLowerCase())));
  document.addEventListener("keydown", (event) => {
    const target = event.target, index = keys.indexOf(event.key);
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(target)) return;
    if (queueKeys[event.key]) {
      document.getElementById(queueKeys[event.key])?.click();
      event.preventDefault();
      return;
    }
    if (editorKeys[event.key]) {
      button(editorKeys[event.key])?.click();
      event.preventDefault();
      return;
    }
    if (sizeKeys[event.key]) {
      const slider = () => document.querySelector("#mask-editor input[type=range]");
      if (!slider()) button("Brush Size")?.click();
      setTimeout(() => {
        const range = slider();
        if (!range) return;
        const value = Math.min(Number(range.max), Math.max(Number(range.min),
                                                           Number(range.value) + sizeKeys[event.key] * sizeStep));
        Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(range, value);
        range.dispatchEvent(new Event("input", {bubbles: true}));
        range.dispatchEvent(new Event("change", {bubbles: true}));
      }, 50);
      event.preventDefault();
      return;
    }
    if (index < 0 || index >= names.length) return;
    button("Brush")?.click();
    setTimeout(() => {
      if (!swatches().length) button("Color")?.click();
      setTimeout(() => { swatches()[index]?.click(); }, 50);
    }, 50);
    event.preventDefault();
  });
  name();
}
"""


def page_script(class_names: list[str] | tuple[str, ...]) -> str:
    """The script for a model with these classes (in palette order, the order of the editor's swatches)."""
    return SCRIPT % {"names": json.dumps(list(class_names)), "keys": json.dumps(CLASS_KEYS),
                     "queue_keys": json.dumps(QUEUE_KEYS), "editor_keys": json.dumps(EDITOR_KEYS),
                     "size_keys": json.dumps(SIZE_KEYS), "size_step": SIZE_STEP,
                     "non_text": json.dumps(NON_TEXT_INPUTS)}


def shortcut_help(class_names: list[str] | tuple[str, ...]) -> str:
    """The shortcuts in words, for the page."""
    pairs = ", ".join(f"`{key}` {name}" for key, name in zip(CLASS_KEYS, class_names))
    return (f"Keys (outside text fields) pick a class brush: {pairs}; `b` brush, `e` eraser, `[` `]` brush size, `z` "
            f"undo, `y` redo; in a work queue `n` next, `p` previous, `s` save the mask to the queue.")
