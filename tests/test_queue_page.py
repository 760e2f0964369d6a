"""The page's queue panel through its callbacks (tiny models, no browser): an unreadable image never blocks a queue; a
saved annotation records the model whose prediction it corrected and where its image came from; a claim conflict
names the item as it is and the other person by their name, in the status line (no error badge); the open tab renews
its lease; the queue-root rule is on the page before anyone types; two annotators and a reviewer go through submit,
reject, fix, accept, history and restore, exports and a push of the accepted set."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import PIL.Image
import pytest

from app.callbacks import EXPORT_CVAT, EXPORT_DATASET, Page
from app.editor import editor_value
from app.model import Models
from app.queue_words import ALL
from app.service import Studios
from app.session import Session
from app.settings import Settings
from app.views import KEEP
from app.work_queue import ACCEPTED, CORRECTED, QUEUE_ORDER, REJECTED, SUBMITTED, WORST_FIRST
from app.workspace import Person
from semflow.loading import LoadedModel
from tests.conftest import tiny_pipeline

RNG = np.random.default_rng(0)
ANA, BEN, RITA = "a" * 32, "b" * 32, "c" * 32  # three browsers' annotator ids


def tiny_studios(tmp_path: Path, **settings) -> Studios:
    """Two tiny models a tab may pick ("first", the configured one, and "second"), one annotation folder."""
    folders = {name: tmp_path / "models" / name for name in ("first", "second")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)

    def load(choice, fallback=False):
        name = choice or "first"
        return LoadedModel(tiny_pipeline(seed=0 if name == "first" else 1), f"{name}-model", f"sha256:{name}")

    config = Settings(annotations_dir=tmp_path / "ann", cache_dir=tmp_path / "cache", queue_root=tmp_path,
                      **settings)
    return Studios(config, Models("first", folders, load))


def frames(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir(exist_ok=True)
    for name in names:
        PIL.Image.fromarray(RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_an_unreadable_image_never_blocks_the_queue(tmp_path):
    page = Page(tiny_studios(tmp_path))
    folder = frames(tmp_path, ["frame_01.png", "frame_02.png", "frame_03.png"])
    (folder / "fake.png").write_bytes(b"this is no picture")  # first in the queue's order
    opened = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=ANA))
    session, line = opened.session, opened.queue_status
    assert session.item == "frame_01.png", "opening passes over the unreadable item"
    assert "Skipped 1 item(s) whose image cannot be read (fake)" in line
    assert "1 skipped: fake (The image fake is not a readable image file" in line, "listed in the status"
    line = page.preannotate_queue(session, progress=lambda *a, **k: None)
    assert "Pre-annotated 3 item(s)" in line, "pre-annotation goes past it"
    seen = [session.item]
    for _ in range(4):
        session = page.queue_move(1, False)(QUEUE_ORDER, session).session
        seen.append(session.item)
    assert seen == ["frame_01.png", "frame_02.png", "frame_03.png", "frame_01.png", "frame_02.png"], \
        "Next wraps around, never stopping at it"
    editor = editor_value(session.image, np.zeros((20, 30), np.uint8), page.studio(session).labels)
    page.save_to_queue(editor, session)
    page.workspace.queue("frames").submit(session.item, session.owner)
    page.workspace.queue("frames").accept(session.item, "rev")
    export = page.export_queue(EXPORT_CVAT, True, session).queue_export
    with zipfile.ZipFile(export["value"]) as archive:
        assert [n for n in archive.namelist() if n.startswith("SegmentationClass/")] == [
            "SegmentationClass/frame_02.png"]


def test_a_saved_annotation_records_the_model_that_predicted_it_and_where_its_image_came_from(tmp_path):
    studios = tiny_studios(tmp_path)
    page = Page(studios)
    PIL.Image.fromarray(RNG.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "street.png")
    session = page.load_image({"path": str(tmp_path / "street.png")}, Session())
    session = page.segment(session.session, 1, "euler", 0.5).session
    session = page.choose_model("second", session).session  # switched after segmenting
    labels = studios.get("second").labels
    page.save_annotation(editor_value(session.image, session.ids, labels), session, "me")
    session = page.load_example_photo({"path": str(tmp_path / "street.png")}, session).session
    page.save_annotation(editor_value(session.image, np.zeros((20, 30), np.uint8), labels), session, "me")
    frames(tmp_path, ["frame_01.png"])
    session = page.open_queue("frames", "", QUEUE_ORDER, session.replace(owner=ANA)).session
    page.save_annotation(editor_value(session.image, np.zeros((20, 30), np.uint8), labels), session, "me")
    layout = page.blank_layout(64, 64, "Road", session).session
    layout_editor = editor_value(layout.background, np.full((64, 64), 3, np.uint8), labels)
    images = page.synthesize(layout_editor, layout, 1, 0, None, 2, "euler", False, "mask → image").synthesized
    assert layout.model == "second"
    layout = page.choose_model("first", layout).session  # switched after synthesizing
    page.save_annotation(layout_editor, layout, "me", images)
    first, example, queued, painted = studios.workspace.saved.rows()
    assert (painted["model"], painted["image_source"]) == ("second-model", "synthesized"), \
        "a painted layout's image names the model that synthesized it, not the tab's model at saving"
    assert (first["model"], first["model_revision"], first["image_source"]) == ("first-model", "sha256:first",
                                                                                 "upload")
    assert (example["model"], example["image_source"]) == (None, "example"), "painted by hand: no model made it"
    assert queued["image_source"] == "queue" and queued["queue_item"].endswith("frame_01.png")
    version = page.save_to_queue(editor_value(session.image, np.zeros((20, 30), np.uint8), labels), session)
    (saved,) = studios.workspace.queue("frames").history("frame_01.png")
    assert saved.started_from is None and version.session.started_from == "version 1", "nothing predicted it"
    session = page.segment(version.session, 1, "euler", 0.5).session  # with the tab's model: "second"
    page.save_to_queue(editor_value(session.image, session.ids, labels), session)
    assert studios.workspace.queue("frames").history("frame_01.png")[-1].started_from == "second-model@sha256:second"


def test_a_claim_conflict_names_the_item_and_the_person_in_the_status_line(tmp_path):
    page = Page(tiny_studios(tmp_path))
    frames(tmp_path, ["Frame_04.png", "frame_05.png"])
    queue = page.workspace.queue("frames")
    queue.claim_seconds = 0.2  # ana's tab closes just after: her lease lapses without renewals
    ana = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=ANA), "ana").session
    time.sleep(0.3)
    queue.claim_seconds = 90.0
    ben = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=BEN), "ben").session
    assert ben.item == "Frame_04.png", "a lapsed claim is free"
    editor = editor_value(ana.image, np.zeros((20, 30), np.uint8), page.studio(ana).labels)
    with pytest.warns(UserWarning) as warned:
        refused = page.save_to_queue(editor, ana, "ana")
    assert refused.queue_status == ("⚠️ The item Frame_04 is being annotated by ben now; pick another item (the claim "
                                    "lapses about a minute after their tab closes, and a reviewer can release it).")
    assert BEN not in refused.queue_status and str(warned[0].message) == refused.queue_status[3:]
    assert refused.session is KEEP, "a failed queue event returns a status line, never raises (no error badge)"
    note = page.renew_claim(ana)
    assert note.startswith("⚠️ Your claim on this item lapsed and **ben** holds it now")
    assert page.renew_claim(ben) == gr.update(), "a tab renews its own lease without a word"
    unnamed = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=RITA)).session
    assert unnamed.item == "frame_05.png" and queue.claim_of("frame_05.png").who == "another annotator", \
        "without a name, others are told of another annotator, never of a browser's id"


def test_the_page_renews_the_lease_and_states_the_queue_root_rule_up_front(tmp_path):
    from app.ui import build_demo
    from app.work_queue import RENEW_SECONDS

    (tmp_path / "frames").mkdir()
    (tmp_path / "street-run").mkdir()
    studios = tiny_studios(tmp_path)
    demo = build_demo(studios)
    location = next(block for block in demo.blocks.values()
                    if getattr(block, "label", None) == "Folder of images, imagefolder, or Hub dataset id")
    assert location.placeholder == "e.g. frames or org/street-frames"
    assert location.info == (f"Opens the folders inside `{tmp_path.name}` (the app's queue folder, "
                             f"SEMFLOW_QUEUE_ROOT), such as frames, models, street-run; or a Hub dataset id")
    renew = [fn for fn in demo.fns.values() if fn.api_name == "ui_renew_claim"]
    assert len(renew) == 1 and renew[0].show_progress == "hidden"
    (timer,) = [block for block in demo.blocks.values() if isinstance(block, gr.Timer) and
                any(target[0] == block._id for target in renew[0].targets)]
    assert timer.value == RENEW_SECONDS and timer.active, "an open tab renews its lease all along"


def test_two_annotators_and_a_reviewer_submit_reject_fix_accept_restore_export_and_push(tmp_path, monkeypatch):
    from hub_mock import RecordingHub

    studios = tiny_studios(tmp_path, reviewers=("rita",), dataset_repo="acme/streets-accepted",
                           push_with_server_token=True, hf_token="hf_server")
    page = Page(studios)
    frames(tmp_path, [f"f{i}.png" for i in range(4)])
    labels = studios.get().labels
    ana = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=ANA), "ana").session
    page.preannotate_queue(ana, "ana", progress=lambda *a, **k: None)
    ana = page.reorder_queue(WORST_FIRST, ana, "ana").session
    ben = page.open_queue("frames", "", WORST_FIRST, Session(owner=BEN), "ben").session
    assert ana.item != ben.item, "two annotators never get the same item"

    def paint(session, value):
        return editor_value(session.image, np.full((20, 30), value, np.uint8), labels)

    ana.opened_at and time.sleep(0.01)
    saved = page.save_to_queue(paint(ana, 3), ana, "ana")
    ana = saved.session
    assert "as version 1" in saved.queue_status and "| 1 | ana |" in saved.history
    assert saved.history.count("first-model@sha256:first") == 1, "started from the prediction"
    ana = page.submit_item(ana, "ana").session
    ben = page.save_to_queue(paint(ben, 5), ben, "ben").session
    ben = page.submit_item(ben, "ben").session
    with pytest.warns(UserWarning, match="Only reviewers may do that"):
        assert "Only reviewers" in page.accept_item(ben, "ben").queue_status

    rita = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=RITA), "rita", status=SUBMITTED).session
    assert rita.item in (ana.item, ben.item) and "submitted" in page.workspace.queue("frames").status(rita.item)
    first = rita.item
    with pytest.warns(UserWarning, match="needs a comment"):
        page.reject_item("", rita, "rita")
    rejected = page.reject_item("Road, not sidewalk.", rita, "rita")
    assert "Rejected" in rejected.queue_status and "| rejected | rita |" in rejected.history
    rita = page.queue_move(1, False)(QUEUE_ORDER, rita, "rita", SUBMITTED).session
    second = rita.item
    assert second != first
    corrected = page.correct_item(paint(rita, 8), rita, "rita")
    assert "Corrected" in corrected.queue_status and "| corrected and accepted | rita |" in corrected.history

    owner = {ana.item: (ana, "ana"), ben.item: (ben, "ben")}[first]
    back = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=owner[0].owner), owner[1])
    assert back.session.item == first and "⚠️ **Rejected: Road, not sidewalk.**" in back.queue_status, \
        "the rejected item goes back to its annotator, with the comment"
    fixed = page.save_to_queue(paint(back.session, 4), back.session, owner[1])
    assert "as version 2" in fixed.queue_status
    page.submit_item(fixed.session, owner[1])
    rita = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=RITA), "rita", status=SUBMITTED).session
    assert rita.item == first
    page.accept_item(rita, "rita")
    queue = page.workspace.queue("frames")
    assert (queue.status(first), queue.status(second)) == (ACCEPTED, ACCEPTED)

    history = page.show_history(rita)
    assert "| 1 |" in history.history and "| 2 |" in history.history and history.versions["value"] == 2
    shown = page.show_version(1, rita, 0.5)
    assert shown.size == rita.image.size
    assert "Released the claim on **" in page.release_claim(first, rita, "rita")
    again = page.workspace.claim("frames", "", Person(back.session.owner, owner[1]), first)
    assert again.item.id == first
    restored = page.restore_version(1, fixed.session, owner[1])
    assert "Restored version 1 as version 3" in restored.queue_status
    assert queue.status(first) == CORRECTED, "a restored version is a new version, to review again"
    assert [v.number for v in queue.history(first)] == [1, 2, 3]
    assert np.array_equal(queue.version_mask(first, 3), queue.version_mask(first, 1))
    page.submit_item(restored.session, owner[1])
    page.accept_item(rita, "rita")

    table = page.annotators_table(rita)
    other = "ben" if owner[1] == "ana" else "ana"
    rows = {cells[0]: cells[1:] for line in table.splitlines()[2:]
            for cells in [[cell.strip() for cell in line.strip("|").split("|")]]}
    assert set(rows) == {"ana", "ben"}, "a reviewer's correction is not annotator work"
    done, rejected, seconds, agreement = rows[owner[1]]
    assert (done, rejected, agreement) == ("1", "1", "100.0%") and float(seconds) >= 0
    assert rows[other][:2] == ["1", "0"] and rows[other][3] == "0.0%", "the reviewer repainted all of it"

    holder = page.open_queue("frames", "", QUEUE_ORDER, Session(owner=ANA), "ana").session  # a tab left open
    claims = page.list_claims(rita)
    assert "1 item(s) claimed now" in claims.queue_status
    held = [value for _, value in claims.claimed["choices"]]
    assert held == [holder.item] and claims.claimed["choices"][0][0].endswith(": ana")
    with pytest.warns(UserWarning, match="Only reviewers"):
        page.release_claim(held[0], ana, "ana")
    assert "Released the claim" in page.release_claim(held[0], rita, "rita")

    export = page.export_queue(EXPORT_DATASET, True, rita).queue_export["value"]
    with zipfile.ZipFile(export) as archive:
        names = set(archive.namelist())
        assert {"id2label.json", "README.md", "data/frames/metadata.jsonl"} <= names
        rows = [json.loads(line) for line in archive.read("data/frames/metadata.jsonl").decode().splitlines()]
    assert sorted(row["item"] for row in rows) == sorted([first, second]), "accepted items only, by default"
    hub = RecordingHub(monkeypatch)
    said = page.push_queue(True, rita, None)
    assert said.startswith("Pushed 2 accepted item(s) of this queue to `acme/streets-accepted`")
    (upload,) = hub.uploads
    assert upload["repo_id"] == "acme/streets-accepted" and "data/frames/metadata.jsonl" in upload["files"]
    assert hub.repos[0]["repo_type"] == "dataset"
    assert page.queue_move(1, False)(QUEUE_ORDER, rita, "rita", REJECTED).queue_status.startswith("No other item"), \
        "nothing is rejected any more"
    assert page.reorder_queue(QUEUE_ORDER, rita, "rita", ALL).session.item is not None
