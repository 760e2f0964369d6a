"""The page: its layout and which event calls which callback; the work is in `callbacks` (the page) and `api` (the
public endpoints), both on one `service.Studios`. Each callback returns a view (`views`) whose fields are named after
the components here (`Parts`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from semflow.limits import MAX_EDIT_MARGIN, MAX_STEPS, SOLVERS

from . import api, views
from . import callbacks as cb
from .editor_script import editor_script
from .errors import StorageError
from .examples import build_examples, canvas_size, layout_examples, photo_examples_of
from .fill_tools import DEFAULT_TOLERANCE
from .info import model_info_markdown
from .learning import DEFAULT_MINUTES, POLL_SECONDS
from .overlays import DEFAULT_OPACITY, legend_html, unsure_scale_html
from .queue_words import ALL, FILTER_CHOICES, SORT_CHOICES
from .service import EDIT_MARGIN, EDIT_STRENGTH, MAX_VARIANTS, Studio, Studios
from .session import Session
from .shortcuts import page_script, shortcut_help
from .views import View
from .work_queue import QUEUE_ORDER, RENEW_SECONDS

logger = logging.getLogger(__name__)

# The editor's tools sit over the left edge of its canvas: the canvas starts to their right, so that no photo (scaled
# to fit, as on a phone) lies under them.
CSS = """
.semflow-legend {font-size: 0.9em; max-height: 320px; overflow-y: auto}
.semflow-unsure-scale {display: flex; align-items: center; font-size: 0.85em}
#mask-editor {min-height: 420px}
#mask-editor .pixi-target {left: 52px; width: calc(100% - 52px)}
"""

# The elements the editor script (`editor_script`) finds by id.
VIEW_ID, APPLY_FILL_ID, FILL_STATUS_ID, MASK_CHANGED_ID = "segmentation-view", "apply-fill", "fill-status", \
    "mask-changed"
EDIT_ID, EDIT_REGION_ID = "edit-photo", "edit-region"  # the edit's button and its region, for the browser tests
PUT_LAYER = "(payload) => window.semflowPutLayer(payload)"  # the editor script applies a fill's layer
BROWSER_ID_KEY = "semflow-annotator-id"  # the key gr.BrowserState keeps the annotator id under (not a secret)

ADAPTIVE = "rk45 is adaptive: it picks its own steps and ignores Steps"
# Steps are typed (a slider would quietly move a typed 0 or 101 into its range); the pipeline words what is wrong.
STEPS_INFO = f"integration steps, 1 to {MAX_STEPS}"

LEARN_HELP = """The model learns this queue's corrections: a training job in a process of its own (the page stays
usable) fine-tunes the model in use on them, except the latest fifth (at least 5), held back to score the model in use
and the new one. The new one serves only when it is better there, as the next version of the model; then the queue's
unfinished items are pre-annotated again with it (worst first follows). **Roll back** serves the version before."""

HEADER = """# SemFlow Studio
Segment an image, correct the mask with the brushes (one colour per class, the eraser for *unlabelled*),
then synthesize new images from the corrected mask — one rectified-flow model does both directions
([SemFlow](https://arxiv.org/abs/2405.20282)). Save the image with its mask to grow a training set."""


class Parts(dict):
    """The page's components by the names the views (`views`) give them; `bind` makes a callback's view the
    event's output."""

    def add(self, **components: gr.components.Component) -> None:
        self.update(components)

    def outputs(self, view: type[View]) -> list[gr.components.Component]:
        """The components `view` may set: an event's outputs (a view field without a component is a bug)."""
        missing = [name for name in view.names() if name not in self]
        if missing:
            raise KeyError(f"{view.__name__} names components the page does not have: {', '.join(missing)}")
        return [self[name] for name in view.names()]

    def bind(self, fn: Callable[..., View], view: type[View]) -> dict[str, Any]:
        """An event's ``fn`` and ``outputs`` (``trigger(***parts.bind(...), inputs=...)``): `fn`'s view as
        {component: value} for the components it sets; the others stay as they are."""

        @functools.wraps(fn)
        def event(*args: Any, **kwargs: Any) -> dict:
            return {self[name]: value for name, value in fn(*args, **kwargs).updates().items()}

        return {"fn": event, "outputs": self.outputs(view)}


def build_demo(studios: Studios | None = None) -> gr.Blocks:
    """The page on `studios` (default: the process's models and settings, read from the environment)."""
    studios = studios or Studios()
    studio = studios.get()
    page = cb.Page(studios)
    settings, model, pipe, labels = studio.settings, studio.model, studio.pipe, studio.labels
    palette = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in labels.colors]
    examples = build_examples(labels, settings.cache_dir, settings.examples)
    photos, layouts = photo_examples_of(examples), layout_examples(examples)
    canvas_width, canvas_height = canvas_size(photos, pipe.resolution)

    with gr.Blocks(title="SemFlow Studio") as demo:
        state = gr.State(Session())
        synthesized = gr.State(())  # the images last synthesized from the editor's mask, kept beside the session
        # The annotator id this browser keeps (localStorage) across reloads, tabs and restarts of the app: the name of
        # its claims in work queues. It is an id, not a secret, hence the fixed key that lets a restarted app read it.
        browser_id = gr.BrowserState(None, storage_key="semflow-annotator", secret=BROWSER_ID_KEY)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):  # on a phone the model picker goes under the title, not beside it
                gr.Markdown(HEADER)
            choices = studios.choices()
            model_choice = gr.Dropdown(choices, value=choices[0], label="Model", scale=0, min_width=220,
                                       info="The paper's SemFlow or the symmetric formulation (SymmFlow); details "
                                            "under Model info")
            annotator = gr.Textbox(label="Your name", max_length=100, scale=0, min_width=200, elem_id="annotator",
                                   placeholder="optional" if not settings.reviewers else "needed to review",
                                   info="the signed-in name on a Space" if settings.oauth else
                                   "shown to others on your claims; recorded with your work")
        if model.notice:
            gr.Markdown(f"⚠️ **{model.notice}**")

        workspace = studios.workspace
        folders = workspace.suggested_folders()
        with gr.Accordion("Work queue: annotate a whole folder or dataset", open=False):
            if settings.oauth:
                gr.LoginButton("Sign in with Hugging Face to work on a queue")
            with gr.Row():
                queue_location = gr.Textbox(label="Folder of images, imagefolder, or Hub dataset id", scale=3,
                                            placeholder=f"e.g. {folders[0] if folders else 'frames'} or "
                                                        f"org/street-frames",
                                            info=f"Opens {workspace.root_hint()}; or a Hub dataset id",
                                            elem_id="queue-location")
                queue_split = gr.Textbox(label="Split (datasets)", value="train", scale=1, visible=False)
                queue_sort = gr.Dropdown(SORT_CHOICES, value=QUEUE_ORDER, label="Order", scale=1,
                                         info="worst first: lowest mean confidence first (after pre-annotation)")
                queue_filter = gr.Dropdown(FILTER_CHOICES, value=ALL, label="Show", scale=1,
                                           info="walk only the items of one status (reviewers: submitted)")
                open_queue_button = gr.Button("Open queue", variant="primary", scale=1)
            with gr.Row():
                previous_button = gr.Button("◀ Previous (p)", elem_id="queue-previous")
                next_button = gr.Button("Next ▶ (n)", elem_id="queue-next")
                unfinished_button = gr.Button("Next unfinished")
                preannotate_button = gr.Button("Pre-annotate all")
                save_queue_button = gr.Button("Save mask to queue (s)", variant="primary", elem_id="queue-save")
                submit_button = gr.Button("Submit for review")
            queue_status = gr.Markdown("Open a queue to work through its images; every save is kept in the annotation "
                                       "database, so a restart resumes where you stopped.", elem_id="queue-status")
            with gr.Accordion("Review", open=False):
                gr.Markdown("Reviewers (SEMFLOW_REVIEWERS) walk the *submitted* items (the **Show** menu) and accept "
                            "each, accept it with their corrections from the editor (a new version), or reject it "
                            "with a comment, which sends it back to its annotator.")
                review_comment = gr.Textbox(label="Comment for the annotator (needed to reject)", lines=2,
                                            max_lines=6, elem_id="review-comment")
                with gr.Row():
                    accept_button = gr.Button("Accept", variant="primary")
                    correct_button = gr.Button("Accept with my corrections")
                    reject_button = gr.Button("Reject with comment", variant="stop")
                with gr.Row():
                    claimed = gr.Dropdown([], label="Claimed items", scale=2, elem_id="claimed-items")
                    list_claims_button = gr.Button("Show claims", scale=1)
                    release_button = gr.Button("Release the claim", scale=1)
            with gr.Accordion("History of this item", open=False):
                history = gr.Markdown(elem_id="item-history")
                with gr.Row():
                    versions = gr.Dropdown([], label="Version", scale=1, elem_id="item-versions")
                    show_version_button = gr.Button("Show it in the segmentation view", scale=1)
                    restore_button = gr.Button("Restore it (as a new version)", scale=1)
            with gr.Accordion("Export, push, annotators", open=False):
                with gr.Row():
                    export_kind = gr.Radio(list(cb.EXPORTS), value=cb.EXPORT_CVAT, label="Export as", scale=2)
                    accepted_only = gr.Checkbox(value=True, label="accepted items only", scale=1)
                    export_queue_button = gr.Button("Export the queue", scale=1)
                    if settings.dataset_repo and settings.oauth:
                        gr.LoginButton("Sign in with Hugging Face to push")
                    push_queue_button = gr.Button("Push the accepted items to the Hub as a dataset", scale=1,
                                                  visible=bool(settings.dataset_repo) and (
                                                      settings.oauth or settings.push_with_server_token))
                queue_export = gr.File(label="Export", interactive=False, height=90, visible=False)
                annotators_button = gr.Button("Show the annotators' table")
                annotators_table = gr.Markdown(elem_id="annotators-table")
            with gr.Accordion("Learning from the corrections", open=False):
                gr.Markdown(LEARN_HELP)
                with gr.Row():
                    learn_from = gr.Radio(cb.LEARN_FROM, label="Learn from", scale=2,
                                          value=cb.LEARN_ACCEPTED if settings.reviewers else cb.LEARN_CORRECTED)
                    learn_minutes = gr.Number(value=DEFAULT_MINUTES, label="Training minutes", scale=1,
                                              info="the job's training time budget", elem_id="learn-minutes")
                    learn_button = gr.Button("Learn from the corrections", variant="primary", scale=1)
                with gr.Row():
                    cancel_learning_button = gr.Button("Cancel the job", variant="stop")
                    resume_learning_button = gr.Button("Resume the job")
                    roll_back_button = gr.Button("Roll back to the previous version")
                    if settings.model_repo and settings.oauth:
                        gr.LoginButton("Sign in with Hugging Face to push")
                    push_model_button = gr.Button("Push the model in use to the Hub",
                                                  visible=bool(settings.model_repo) and (
                                                      settings.oauth or settings.push_with_server_token))
                learn_status = gr.Markdown(elem_id="learn-status")
                learn_timer = gr.Timer(POLL_SECONDS, active=False)  # reads a running job's progress
            renew_timer = gr.Timer(RENEW_SECONDS)  # an open tab renews its lease on the item it shows

        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(label="Image", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                 format="png", height=320, elem_id="image-input")
                if photos:
                    photo_picker = gr.Examples([[e["image"]] for e in photos], inputs=[image],
                                               example_labels=[e["title"] for e in photos], label="Example photos")
                with gr.Row():
                    seg_steps = gr.Number(value=pipe.config.segmentation_steps, label="Steps", info=STEPS_INFO,
                                          elem_id="segmentation-steps")
                    seg_solver = gr.Dropdown(list(SOLVERS), value=pipe.config.solver, label="Solver", info=ADAPTIVE)
                segment_button = gr.Button("Segment", variant="primary")
                status = gr.Markdown()
            with gr.Column(scale=1):
                overlay_view = gr.Image(label="Segmentation", format="png", interactive=False, height=320,
                                        elem_id=VIEW_ID)
                with gr.Row():
                    opacity = gr.Slider(0.0, 1.0, value=DEFAULT_OPACITY, step=0.05, label="Mask opacity")
                    unsure = gr.Checkbox(label="Show where the model is unsure (red: low confidence)", value=False)
                unsure_scale = gr.HTML(unsure_scale_html(), visible=False)
                with gr.Row():
                    fill_tool = gr.Radio(list(cb.FILL_TOOLS), value=cb.FILL_TOOLS[0],
                                         label="Click on the segmentation to fill (into the editor's mask)")
                    fill_class = gr.Dropdown(list(labels.class_names), value=labels.class_names[0],
                                             label="Fill with class")
                    replaced_class = gr.Dropdown(list(labels.class_names), value=labels.class_names[0],
                                                 label="Class to replace (box tool)")
                    tolerance = gr.Slider(0, 128, value=DEFAULT_TOLERANCE, step=1, label="Flood fill tolerance",
                                          elem_id="tolerance")
                with gr.Row():
                    fill_status = gr.Markdown(elem_id=FILL_STATUS_ID)
                    apply_fill_button = gr.Button("Apply the fill", variant="primary", visible=False, scale=0,
                                                  min_width=160, elem_id=APPLY_FILL_ID)
                # What the editor script gets: a fill's layer, applied as one step of the editor's undo history; and
                # the button it presses when the mask changed in the browser.
                fill_layer = gr.JSON(visible="hidden")
                mask_changed_button = gr.Button(visible="hidden", elem_id=MASK_CHANGED_ID)
                legend = gr.HTML(legend_html(None, labels), label="Legend")

        gr.Markdown("## Correct the mask")
        editor = gr.ImageEditor(
            # A short label: on a phone the editor's toolbar sits over the right of its label row.
            label="Mask editor", elem_id="mask-editor",
            type="numpy", image_mode="RGBA", format="png", sources=(), transforms=(),
            brush=gr.Brush(colors=palette, default_color=palette[0], color_mode="fixed", default_size=12),
            # One mask layer and no layer panel (Gradio names every layer it loads "Layer 1").
            eraser=gr.Eraser(default_size=12), layers=gr.LayerOptions(allow_additional_layers=False,
                                                                       layers=["mask"], disabled=True),
            canvas_size=(canvas_width, canvas_height), height=480,
        )
        gr.Markdown(shortcut_help(labels.class_names))
        with gr.Accordion("Blank canvas: paint a layout from scratch", open=False):
            with gr.Row():
                blank_width = gr.Number(value=canvas_width, label="Width", precision=0)
                blank_height = gr.Number(value=canvas_height, label="Height", precision=0)
                blank_fill = gr.Dropdown([labels.ignore_name, *labels.class_names], value=labels.class_names[0],
                                         label="Fill with class")
                blank_button = gr.Button("New blank layout")

        if layouts:
            layout_file = gr.Image(type="filepath", visible=False, format="png", image_mode=None)
            layout_picker = gr.Examples([[e["mask"]] for e in layouts], inputs=[layout_file],
                                          example_labels=[e["title"] for e in layouts],
                                          label="Example layouts (drawn by the project)", cache_examples=False)

        gr.Markdown("## Synthesize from the mask")
        with gr.Row():
            variants = gr.Slider(1, MAX_VARIANTS, value=2, step=1, label="Variants")
            # Unbounded here: the pipeline checks the seed and says what is wrong (Gradio would word its own error).
            seed = gr.Number(value=0, label="Seed", elem_id="seed")
            beta = gr.Slider(minimum=0.0, step=cb.BETA_STEP, elem_id="beta", **cb.beta_slider(studio))
            syn_steps = gr.Number(value=pipe.config.synthesis_steps, label="Steps", info=STEPS_INFO,
                                  elem_id="synthesis-steps")
            syn_solver = gr.Dropdown(list(SOLVERS), value=pipe.config.solver, label="Solver", info=ADAPTIVE)
        with gr.Row():
            show_trajectory = gr.Checkbox(label="Show the trajectory as an animation", value=False)
            direction = gr.Radio([cb.MASK_TO_IMAGE, cb.IMAGE_TO_MASK], value=cb.MASK_TO_IMAGE, label="Direction")
        with gr.Row():
            synthesize_button = gr.Button("Synthesize", variant="primary")
            # Offered once a segmented photo's mask was changed: that photo with only the change re-synthesized.
            edit_button = gr.Button("Edit this photo", variant="primary", visible=False, elem_id=EDIT_ID)
        with gr.Row(visible=False) as edit_options:
            with gr.Column():
                edit_margin = gr.Slider(0, MAX_EDIT_MARGIN, value=EDIT_MARGIN, step=1, label="Edit margin (px)",
                                        info="how far around the changed pixels the edit blends into the photo")
                edit_strength = gr.Slider(0.0, 1.0, value=EDIT_STRENGTH, step=0.05, label="Edit strength",
                                          info="0 keeps the rest of the photo exactly; above 0 restyles it too")
            edit_region = gr.Image(label="What the edit will change (the rest stays the photo's own pixels)",
                                   format="png", interactive=False, height=240, elem_id=EDIT_REGION_ID)
        with gr.Row():
            gallery = gr.Gallery(label="Synthesized", elem_id="synthesized", columns=2, height="auto",
                                 object_fit="contain", format="png")
            with gr.Column():
                trajectory = gr.Image(label="Trajectory", type="filepath", interactive=False, height=280)
                trajectory_caption = gr.Markdown(page.trajectory_caption(None, cb.MASK_TO_IMAGE),
                                                 elem_id="trajectory-caption")
                round_trip = gr.Markdown()

        gr.Markdown("## Save the annotation")
        with gr.Row():
            save_button = gr.Button("Save image + corrected mask", variant="primary")
            export_button = gr.Button("Export the mask")
            if settings.annotations_repo and settings.oauth:
                gr.LoginButton("Sign in with Hugging Face to push")
            push_button = gr.Button("Push annotations to the Hub", visible=settings.can_push)
        save_status = gr.Markdown()
        with gr.Row():
            mask_ids_file = gr.File(label="Mask (class ids, PNG mode L)", interactive=False)
            mask_color_file = gr.File(label="Mask (colour preview)", interactive=False)
            mask_voc_file = gr.File(label="Mask (Pascal-VOC palette PNG)", interactive=False)

        with gr.Accordion("Model info", open=False):
            model_info = gr.Markdown(model_info_markdown(model))
            gr.HTML(legend_html(None, labels))

        # Events. Everything that runs the model shares one queue slot ("model"). The page's events are not API
        # endpoints: private here, and refused on the API routes by `api.guard`.
        model_slot = {"concurrency_id": "model", "concurrency_limit": settings.concurrency}

        def ui(name: str) -> dict:
            return {"api_name": f"ui_{name}", "api_visibility": "private"}

        parts = Parts(session=state, synthesized=synthesized, editor=editor, status=status, queue_status=queue_status,
                      image=image, overlay_view=overlay_view, legend=legend, gallery=gallery, round_trip=round_trip,
                      trajectory=trajectory, save_status=save_status, mask_ids_file=mask_ids_file,
                      mask_color_file=mask_color_file, mask_voc_file=mask_voc_file, fill_layer=fill_layer,
                      fill_status=fill_status, apply_fill=apply_fill_button, model_info=model_info, beta=beta,
                      seg_steps=seg_steps, seg_solver=seg_solver, syn_steps=syn_steps, syn_solver=syn_solver,
                      trajectory_caption=trajectory_caption, browser_id=browser_id, edit_button=edit_button,
                      edit_options=edit_options, edit_region=edit_region, history=history, versions=versions,
                      queue_export=queue_export, claimed=claimed, learn_status=learn_status,
                      learn_timer=learn_timer)

        # The editor never carries a progress overlay: under load, Gradio 6 sometimes left its spinner over the canvas
        # for good when a segmentation followed an upload closely (about 1 in 5 tries), and nothing could be painted.
        # Unpreprocessed: Gradio would open the upload itself and fail with a bare "Error" on an empty file, a text
        # file or a decompression bomb, before the app could say what is wrong.
        # A person's upload, paste, clear or example photo loads the image; the app setting the Image box (to show a
        # queue item) does not.
        # An upload that cannot be opened says why, and the Image box goes back to what the editor works on (no broken
        # image stays in it).
        loading = {"show_progress_on": [status], "preprocess": False}
        load_image = parts.bind(page.load_image, views.Work)
        restore = {"fn": page.restore_image, "inputs": [state], "outputs": [image], **ui("restore_image")}
        image.upload(**load_image, inputs=[image, state], **loading, **ui("load_image")).failure(**restore)
        image.clear(**load_image, inputs=[image, state], **loading, **ui("clear_image"))
        if photos:
            photo_picker.load_input_event.then(**parts.bind(page.load_example_photo, views.Work),
                                               inputs=[image, state], **loading, **ui("load_example_photo"))
        segment_button.click(**parts.bind(page.segment, views.Segmented),
                             inputs=[state, seg_steps, seg_solver, opacity, unsure], show_progress_on=[overlay_view],
                             **ui("segment"), **model_slot)
        # The opacity follows the slider once it is let go, and the number typed into its box.
        opacity.change(page.update_overlay, [editor, state, opacity, unsure], overlay_view,
                       trigger_mode="always_last", show_progress="hidden", **ui("overlay"))
        unsure.change(page.update_overlay, [editor, state, opacity, unsure], overlay_view, **ui("unsure")) \
            .then(lambda shown: gr.update(visible=shown), unsure, unsure_scale, **ui("unsure_scale"))
        blank_button.click(**parts.bind(page.blank_layout, views.Work),
                           inputs=[blank_width, blank_height, blank_fill, state], show_progress_on=[status],
                           **ui("blank_layout"))
        if layouts:
            layout_picker.load_input_event.then(**parts.bind(page.load_layout, views.Work),
                                                inputs=[layout_file, state], show_progress_on=[status],
                                                **ui("load_layout"))
        synthesize_button.click(**parts.bind(page.synthesize, views.Synthesized),
                                inputs=[editor, state, variants, seed, beta, syn_steps, syn_solver, show_trajectory,
                                        direction], show_progress_on=[round_trip], **ui("synthesize"), **model_slot)
        edit_button.click(**parts.bind(page.edit_photo, views.Synthesized),
                          inputs=[editor, state, variants, seed, beta, syn_steps, syn_solver, edit_margin,
                                  edit_strength], show_progress_on=[round_trip], **ui("edit_photo"), **model_slot)
        for setting, name in ((edit_margin, "edit_margin"), (edit_strength, "edit_strength")):
            setting.change(**parts.bind(page.edit_preview, views.EditOffer), inputs=[editor, state, edit_margin,
                                                                               edit_strength],
                           trigger_mode="always_last", show_progress="hidden", **ui(name))
        save_button.click(**parts.bind(page.save_annotation, views.Saved),
                          inputs=[editor, state, annotator, synthesized], **ui("save_annotation"))
        export_button.click(**parts.bind(page.export_mask, views.MaskFiles), inputs=[editor, state],
                            **ui("export_mask"))
        push_button.click(page.push_annotations, None, save_status, **ui("push_annotations"))
        queue_progress = {"show_progress_on": [queue_status]}
        open_queue_button.click(**parts.bind(page.open_queue, views.Work),
                                inputs=[queue_location, queue_split, queue_sort, state, annotator, queue_filter],
                                **queue_progress, **ui("open_queue"))
        for typed in (queue_location.blur, queue_location.submit):
            typed(page.split_field, [queue_location, state], queue_split, show_progress="hidden", **ui("split_field"))
        for menu, name in ((queue_sort, "reorder_queue"), (queue_filter, "filter_queue")):
            menu.change(**parts.bind(page.reorder_queue, views.Work), inputs=[queue_sort, state, annotator,
                                                                              queue_filter],
                        **queue_progress, **ui(name))
        for button, (step, unfinished), name in ((previous_button, (-1, False), "previous"),
                                                 (next_button, (1, False), "next"),
                                                 (unfinished_button, (1, True), "next_unfinished")):
            button.click(**parts.bind(page.queue_move(step, unfinished), views.Work),
                         inputs=[queue_sort, state, annotator, queue_filter], **queue_progress,
                         **ui(f"queue_{name}"))
        preannotate_button.click(page.preannotate_queue, [state, annotator], queue_status, **ui("preannotate"),
                                 **model_slot)
        save_queue_button.click(**parts.bind(page.save_to_queue, views.QueueNote), inputs=[editor, state, annotator],
                                **queue_progress, **ui("save_to_queue"))
        submit_button.click(**parts.bind(page.submit_item, views.QueueNote), inputs=[state, annotator],
                            **queue_progress, **ui("submit_item"))
        accept_button.click(**parts.bind(page.accept_item, views.QueueNote), inputs=[state, annotator],
                            **queue_progress, **ui("accept_item"))
        correct_button.click(**parts.bind(page.correct_item, views.QueueNote), inputs=[editor, state, annotator],
                             **queue_progress, **ui("correct_item"))
        reject_button.click(**parts.bind(page.reject_item, views.QueueNote),
                            inputs=[review_comment, state, annotator], **queue_progress, **ui("reject_item"))
        list_claims_button.click(**parts.bind(page.list_claims, views.ClaimsListed), inputs=[state],
                                 **queue_progress, **ui("list_claims"))
        release_button.click(page.release_claim, [claimed, state, annotator], queue_status, **ui("release_claim"))
        show_version_button.click(page.show_version, [versions, state, opacity], overlay_view,
                                  show_progress_on=[overlay_view], **ui("show_version"))
        restore_button.click(**parts.bind(page.restore_version, views.Work), inputs=[versions, state, annotator],
                             **queue_progress, **ui("restore_version"))
        export_queue_button.click(**parts.bind(page.export_queue, views.QueueExport),
                                  inputs=[export_kind, accepted_only, state], **queue_progress, **ui("export_queue"))
        push_queue_button.click(page.push_queue, [accepted_only, state], queue_status, **ui("push_queue"))
        annotators_button.click(page.annotators_table, [state], annotators_table, **ui("annotators_table"))
        renew_timer.tick(page.renew_claim, [state], queue_status, show_progress="hidden", **ui("renew_claim"))
        learned = parts.bind(page.learning_tick, views.Learned)
        learn_button.click(**parts.bind(page.start_learning, views.Learned),
                           inputs=[learn_from, learn_minutes, state, annotator], show_progress_on=[learn_status],
                           **ui("start_learning"))
        cancel_learning_button.click(**parts.bind(page.cancel_learning, views.Learned), inputs=[state, annotator],
                                     **ui("cancel_learning"))
        resume_learning_button.click(**parts.bind(page.resume_learning, views.Learned), inputs=[state, annotator],
                                     **ui("resume_learning"))
        roll_back_button.click(**parts.bind(page.roll_back_model, views.Learned), inputs=[state, annotator],
                               **ui("roll_back_model"))
        push_model_button.click(**parts.bind(page.push_model, views.Learned), inputs=[state], **ui("push_model"))
        learn_timer.tick(**learned, inputs=[state], show_progress="hidden", **ui("learning_tick"))
        overlay_view.select(**parts.bind(page.fill_at, views.Filled),
                            inputs=[editor, state, fill_tool, fill_class, replaced_class, tolerance, opacity, unsure],
                            show_progress_on=[fill_status], **ui("fill")) \
            .success(None, fill_layer, None, js=PUT_LAYER, **ui("put_fill"))
        apply_fill_button.click(**parts.bind(page.apply_fill, views.Filled), inputs=[editor, state, opacity, unsure],
                                show_progress_on=[fill_status], **ui("apply_fill")) \
            .success(None, fill_layer, None, js=PUT_LAYER, **ui("put_applied_fill"))
        mask_changed_button.click(**parts.bind(page.mask_changed, views.MaskFollowed),
                                  inputs=[editor, state, opacity, unsure, edit_margin, edit_strength],
                                  show_progress="hidden",
                                  trigger_mode="always_last", **ui("mask_changed"))
        # The caption says what a trajectory of the tab's model will show; a trajectory on the page keeps the caption
        # it came with, which names the model that made it.
        for changed, name in ((direction, "direction"), (trajectory, "trajectory")):
            changed.change(page.caption_of_page, [model_choice, direction, trajectory], trajectory_caption,
                           show_progress="hidden", **ui(f"caption_after_{name}"))
        model_choice.change(**parts.bind(page.choose_model, views.ModelChosen),
                            inputs=[model_choice, state, direction, trajectory], **ui("choose_model"), **model_slot)

        demo.load(**parts.bind(page.start_tab, views.TabStarted), inputs=[browser_id, state], **ui("start_tab"))
        api.add_endpoints(studios, model_slot)
    return demo


def launch(demo: gr.Blocks, studios: Studios, **kwargs) -> tuple:
    """Recover the annotation folder from interrupted saves, then queue and launch with the settings' queue,
    concurrency and upload limits, the app's CSS and scripts (swatch names, keys, the mask editor's), and the guard
    that keeps the page's events off the API routes."""
    settings, studio = studios.settings, studios.get()
    try:
        recovered = studios.workspace.recover().summary()  # leftovers of saves a crash or kill -9 interrupted
    except StorageError as error:  # the app still starts; each save then says what is wrong with the folder
        recovered = str(error)
    if recovered:
        logger.warning(recovered)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    return demo.launch(css=CSS, js=page_scripts(studio), max_file_size=f"{settings.max_upload_mb}mb",
                       app_kwargs={"middleware": [api.guard(demo)]}, **kwargs)


def page_scripts(studio: Studio) -> str:
    """The page's scripts (swatch names and keys; the mask editor's) as the one function `launch(js=...)` takes."""
    scripts = (page_script(studio.labels.class_names),
               editor_script(VIEW_ID, APPLY_FILL_ID, FILL_STATUS_ID, MASK_CHANGED_ID))
    return "() => {\n" + "\n".join(f"  ({script.strip()})();" for script in scripts) + "\n}"
