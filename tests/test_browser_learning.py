"""The learning loop in a real browser (Debian's Chromium, headless; own server on a tiny seeded model): a reviewer
pre-annotates a queue of toy street frames, corrects and accepts items (the rest of the team accepts others through the
store meanwhile), starts learning from the corrections, watches the job's progress, sees the promotion with its figures
and the queue's unfinished items pre-annotated again by the new version (worst first), pushes the version to a local
Hub (the folder there loads as a pipeline), and rolls back with one click."""

import json
import re

import pytest
from app_server import ROOT, AppServer
from browser_helpers import canvas_box, launch, open_app, paint_stroke, pick_class, require_chromium
from datasets_helpers import street_frames, tiny_street_model

from app.shortcuts import CLASS_KEYS
from app.work_queue import ACCEPTED, open_queue
from semflow import load_pipeline

pytestmark = pytest.mark.slow

REPO = "acme/streets-model"
FRAMES = 14  # 2 corrected in the browser, 9 by the rest of the team, 3 left to do


@pytest.fixture
def frames(tmp_path):
    require_chromium()
    folder = tmp_path / "frames"
    return folder, street_frames(folder, FRAMES, 120, 160)


def text_of(page, element: str) -> str:
    return page.locator(f"#{element}").inner_text()


def wait_text(page, element: str, text: str, timeout: float = 60_000) -> str:
    page.wait_for_function("([id, text]) => document.getElementById(id).innerText.includes(text)",
                           arg=[element, text], timeout=timeout)
    return text_of(page, element)


def item(page) -> str:
    found = re.search(r"Item \d+ of \d+: (\S+) \(", text_of(page, "queue-status"))
    assert found, text_of(page, "queue-status")
    return found[1]


def test_a_reviewer_teaches_the_model_from_the_page_and_rolls_it_back(tmp_path, frames, example_cache):
    from playwright.sync_api import sync_playwright

    folder, truth = frames
    base_model = tiny_street_model(tmp_path / "base")
    config = tmp_path / "learn.json"  # a learning rate a tiny model learns from in seconds
    config.write_text(json.dumps({"learning_rate": 5e-3, "max_steps": 40, "checkpointing_steps": 10}))
    hub, annotations = tmp_path / "hub", tmp_path / "annotations"
    env = {"SEMFLOW_MODEL": str(base_model), "SEMFLOW_CACHE": str(example_cache),
           "SEMFLOW_ANNOTATIONS_DIR": str(annotations), "SEMFLOW_QUEUE_ROOT": str(tmp_path),
           "SEMFLOW_REVIEWERS": "rita", "SEMFLOW_LEARN_CONFIG": str(config), "SEMFLOW_MODEL_REPO": REPO,
           "SEMFLOW_PUSH_WITH_SERVER_TOKEN": "1", "HF_TOKEN": "hf_local_test_token",
           "SEMFLOW_TEST_LOCAL_HUB": str(hub), "PYTHONPATH": str(ROOT / "tests" / "local_hub")}
    labels = load_pipeline(str(base_model), device="cpu").labels  # the toy streets' label set
    server = AppServer(env, log=tmp_path / "app.log")
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            _, rita = open_app(playwright, server.url,
                               context=browser.new_context(viewport={"width": 1400, "height": 2600}))
            rita.locator("#annotator textarea, #annotator input").first.fill("rita")
            rita.get_by_text("Work queue: annotate a whole folder or dataset").click()
            rita.get_by_label("Folder of images, imagefolder, or Hub dataset id").fill(str(folder))
            rita.get_by_role("button", name="Open queue").click()
            wait_text(rita, "queue-status", "Opened the queue")
            rita.get_by_role("button", name="Pre-annotate all").click()
            wait_text(rita, "queue-status", f"Pre-annotated {FRAMES} item(s)", timeout=300_000)
            rita.get_by_role("button", name="Next unfinished").click()
            wait_text(rita, "queue-status", "predicted by tiny-streets)")

            rita.get_by_text("Review", exact=True).click()
            car = labels.class_names.index("Car")
            corrected = []
            for _ in range(2):  # correct and accept two items in the browser
                name = item(rita)
                box = canvas_box(rita)
                pick_class(rita, CLASS_KEYS[car], labels.colors[car])
                paint_stroke(rita, box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.3)
                rita.wait_for_timeout(800)
                rita.get_by_role("button", name="Accept with my corrections").click()
                wait_text(rita, "queue-status", f"Corrected {name} (version 1) and accepted it.")
                corrected.append(name)
                if len(corrected) < 2:
                    rita.get_by_role("button", name="Next unfinished").click()
                    wait_text(rita, "queue-status", "Item ")
                    assert item(rita) != name
            # the rest of the team accepted nine more meanwhile (the latest: the job holds five of them back)
            queue = open_queue(folder, root=annotations)
            others = [i for i in queue.items if i.name not in corrected][:9]
            for other in others:
                queue.claim(other.id, "t" * 32, "tom")
                queue.save(other.id, truth[other.id], "t" * 32, "tom")
                queue.accept(other.id, "t" * 32, "tom")

            rita.get_by_text("Learning from the corrections", exact=True).click()
            rita.get_by_label("Training minutes").fill("2")
            rita.get_by_role("button", name="Learn from the corrections", exact=True).click()
            wait_text(rita, "learn-status", "Started learning from the 11 accepted item(s) of frames")
            progress = wait_text(rita, "learn-status", ", loss ", timeout=300_000)
            assert re.search(r"training, step \d+ of at most 40, loss \d+\.\d{4}, about .* left \(6 corrected items "
                             r"to train on, with 6 frames of the data the model learned from, 5 held back to check "
                             r"the result\)", progress), progress
            done = wait_text(rita, "learn-status", "Promoted v1: ", timeout=420_000)
            assert re.search(r"Promoted v1: \d+\.\d mIoU on the 5 held-back items against \d+\.\d \(\+\d+\.\d\)\. The "
                             r"page serves v1 now\.", done), done
            wait_text(rita, "learn-status", "Pre-annotated the 3 unfinished item(s) of frames again with v1: worst "
                                            "first follows their new confidences.", timeout=300_000)
            rita.get_by_role("combobox", name="Order").click()
            rita.get_by_role("option", name="worst first", exact=True).click()
            line = wait_text(rita, "queue-status", "Order: worst first")
            assert "(pre-annotated, mean confidence " in line and "predicted by tiny-streets v1)" in line, line
            rita.get_by_text("Model info", exact=True).click()
            rita.get_by_text("Learned version").first.wait_for(timeout=30_000)

            rita.get_by_role("button", name="Push the model in use to the Hub").click()
            wait_text(rita, "learn-status", f"Pushed v1 to the model repo {REPO}", timeout=120_000)

            rita.get_by_role("button", name="Roll back to the previous version").click()
            wait_text(rita, "learn-status", "Rolled back from v1 to the base model.")
            wait_text(rita, "learn-status", "Pre-annotated the 3 unfinished item(s) of frames again with the base "
                                            "model", timeout=300_000)
            rita.get_by_role("button", name="Next unfinished").click()
            line = wait_text(rita, "queue-status", "predicted by tiny-streets)")
            assert "tiny-streets v1" not in line
            assert rita.get_by_text("Error", exact=True).count() == 0
            browser.close()
    finally:
        server.stop()

    queue = open_queue(folder, root=annotations)
    assert sum(queue.status(i.id) == ACCEPTED for i in queue.items) == 11
    pushed = load_pipeline(str(hub / "models" / REPO), device="cpu")  # what `hf download` would fetch
    assert pushed.labels.name == labels.name
    assert "## Promotion" in (hub / "models" / REPO / "README.md").read_text()
