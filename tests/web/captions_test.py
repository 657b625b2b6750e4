# Headless Chromium drives the caption editor of a real `lorastudio captions` server (issue 16,
# docs/captions.md): a caption edited with the keyboard only is on disk after a reload; a tag
# renamed from the frequency panel and a trigger word added to a selection change exactly the files
# the page lists, and undo puts every caption back byte for byte; a file changed on disk meanwhile
# is a conflict, never overwritten; 2,000 images list and filter in time; the threshold slider
# previews and applies saved tagger probabilities; SIGTERM / SIGINT stop it.
# Run by scripts/test-web (BUILD_DIR = the build folder holding lorastudio, CHROMIUM = browser).
import contextlib
import json
import pathlib
import re
import signal
import subprocess
import sys
import unittest

from web_harness import (BrowserTest, EXE, ROOT, cleanup, fetch_json, start_lorastudio_server, stop_server,
                         time_limit, watch)
from web_harness import temp_dir as harness_temp_dir

VOCAB = ROOT.parent / "shared/clip/bpe_simple_vocab_16e6.txt.gz"  # absent: token counts are not checked

# The issue asks for 2,000 images listed and filtered within 2 s on a 2-core machine. The bound
# is 5x that: this test shares its cores with a compiler or other tests on CI machines, and an
# overloaded machine must not fail it. The figure printed is the one to compare with 2 s.
TARGET_S = 2.0
BOUND_S = 5 * TARGET_S

# ---- the dataset and the server


def make_dataset(folder, images, *flags):
    """`lorastudio dataset make-synthetic`: OUT/img/10_lsshape/NNNN.png + .txt ("lsshape, red
    circle, large, blue background, centered\\n"). Returns the caption files, sorted."""
    subprocess.run([str(EXE), "dataset", "make-synthetic", str(folder), "--images", str(images), *flags],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=300)
    captions = sorted(pathlib.Path(folder).glob("img/*/*.txt"))
    assert len(captions) == images, f"make-synthetic wrote {len(captions)} captions, not {images}"
    return captions


def snapshot(files):
    return {f: f.read_bytes() for f in files}


def tags_of(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def start_server(folder, *args, timeout=60):
    """`lorastudio captions DIR --port 0 ARGS`. The timeout covers the dataset check it runs over
    every image before it listens."""
    return start_lorastudio_server("captions", folder, *args, timeout=timeout)


def server_args():
    return ["--tokenizer", str(VOCAB)] if VOCAB.exists() else []


# ---- the browser

def temp_dir():
    return pathlib.Path(harness_temp_dir("ls-captions-web-"))


def card(image_id):
    return f'[data-testid="card"][data-id="{image_id}"]'


def settled(page):
    """The grid is drawn and no save, bulk edit, undo or reload is in flight."""
    page.wait_for_selector('body[data-ready="1"][data-busy="0"]')


def shown_count(page, n, of):
    page.wait_for_function("([n, of]) => document.querySelector('[data-testid=count]').textContent"
                           " === `${n} of ${of} images`", arg=[n, of])


def message_items(page):
    return page.eval_on_selector_all('[data-testid="message-list"] li', "e => e.map((n) => n.textContent)")


def image_id(folder, caption_file):
    """The server's id of the image a caption belongs to: ROOT:PATH, PATH relative to the folder."""
    return "0:" + caption_file.with_suffix(".png").relative_to(folder).as_posix()


class CaptionsPage(BrowserTest):
    @contextlib.contextmanager
    def served_page(self, folder, *args, timeout=60):
        """`lorastudio captions folder` and a browser page on it, loaded; yields (page, problems, url)."""
        proc, url = start_server(folder, *args, timeout=timeout)
        context = self.browser.new_context(viewport={"width": 1400, "height": 900})
        try:
            page = context.new_page()
            problems = watch(page, url)
            page.goto(url)
            settled(page)
            yield page, problems, url
        finally:
            context.close()
            self.assertEqual(stop_server(proc), 0)

    # unittest runs tests in name order.
    @time_limit(180)
    def test_1_keyboard_edit_rename_trigger_word_and_undo_reach_the_files(self):
        folder = temp_dir()
        files = make_dataset(folder, 12)
        ids = [image_id(folder, f) for f in files]
        with self.served_page(folder, *server_args()) as (page, problems, url):
            shown_count(page, 12, 12)
            self.assertEqual(page.locator('[data-testid="card"]').count(), 12)
            listed = fetch_json(url + "api/images")
            self.assertEqual([i["id"] for i in listed["images"]], ids)
            # Thumbnails come from the server's /thumbs/ route and decode.
            page.wait_for_function("() => { const i = document.querySelector('[data-testid=card] img');"
                                   " return i.complete && i.naturalWidth > 0 && i.src.includes('/thumbs/0/'); }")
            if VOCAB.exists():
                first = listed["images"][0]
                self.assertIsInstance(first["tokens"], int)
                self.assertEqual(page.text_content(card(ids[0]) + " .tokens"), f"{first['tokens']} / 75")

            # 1. Keyboard only: j moves to the second image, Enter edits, typing, Ctrl+Enter saves.
            before = files[1].read_text()
            self.assertTrue(before.endswith("\n"))
            page.keyboard.press("j")
            self.assertEqual(page.eval_on_selector(".card.current", "e => e.dataset.id"), ids[1])
            page.keyboard.press("Enter")
            page.wait_for_selector('[data-testid="editor"]:not([hidden])')
            self.assertEqual(page.input_value('[data-testid="editor-text"]'), before)
            self.assertEqual(page.locator('[data-testid="chip"]').count(), len(tags_of(before)))
            page.keyboard.type(", shiny")
            if VOCAB.exists():
                # Debounced POST /api/tokens: ", shiny" is two more CLIP tokens.
                old_tokens = listed["images"][1]["tokens"]
                page.wait_for_function("(n) => document.querySelector('[data-testid=tokens]').dataset.tokens === String(n)",
                                       arg=old_tokens + 2)
                self.assertEqual(page.text_content('[data-testid="tokens"]'), f"{old_tokens + 2} / 75")
            page.keyboard.press("Control+Enter")
            page.wait_for_selector('[data-testid="editor"]', state="hidden")
            settled(page)
            edited = before[:-1] + ", shiny\n"
            self.assertEqual(files[1].read_text(), edited)
            self.assertEqual(page.text_content('[data-testid="undo"]'), "undo (1)")
            page.reload()
            settled(page)
            self.assertEqual(page.text_content(card(ids[1]) + ' [data-testid="caption"]'), edited)
            self.assertEqual(files[1].read_text(), edited)

            # 2. Chips: a drag reorders them and × removes one; the text follows; Esc saves nothing.
            page.click(card(ids[0]) + " .thumb")
            page.wait_for_selector('[data-testid="editor"]:not([hidden])')
            original = files[0].read_text()
            t = tags_of(original)
            page.drag_and_drop('[data-testid="chip"][data-index="0"]', '[data-testid="chip"][data-index="2"]')
            self.assertEqual(page.input_value('[data-testid="editor-text"]'), ", ".join(t[1:3] + t[:1] + t[3:]) + "\n")
            page.click('[data-testid="chip"][data-index="1"] [data-testid="chip-remove"]')
            self.assertEqual(page.input_value('[data-testid="editor-text"]'), ", ".join([t[1], t[0]] + t[3:]) + "\n")
            page.keyboard.press("Escape")
            page.wait_for_selector('[data-testid="editor"]', state="hidden")
            self.assertEqual(files[0].read_text(), original)

            # 3. Search: a tag click filters the grid; words, quotes and flags combine with AND.
            counts = {t["tag"]: t["count"] for t in fetch_json(url + "api/tags")["tags"]}
            self.assertEqual(counts["lsshape"], 12)
            common = max((t for t in counts if t != "lsshape"), key=lambda t: (counts[t], t))
            self.assertGreaterEqual(counts[common], 2)
            page.click(f'[data-testid="tag-row"][data-tag="{common}"] .tag-name')
            self.assertRegex(page.input_value('[data-testid="search"]'), r'^tag:("?)' + re.escape(common) + r'\1$')
            shown_count(page, counts[common], 12)
            page.fill('[data-testid="search"]', "shiny")
            shown_count(page, 1, 12)
            page.fill('[data-testid="search"]', "is:missing")
            shown_count(page, 0, 12)
            page.fill('[data-testid="search"]', 'tag:"lsshape" SHINY')
            shown_count(page, 1, 12)
            page.fill('[data-testid="search"]', "")
            shown_count(page, 12, 12)

            # 4. Rename a tag everywhere from the frequency panel: exactly its files change.
            texts = {f: f.read_text() for f in files}
            holders = [f for f in files if common in tags_of(texts[f])]
            page.click(f'[data-testid="tag-row"][data-tag="{common}"] [data-testid="tag-rename"]')
            page.fill('[data-testid="rename-to"]', "renamed tag")
            page.press('[data-testid="rename-to"]', "Enter")
            settled(page)
            self.assertEqual(sorted(message_items(page)), sorted(f.relative_to(folder).as_posix() for f in holders))
            for f in files:
                renamed = ", ".join("renamed tag" if t == common else t for t in tags_of(texts[f])) + "\n"
                self.assertEqual(f.read_text(), renamed if f in holders else texts[f], f)
            self.assertEqual(page.locator(f'[data-testid="tag-row"][data-tag="{common}"]').count(), 0)
            self.assertEqual(page.text_content('[data-testid="tag-row"][data-tag="renamed tag"] .tag-count'),
                             str(len(holders)))
            page.fill('[data-testid="search"]', 'tag:"renamed tag"')
            shown_count(page, len(holders), 12)
            page.fill('[data-testid="search"]', "")
            shown_count(page, 12, 12)

            # 5. A trigger word on a selection (click, then Shift+click: images 2..5), then undo.
            page.click(card(ids[2]) + ' [data-testid="select"]')
            page.click(card(ids[5]) + ' [data-testid="select"]', modifiers=["Shift"])
            self.assertEqual(page.text_content('[data-testid="selected-count"]'), "4")
            saved = snapshot(files)
            page.fill('[data-testid="prefix"]', "ohwx")
            page.click('[data-testid="prefix-apply"]')
            settled(page)
            self.assertEqual(message_items(page), [f.relative_to(folder).as_posix() for f in files[2:6]])
            for i, f in enumerate(files):
                want = b"ohwx, " + saved[f] if 2 <= i <= 5 else saved[f]
                self.assertEqual(f.read_bytes(), want, f)
            self.assertEqual(page.text_content('[data-testid="undo"]'), "undo (3)")
            page.keyboard.press("u")  # the focus is on the button, not in a text field
            settled(page)
            self.assertEqual(snapshot(files), saved)
            self.assertEqual(page.text_content('[data-testid="undo"]'), "undo (2)")
            # The history panel lists the bulk run as undone, the undo itself and the earlier runs.
            history = fetch_json(url + "api/history")["runs"]
            self.assertEqual(history[0]["source"].split()[0], "undo")
            self.assertTrue(history[1]["undone"])
            self.assertEqual(page.eval_on_selector_all('[data-testid="history-undo"]', "e => e.map((b) => b.disabled)"),
                             [h["undone"] for h in history])
            self.assertEqual(page.locator('[data-testid="history-run"]').count(), len(history))
            self.assertEqual(problems, [])

    @time_limit(120)
    def test_2_a_caption_changed_on_disk_is_a_conflict_and_keeps_the_disk_version(self):
        folder = temp_dir()
        files = make_dataset(folder, 12)
        ids = [image_id(folder, f) for f in files]
        with self.served_page(folder) as (page, problems, url):
            self.assertEqual(page.text_content(card(ids[0]) + " .tokens"), "")
            files[0].write_text("changed on disk\n")
            page.click(card(ids[0]) + " .thumb")
            page.wait_for_selector('[data-testid="editor"]:not([hidden])')
            self.assertEqual(page.text_content('[data-testid="tokens"]'), "tokens: start with --tokenizer")
            page.keyboard.press("Control+A")
            page.keyboard.type("my version")
            page.keyboard.press("Control+Enter")
            page.wait_for_selector('[data-testid="conflict"]:not([hidden])')
            self.assertEqual(page.text_content('[data-testid="conflict-mine"]'), "my version")
            self.assertEqual(page.text_content('[data-testid="conflict-disk"]'), "changed on disk\n")
            self.assertEqual(files[0].read_text(), "changed on disk\n")
            # Keep editing: the edit stays in the editor; Esc then closes it, nothing written.
            page.click('[data-testid="conflict-keep"]')
            page.wait_for_selector('[data-testid="conflict"]', state="hidden")
            self.assertEqual(page.input_value('[data-testid="editor-text"]'), "my version")
            page.keyboard.press("Escape")
            page.wait_for_selector('[data-testid="editor"]', state="hidden")
            settled(page)
            self.assertEqual(files[0].read_text(), "changed on disk\n")

            # Take the disk version: the editor and the grid show it, the file keeps it.
            files[1].write_text("also changed\n")
            page.click(card(ids[1]) + " .thumb")
            page.fill('[data-testid="editor-text"]', "mine again")
            page.click('[data-testid="editor-save"]')
            page.wait_for_selector('[data-testid="conflict"]:not([hidden])')
            page.click('[data-testid="conflict-take"]')
            self.assertEqual(page.input_value('[data-testid="editor-text"]'), "also changed\n")
            self.assertEqual(page.text_content(card(ids[1]) + ' [data-testid="caption"]'), "also changed\n")
            page.keyboard.press("Escape")
            settled(page)
            self.assertEqual(files[1].read_text(), "also changed\n")
            self.assertEqual(page.text_content('[data-testid="undo"]'), "undo")
            # Chromium logs each 409 answer to the console; those two are the conflicts above.
            conflicts = [p for p in problems if "status of 409" in p]
            self.assertEqual(len(conflicts), 2)
            self.assertEqual([p for p in problems if p not in conflicts], [])

    @time_limit(300)
    def test_3_two_thousand_images_list_and_filter_in_time(self):
        folder = temp_dir()
        files = make_dataset(folder, 2000, "--min-side", "64", "--max-side", "96")
        small = sum("small" in tags_of(f.read_text()) for f in files)
        proc, url = start_server(folder, *server_args(), timeout=180)
        context = self.browser.new_context(viewport={"width": 1400, "height": 900})
        try:
            page = context.new_page()
            problems = watch(page, url)
            thumbs = []
            page.on("request", lambda r: thumbs.append(r.url) if "/thumbs/" in r.url else None)
            page.goto(url)
            settled(page)
            # performance.now() counts from the navigation's start.
            ready_s = int(page.evaluate("document.body.dataset.readyMs")) / 1000
            shown_count(page, 2000, 2000)
            start = page.evaluate("performance.now()")
            page.click('[data-testid="search"]')
            page.keyboard.type("tag:small")
            shown_count(page, small, 2000)
            filter_s = (page.evaluate("performance.now()") - start) / 1000
            print(f"\ncaptions page, 2000 images: ready in {ready_s:.2f} s, filter in {filter_s:.2f} s "
                  f"(issue target {TARGET_S} s, bound {BOUND_S} s)", file=sys.stderr, flush=True)
            self.assertLess(ready_s, BOUND_S)
            self.assertLess(filter_s, BOUND_S)
            self.assertEqual(page.locator('[data-testid="card"]').count(), 2000)
            # Thumbnails load lazily: a 1400 x 900 window shows a few dozen cards, far from 2,000.
            self.assertLess(len(thumbs), 500)
            # The keys still move through the filtered grid.
            page.keyboard.press("Escape")
            page.keyboard.press("j")
            current = page.eval_on_selector(".card.current", "e => e.dataset.id")
            text_of = {i["id"]: i["text"] for i in fetch_json(url + "api/images")["images"]}
            self.assertIn("small", tags_of(text_of[current]))
            self.assertEqual(problems, [])
        finally:
            context.close()
            self.assertEqual(stop_server(proc), 0)

    @time_limit(120)
    def test_4_threshold_slider_previews_then_applies_the_saved_probabilities(self):
        folder = temp_dir()
        files = make_dataset(folder, 4)
        ids = [image_id(folder, f) for f in files]
        # What `caption --save-probs` keeps (src/caption/tag_probs.h): [index, name, category,
        # probability] per tag; category 9 ratings, 4 characters, 0 general tags. Image 3 has none.
        (folder / ".lorastudio").mkdir()
        with open(folder / ".lorastudio" / "tag_probs.jsonl", "w") as out:
            for i, f in enumerate(files[:3]):
                tags = [[0, "general", 9, 0.9], [10, "red_circle", 0, 0.6 - 0.1 * i], [11, "blue_sky", 0, 0.4],
                        [12, "hatsune_miku", 4, 0.9]]
                out.write(json.dumps({"path": f.with_suffix(".png").relative_to(folder).as_posix(),
                                      "model": "wd-vit-tagger-v3", "tags": tags}) + "\n")
        with self.served_page(folder) as (page, problems, url):
            self.assertIs(page.is_visible('[data-testid="retag-box"]'), True)
            self.assertEqual(page.input_value('[data-testid="general-threshold"]'), "0.35")
            self.assertEqual(page.input_value('[data-testid="character-threshold"]'), "0.85")
            page.click('[data-testid="select-shown"]')
            saved = snapshot(files)
            page.fill('[data-testid="general-threshold"]', "0.45")  # red_circle kept on images 0 and 1
            page.wait_for_selector('[data-testid="retag-list"] li[data-id]')
            settled(page)
            preview = page.eval_on_selector_all('[data-testid="retag-list"] li[data-id]',
                                                "e => e.map((li) => [li.dataset.id, li.querySelector('ins').textContent])")
            self.assertEqual([p[0] for p in preview], ids[:3])
            self.assertIn("red_circle", preview[0][1])
            self.assertNotIn("red_circle", preview[2][1])
            self.assertNotIn("blue_sky", preview[0][1])
            self.assertEqual(snapshot(files), saved)  # a preview writes nothing
            page.click('[data-testid="retag-apply"]')
            settled(page)
            self.assertEqual(message_items(page), [f.relative_to(folder).as_posix() for f in files[:3]])
            for (_, text), f in zip(preview, files):
                self.assertEqual(f.read_text(), text)
            self.assertEqual(files[3].read_bytes(), saved[files[3]])
            page.click('[data-testid="undo"]')
            settled(page)
            self.assertEqual(snapshot(files), saved)
            self.assertEqual(problems, [])

    @time_limit(60)
    def test_5_server_stops_on_sigterm_and_sigint(self):
        folder = temp_dir()
        make_dataset(folder, 2)
        for sig in (signal.SIGTERM, signal.SIGINT):
            proc, url = start_server(folder)
            try:
                self.assertEqual(len(fetch_json(url + "api/images")["images"]), 2)
            except BaseException:
                stop_server(proc)
                raise
            self.assertEqual(stop_server(proc, sig), 0, f"exit status after signal {sig}")


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        cleanup()
