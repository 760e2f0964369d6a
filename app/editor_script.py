"""The page's script for the mask editor (gradio 6.31's `gr.ImageEditor`, reached through the `window.editor` it sets):
keeps every mask layer the size of its photo, applies the server's fills as steps of the editor's own undo history,
and tells the server when the mask changed (so the legend and the segmentation view follow it)."""

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

# A fill the server computed arrives as the whole new layer (`editor.fill_payload`) and becomes one command of the
# editor's history, beside its brush strokes: undo puts back the layer as it was, redo the fill. The editor is told of
# the change as its brush tells it (until then the page sends back the value it was given, as if nothing was edited).
# A fill computed from a mask the person has painted on since the click is not applied (it would undo those strokes);
# the page says so.
FILLS = """
  let base = null;  // the editor's history when a fill was last asked for (a click on the view or on Apply)
  const say = (text) => {
    const status = document.querySelector("#%(status)s");
    if (status) status.textContent = text;
  };
  const putLayer = async (payload) => {
    const editor = window.editor;
    if (!payload || !editor) return;
    const manager = editor.layer_manager, layer = manager.get_layers()[0];
    const draw = layer && manager.get_layer_textures(layer.id)?.draw;
    if (!draw || Math.round(draw.width) !== payload.width || Math.round(draw.height) !== payload.height) {
      say("The editor's mask is not the size of its photo, so the fill was not applied; reload the page.");
      return;
    }
    if (base !== null && editor.command_manager.history !== base) {
      say("You painted while the fill was being made, so it was not applied (it would undo those strokes); " +
          "click again.");
      changed();
      return;
    }
    const image = new Image();
    image.src = payload.layer;
    await image.decode();
    const Sprite = layer.container.children[0].constructor, RenderTexture = draw.constructor;
    const Texture = Object.getPrototypeOf(RenderTexture), renderer = editor.context.app.renderer;
    const render = (source, target) => {
      const sprite = new Sprite(source);
      renderer.render({container: sprite, target: target, clear: true});
      sprite.destroy();
    };
    const before = RenderTexture.create({width: draw.width, height: draw.height,
                                         resolution: window.devicePixelRatio || 1});
    render(draw, before);
    const after = Texture.from(image);
    const command = {
      name: "SemflowFill",
      execute: async () => { render(after, draw); editor.context.request_render(); },
      undo: async () => { render(before, draw); editor.context.request_render(); },
    };
    await editor.command_manager.execute(command, editor.context);
    base = editor.command_manager.history;
    // As a stroke does: the page then reads the mask from the canvas, not the value the server last sent.
    editor.notify("change");
  };
  window.semflowPutLayer = putLayer;
  document.addEventListener("pointerdown", (event) => {
    if (event.target.closest && event.target.closest("#%(view)s, #%(apply)s") && window.editor) {
      base = window.editor.command_manager.history;
    }
  }, true);
"""

# Every edit in the editor's history (a stroke, a fill, undo or redo of one) presses the page's hidden "mask changed"
# button, at most every WAIT ms; the server putting new work into the editor (its photo, a history reset) does not.
CHANGES = """
  let timer = null;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => document.getElementById("%(changed)s")?.click(), %(wait)d);
  };
  const edit = (node) => node && node.command && node.command.name !== "AddImage";
  const watch = (editor) => editor.command_manager.current_history.subscribe((node) => {
    if (edit(node) || edit(node.next)) changed();
  });
"""

SCRIPT = """
() => {
%(changes)s
%(fills)s
%(align)s
  const start = () => {
    const editor = window.editor;
    if (!editor || !align(editor)) return setTimeout(start, 100);
    watch(editor);
    window.semflowEditorReady = true;
  };
  start();
}
"""
WAIT_MS = 400


def editor_script(view_id: str, apply_id: str, status_id: str, changed_id: str) -> str:
    """The mask editor's script, a function the page runs once it has loaded.

    Args:
        view_id: elem_id of the segmentation view, where clicks start fills.
        apply_id: elem_id of the button that makes a previewed fill.
        status_id: elem_id of the fill tools' status line.
        changed_id: elem_id of the hidden button that tells the server the mask changed.
    """
    return SCRIPT % {"align": ALIGN, "fills": FILLS % {"status": status_id, "view": view_id, "apply": apply_id},
                     "changes": CHANGES % {"changed": changed_id, "wait": WAIT_MS}}

