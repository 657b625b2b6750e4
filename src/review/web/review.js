// lorastudio review page (plain JS, no framework). Shows a sheet (docs/sheet-format.md) as
// grids of cells: x = columns, y = rows, z = stacked blocks, page = tabs. Picks, rejections and
// notes go to the server (PUT /api/selections/<id>) or, in a static file, to localStorage with a
// "download selections.json" button. The summary mirrors summarize() in review_store.cpp.
'use strict';
(function () {
  const ROLES = ['x', 'y', 'z', 'page'];
  const data = JSON.parse(document.getElementById('ls-data').textContent);
  const isStatic = data.mode === 'static';
  const $ = (id) => document.getElementById(id);
  const ZOOM_KEY = 'lorastudio-review:zoom';

  const st = {
    sheet: null,
    selections: emptySelections(),
    byCoords: new Map(),
    byId: new Map(),
    page: 0,
    rows: [],                // the current page's rows of cells (null where not rendered yet)
    focus: { row: 0, col: 0 },
    lightbox: null,          // id of the cell shown in the lightbox
  };
  let pending = 0;           // PUTs not answered yet
  let queue = Promise.resolve();

  function emptySelections() { return { format: 'lorastudio-selections', version: 1, cells: {} }; }
  function axis(role) { return (st.sheet.axes || []).find((a) => a.role === role) || null; }
  function coordsKey(coords) { return ROLES.map((r) => (r in coords ? coords[r] : '-')).join(','); }
  function choice(id) { return st.selections.cells[id] || { state: 'none', note: '' }; }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(text, isError) {
    $('status').textContent = text;
    $('status').classList.toggle('error', !!isError);
  }

  // ---- data ---------------------------------------------------------------------------------

  async function fetchJson(url, options) {
    const res = await fetch(url, options);
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
    return body;
  }

  function readStored() {
    try {
      const doc = JSON.parse(localStorage.getItem(data.storageKey) || 'null');
      return doc && typeof doc.cells === 'object' ? doc : null;
    } catch (e) {
      return null;
    }
  }

  async function loadAll() {
    if (isStatic) {
      st.sheet = data.sheet;
      st.selections = readStored() || data.selections || emptySelections();
      return;
    }
    const [sheet, selections] = await Promise.all([fetchJson('sheet.json'), fetchJson('api/selections')]);
    st.sheet = sheet;
    st.selections = selections;
  }

  function applyLocal(id, next) {
    const cells = Object.assign({}, st.selections.cells);
    if (next.state === 'none' && !next.note) delete cells[id];
    else cells[id] = next.note ? { state: next.state, note: next.note } : { state: next.state };
    st.selections = Object.assign(emptySelections(), { cells });
  }

  function showPending() { document.body.dataset.pending = String(pending); }

  // Shows the change at once, then saves it; PUTs go one at a time so they land in order.
  function setChoice(id, next) {
    applyLocal(id, next);
    refreshCell(id);
    if (st.lightbox === id) renderLightboxState();
    if (isStatic) {
      try {
        localStorage.setItem(data.storageKey, JSON.stringify(st.selections));
        setStatus('kept in this browser');
      } catch (e) {
        setStatus('not kept: ' + e.message + ' (download selections.json)', true);
      }
      renderSummary(summarize(st.sheet, st.selections));
      return;
    }
    pending += 1;
    showPending();
    setStatus('saving\u2026');
    queue = queue.then(async () => {
      try {
        const doc = await fetchJson('api/selections/' + encodeURIComponent(id), {
          method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(next) });
        if (pending === 1) { st.selections = doc; refreshAllCells(); }
        setStatus('saved');
      } catch (err) {
        setStatus('not saved: ' + err.message, true);
        try { st.selections = await fetchJson('api/selections'); refreshAllCells(); } catch (e) { /* keep */ }
      } finally {
        if (pending === 1) await loadSummary();
        pending -= 1;
        showPending();
      }
    });
  }

  async function loadSummary() {
    if (isStatic) return renderSummary(summarize(st.sheet, st.selections));
    try {
      renderSummary(await fetchJson('api/summary'));
    } catch (err) {
      setStatus('summary: ' + err.message, true);
    }
  }

  // Picks per LoRA file, strength, epoch (params.loras[].epoch) and other axis value; most picked
  // first, then fewer rejections, then axis order (Array.prototype.sort is stable).
  function summarize(sheet, selections) {
    const cells = sheet.cells || [];
    const axes = sheet.axes || [];
    const sel = (selections && selections.cells) || {};
    const sum = { picked: 0, rejected: 0, noted: 0, groups: [] };
    for (const c of cells) {
      const s = sel[c.id];
      if (!s) continue;
      sum.picked += s.state === 'picked' ? 1 : 0;
      sum.rejected += s.state === 'rejected' ? 1 : 0;
      sum.noted += s.note ? 1 : 0;
    }
    const sortValues = (values) => values.sort((a, b) => b.picked - a.picked || a.rejected - b.rejected);
    const count = (v, s) => { v.picked += s.state === 'picked' ? 1 : 0; v.rejected += s.state === 'rejected' ? 1 : 0; };
    const byAxis = (a) => {
      const values = a.values.map((v) => ({ value: v, picked: 0, rejected: 0 }));
      for (const c of cells) if (sel[c.id]) count(values[c.coords[a.role]], sel[c.id]);
      return { kind: a.kind, title: a.title || a.kind, values: sortValues(values) };
    };
    // Facets (a sweep's varied training values per LoRA): one group per key, in first-seen order.
    const facetGroups = new Map();
    const facetValue = (key, value) => {
      if (!facetGroups.has(key)) facetGroups.set(key, { kind: 'sweep', title: key, values: [] });
      const g = facetGroups.get(key);
      let v = g.values.find((x) => x.value === value);
      if (!v) { v = { value, picked: 0, rejected: 0 }; g.values.push(v); }
      return v;
    };
    for (const a of axes) for (const f of a.facets || []) for (const [k, v] of Object.entries(f)) facetValue(k, v);
    for (const c of cells) {
      if (!sel[c.id]) continue;
      for (const a of axes) {
        if (!a.facets) continue;
        for (const [k, v] of Object.entries(a.facets[c.coords[a.role]])) count(facetValue(k, v), sel[c.id]);
      }
    }
    for (const g of facetGroups.values()) { sortValues(g.values); sum.groups.push(g); }
    for (const kind of ['lora', 'strength']) for (const a of axes) if (a.kind === kind) sum.groups.push(byAxis(a));
    const epochsOf = (c) => [...new Set(((c.params || {}).loras || [])
      .filter((l) => Number.isInteger(l.epoch)).map((l) => l.epoch))];
    const epochs = [...new Set(cells.flatMap(epochsOf))].sort((a, b) => a - b);
    if (epochs.length) {
      const values = epochs.map((e) => ({ value: String(e), picked: 0, rejected: 0 }));
      for (const c of cells) {
        if (!sel[c.id]) continue;
        for (const e of epochsOf(c)) count(values[epochs.indexOf(e)], sel[c.id]);
      }
      sum.groups.push({ kind: 'epoch', title: 'epoch', values: sortValues(values) });
    }
    for (const a of axes) if (a.kind !== 'lora' && a.kind !== 'strength') sum.groups.push(byAxis(a));
    return sum;
  }

  // ---- grid ---------------------------------------------------------------------------------

  function buildIndex() {
    st.byCoords.clear();
    st.byId.clear();
    for (const cell of st.sheet.cells || []) {
      st.byCoords.set(coordsKey(cell.coords), cell);
      st.byId.set(cell.id, cell);
    }
  }

  function imageUrl(path) { return isStatic ? (data.images[path] || '') : 'files/' + path; }

  function describe(cell) {
    return (st.sheet.axes || []).map((a) => `${a.title || a.kind}: ${a.values[cell.coords[a.role]]}`).join(' \u00b7 ');
  }

  function layoutPage(page) {
    const ax = axis('x'), ay = axis('y'), az = axis('z'), ap = axis('page');
    const nx = ax ? ax.values.length : 1, ny = ay ? ay.values.length : 1, nz = az ? az.values.length : 1;
    const blocks = [], rows = [];
    for (let z = 0; z < nz; z++) {
      const block = { z, rows: [] };
      for (let y = 0; y < ny; y++) {
        const row = { y, cells: [] };
        for (let x = 0; x < nx; x++) {
          const coords = {};
          if (ax) coords.x = x;
          if (ay) coords.y = y;
          if (az) coords.z = z;
          if (ap) coords.page = page;
          row.cells.push(st.byCoords.get(coordsKey(coords)) || null);
        }
        block.rows.push(row);
        rows.push(row);
      }
      blocks.push(block);
    }
    return { blocks, rows, nx };
  }

  function renderGrid() {
    const grid = $('grid');
    grid.textContent = '';
    const { blocks, rows, nx } = layoutPage(st.page);
    st.rows = rows;
    const ax = axis('x'), ay = axis('y'), az = axis('z');
    const caption = [];
    if (ax) caption.push(`columns: ${ax.title || ax.kind}`);
    if (ay) caption.push(`rows: ${ay.title || ay.kind}`);
    if (az) caption.push(`blocks: ${az.title || az.kind}`);
    if (caption.length) grid.append(el('p', 'axes-caption', caption.join(' \u00b7 ')));
    for (const block of blocks) {
      const section = el('section', 'block');
      if (az) section.append(el('h2', null, `${az.title || az.kind}: ${az.values[block.z]}`));
      const table = el('div', 'table');
      table.style.gridTemplateColumns = `${ay ? 'auto ' : ''}repeat(${nx}, var(--cell))`;
      if (ax) {
        if (ay) table.append(el('div', 'corner', `${ay.title || ay.kind} \u2193 ${ax.title || ax.kind} \u2192`));
        for (const v of ax.values) table.append(el('div', 'col-head', v));
      }
      for (const row of block.rows) {
        if (ay) table.append(el('div', 'row-head', ay.values[row.y]));
        const r = rows.indexOf(row);
        row.cells.forEach((cell, c) => table.append(cellElement(cell, r, c)));
      }
      section.append(table);
      grid.append(section);
    }
  }

  function cellElement(cell, row, col) {
    const fig = el('figure', 'cell');
    fig.dataset.row = row;
    fig.dataset.col = col;
    if (!cell) {
      fig.classList.add('empty');
      fig.title = 'not rendered yet';
      return fig;
    }
    fig.dataset.id = cell.id;
    const img = document.createElement('img');
    img.loading = 'lazy';
    img.decoding = 'async';
    img.alt = describe(cell);
    img.src = imageUrl(cell.image);
    fig.append(img, el('span', 'badge'), el('span', 'note-mark'));
    fig.addEventListener('click', () => { setFocus(row, col); openLightbox(cell.id); });
    paintCell(fig, cell.id);
    return fig;
  }

  function paintCell(fig, id) {
    const c = choice(id);
    fig.classList.toggle('picked', c.state === 'picked');
    fig.classList.toggle('rejected', c.state === 'rejected');
    const badge = fig.querySelector('.badge');
    badge.textContent = c.state === 'picked' ? '\u2713' : c.state === 'rejected' ? '\u2717' : '';
    badge.title = c.state === 'none' ? '' : c.state;
    const mark = fig.querySelector('.note-mark');
    mark.textContent = c.note ? '\u270e ' + c.note : '';
    mark.hidden = !c.note;
    fig.title = c.note || '';
  }

  function refreshCell(id) {
    const fig = $('grid').querySelector(`.cell[data-id="${CSS.escape(id)}"]`);
    if (fig) paintCell(fig, id);
  }

  function refreshAllCells() {
    for (const fig of $('grid').querySelectorAll('.cell[data-id]')) paintCell(fig, fig.dataset.id);
    if (st.lightbox) renderLightboxState();
  }

  function focusedCell() {
    const row = st.rows[st.focus.row];
    return row ? row.cells[st.focus.col] || null : null;
  }

  function setFocus(row, col) {
    st.focus = { row, col };
    for (const fig of $('grid').querySelectorAll('.cell.focused')) fig.classList.remove('focused');
    const fig = $('grid').querySelector(`.cell[data-row="${row}"][data-col="${col}"]`);
    if (fig) {
      fig.classList.add('focused');
      fig.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    }
  }

  function focusFirst() {
    for (let r = 0; r < st.rows.length; r++) {
      const c = st.rows[r].cells.findIndex((cell) => cell);
      if (c >= 0) return setFocus(r, c);
    }
    setFocus(0, 0);
  }

  // Steps in a direction, over gaps, to the next rendered cell.
  function move(dr, dc) {
    let { row, col } = st.focus;
    for (;;) {
      row += dr;
      col += dc;
      if (row < 0 || row >= st.rows.length || col < 0 || col >= st.rows[row].cells.length) return;
      if (st.rows[row].cells[col]) break;
    }
    commitNote();
    setFocus(row, col);
    if (st.lightbox) openLightbox(st.rows[row].cells[col].id);
  }

  function pageCount() { const a = axis('page'); return a ? a.values.length : 1; }

  function renderPages() {
    const nav = $('pages');
    nav.textContent = '';
    const ap = axis('page');
    if (!ap) return;
    const pages = st.sheet.pages || [];
    ap.values.forEach((value, i) => {
      const label = (pages[i] && pages[i].label) || `${ap.title || ap.kind}: ${value}`;
      const button = el('button', i === st.page ? 'active' : null, label);
      button.type = 'button';
      button.dataset.page = i;
      button.addEventListener('click', () => setPage(i));
      nav.append(button);
    });
  }

  function setPage(page) {
    if (page < 0 || page >= pageCount() || page === st.page) return;
    closeLightbox();
    st.page = page;
    renderPages();
    renderGrid();
    focusFirst();
  }

  // ---- lightbox -----------------------------------------------------------------------------

  function openLightbox(id) {
    st.lightbox = id;
    $('lightbox').hidden = false;
    const cell = st.byId.get(id);
    $('lb-img').src = imageUrl(cell.image);
    $('lb-img').alt = describe(cell);
    $('lb-where').textContent = describe(cell);
    renderParams(cell.params || {});
    $('lb-infotext').textContent = cell.infotext || '';
    $('lb-note').value = choice(id).note || '';
    renderLightboxState();
  }

  function closeLightbox() {
    if (!st.lightbox) return;
    commitNote();
    st.lightbox = null;
    $('lightbox').hidden = true;
    $('lb-note').blur();
  }

  function renderLightboxState() {
    const c = choice(st.lightbox);
    $('lb-state').textContent = c.state === 'none' ? '' : c.state;
    $('lb-state').className = c.state;
    $('lb-img').className = c.state;
    $('lb-pick').setAttribute('aria-pressed', String(c.state === 'picked'));
    $('lb-reject').setAttribute('aria-pressed', String(c.state === 'rejected'));
    if (document.activeElement !== $('lb-note')) $('lb-note').value = c.note || '';
  }

  function renderParams(params) {
    const table = $('lb-params');
    table.textContent = '';
    const add = (name, value) => {
      const tr = el('tr');
      tr.append(el('th', null, name), el('td', null, String(value)));
      table.append(tr);
    };
    const shown = new Set(['loras', 'width', 'height', 'model', 'model_hash']);
    for (const key of ['prompt', 'negative_prompt', 'steps', 'sampler', 'cfg_scale', 'seed']) {
      if (key in params) { add(key, params[key]); shown.add(key); }
    }
    if ('width' in params) add('size', `${params.width} \u00d7 ${params.height}`);
    if ('model' in params) add('model', params.model + (params.model_hash ? ` [${params.model_hash}]` : ''));
    for (const l of params.loras || []) {
      const parts = [`${l.name} @ ${l.strength}`];
      if (Number.isInteger(l.epoch)) parts.push(`epoch ${l.epoch}`);
      if (l.hash) parts.push(`[${l.hash}]`);
      add('lora', parts.join(' '));
    }
    for (const [key, value] of Object.entries(params)) {
      if (!shown.has(key)) add(key, typeof value === 'object' ? JSON.stringify(value) : value);
    }
  }

  function toggle(state) {
    const cell = st.lightbox ? st.byId.get(st.lightbox) : focusedCell();
    if (!cell) return;
    const c = choice(cell.id);
    const note = st.lightbox === cell.id ? $('lb-note').value : c.note || '';
    setChoice(cell.id, { state: c.state === state ? 'none' : state, note });
  }

  function commitNote() {
    if (!st.lightbox) return;
    const c = choice(st.lightbox);
    const note = $('lb-note').value;
    if (note !== (c.note || '')) setChoice(st.lightbox, { state: c.state, note });
  }

  function editNote() {
    const cell = st.lightbox ? st.byId.get(st.lightbox) : focusedCell();
    if (!cell) return;
    if (st.lightbox !== cell.id) openLightbox(cell.id);
    $('lb-note').focus();
  }

  // ---- controls -----------------------------------------------------------------------------

  function setZoom(px) {
    const zoom = $('zoom');
    const value = Math.max(Number(zoom.min), Math.min(Number(zoom.max), Math.round(px)));
    zoom.value = String(value);
    document.documentElement.style.setProperty('--cell', value + 'px');
    try { localStorage.setItem(ZOOM_KEY, String(value)); } catch (e) { /* zoom is not worth an error */ }
  }

  function initialZoom() {
    let stored = null;
    try { stored = Number(localStorage.getItem(ZOOM_KEY)) || null; } catch (e) { stored = null; }
    const first = (st.sheet.cells || [])[0];
    return stored || Math.min(256, (first && first.width) || 256);
  }

  function renderSummary(sum) {
    const box = $('summary');
    box.textContent = '';
    box.append(el('h2', null, 'summary'));
    box.append(el('p', 'sum-total', `${sum.picked} picked \u00b7 ${sum.rejected} rejected \u00b7 ${sum.noted} noted`));
    for (const group of sum.groups) {
      const section = el('section', 'sum-group');
      section.dataset.kind = group.kind;
      section.append(el('h3', null, group.title === group.kind ? group.title : `${group.title} (${group.kind})`));
      const best = Math.max(0, ...group.values.map((v) => v.picked));
      for (const v of group.values) {
        const top = best > 0 && v.picked === best;
        const row = el('div', 'sum-row' + (top ? ' top' : ''));
        row.dataset.value = v.value;
        row.append(el('span', 'sum-value', v.value + (top ? ' \u2605 most picked' : '')),
          el('span', 'sum-count', `${v.picked} picked, ${v.rejected} rejected`));
        const bar = el('div', 'bar');
        bar.style.width = best > 0 ? `${(100 * v.picked) / best}%` : '0';
        row.append(bar);
        section.append(row);
      }
      box.append(section);
    }
    // Figures the sheet's maker put in the folder (a sweep's loss curves): click opens full size.
    for (const f of st.sheet.figures || []) {
      const fig = el('figure', 'sum-figure');
      const img = el('img');
      img.src = imageUrl(f.image);
      img.alt = f.title;
      const link = el('a');
      link.href = img.src;
      link.target = '_blank';
      link.append(img);
      fig.append(link, el('figcaption', null, f.title));
      box.append(fig);
    }
    document.body.dataset.summaryPicked = String(sum.picked);
  }

  function download() {
    const blob = new Blob([JSON.stringify(st.selections, null, 2) + '\n'], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'selections.json';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    if (target.matches && target.matches('input, textarea, select')) return;
    if (target.matches && target.matches('button') && (e.key === 'Enter' || e.key === ' ')) return;
    switch (e.key) {
      case 'ArrowLeft': move(0, -1); break;
      case 'ArrowRight': move(0, 1); break;
      case 'ArrowUp': move(-1, 0); break;
      case 'ArrowDown': move(1, 0); break;
      case 'Enter': case ' ': { const c = focusedCell(); if (c && !st.lightbox) openLightbox(c.id); break; }
      case 'Escape': closeLightbox(); break;
      case 'p': toggle('picked'); break;
      case 'r': toggle('rejected'); break;
      case 'n': editNote(); break;
      case '+': case '=': setZoom(Number($('zoom').value) + 32); break;
      case '-': setZoom(Number($('zoom').value) - 32); break;
      case 'PageDown': setPage(st.page + 1); break;
      case 'PageUp': setPage(st.page - 1); break;
      default: return;
    }
    e.preventDefault();
  }

  function onNoteKey(e) {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      commitNote();
      $('lb-note').blur();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      $('lb-note').value = choice(st.lightbox).note || '';  // drop the edit
      $('lb-note').blur();
    }
  }

  function wireControls() {
    document.addEventListener('keydown', onKey);
    $('lb-note').addEventListener('keydown', onNoteKey);
    $('lb-note').addEventListener('change', commitNote);
    $('lb-close').addEventListener('click', closeLightbox);
    $('lb-pick').addEventListener('click', () => toggle('picked'));
    $('lb-reject').addEventListener('click', () => toggle('rejected'));
    $('zoom').addEventListener('input', () => setZoom(Number($('zoom').value)));
    $('zoom-in').addEventListener('click', () => setZoom(Number($('zoom').value) + 32));
    $('zoom-out').addEventListener('click', () => setZoom(Number($('zoom').value) - 32));
    $('toggle-summary').addEventListener('click', () => {
      const box = $('summary');
      box.hidden = !box.hidden;
      $('toggle-summary').setAttribute('aria-pressed', String(!box.hidden));
    });
    $('download').addEventListener('click', download);
  }

  async function init() {
    wireControls();
    showPending();
    try {
      await loadAll();
    } catch (err) {
      setStatus('cannot load the sheet: ' + err.message, true);
      return;
    }
    buildIndex();
    const title = st.sheet.title || 'lorastudio review';
    $('title').textContent = title;
    document.title = title + ' \u2013 lorastudio review';
    $('download').hidden = !isStatic;
    setZoom(initialZoom());
    renderPages();
    renderGrid();
    focusFirst();
    await loadSummary();
    document.body.dataset.ready = '1';
  }

  // For tests and the curious: the summary function and the live state.
  window.lorastudioReview = { summarize, get sheet() { return st.sheet; }, get selections() { return st.selections; } };
  init();
})();
