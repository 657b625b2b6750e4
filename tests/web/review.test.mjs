// Headless Chromium drives the review page of a real `lorastudio review` server: picks made with
// the mouse and the keyboard survive a reload and land in selections.json on disk, the page's own
// summary equals the server's, nothing is fetched from elsewhere; and the --static file keeps its
// choices in localStorage and exports them with the download button.
// Run by scripts/test-web (BUILD_DIR = the build folder holding lorastudio, CHROMIUM = browser).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const exe = path.join(process.env.BUILD_DIR ? path.resolve(process.env.BUILD_DIR) : path.join(root, 'build'), 'lorastudio');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

// ---- a sheet folder, made without lorastudio: PNGs encoded here, sheet.json per the format doc

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, body) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

// An 8-bit RGB PNG of one colour.
function solidPng(width, height, [r, g, b]) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x++) row.set([r, g, b], 1 + x * 3);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const LORA_STRENGTH_SEED = [
  { role: 'x', kind: 'lora', title: 'LoRA file', values: ['name-000001', 'name-000002'] },
  { role: 'y', kind: 'strength', title: 'strength', values: ['0.5', '1'] },
  { role: 'page', kind: 'seed', title: 'seed', values: ['1', '2'] },
];

// Every combination of the axes' values as a cell with its PNG; ids from the parameters' SHA-256.
// Returns the sheet and at({x, y, ...}) -> cell id.
function makeSheet(dir, axes = LORA_STRENGTH_SEED) {
  fs.mkdirSync(path.join(dir, 'cells'), { recursive: true });
  let combos = [{}];
  for (const a of axes) combos = combos.flatMap((c) => a.values.map((_, i) => ({ ...c, [a.role]: i })));
  const value = (coords, kind, fallback) => {
    const a = axes.find((ax) => ax.kind === kind);
    return a ? a.values[coords[a.role]] : fallback;
  };
  const cells = combos.map((coords, n) => {
    const lora = value(coords, 'lora', 'name-000001');
    const seed = Number(value(coords, 'seed', '1'));
    const params = { prompt: value(coords, 'prompt', 'a photo of sks'), negative_prompt: '', steps: 20, sampler: 'Euler',
      cfg_scale: 7, seed, width: 64, height: 64, model: 'tiny', model_hash: '0123456789',
      loras: [{ name: lora, path: `out/${lora}.safetensors`, strength: Number(value(coords, 'strength', '1')),
        hash: 'abcdef012345', epoch: Number(lora.slice(-6)) }] };
    const id = crypto.createHash('sha256').update(JSON.stringify(params)).digest('hex').slice(0, 16);
    const image = `cells/${id}.png`;
    fs.writeFileSync(path.join(dir, image), solidPng(64, 64, [(60 * n) % 256, 200 - ((40 * n) % 200), 90]));
    return { id, coords, image, width: 64, height: 64, params, infotext: `${params.prompt}\nSteps: 20, Seed: ${seed}` };
  });
  const pageAxis = axes.find((a) => a.role === 'page');
  const pages = (pageAxis ? pageAxis.values : ['']).map((v, i) =>
    ({ index: i, label: pageAxis ? `${pageAxis.title}: ${v}` : '', grid: `grid-00${i}.png` }));
  const sheet = { format: 'lorastudio-sheet', version: 1, title: 'web test sheet', axes, pages, cells };
  for (const p of pages) fs.writeFileSync(path.join(dir, p.grid), solidPng(128, 128, [255, 255, 255]));
  fs.writeFileSync(path.join(dir, 'sheet.json'), JSON.stringify(sheet, null, 2));
  const at = (want) => cells.find((c) => Object.entries(want).every(([r, i]) => c.coords[r] === i)).id;
  return { sheet, at };
}

// Starts `lorastudio review DIR --port 0` and resolves with the URL it prints first.
function startServer(dir) {
  const proc = spawn(exe, ['review', dir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('no URL from lorastudio review within 20 s: ' + stderr)), 20000);
    proc.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) {
        clearTimeout(timer);
        if (/^http:\/\/127\.0\.0\.1:\d+\/$/.test(line)) resolve({ proc, url: line });
        else reject(new Error('unexpected first line: ' + line));
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`lorastudio review exited ${code}: ${stderr}`)); });
  });
}

function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    proc.on('exit', (code, signal) => resolve(code ?? signal));
    proc.kill('SIGTERM');
  });
}

// ---- the browser

let browser;
const tmpDirs = [];

function tempDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ls-review-web-'));
  tmpDirs.push(dir);
  return dir;
}

before(async () => {
  assert.ok(fs.existsSync(exe), `${exe} is missing: build lorastudio first (or set BUILD_DIR)`);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
});

// Records page errors and every request that leaves the allowed origin.
function watch(page, origin) {
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('request', (r) => {
    const u = r.url();
    if (!(u.startsWith(origin) || u.startsWith('data:') || u.startsWith('blob:'))) problems.push('request: ' + u);
  });
  return problems;
}

const cellSel = (id) => `.cell[data-id="${id}"]`;
const settled = (page) => page.waitForSelector('body[data-ready="1"][data-pending="0"]');
const classesOf = (page, id) => page.$eval(cellSel(id), (e) => [...e.classList]);

test('server: picks by click and keys survive a reload and reach selections.json', { timeout: 90000 }, async () => {
  const dir = tempDir();
  const { at } = makeSheet(dir);
  const { proc, url } = await startServer(dir);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const problems = watch(page, url);
    await page.goto(url);
    await settled(page);
    assert.equal(await page.textContent('#title'), 'web test sheet');
    assert.equal(await page.locator('#grid .cell[data-id]').count(), 4);  // page 1 of 2
    assert.deepEqual(await page.$$eval('.col-head', (e) => e.map((n) => n.textContent)), ['name-000001', 'name-000002']);
    assert.deepEqual(await page.$$eval('.row-head', (e) => e.map((n) => n.textContent)), ['0.5', '1']);
    assert.deepEqual(await page.$$eval('#pages button', (e) => e.map((n) => n.textContent)), ['seed: 1', 'seed: 2']);
    await page.waitForFunction(() => [...document.querySelectorAll('.cell img')].every((i) => i.complete && i.naturalWidth === 64));

    // 1: click opens the lightbox at full size with the params; p picks; Esc closes.
    const first = at({ x: 0, y: 0, page: 0 });
    await page.click(cellSel(first));
    await page.waitForSelector('#lightbox:not([hidden])');
    assert.equal(await page.$eval('#lb-img', (i) => i.naturalWidth), 64);
    assert.match(await page.textContent('#lb-params'), /name-000001 @ 0\.5 epoch 1/);
    await page.keyboard.press('p');
    await settled(page);
    assert.ok((await classesOf(page, first)).includes('picked'));
    await page.keyboard.press('Escape');
    await page.waitForSelector('#lightbox', { state: 'hidden' });

    // 2: the arrow moves down a row; p picks; n + text + Enter saves a note.
    const second = at({ x: 0, y: 1, page: 0 });
    await page.keyboard.press('ArrowDown');
    assert.ok((await classesOf(page, second)).includes('focused'));
    await page.keyboard.press('p');
    await page.keyboard.press('n');
    await page.keyboard.type('sharp eyes');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Escape');
    await settled(page);
    // r on the neighbour rejects it, a second r clears it again.
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('r');
    await settled(page);
    assert.ok((await classesOf(page, at({ x: 1, y: 1, page: 0 }))).includes('rejected'));
    await page.keyboard.press('r');
    await settled(page);

    await page.reload();
    await settled(page);
    assert.ok((await classesOf(page, first)).includes('picked'));
    assert.ok((await classesOf(page, second)).includes('picked'));
    assert.deepEqual(await classesOf(page, at({ x: 1, y: 1, page: 0 })), ['cell']);
    assert.match(await page.textContent(`${cellSel(second)} .note-mark`), /sharp eyes/);

    const onDisk = JSON.parse(fs.readFileSync(path.join(dir, 'selections.json'), 'utf8'));
    assert.deepEqual(onDisk, { format: 'lorastudio-selections', version: 1,
      cells: { [first]: { state: 'picked' }, [second]: { state: 'picked', note: 'sharp eyes' } } });

    // The summary panel names the most picked LoRA file, and the page's summary function
    // (used by static pages) equals the server's /api/summary.
    assert.equal(await page.$eval('#summary section[data-kind="lora"] .sum-row.top', (e) => e.dataset.value), 'name-000001');
    const [mine, theirs] = await page.evaluate(async () => [
      window.lorastudioReview.summarize(window.lorastudioReview.sheet, window.lorastudioReview.selections),
      await (await fetch('api/summary')).json()]);
    assert.deepEqual(mine, theirs);
    assert.deepEqual(theirs.groups.map((g) => g.kind), ['lora', 'strength', 'epoch', 'seed']);

    // Page tabs and zoom.
    await page.click('#pages button[data-page="1"]');
    assert.equal(await page.locator(cellSel(at({ x: 1, y: 0, page: 1 }))).count(), 1);
    assert.equal(await page.locator(cellSel(first)).count(), 0);
    const before = await page.$eval('.cell', (e) => e.getBoundingClientRect().width);
    await page.keyboard.press('+');
    const after = await page.$eval('.cell', (e) => e.getBoundingClientRect().width);
    assert.equal(after - before, 32);

    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    await stopServer(proc);
  }
});

test('server: z values as stacked blocks, arrows cross them, the lightbox follows', { timeout: 60000 }, async () => {
  const dir = tempDir();
  const { at } = makeSheet(dir, [
    { role: 'x', kind: 'lora', title: 'LoRA file', values: ['name-000003', 'name-000004'] },
    { role: 'z', kind: 'prompt', title: 'prompt', values: ['a cat', 'a dog'] },
  ]);
  const { proc, url } = await startServer(dir);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const problems = watch(page, url);
    await page.goto(url);
    await settled(page);
    assert.deepEqual(await page.$$eval('.block h2', (e) => e.map((n) => n.textContent)), ['prompt: a cat', 'prompt: a dog']);
    assert.equal(await page.locator('#pages button').count(), 0);
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.$eval('.cell.focused', (e) => e.dataset.id), at({ x: 0, z: 1 }));
    await page.keyboard.press('Enter');
    await page.waitForSelector('#lightbox:not([hidden])');
    assert.equal(await page.textContent('#lb-where'), 'LoRA file: name-000003 \u00b7 prompt: a dog');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.textContent('#lb-where'), 'LoRA file: name-000004 \u00b7 prompt: a dog');
    assert.equal(await page.textContent('#lb-infotext'), 'a dog\nSteps: 20, Seed: 1');
    await page.keyboard.press('p');
    await settled(page);
    const onDisk = JSON.parse(fs.readFileSync(path.join(dir, 'selections.json'), 'utf8'));
    assert.deepEqual(Object.keys(onDisk.cells), [at({ x: 1, z: 1 })]);
    const summary = await (await fetch(url + 'api/summary')).json();
    assert.deepEqual(summary.groups.map((g) => [g.kind, g.values[0].value, g.values[0].picked]),
      [['lora', 'name-000004', 1], ['epoch', '4', 1], ['prompt', 'a dog', 1]]);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    await stopServer(proc);
  }
});

test('server stops on SIGTERM', { timeout: 30000 }, async () => {
  const dir = tempDir();
  makeSheet(dir);
  const { proc, url } = await startServer(dir);
  const res = await fetch(url + 'api/selections');
  assert.equal(res.status, 200);
  assert.equal(await stopServer(proc), 0);
});

test('static page: choices stay in the browser and download as selections.json', { timeout: 90000 }, async () => {
  const dir = tempDir();
  const { at } = makeSheet(dir);
  const rejected = at({ x: 1, y: 0, page: 0 });
  fs.writeFileSync(path.join(dir, 'selections.json'), JSON.stringify({ format: 'lorastudio-selections', version: 1,
    cells: { [rejected]: { state: 'rejected', note: 'blurry' } } }));
  const out = path.join(dir, 'review.html');
  execFileSync(exe, ['review', dir, '--static', out]);
  // The file must stand alone: move it away from the sheet folder.
  const alone = path.join(tempDir(), 'review.html');
  fs.renameSync(out, alone);
  const fileUrl = pathToFileURL(alone).href;
  const context = await browser.newContext({ acceptDownloads: true });
  try {
    const page = await context.newPage();
    const problems = watch(page, fileUrl);
    await page.goto(fileUrl);
    await settled(page);
    await page.waitForFunction(() => [...document.querySelectorAll('.cell img')].every((i) => i.complete && i.naturalWidth === 64));
    assert.ok((await classesOf(page, rejected)).includes('rejected'));
    assert.equal(await page.isVisible('#download'), true);

    const picked = at({ x: 1, y: 1, page: 0 });
    await page.click(cellSel(picked));
    await page.click('#lb-pick');
    await page.keyboard.press('Escape');
    await page.reload();
    await settled(page);
    assert.ok((await classesOf(page, picked)).includes('picked'));
    assert.equal(await page.$eval('#summary section[data-kind="lora"] .sum-row.top', (e) => e.dataset.value), 'name-000002');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    assert.equal(download.suggestedFilename(), 'selections.json');
    const exported = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    assert.deepEqual(exported, { format: 'lorastudio-selections', version: 1,
      cells: { [rejected]: { state: 'rejected', note: 'blurry' }, [picked]: { state: 'picked' } } });
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});
