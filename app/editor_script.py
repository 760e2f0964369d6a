"""The page's script for the mask editor (gradio 6.31's `gr.ImageEditor`, reached through the `window.editor` it sets):
keeps every mask layer the size of its photo."""

from __future__ import annotations

# Gradio's editor places a new layer by the bounds of everything on its canvas, its brush's own overlay included; that
# overlay keeps the size of the largest image seen, so after a smaller one the mask came in centred in a layer of the
# old size: shifted by half the difference, (16, 76) px from 512x512 to 480x360. Leaving the overlay out of the bounds
# (pixi's `measurable`) keeps the layers, the brush and the photo one size.
ALIGN = """
  const align = (editor) => {
    const textures = editor.tools?.get("brush")?.brush_textures;
    if (!textures) return false;
    const proto = Object.getPrototypeOf(textures);
    if (!proto.__semflowAligned) {
      const initialize = proto.initialize_textures;
      proto.initialize_textures = function (...args) {
        const result = initialize.apply(this, args);
        if (this.display_container) this.display_container.measurable = false;
        return result;
      };
      proto.__semflowAligned = true;
    }
    if (textures.display_container) textures.display_container.measurable = false;
    return true;
  };
"""

SCRIPT = """
() => {
%(align)s
  const start = () => {
    const editor = window.editor;
    if (!editor || !align(editor)) return setTimeout(start, 100);
    window.semflowEditorReady = true;
  };
  start();
}
"""


def editor_script() -> str:
    """The mask editor's script, a function the page runs once it has loaded."""
    return SCRIPT % {"align": ALIGN}

