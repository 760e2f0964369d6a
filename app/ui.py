"""The Gradio Blocks: components and events only; the work is done in `handlers`."""

from __future__ import annotations

import os

import gradio as gr

from semflow.samplers import SOLVERS

from . import handlers as h
from .examples import build_examples
from .info import model_info_markdown
from .model import get_model
from .overlays import legend_html

CSS = """
.semflow-legend {font-size: 0.9em; max-height: 320px; overflow-y: auto}
#mask-editor {min-height: 420px}
"""

HEADER = """# SemFlow Studio
Segment an image, correct the mask with the brushes (one colour per class, the eraser for *unlabelled*),
then synthesize new images from the corrected mask — one rectified-flow model does both directions
([SemFlow](https://arxiv.org/abs/2405.20282)). Save the image with its mask to grow a training set."""


def build_demo() -> gr.Blocks:
    model = get_model()
    pipe = model.pipe
    labels = pipe.labels
    palette = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in labels.colors]
    beta_max = pipe.anchor_spec.s / 2 - 0.01
    examples = build_examples(pipe, f"{model.source}@{model.revision}")

    with gr.Blocks(title="SemFlow Studio") as demo:
        state = gr.State(h.empty_state())
        gr.Markdown(HEADER)
        if model.notice:
            gr.Markdown(f"⚠️ **{model.notice}**")

        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(label="Image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                 format="png", height=320)
                if examples:
                    gr.Examples([[e["image"]] for e in examples], inputs=[image],
                                example_labels=[e["title"] for e in examples], label="Example images")
                with gr.Row():
                    seg_steps = gr.Slider(1, 50, value=pipe.config.segmentation_steps, step=1, label="Steps")
                    seg_solver = gr.Dropdown(list(SOLVERS), value=pipe.config.solver, label="Solver")
                segment_button = gr.Button("Segment", variant="primary")
                status = gr.Markdown()
            with gr.Column(scale=1):
                overlay_view = gr.Image(label="Segmentation", format="png", interactive=False, height=320)
                opacity = gr.Slider(0.0, 1.0, value=0.55, step=0.05, label="Mask opacity")
                legend = gr.HTML(legend_html(None, labels), label="Legend")

        gr.Markdown("## Correct the mask")
        editor = gr.ImageEditor(
            label="Mask editor (brushes are the classes; the eraser marks unlabelled)", elem_id="mask-editor",
            type="numpy", image_mode="RGBA", format="png", sources=(), transforms=(),
            brush=gr.Brush(colors=palette, default_color=palette[0], color_mode="fixed", default_size=12),
            eraser=gr.Eraser(default_size=12), layers=gr.LayerOptions(allow_additional_layers=False,
                                                                       layers=["mask"]),
            canvas_size=(pipe.resolution[1], pipe.resolution[0]), height=480,
        )
        with gr.Accordion("Blank canvas: paint a layout from scratch", open=False):
            with gr.Row():
                blank_width = gr.Number(value=pipe.resolution[1], label="Width", precision=0)
                blank_height = gr.Number(value=pipe.resolution[0], label="Height", precision=0)
                blank_fill = gr.Dropdown([labels.ignore_name, *labels.class_names], value=labels.class_names[0],
                                         label="Fill with class")
                blank_button = gr.Button("New blank layout")

        layouts = [e for e in examples if e.get("mask") and e["title"] and "layout" in e["mask"]]
        if layouts:
            layout_file = gr.Image(type="filepath", visible=False, format="png", image_mode=None)
            layout_examples = gr.Examples([[e["mask"]] for e in layouts], inputs=[layout_file],
                                          example_labels=[e["title"] for e in layouts],
                                          label="Example layouts (drawn by the project)", cache_examples=False)

        gr.Markdown("## Synthesize from the mask")
        with gr.Row():
            variants = gr.Slider(1, h.MAX_VARIANTS, value=2, step=1, label="Variants")
            seed = gr.Number(value=0, label="Seed", precision=0, minimum=0)
            beta = gr.Slider(0.0, beta_max, value=min(pipe.config.perturbation, beta_max), step=0.5,
                             label=f"Perturbation β (0 to {beta_max + 0.01:g}, in 0..255 units)")
            syn_steps = gr.Slider(1, 50, value=pipe.config.synthesis_steps, step=1, label="Steps")
            syn_solver = gr.Dropdown(list(SOLVERS), value=pipe.config.solver, label="Solver")
        with gr.Row():
            show_trajectory = gr.Checkbox(label="Show the trajectory as an animation", value=False)
            direction = gr.Radio(["mask → image", "image → mask"], value="mask → image", label="Direction")
        synthesize_button = gr.Button("Synthesize", variant="primary")
        with gr.Row():
            gallery = gr.Gallery(label="Synthesized", columns=2, height=360, format="png")
            with gr.Column():
                trajectory = gr.Image(label="Trajectory", type="filepath", interactive=False, height=280)
                round_trip = gr.Markdown()

        gr.Markdown("## Save the annotation")
        with gr.Row():
            annotator = gr.Textbox(label="Annotator name", max_length=100, placeholder="optional")
            save_button = gr.Button("Save image + corrected mask", variant="primary")
            export_button = gr.Button("Export the mask")
            push_button = gr.Button("Push annotations to the Hub",
                                    visible=bool(os.environ.get("SEMFLOW_ANNOTATIONS_REPO")))
        save_status = gr.Markdown()
        with gr.Row():
            mask_ids_file = gr.File(label="Mask (class ids, PNG mode L)", interactive=False)
            mask_color_file = gr.File(label="Mask (colour preview)", interactive=False)

        with gr.Accordion("Model info", open=False):
            gr.Markdown(model_info_markdown(model))
            gr.HTML(legend_html(None, labels))

        # Events. Everything that runs the model shares one queue slot ("model"); UI events are not API endpoints.
        model_slot = {"concurrency_id": "model", "concurrency_limit": _concurrency()}

        def ui(name: str) -> dict:
            return {"api_name": f"ui_{name}", "api_visibility": "private"}

        # The editor never carries a progress overlay: under load, Gradio 6 sometimes left its spinner over the canvas
        # for good when a segmentation followed an upload closely (about 1 in 5 tries), and nothing could be painted.
        image.change(h.load_image, [image, state], [state, editor, status], show_progress_on=[status],
                     **ui("load_image"))
        segment_button.click(h.segment, [state, seg_steps, seg_solver, opacity],
                             [state, overlay_view, legend, editor], show_progress_on=[overlay_view],
                             **ui("segment"), **model_slot)
        opacity.release(h.update_overlay, [state, opacity], overlay_view, **ui("overlay"))
        blank_button.click(h.blank_layout, [blank_width, blank_height, blank_fill, state], [state, editor, status],
                           show_progress_on=[status], **ui("blank_layout"))
        if layouts:
            layout_examples.load_input_event.then(h.load_layout, layout_file, [state, editor, status],
                                                  show_progress_on=[status], **ui("load_layout"))
        synthesize_button.click(h.synthesize, [editor, state, variants, seed, beta, syn_steps, syn_solver,
                                               show_trajectory, direction],
                                [state, gallery, round_trip, trajectory], **ui("synthesize"), **model_slot)
        save_button.click(h.save_annotation, [editor, state, annotator], [save_status, mask_ids_file, mask_color_file],
                          **ui("save_annotation"))
        export_button.click(h.export_mask, [editor, state], [mask_ids_file, mask_color_file], **ui("export_mask"))
        push_button.click(h.push_annotations, None, save_status, **ui("push_annotations"))

        _api(pipe, model_slot)
    return demo


def _api(pipe, model_slot: dict) -> None:
    """Named endpoints for gradio_client: /segment, /synthesize, /save_annotation, /model_info."""
    with gr.Column(visible=False):
        api_image = gr.File(label="image", type="filepath")
        api_steps = gr.Number(value=pipe.config.segmentation_steps, label="steps", precision=0)
        api_solver = gr.Dropdown(list(SOLVERS), value=pipe.config.solver, label="solver")
        api_opacity = gr.Number(value=0.5, label="opacity")
        api_ids = gr.File(label="mask_ids")
        api_overlay = gr.File(label="overlay")
        gr.Button(visible=False).click(h.api_segment, [api_image, api_steps, api_solver, api_opacity],
                                       [api_ids, api_overlay], api_name="segment", **model_slot)

        api_mask = gr.File(label="mask", type="filepath")
        api_seed = gr.Number(value=0, label="seed", precision=0)
        api_variants = gr.Number(value=1, label="variants", precision=0)
        api_beta = gr.Number(value=pipe.config.perturbation, label="perturbation")
        api_syn_steps = gr.Number(value=pipe.config.synthesis_steps, label="steps", precision=0)
        api_syn_solver = gr.Dropdown(list(SOLVERS), value=pipe.config.solver, label="solver")
        api_images = gr.Gallery(label="images", format="png")
        gr.Button(visible=False).click(h.api_synthesize, [api_mask, api_seed, api_variants, api_beta, api_syn_steps,
                                                          api_syn_solver], api_images, api_name="synthesize",
                                       **model_slot)

        api_save_image = gr.File(label="image", type="filepath")
        api_save_mask = gr.File(label="mask", type="filepath")
        api_annotator = gr.Textbox(value="", label="annotator")
        api_source = gr.Textbox(value="", label="source_name")
        api_saved = gr.JSON(label="saved")
        gr.Button(visible=False).click(h.api_save_annotation, [api_save_image, api_save_mask, api_annotator,
                                                               api_source], api_saved, api_name="save_annotation")

        api_info = gr.JSON(label="model_info")
        gr.Button(visible=False).click(h.api_model_info, None, api_info, api_name="model_info")


def _concurrency() -> int:
    """Model calls at once (`SEMFLOW_CONCURRENCY`, default 1: one shared model slot)."""
    return max(1, int(os.environ.get("SEMFLOW_CONCURRENCY", "1")))


def launch(demo: gr.Blocks, **kwargs) -> tuple:
    """Queue and launch with the upload limit (`SEMFLOW_MAX_UPLOAD_MB`, default 25) and the app's CSS."""
    demo.queue(max_size=int(os.environ.get("SEMFLOW_QUEUE_SIZE", "64")), default_concurrency_limit=_concurrency())
    return demo.launch(css=CSS, max_file_size=f"{int(os.environ.get('SEMFLOW_MAX_UPLOAD_MB', '25'))}mb", **kwargs)
