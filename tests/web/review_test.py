# Headless Chromium drives the review page of a real `lorastudio review` server: picks made with
# the mouse and the keyboard survive a reload and land in selections.json on disk, the page's own
# summary equals the server's, nothing is fetched from elsewhere; and the --static file keeps its
# choices in localStorage and exports them with the download button.
# Run by scripts/test-web (BUILD_DIR = the build folder holding lorastudio, CHROMIUM = browser).
import contextlib
import hashlib
import json
import pathlib
import struct
import subprocess
import unittest
import urllib.request
import zlib

from web_harness import (BrowserTest, EXE, cleanup, fetch_json, start_lorastudio_server, stop_server,
                         time_limit, watch)
from web_harness import temp_dir as harness_temp_dir

# ---- a sheet folder, made without lorastudio: PNGs encoded here, sheet.json per the format doc


def _chunk(kind, body):
    head = struct.pack(">I", len(body)) + kind
    return head + body + struct.pack(">I", zlib.crc32(head[4:] + body))


def solid_png(width, height, rgb):
    """An 8-bit RGB PNG of one colour."""
    ihdr = struct.pack(">II", width, height) + bytes([8, 2, 0, 0, 0])
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(row * height))
            + _chunk(b"IEND", b""))


def js_number(text):
    # Sheets are written by JSON tools where 1 is 1, not 1.0 (and the ids hash that text): integral
    # values stay ints so this fixture is byte for byte the one the former Node.js test wrote.
    v = float(text)
    return int(v) if v.is_integer() else v


def js_json(value):
    """JSON.stringify(value): no spaces, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


LORA_STRENGTH_SEED = [
    {"role": "x", "kind": "lora", "title": "LoRA file", "values": ["name-000001", "name-000002"]},
    {"role": "y", "kind": "strength", "title": "strength", "values": ["0.5", "1"]},
    {"role": "page", "kind": "seed", "title": "seed", "values": ["1", "2"]},
]


def make_sheet(folder, axes=LORA_STRENGTH_SEED, epoch_of=lambda lora: js_number(lora[-6:]), extra=None):
    """Every combination of the axes' values as a cell with its PNG; ids from the parameters'
    SHA-256. Returns the sheet and at({role: index, ...}) -> cell id."""
    folder = pathlib.Path(folder)
    (folder / "cells").mkdir(parents=True, exist_ok=True)
    combos = [{}]
    for a in axes:
        combos = [{**c, a["role"]: i} for c in combos for i in range(len(a["values"]))]

    def value(coords, kind, fallback):
        a = next((ax for ax in axes if ax["kind"] == kind), None)
        return a["values"][coords[a["role"]]] if a else fallback

    cells = []
    for n, coords in enumerate(combos):
        lora = value(coords, "lora", "name-000001")
        seed = js_number(value(coords, "seed", "1"))
        params = {"prompt": value(coords, "prompt", "a photo of sks"), "negative_prompt": "", "steps": 20,
                  "sampler": "Euler", "cfg_scale": 7, "seed": seed, "width": 64, "height": 64,
                  "model": "tiny", "model_hash": "0123456789",
                  "loras": [{"name": lora, "path": f"out/{lora}.safetensors",
                             "strength": js_number(value(coords, "strength", "1")),
                             "hash": "abcdef012345", "epoch": epoch_of(lora)}]}
        cell_id = hashlib.sha256(js_json(params).encode()).hexdigest()[:16]
        image = f"cells/{cell_id}.png"
        (folder / image).write_bytes(solid_png(64, 64, [(60 * n) % 256, 200 - ((40 * n) % 200), 90]))
        cells.append({"id": cell_id, "coords": coords, "image": image, "width": 64, "height": 64,
                      "params": params, "infotext": f"{params['prompt']}\nSteps: 20, Seed: {seed}"})
    page_axis = next((a for a in axes if a["role"] == "page"), None)
    pages = [{"index": i, "label": f"{page_axis['title']}: {v}" if page_axis else "", "grid": f"grid-00{i}.png"}
             for i, v in enumerate(page_axis["values"] if page_axis else [""])]
    sheet = {"format": "lorastudio-sheet", "version": 1, "title": "web test sheet", "axes": axes,
             "pages": pages, "cells": cells, **(extra or {})}
    for p in pages:
        (folder / p["grid"]).write_bytes(solid_png(128, 128, [255, 255, 255]))
    (folder / "sheet.json").write_text(json.dumps(sheet, indent=2, ensure_ascii=False))

    def at(want):
        return next(c["id"] for c in cells if all(c["coords"].get(r) == i for r, i in want.items()))
    return sheet, at


# ---- the server

def start_server(folder):
    return start_lorastudio_server("review", folder)


# ---- the browser

def temp_dir():
    return harness_temp_dir("ls-review-web-")


def cell_sel(cell_id):
    return f'.cell[data-id="{cell_id}"]'


def settled(page):
    page.wait_for_selector('body[data-ready="1"][data-pending="0"]')


def classes_of(page, cell_id):
    return page.eval_on_selector(cell_sel(cell_id), "e => [...e.classList]")


ALL_IMAGES_LOADED = "() => [...document.querySelectorAll('.cell img')].every((i) => i.complete && i.naturalWidth === 64)"


def _kind(v):
    # JavaScript's strict deep equality tells true from 1 but not 1 from 1.0.
    return "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__


def _same_types(a, b):
    if _kind(a) != _kind(b):
        return False
    if isinstance(a, dict):
        return all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return all(_same_types(x, y) for x, y in zip(a, b))
    return True


class ReviewPage(BrowserTest):
    @contextlib.contextmanager
    def served_page(self, folder):
        """`lorastudio review folder` and a browser page on it, loaded; yields (page, problems, url)."""
        proc, url = start_server(folder)
        context = self.browser.new_context()
        try:
            page = context.new_page()
            problems = watch(page, url)
            page.goto(url)
            settled(page)
            yield page, problems, url
        finally:
            context.close()
            stop_server(proc)

    def assert_page_summary_is_the_servers(self, page):
        """The page's summary function (static pages use it) gives the server's /api/summary."""
        mine, theirs = page.evaluate("""async () => [
            window.lorastudioReview.summarize(window.lorastudioReview.sheet, window.lorastudioReview.selections),
            await (await fetch('api/summary')).json()]""")
        self.assert_deep_equal(mine, theirs)
        return theirs

    def assert_deep_equal(self, actual, expected):
        self.assertEqual(actual, expected)
        self.assertTrue(_same_types(actual, expected), f"same values, different JSON types: {actual!r} vs {expected!r}")

    # unittest runs tests in name order; the numbers keep the order of the original suite.
    @time_limit(90)
    def test_1_server_picks_by_click_and_keys_survive_a_reload_and_reach_selections_json(self):
        folder = temp_dir()
        _, at = make_sheet(folder)
        with self.served_page(folder) as (page, problems, url):
            self.assertEqual(page.text_content("#title"), "web test sheet")
            self.assertEqual(page.locator("#grid .cell[data-id]").count(), 4)  # page 1 of 2
            self.assert_deep_equal(page.eval_on_selector_all(".col-head", "e => e.map((n) => n.textContent)"),
                                   ["name-000001", "name-000002"])
            self.assert_deep_equal(page.eval_on_selector_all(".row-head", "e => e.map((n) => n.textContent)"),
                                   ["0.5", "1"])
            self.assert_deep_equal(page.eval_on_selector_all("#pages button", "e => e.map((n) => n.textContent)"),
                                   ["seed: 1", "seed: 2"])
            page.wait_for_function(ALL_IMAGES_LOADED)

            # 1: click opens the lightbox at full size with the params; p picks; Esc closes.
            first = at({"x": 0, "y": 0, "page": 0})
            page.click(cell_sel(first))
            page.wait_for_selector("#lightbox:not([hidden])")
            self.assertEqual(page.eval_on_selector("#lb-img", "i => i.naturalWidth"), 64)
            self.assertRegex(page.text_content("#lb-params"), r"name-000001 @ 0\.5 epoch 1")
            page.keyboard.press("p")
            settled(page)
            self.assertIn("picked", classes_of(page, first))
            page.keyboard.press("Escape")
            page.wait_for_selector("#lightbox", state="hidden")

            # 2: the arrow moves down a row; p picks; n + text + Enter saves a note.
            second = at({"x": 0, "y": 1, "page": 0})
            page.keyboard.press("ArrowDown")
            self.assertIn("focused", classes_of(page, second))
            page.keyboard.press("p")
            page.keyboard.press("n")
            page.keyboard.type("sharp eyes")
            page.keyboard.press("Enter")
            page.keyboard.press("Escape")
            settled(page)
            # r on the neighbour rejects it, a second r clears it again.
            page.keyboard.press("ArrowRight")
            page.keyboard.press("r")
            settled(page)
            self.assertIn("rejected", classes_of(page, at({"x": 1, "y": 1, "page": 0})))
            page.keyboard.press("r")
            settled(page)

            page.reload()
            settled(page)
            self.assertIn("picked", classes_of(page, first))
            self.assertIn("picked", classes_of(page, second))
            self.assert_deep_equal(classes_of(page, at({"x": 1, "y": 1, "page": 0})), ["cell"])
            self.assertRegex(page.text_content(f"{cell_sel(second)} .note-mark"), r"sharp eyes")

            on_disk = json.loads((pathlib.Path(folder) / "selections.json").read_text(encoding="utf-8"))
            self.assert_deep_equal(on_disk, {"format": "lorastudio-selections", "version": 1, "cells": {
                first: {"state": "picked"}, second: {"state": "picked", "note": "sharp eyes"}}})

            # The summary panel names the most picked LoRA file, and the page's summary function
            # (used by static pages) equals the server's /api/summary.
            self.assertEqual(page.eval_on_selector('#summary section[data-kind="lora"] .sum-row.top',
                                                   "e => e.dataset.value"), "name-000001")
            theirs = self.assert_page_summary_is_the_servers(page)
            self.assert_deep_equal([g["kind"] for g in theirs["groups"]], ["lora", "strength", "epoch", "seed"])

            # Page tabs and zoom.
            page.click('#pages button[data-page="1"]')
            self.assertEqual(page.locator(cell_sel(at({"x": 1, "y": 0, "page": 1}))).count(), 1)
            self.assertEqual(page.locator(cell_sel(first)).count(), 0)
            before = page.eval_on_selector(".cell", "e => e.getBoundingClientRect().width")
            page.keyboard.press("+")
            after = page.eval_on_selector(".cell", "e => e.getBoundingClientRect().width")
            self.assertEqual(after - before, 32)

            self.assert_deep_equal(problems, [])

    @time_limit(60)
    def test_2_server_z_values_as_stacked_blocks_arrows_cross_them_the_lightbox_follows(self):
        folder = temp_dir()
        _, at = make_sheet(folder, [
            {"role": "x", "kind": "lora", "title": "LoRA file", "values": ["name-000003", "name-000004"]},
            {"role": "z", "kind": "prompt", "title": "prompt", "values": ["a cat", "a dog"]},
        ])
        with self.served_page(folder) as (page, problems, url):
            self.assert_deep_equal(page.eval_on_selector_all(".block h2", "e => e.map((n) => n.textContent)"),
                                   ["prompt: a cat", "prompt: a dog"])
            self.assertEqual(page.locator("#pages button").count(), 0)
            page.keyboard.press("ArrowDown")
            self.assertEqual(page.eval_on_selector(".cell.focused", "e => e.dataset.id"), at({"x": 0, "z": 1}))
            page.keyboard.press("Enter")
            page.wait_for_selector("#lightbox:not([hidden])")
            self.assertEqual(page.text_content("#lb-where"), "LoRA file: name-000003 \u00b7 prompt: a dog")
            page.keyboard.press("ArrowRight")
            self.assertEqual(page.text_content("#lb-where"), "LoRA file: name-000004 \u00b7 prompt: a dog")
            self.assertEqual(page.text_content("#lb-infotext"), "a dog\nSteps: 20, Seed: 1")
            page.keyboard.press("p")
            settled(page)
            on_disk = json.loads((pathlib.Path(folder) / "selections.json").read_text(encoding="utf-8"))
            self.assert_deep_equal(list(on_disk["cells"]), [at({"x": 1, "z": 1})])
            summary = fetch_json(url + "api/summary")
            self.assert_deep_equal([[g["kind"], g["values"][0]["value"], g["values"][0]["picked"]]
                                    for g in summary["groups"]],
                                   [["lora", "name-000004", 1], ["epoch", "4", 1], ["prompt", "a dog", 1]])
            self.assert_deep_equal(problems, [])

    @time_limit(30)
    def test_3_server_stops_on_sigterm(self):
        folder = temp_dir()
        make_sheet(folder)
        proc, url = start_server(folder)
        try:
            with urllib.request.urlopen(url + "api/selections", timeout=10) as res:
                self.assertEqual(res.status, 200)
        except BaseException:
            stop_server(proc)
            raise
        self.assertEqual(stop_server(proc), 0)

    @time_limit(90)
    def test_4_static_page_choices_stay_in_the_browser_and_download_as_selections_json(self):
        folder = pathlib.Path(temp_dir())
        _, at = make_sheet(folder)
        rejected = at({"x": 1, "y": 0, "page": 0})
        (folder / "selections.json").write_text(js_json({"format": "lorastudio-selections", "version": 1,
                                                         "cells": {rejected: {"state": "rejected", "note": "blurry"}}}))
        out = folder / "review.html"
        subprocess.run([str(EXE), "review", str(folder), "--static", str(out)], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60)
        # The file must stand alone: move it away from the sheet folder.
        alone = pathlib.Path(temp_dir()) / "review.html"
        out.rename(alone)
        file_url = alone.as_uri()
        context = self.browser.new_context(accept_downloads=True)
        try:
            page = context.new_page()
            problems = watch(page, file_url)
            page.goto(file_url)
            settled(page)
            page.wait_for_function(ALL_IMAGES_LOADED)
            self.assertIn("rejected", classes_of(page, rejected))
            self.assertIs(page.is_visible("#download"), True)

            picked = at({"x": 1, "y": 1, "page": 0})
            page.click(cell_sel(picked))
            page.click("#lb-pick")
            page.keyboard.press("Escape")
            page.reload()
            settled(page)
            self.assertIn("picked", classes_of(page, picked))
            self.assertEqual(page.eval_on_selector('#summary section[data-kind="lora"] .sum-row.top',
                                                   "e => e.dataset.value"), "name-000002")

            with page.expect_download() as download_info:
                page.click("#download")
            download = download_info.value
            self.assertEqual(download.suggested_filename, "selections.json")
            exported = json.loads(pathlib.Path(download.path()).read_text(encoding="utf-8"))
            self.assert_deep_equal(exported, {"format": "lorastudio-selections", "version": 1, "cells": {
                rejected: {"state": "rejected", "note": "blurry"}, picked: {"state": "picked"}}})
            self.assert_deep_equal(problems, [])
        finally:
            context.close()

    @time_limit(60)
    def test_5_server_sweep_sheet_counts_picks_per_sweep_value_and_shows_the_loss_plot(self):
        # A sweep's sheet (docs/sheet-format.md facets and figures): the LoRA axis is runs x epochs,
        # each value carrying its run's varied training values.
        folder = pathlib.Path(temp_dir())
        runs = [("lr1e-4_dim4", "1e-4", "4"), ("lr1e-4_dim8", "1e-4", "8"), ("lr5e-5_dim4", "5e-5", "4")]
        values, facets = [], []
        for label, lr, dim in runs:
            for epoch in (1, 2):
                values.append(f"{label} e{epoch}")
                facets.append({"learning_rate": lr, "network_dim": dim})
        (folder / "loss.png").write_bytes(solid_png(96, 54, [250, 250, 250]))
        _, at = make_sheet(folder, [
            {"role": "x", "kind": "strength", "title": "LoRA strength", "values": ["0.5", "1"]},
            {"role": "y", "kind": "lora", "title": "run, epoch", "values": values, "facets": facets},
        ], epoch_of=lambda v: int(v[-1]), extra={"figures": [{"title": "training loss, all runs", "image": "loss.png"}]})
        with self.served_page(folder) as (page, problems, url):
            page.wait_for_function(ALL_IMAGES_LOADED)
            # Three picks with the mouse (lr 1e-4 twice, 5e-5 once; dim 4 twice), one rejection by key.
            picks = [at({"x": 1, "y": 1}), at({"x": 0, "y": 3}), at({"x": 1, "y": 5})]
            for cell in picks:
                page.click(cell_sel(cell))
                page.click("#lb-pick")
                page.keyboard.press("Escape")
                settled(page)
            rejected = at({"x": 0, "y": 4})
            page.click(cell_sel(rejected))
            page.keyboard.press("r")
            page.keyboard.press("Escape")
            settled(page)

            rows = page.eval_on_selector_all(
                '#summary section[data-kind="sweep"]',
                """s => s.map((g) => [g.querySelector('h3').textContent,
                    [...g.querySelectorAll('.sum-row')].map((r) => [r.dataset.value, r.querySelector('.sum-count').textContent])])""")
            self.assert_deep_equal(rows, [
                ["learning_rate (sweep)", [["1e-4", "2 picked, 0 rejected"], ["5e-5", "1 picked, 1 rejected"]]],
                ["network_dim (sweep)", [["4", "2 picked, 1 rejected"], ["8", "1 picked, 0 rejected"]]]])
            self.assertEqual(page.eval_on_selector('#summary section[data-kind="sweep"] .sum-row.top',
                                                   "e => e.dataset.value"), "1e-4")
            theirs = self.assert_page_summary_is_the_servers(page)
            self.assert_deep_equal([g["title"] for g in theirs["groups"]][:2], ["learning_rate", "network_dim"])
            # The loss plot is on the page, loaded from the sheet folder.
            page.wait_for_function("() => { const i = document.querySelector('.sum-figure img'); return i && i.complete && i.naturalWidth === 96; }")
            self.assertEqual(page.text_content(".sum-figure figcaption"), "training loss, all runs")

            on_disk = json.loads((folder / "selections.json").read_text(encoding="utf-8"))
            self.assert_deep_equal(on_disk, {"format": "lorastudio-selections", "version": 1, "cells": {
                **{c: {"state": "picked"} for c in picks}, rejected: {"state": "rejected"}}})
            self.assert_deep_equal(problems, [])


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        cleanup()
