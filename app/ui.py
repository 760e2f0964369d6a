"""The page: its layout and which event calls which callback; the work is in `callbacks` (the page) and `api` (the
public endpoints), both on `service`."""

from __future__ import annotations

import gradio as gr

from semflow.limits import MAX_SEED, MAX_STEPS
from semflow.samplers import SOLVERS

from . import api
from . import callbacks as cb
from .examples import build_examples
from .info import model_info_markdown
from .overlays import legend_html
from .service import MAX_VARIANTS, Studio, get_studio
from .session import Session
from .settings import Settings, get_settings
from .upload import ImageUpload

CSS = """
.semflow-legend {font-size: 0.9em; max-height: 320px; overflow-y: auto}
#mask-editor {min-height: 420px}
"""

HEADER = """# SemFlow Studio
Segment an image, correct the mask with the brushes (one colour per class, the eraser for *unlabelled*),
then synthesize new images from the corrected mask — one rectified-flow model does both directions
([SemFlow](https://arxiv.org/abs/2405.20282)). Save the image with its mask to grow a training set."""


def build_demo(studio: Studio | None = None) -> gr.Blocks:
    studio = studio or get_studio()
    settings, model, pipe, labels = studio.settings, studio.model, studio.pipe, studio.labels
    palette = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in labels.colors]
    beta_max = studio.beta_limit - 0.01
    examples = build_examples(pipe, f"{model.name}@{model.revision}", settings.cache_dir, settings.examples)

    with gr.Blocks(title="SemFlow Studio") as demo:
        state = gr.State(Session())
        gr.Markdown(HEADER)
        if model.notice:
            gr.Markdown(f"⚠️ **{model.notice}**")

        with gr.Row():
            with gr.Column(scale=1):
                image = ImageUpload(label="Image", sources=["upload", "clipboard"], height=320)
                if examples:
                    gr.Examples([[e["image"]] for e in examples], inputs=[image],
                                example_labels=[e["title"] for e in examples], label="Example images")
                with gr.Row():
                    seg_steps = gr.Slider(1, MAX_STEPS, value=pipe.config.segmentation_steps, step=1, label="Steps")
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
            variants = gr.Slider(1, MAX_VARIANTS, value=2, step=1, label="Variants")
            seed = gr.Number(value=0, label="Seed", precision=0, minimum=0, maximum=MAX_SEED)
            beta = gr.Slider(0.0, beta_max, value=min(pipe.config.perturbation, beta_max), step=0.5,
                             label=f"Perturbation β (0 to {studio.beta_limit:g}, in 0..255 units)",
                             visible=studio.shows_beta)
            syn_steps = gr.Slider(1, MAX_STEPS, value=pipe.config.synthesis_steps, step=1, label="Steps")
            syn_solver = gr.Dropdown(list(SOLVERS), value=pipe.config.solver, label="Solver")
        with gr.Row():
            show_trajectory = gr.Checkbox(label="Show the trajectory as an animation", value=False)
            direction = gr.Radio([cb.MASK_TO_IMAGE, cb.IMAGE_TO_MASK], value=cb.MASK_TO_IMAGE, label="Direction")
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
            if settings.annotations_repo and settings.oauth:
                gr.LoginButton("Sign in with Hugging Face to push")
            push_button = gr.Button("Push annotations to the Hub", visible=settings.can_push)
        save_status = gr.Markdown()
        with gr.Row():
            mask_ids_file = gr.File(label="Mask (class ids, PNG mode L)", interactive=False)
            mask_color_file = gr.File(label="Mask (colour preview)", interactive=False)

        with gr.Accordion("Model info", open=False):
            gr.Markdown(model_info_markdown(model))
            gr.HTML(legend_html(None, labels))

        # Events. Everything that runs the model shares one queue slot ("model"). The page's events are not API
        # endpoints: private here, and refused on the API routes by `api.guard`.
        model_slot = {"concurrency_id": "model", "concurrency_limit": settings.concurrency}

        def ui(name: str) -> dict:
            return {"api_name": f"ui_{name}", "api_visibility": "private"}

        # The editor never carries a progress overlay: under load, Gradio 6 sometimes left its spinner over the canvas
        # for good when a segmentation followed an upload closely (about 1 in 5 tries), and nothing could be painted.
        image.change(cb.load_image, [image, state], [state, editor, status], show_progress_on=[status],
                     **ui("load_image"))
        segment_button.click(cb.segment, [state, seg_steps, seg_solver, opacity],
                             [state, overlay_view, legend, editor], show_progress_on=[overlay_view],
                             **ui("segment"), **model_slot)
        opacity.release(cb.update_overlay, [state, opacity], overlay_view, **ui("overlay"))
        blank_button.click(cb.blank_layout, [blank_width, blank_height, blank_fill, state], [state, editor, status],
                           show_progress_on=[status], **ui("blank_layout"))
        if layouts:
            layout_examples.load_input_event.then(cb.load_layout, layout_file, [state, editor, status],
                                                  show_progress_on=[status], **ui("load_layout"))
        synthesize_button.click(cb.synthesize, [editor, state, variants, seed, beta, syn_steps, syn_solver,
                                                show_trajectory, direction],
                                [state, gallery, round_trip, trajectory], **ui("synthesize"), **model_slot)
        save_button.click(cb.save_annotation, [editor, state, annotator], [save_status, mask_ids_file,
                                                                            mask_color_file],
                          **ui("save_annotation"))
        export_button.click(cb.export_mask, [editor, state], [mask_ids_file, mask_color_file], **ui("export_mask"))
        push_button.click(cb.push_annotations, None, save_status, **ui("push_annotations"))

        api.add_endpoints(studio, model_slot)
    return demo


def launch(demo: gr.Blocks, settings: Settings | None = None, **kwargs) -> tuple:
    """Queue and launch with the settings' queue, concurrency and upload limits, the app's CSS, and the guard that
    keeps the page's events off the API routes."""
    settings = settings or get_settings()
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    return demo.launch(css=CSS, max_file_size=f"{settings.max_upload_mb}mb",
                       app_kwargs={"middleware": [api.guard(demo)]}, **kwargs)
