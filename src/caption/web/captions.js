// lorastudio caption editor (plain JS, no framework; the API is docs/captions.md). One card per
// image is built once per image list and a filter only hides cards, so 2,000 images filter without
// rebuilding the DOM; thumbnails load lazily. Every write names the caption it replaces (its hash)
// and each save or bulk operation's history runs go on the page's own undo stack.
'use strict';
(function () {
  const data = JSON.parse(document.getElementById('ls-data').textContent);  // {"mode":"server"}
  const $ = (id) => document.getElementById(id);
  const VIEW_KEY = 'lorastudio-captions:view', UNDO_KEY = 'lorastudio-captions:undo';
  const TAG_ROWS = 400;      // tag rows drawn at once; the filter box reaches the rest
  const SEARCH_DEBOUNCE_MS = 150, TOKENS_DEBOUNCE_MS = 200, RETAG_DEBOUNCE_MS = 250;

  const st = {
    roots: [], tokenizer: false, limits: [75, 225],
    images: [], byId: new Map(), cards: new Map(),
    shown: [], shownIndex: new Map(),  // ids matching the search, in image order
    current: null, selected: new Set(), anchor: null,
    tags: [], undo: [], history: [],
    editor: null,    // {id, hash, record}: the caption as it was when the editor opened
    conflict: null,  // the 409 answer while the conflict dialog is up
  };
  let ops = 0;       // user operations in flight (saves, bulk edits, undos, reloads)
  let tokenSeq = 0, tokenTimer = 0, searchTimer = 0, retagTimer = 0;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const encodePath = (p) => p.split('/').map(encodeURIComponent).join('/');
  const thumbUrl = (img) => `thumbs/${img.root}/${encodePath(img.image)}`;
  const fileUrl = (img) => `files/${img.root}/${encodePath(img.image)}`;
  // The same split as caption_tags() in caption_store.cpp: at ',', trimmed, empty pieces dropped.
  const splitTags = (text) => text.split(',').map((t) => t.trim()).filter((t) => t);
  const normTag = (t) => t.toLowerCase().replace(/_/g, ' ').replace(/\s+/g, ' ').trim();
  const captionPath = (id) => {
    const img = st.byId.get(id);
    if (!img) return id;
    return st.roots.length > 1 ? `${st.roots[img.root].dir}/${img.caption_path}` : img.caption_path;
  };
  const orderedSelection = () => st.images.filter((i) => st.selected.has(i.id)).map((i) => i.id);

  // ---- messages and requests ------------------------------------------------------------------

  function showMessage(text, opts) {
    const o = opts || {};
    const box = $('message');
    $('message-text').textContent = text;
    const list = $('message-list');
    list.textContent = '';
    for (const item of o.items || []) {
      const li = el('li', null, item.text);
      if (item.id) li.dataset.id = item.id;
      list.append(li);
    }
    box.classList.toggle('error', !!o.error);
    box.setAttribute('role', o.error ? 'alert' : 'status');
    box.hidden = false;
  }
  const showError = (what, err) => showMessage(`${what}: ${err.message}`, { error: true });

  function setBusy(delta) {
    ops += delta;
    document.body.dataset.busy = String(ops);
  }

  // {status, body}; never throws for an HTTP status, only for a network failure.
  async function api(method, url, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(url, init);
    let json = null;
    try { json = await res.json(); } catch (e) { json = null; }
    return { status: res.status, ok: res.ok, body: json };
  }

  async function call(method, url, body) {
    const r = await api(method, url, body);
    if (!r.ok) throw new Error((r.body && r.body.error) || `${r.status} ${url}`);
    return r.body;
  }

  // Runs one user operation; the page's data-busy counts them (tests wait for 0).
  async function track(what, fn) {
    setBusy(1);
    try {
      return await fn();
    } catch (err) {
      showError(what, err);
      return undefined;
    } finally {
      setBusy(-1);
    }
  }

  // ---- images and cards -----------------------------------------------------------------------

  function index(img) {
    img.lc = (img.text || '').toLowerCase();
    img.ntags = new Set(img.tags.map(normTag));
    return img;
  }

  function tokenClass(n) {
    if (n === null || n === undefined) return '';
    return n > st.limits[1] ? 'error' : n > st.limits[0] ? 'warn' : '';
  }

  function tokenText(n) {
    if (!st.tokenizer) return 'tokens: start with --tokenizer';
    if (n === null || n === undefined) return '';
    return `${n} / ${n > st.limits[0] ? st.limits[1] : st.limits[0]}`;
  }

  function flagsOf(img) {
    const flags = [];
    if (img.missing) flags.push(['missing', 'no caption file']);
    if (img.empty) flags.push(['empty', 'the caption file is empty']);
    if (img.duplicate) flags.push(['duplicate', 'another image has the same caption']);
    if (img.refused) flags.push(['refused', (img.problems || []).join('\n') || 'dataset check refuses it']);
    const n = img.tokens;
    if (n > st.limits[1]) flags.push(['too-long', `over ${st.limits[1]} tokens: the rest is cut off`]);
    else if (n > st.limits[0]) flags.push(['long', `over ${st.limits[0]} tokens: spills into a second window`]);
    return flags;
  }

  function paintFlags(box, img) {
    box.textContent = '';
    for (const [name, why] of flagsOf(img)) {
      const f = el('span', `flag ${name}`, name.replace('-', ' '));
      f.title = why;
      f.dataset.flag = name;
      box.append(f);
    }
  }

  // One card's nodes, parsed once; each image clones it (about twice as fast as building each).
  const CARD = (() => {
    const t = document.createElement('template');
    t.innerHTML = '<article class="card" data-testid="card" tabindex="-1"><label class="pick">' +
      '<input type="checkbox" data-testid="select"></label><div class="thumb"><img loading="lazy" decoding="async">' +
      '</div><div class="info"><div class="name"></div><p class="caption" data-testid="caption"></p>' +
      '<div class="meta"><span class="flags"></span><span class="tokens"></span></div></div></article>';
    return t.content.firstChild;
  })();

  function makeCard(img) {
    const card = CARD.cloneNode(true);
    card.dataset.id = img.id;
    card.parts = {
      box: card.firstChild.firstChild, caption: card.lastChild.children[1],
      flags: card.lastChild.lastChild.firstChild, tokens: card.lastChild.lastChild.lastChild,
    };
    card.parts.box.setAttribute('aria-label', 'select ' + img.image);
    const im = card.children[1].firstChild;
    im.alt = img.image;
    im.src = thumbUrl(img);
    card.lastChild.firstChild.textContent = img.image;
    paintCard(card, img);
    return card;
  }

  function paintCard(card, img) {
    const { box, caption, flags, tokens } = card.parts;
    const none = img.text === null || img.text.trim() === '';
    caption.textContent = img.text === null ? 'no caption file' : none ? 'empty caption' : img.text;
    caption.classList.toggle('none', none);
    paintFlags(flags, img);
    tokens.textContent = st.tokenizer ? tokenText(img.tokens) : '';
    tokens.className = 'tokens ' + tokenClass(img.tokens);
    card.title = img.refused ? (img.problems || []).join('\n') : '';
    card.classList.toggle('selected', st.selected.has(img.id));
    box.checked = st.selected.has(img.id);
  }

  // A new list of records: cards kept (and repainted where the record changed) when the images
  // are the same ones, else built again in one DocumentFragment.
  function applyImages(list) {
    const same = list.length === st.images.length && list.every((img, i) => img.id === st.images[i].id);
    const old = st.byId;
    st.images = list.map(index);
    st.byId = new Map(st.images.map((img) => [img.id, img]));
    for (const id of [...st.selected]) if (!st.byId.has(id)) st.selected.delete(id);
    if (same) {
      for (const img of st.images) {
        const before = old.get(img.id);
        if (before.hash !== img.hash || fingerprint(before) !== fingerprint(img)) paintCard(st.cards.get(img.id), img);
      }
    } else {
      const frag = document.createDocumentFragment();
      st.cards = new Map();
      for (const img of st.images) {
        const card = makeCard(img);
        st.cards.set(img.id, card);
        frag.append(card);
      }
      $('grid').replaceChildren(frag);
    }
    applyFilter();
  }

  function fingerprint(img) {
    return [img.text, img.tokens, img.missing, img.empty, img.duplicate, img.refused,
      (img.problems || []).join('\n')].join('\u0000');
  }

  function replaceRecord(img) {
    if (!st.byId.has(img.id)) return;
    index(img);
    st.images[st.images.findIndex((i) => i.id === img.id)] = img;
    st.byId.set(img.id, img);
    paintCard(st.cards.get(img.id), img);
  }

  // ---- search ---------------------------------------------------------------------------------

  // Terms combine with AND: words (or "a phrase") in the text, tag:x / tag:"x y" a whole tag
  // (case and '_' versus ' ' ignored), is:flag. Unknown is: names match nothing and say so.
  function parseQuery(q) {
    const terms = [], bad = [];
    const re = /([A-Za-z]+:)?"([^"]*)"?|(\S+)/g;
    for (let m; (m = re.exec(q));) {
      let prefix = (m[1] || '').toLowerCase(), value = m[2];
      if (value === undefined) {
        const colon = m[3].indexOf(':');
        const head = colon > 0 ? m[3].slice(0, colon + 1).toLowerCase() : '';
        if (head === 'tag:' || head === 'is:') { prefix = head; value = m[3].slice(colon + 1); }
        else { prefix = ''; value = m[3]; }
      } else if (prefix !== 'tag:' && prefix !== 'is:') {
        value = (m[1] || '') + value;
        prefix = '';
      }
      if (prefix === 'tag:') terms.push({ kind: 'tag', value: normTag(value) });
      else if (prefix === 'is:') {
        const flag = value.toLowerCase();
        if (!IS_FLAGS[flag]) bad.push('is:' + value);
        terms.push({ kind: 'is', value: flag });
      } else if (value) terms.push({ kind: 'word', value: value.toLowerCase() });
    }
    return { terms, bad };
  }

  const IS_FLAGS = {
    missing: (img) => img.missing, empty: (img) => img.empty, duplicate: (img) => img.duplicate,
    refused: (img) => img.refused, long: (img) => img.tokens !== null && img.tokens > st.limits[0],
    selected: (img) => st.selected.has(img.id),
  };

  function matches(img, terms) {
    for (const t of terms) {
      if (t.kind === 'word' ? !img.lc.includes(t.value)
        : t.kind === 'tag' ? !img.ntags.has(t.value)
          : !(IS_FLAGS[t.value] && IS_FLAGS[t.value](img))) return false;
    }
    return true;
  }

  function applyFilter() {
    clearTimeout(searchTimer);
    const query = $('search').value;
    const { terms, bad } = parseQuery(query);
    st.shown = [];
    st.shownIndex = new Map();
    for (const img of st.images) {
      const card = st.cards.get(img.id);
      const show = matches(img, terms);
      if (card.hidden === show) card.hidden = !show;
      if (show) { st.shownIndex.set(img.id, st.shown.length); st.shown.push(img.id); }
    }
    $('count').textContent = `${st.shown.length} of ${st.images.length} images` +
      (bad.length ? ` (unknown: ${bad.join(', ')}; use ${Object.keys(IS_FLAGS).map((f) => 'is:' + f).join(', ')})` : '');
    $('count').classList.toggle('error', bad.length > 0);
    document.body.dataset.query = query;
    document.body.dataset.shown = String(st.shown.length);
    if (!st.shownIndex.has(st.current)) setCurrent(st.shown.length ? st.shown[0] : null, false);
  }

  function setSearch(text) {
    $('search').value = text;
    applyFilter();
  }

  // ---- current image and selection ------------------------------------------------------------

  function setCurrent(id, scroll) {
    const old = st.current && st.cards.get(st.current);
    if (old) { old.classList.remove('current'); old.tabIndex = -1; }
    st.current = id;
    const card = id && st.cards.get(id);
    if (!card) return;
    card.classList.add('current');
    card.tabIndex = 0;
    if (scroll !== false) {
      card.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      if (!isField(document.activeElement)) card.focus({ preventScroll: true });
    }
  }

  function move(step) {
    if (!st.shown.length) return;
    const i = st.shownIndex.has(st.current) ? st.shownIndex.get(st.current) + step : 0;
    setCurrent(st.shown[Math.max(0, Math.min(st.shown.length - 1, i))]);
  }

  function nextWithoutCaption() {
    const start = st.shownIndex.has(st.current) ? st.shownIndex.get(st.current) : -1;
    for (let k = 1; k <= st.shown.length; k++) {
      const id = st.shown[(start + k) % st.shown.length];
      const img = st.byId.get(id);
      if (img.missing || img.empty) return setCurrent(id);
    }
    showMessage('every shown image has a caption');
  }

  function select(ids, on) {
    for (const id of ids) {
      if (on) st.selected.add(id); else st.selected.delete(id);
      const card = st.cards.get(id);
      card.classList.toggle('selected', on);
      card.parts.box.checked = on;
    }
    $('selected-count').textContent = String(st.selected.size);
    document.body.dataset.selected = String(st.selected.size);
  }

  // A click on a checkbox; with Shift, every shown image from the last one clicked takes its state.
  function onPick(id, on, shift) {
    if (shift && st.anchor !== null && st.shownIndex.has(st.anchor) && st.shownIndex.has(id)) {
      const [a, b] = [st.shownIndex.get(st.anchor), st.shownIndex.get(id)].sort((x, y) => x - y);
      select(st.shown.slice(a, b + 1), on);
    } else {
      select([id], on);
    }
    st.anchor = id;
  }

  function onGridClick(e) {
    const card = e.target.closest('.card');
    if (!card) return;
    const id = card.dataset.id;
    if (e.target.matches('input[type="checkbox"]')) {
      onPick(id, e.target.checked, e.shiftKey);
      setCurrent(id, false);
      return;
    }
    if (e.target.closest('.pick')) return;  // the label around the box: its click reaches the box
    setCurrent(id);
    openEditor(id);
  }

  // ---- tags panel ------------------------------------------------------------------------------

  function renderTags() {
    const filter = $('tag-filter').value.trim().toLowerCase();
    let rows = st.tags.filter((t) => !filter || t.tag.toLowerCase().includes(filter));
    if ($('tag-sort').value === 'name') rows = rows.slice().sort((a, b) => a.tag.localeCompare(b.tag));
    const frag = document.createDocumentFragment();
    for (const t of rows.slice(0, TAG_ROWS)) {
      const li = el('li', 'tag-row');
      li.dataset.tag = t.tag;
      li.dataset.testid = 'tag-row';
      const name = el('button', 'tag-name', t.tag);
      name.type = 'button';
      name.dataset.act = 'filter';
      name.title = `show the images tagged ${t.tag}`;
      li.append(name, el('span', 'tag-count', String(t.count)));
      for (const [act, label, text] of [['add', `add ${t.tag} to the selected images`, '+'],
        ['rename', `rename ${t.tag} everywhere`, '\u270e'], ['delete', `delete ${t.tag} everywhere`, '\u00d7']]) {
        const b = el('button', 'tag-act', text);
        b.type = 'button';
        b.dataset.act = act;
        b.dataset.testid = 'tag-' + act;
        b.title = label;
        b.setAttribute('aria-label', label);
        li.append(b);
      }
      frag.append(li);
    }
    $('tag-list').replaceChildren(frag);
    $('tag-more').textContent = rows.length > TAG_ROWS ? `${rows.length - TAG_ROWS} more: filter to find them` : '';
    $('tags-total').textContent = `(${st.tags.length})`;
  }

  function quoteTag(tag) { return /[\s"]/.test(tag) ? `tag:"${tag.replace(/"/g, '')}"` : 'tag:' + tag; }

  function onTagClick(e) {
    const b = e.target.closest('button');
    const row = e.target.closest('.tag-row');
    if (!b || !row) return;
    const tag = row.dataset.tag;
    if (b.dataset.act === 'filter') setSearch(quoteTag(tag));
    else if (b.dataset.act === 'add') bulkSelected('add_tag', { tag }, `add ${tag}`);
    else if (b.dataset.act === 'rename') openRename(tag);
    else if (b.dataset.act === 'delete' && window.confirm(`Delete the tag "${tag}" from every caption?`)) {
      runBulk('remove_tags', { tags: [tag] }, 'all', `delete ${tag}`);
    }
  }

  function openRename(tag) {
    $('rename-form').hidden = false;
    $('rename-form').dataset.from = tag;
    $('rename-from').textContent = tag;
    $('rename-to').value = tag;
    $('rename-to').focus();
    $('rename-to').select();
  }

  function closeRename() { $('rename-form').hidden = true; }

  // ---- bulk operations, undo, history ----------------------------------------------------------

  async function reloadAll() {
    const [images, tags, history] = await Promise.all([call('GET', 'api/images'), call('GET', 'api/tags'),
      call('GET', 'api/history')]);
    applyImages(images.images);
    st.tags = tags.tags;
    renderTags();
    st.history = history.runs;
    renderHistory();
  }

  // The stack lives in this tab's sessionStorage too: a reload must not forget what it can undo.
  function pushUndo(runs) {
    if (runs && runs.length) st.undo.push(runs);
    try { sessionStorage.setItem(UNDO_KEY, JSON.stringify(st.undo)); } catch (e) { /* kept in memory only */ }
    const n = st.undo.length;
    $('undo').disabled = n === 0;
    $('undo').textContent = n ? `undo (${n})` : 'undo';
    document.body.dataset.undo = String(n);
  }

  function runBulk(op, params, ids, label) {
    return track(label, async () => {
      const r = await call('POST', 'api/bulk', Object.assign({ op, ids, preview: false }, params));
      pushUndo(r.runs);
      const items = r.changed.map((id) => ({ text: captionPath(id), id }));
      showMessage(r.changed.length ? `${label}: ${r.changed.length} file${r.changed.length === 1 ? '' : 's'} changed`
        : `${label}: no caption changed`, { items });
      await reloadAll();
    });
  }

  function bulkSelected(op, params, label) {
    const ids = orderedSelection();
    if (!ids.length) return showMessage(`${label}: select images first (their checkboxes, or "select all shown")`, { error: true });
    return runBulk(op, params, ids, label);
  }

  function undoRuns(runs, label) {
    return track(label, async () => {
      const r = await call('POST', 'api/undo', { runs });
      const items = (r.conflicts || []).map((c) => ({ text: c }));
      showMessage(`${label}: ${r.restored} restored, ${r.removed} removed, ${r.unchanged} unchanged` +
        (items.length ? `; ${items.length} edited since, left as they are:` : ''), { items, error: items.length > 0 });
      await reloadAll();
    });
  }

  async function undoTop() {
    if (!st.undo.length) return;
    if (ops) return showMessage('undo: wait, the last change is still on its way', { error: true });
    const runs = st.undo.pop();
    pushUndo(null);
    await undoRuns(runs, 'undo');
  }

  function renderHistory() {
    const frag = document.createDocumentFragment();
    for (const h of st.history) {
      const li = el('li', h.undone ? 'undone' : '');
      li.dataset.run = h.run;
      li.dataset.root = String(h.root);
      li.dataset.testid = 'history-run';
      const when = new Date(h.time);
      const what = el('div', 'what', `${h.source} \u00b7 ${h.files} file${h.files === 1 ? '' : 's'}`);
      const meta = el('div', 'muted', (isNaN(when) ? h.time : when.toLocaleString()) +
        (h.undo_of ? ` \u00b7 undoes ${h.undo_of}` : '') + (h.undone ? ' \u00b7 undone' : ''));
      meta.title = h.run;
      const b = el('button', null, 'undo');
      b.type = 'button';
      b.disabled = !!h.undone;
      b.dataset.testid = 'history-undo';
      b.setAttribute('aria-label', `undo run ${h.run}`);
      li.append(b, what, meta);
      frag.append(li);
    }
    $('history').replaceChildren(frag);
  }

  function onHistoryClick(e) {
    const b = e.target.closest('button');
    const li = e.target.closest('li');
    if (!b || !li || b.disabled) return;
    if (ops) return showMessage('undo: wait, the last change is still on its way', { error: true });
    const run = { root: Number(li.dataset.root), run: li.dataset.run };
    // The page's own stack must not undo it a second time.
    st.undo = st.undo.map((runs) => runs.filter((x) => !(x.root === run.root && x.run === run.run)))
      .filter((runs) => runs.length);
    pushUndo(null);
    undoRuns([run], `undo ${run.run}`);
  }

  // ---- re-tag at new thresholds -----------------------------------------------------------------

  function retagParams() {
    return { general_threshold: Number($('general-threshold').value), character_threshold: Number($('character-threshold').value) };
  }

  function retagIds() { return orderedSelection().filter((id) => st.byId.get(id).probs); }

  async function retag(preview) {
    const ids = retagIds();
    const list = $('retag-list');
    if (!ids.length) {
      list.textContent = '';
      return showMessage('re-tag: select images with saved tagger probabilities first', { error: true });
    }
    if (!preview) { list.textContent = ''; return runBulk('retag', retagParams(), ids, 're-tag'); }
    return track('re-tag preview', async () => {
      const r = await call('POST', 'api/bulk', Object.assign({ op: 'retag', ids, preview: true }, retagParams()));
      const frag = document.createDocumentFragment();
      frag.append(el('li', 'muted', `${r.changed.length} of ${ids.length} selected would change`));
      for (const id of r.changed) {
        const li = el('li');
        li.dataset.id = id;
        li.append(el('div', 'name', captionPath(id)), el('del', null, st.byId.get(id).text || ''),
          el('ins', null, r.texts[id]));
        frag.append(li);
      }
      list.replaceChildren(frag);
    });
  }

  function onThreshold() {
    $('general-value').textContent = Number($('general-threshold').value).toFixed(2);
    $('character-value').textContent = Number($('character-threshold').value).toFixed(2);
    clearTimeout(retagTimer);
    if (retagIds().length) retagTimer = setTimeout(() => retag(true), RETAG_DEBOUNCE_MS);
  }

  // ---- editor ----------------------------------------------------------------------------------

  function openEditor(id) {
    const img = st.byId.get(id);
    if (!img) return;
    st.editor = { id, hash: img.text === null ? '' : img.hash };
    $('editor').hidden = false;
    $('ed-img').src = fileUrl(img);
    $('ed-img').alt = img.image;
    $('ed-path').textContent = img.image;
    $('ed-size').textContent = img.width ? `${img.width} \u00d7 ${img.height}` : '';
    paintFlags($('ed-flags'), img);
    const problems = $('ed-problems');
    problems.replaceChildren(...(img.problems || []).map((p) => el('li', null, p)));
    const ta = $('ed-text');
    ta.value = img.text || '';
    renderChips();
    showTokens(img.tokens);
    ta.focus();
    const end = ta.value.replace(/\n+$/, '').length;  // type after the last tag, not on a new line
    ta.setSelectionRange(end, end);
  }

  function closeEditor() {
    if (!st.editor) return;
    clearTimeout(tokenTimer);
    tokenSeq++;
    st.editor = null;
    $('editor').hidden = true;
    $('ed-img').removeAttribute('src');
    const card = st.current && st.cards.get(st.current);
    if (card) card.focus({ preventScroll: true }); else document.activeElement.blur();
  }

  function showTokens(n) {
    const t = $('ed-tokens');
    t.textContent = tokenText(n);
    t.className = 'tokens ' + tokenClass(n);
    t.title = n > st.limits[1] ? `over ${st.limits[1]} tokens: the rest is cut off`
      : n > st.limits[0] ? `over ${st.limits[0]} tokens: spills into a second 75-token window` : '';
    t.dataset.tokens = n === null || n === undefined ? '' : String(n);
  }

  function onEditorInput() {
    renderChips();
    clearTimeout(tokenTimer);
    if (!st.tokenizer) return;
    $('ed-tokens').classList.add('pending');
    tokenTimer = setTimeout(async () => {
      const seq = ++tokenSeq;
      try {
        const r = await call('POST', 'api/tokens', { text: $('ed-text').value });
        if (seq === tokenSeq && st.editor) showTokens(r.tokens);
      } catch (err) {
        if (seq === tokenSeq) showError('token count', err);
      }
    }, TOKENS_DEBOUNCE_MS);
  }

  function renderChips() {
    const tags = splitTags($('ed-text').value);
    const frag = document.createDocumentFragment();
    tags.forEach((t, i) => {
      const chip = el('span', 'chip');
      chip.draggable = true;
      chip.dataset.index = String(i);
      chip.dataset.testid = 'chip';
      const x = el('button', 'chip-x', '\u00d7');
      x.type = 'button';
      x.dataset.testid = 'chip-remove';
      x.setAttribute('aria-label', 'remove ' + t);
      chip.append(el('span', 'chip-text', t), x);
      frag.append(chip);
    });
    $('ed-chips').replaceChildren(frag);
  }

  // The text follows the chips: tags joined with ", ", the final newline kept if there was one.
  function setTags(tags) {
    const ta = $('ed-text');
    ta.value = tags.join(', ') + (/\n$/.test(ta.value) ? '\n' : '');
    onEditorInput();
  }

  function onChipClick(e) {
    const x = e.target.closest('.chip-x');
    if (!x) return;
    const tags = splitTags($('ed-text').value);
    tags.splice(Number(x.parentElement.dataset.index), 1);
    setTags(tags);
  }

  function wireChipDrag() {
    const box = $('ed-chips');
    box.addEventListener('dragstart', (e) => {
      const chip = e.target.closest('.chip');
      if (!chip) return;
      e.dataTransfer.setData('text/plain', chip.dataset.index);
      e.dataTransfer.effectAllowed = 'move';
      chip.classList.add('dragging');
    });
    box.addEventListener('dragend', (e) => { const c = e.target.closest('.chip'); if (c) c.classList.remove('dragging'); });
    box.addEventListener('dragover', (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'move'; });
    box.addEventListener('drop', (e) => {
      e.preventDefault();
      const from = Number(e.dataTransfer.getData('text/plain'));
      const tags = splitTags($('ed-text').value);
      const target = e.target.closest('.chip');
      const to = target ? Number(target.dataset.index) : tags.length - 1;
      if (!Number.isInteger(from) || from < 0 || from >= tags.length || from === to) return;
      const [tag] = tags.splice(from, 1);
      tags.splice(to, 0, tag);
      setTags(tags);
    });
  }

  let saving = false;
  async function save(close) {
    if (!st.editor || saving) return;
    saving = true;
    const { id, hash } = st.editor;
    const text = $('ed-text').value;
    await track('save', async () => {
      const r = await api('PUT', 'api/caption', { id, text, hash });
      if (r.status === 409 && r.body) return openConflict(text, r.body);
      if (!r.ok) throw new Error((r.body && r.body.error) || `${r.status}`);
      replaceRecord(r.body.image);
      pushUndo(r.body.run ? [r.body.run] : null);
      showMessage(r.body.saved ? `saved ${captionPath(id)}` : `unchanged ${captionPath(id)}`);
      if (st.editor && st.editor.id === id) {
        st.editor.hash = r.body.image.text === null ? '' : r.body.image.hash;
        if (close) closeEditor(); else showTokens(r.body.image.tokens);
      }
      await reloadAll();  // duplicate flags and tag counts of the other images move too
    });
    saving = false;
  }

  function openConflict(mine, answer) {
    st.conflict = answer;
    $('conflict-why').textContent = answer.error || '';
    $('conflict-mine').textContent = mine;
    $('conflict-disk').textContent = answer.on_disk === null ? '(no caption file)' : answer.on_disk;
    $('conflict').hidden = false;
    $('conflict-keep').focus();
  }

  function closeConflict(takeDisk) {
    const answer = st.conflict;
    if (!answer) return;
    st.conflict = null;
    $('conflict').hidden = true;
    if (answer.image) replaceRecord(answer.image);
    if (st.editor && answer.image && st.editor.id === answer.image.id) {
      // Either way the base is now the disk version the user has seen.
      st.editor.hash = answer.image.text === null ? '' : answer.image.hash;
      if (takeDisk) {
        $('ed-text').value = answer.image.text || '';
        renderChips();
        showTokens(answer.image.tokens);
      }
    }
    $('ed-text').focus();
  }

  // ---- keys ------------------------------------------------------------------------------------

  const NOT_TEXT = new Set(['checkbox', 'radio', 'button', 'submit', 'reset', 'file', 'color']);
  function isField(t) {
    if (!t || !t.matches) return false;
    if (t.isContentEditable || t.matches('textarea, select')) return true;
    return t.matches('input') && !NOT_TEXT.has(t.type);
  }

  function toggleHelp(show) {
    $('help').hidden = !show;
    if (show) $('help-close').focus();
  }

  function onKey(e) {
    const t = e.target, ctrl = e.ctrlKey || e.metaKey;
    if (st.conflict) {
      if (e.key === 'Escape') { e.preventDefault(); closeConflict(false); }
      return;
    }
    if (!$('help').hidden) {
      if (e.key === 'Escape' || e.key === '?') { e.preventDefault(); toggleHelp(false); }
      return;
    }
    if (st.editor) {
      if (ctrl && (e.key === 'Enter' || e.key.toLowerCase() === 's')) { e.preventDefault(); save(e.key === 'Enter'); }
      else if (e.key === 'Escape') { e.preventDefault(); closeEditor(); }
      return;
    }
    if (ctrl && e.key.toLowerCase() === 's') { e.preventDefault(); return; }  // nothing open to save
    if (isField(t)) {
      if (e.key === 'Escape') {
        if (t.id === 'rename-to') closeRename();
        t.blur();
      }
      return;
    }
    if (ctrl && !e.shiftKey && !e.altKey && e.key.toLowerCase() === 'z') { e.preventDefault(); undoTop(); return; }
    if (ctrl || e.altKey) return;
    const onControl = t.matches && t.matches('button, input, summary, a');
    if (onControl && (e.key === 'Enter' || e.key === ' ')) return;
    switch (e.key) {
      case 'j': case 'ArrowRight': move(1); break;
      case 'k': case 'ArrowLeft': move(-1); break;
      case 'Enter': if (st.current) openEditor(st.current); break;
      case 'u': undoTop(); break;
      case 'n': nextWithoutCaption(); break;
      case '/': $('search').focus(); $('search').select(); break;
      case '?': toggleHelp(true); break;
      case 'x': case ' ': if (st.current) onPick(st.current, !st.selected.has(st.current), false); break;
      case 'Escape': $('message').hidden = true; break;
      default: return;
    }
    e.preventDefault();
  }

  // ---- wiring ----------------------------------------------------------------------------------

  function setView(list) {
    $('grid').classList.toggle('list', list);
    $('grid').classList.toggle('grid', !list);
    $('view-toggle').setAttribute('aria-pressed', String(list));
    $('view-toggle').textContent = list ? 'grid' : 'list';
    $('view-toggle').title = list ? 'show a grid of thumbnails' : 'show a list instead of a grid';
    try { localStorage.setItem(VIEW_KEY, list ? 'list' : 'grid'); } catch (e) { /* a view is not worth an error */ }
  }

  function onSubmit(id, fn) {
    $(id).addEventListener('submit', (e) => { e.preventDefault(); fn(); });
  }

  function wire() {
    document.addEventListener('keydown', onKey);
    $('grid').addEventListener('click', onGridClick);
    $('search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(applyFilter, SEARCH_DEBOUNCE_MS); });
    $('search').addEventListener('keydown', (e) => { if (e.key === 'Enter') applyFilter(); });
    $('view-toggle').addEventListener('click', () => setView(!$('grid').classList.contains('list')));
    $('undo').addEventListener('click', undoTop);
    $('help-open').addEventListener('click', () => toggleHelp(true));
    $('help-close').addEventListener('click', () => toggleHelp(false));
    $('help').addEventListener('click', (e) => { if (e.target === $('help')) toggleHelp(false); });
    $('message-close').addEventListener('click', () => { $('message').hidden = true; });
    $('tag-filter').addEventListener('input', renderTags);
    $('tag-sort').addEventListener('change', renderTags);
    $('tag-list').addEventListener('click', onTagClick);
    onSubmit('rename-form', () => {
      const from = $('rename-form').dataset.from, to = $('rename-to').value.trim();
      closeRename();
      if (to && to !== from) runBulk('rename_tag', { from, to }, 'all', `rename ${from} to ${to}`);
    });
    $('rename-cancel').addEventListener('click', closeRename);
    onSubmit('add-tag-form', () => {
      const tag = $('add-tag').value.trim();
      if (tag) bulkSelected('add_tag', { tag }, `add ${tag}`);
    });
    $('select-shown').addEventListener('click', () => select(st.shown, true));
    $('select-clear').addEventListener('click', () => select([...st.selected], false));
    onSubmit('replace-form', () => {
      const find = $('find').value;
      if (!find) return showMessage('replace: nothing to find', { error: true });
      const regex = $('regex').checked;
      bulkSelected(regex ? 'regex_replace' : 'find_replace', { find, replace: $('replace').value }, regex ? 'regex replace' : 'replace');
    });
    onSubmit('prefix-form', () => {
      const tag = $('prefix').value.trim();
      if (tag) bulkSelected('add_prefix', { tag }, `add prefix ${tag}`);
    });
    onSubmit('remove-form', () => {
      const tags = splitTags($('remove-tags').value);
      if (tags.length) bulkSelected('remove_tags', { tags }, `remove ${tags.join(', ')}`);
    });
    $('dedupe').addEventListener('click', () => bulkSelected('dedupe', {}, 'de-duplicate'));
    $('sort-tags').addEventListener('click', () => bulkSelected('sort_tags', {}, 'sort tags'));
    $('general-threshold').addEventListener('input', onThreshold);
    $('character-threshold').addEventListener('input', onThreshold);
    $('retag-preview').addEventListener('click', () => retag(true));
    $('retag-apply').addEventListener('click', () => retag(false));
    $('history').addEventListener('click', onHistoryClick);
    $('ed-text').addEventListener('input', onEditorInput);
    $('ed-chips').addEventListener('click', onChipClick);
    wireChipDrag();
    $('ed-save').addEventListener('click', () => save(true));
    $('ed-cancel').addEventListener('click', closeEditor);
    $('conflict-take').addEventListener('click', () => closeConflict(true));
    $('conflict-keep').addEventListener('click', () => closeConflict(false));
  }

  async function init() {
    wire();
    setBusy(0);
    try { st.undo = JSON.parse(sessionStorage.getItem(UNDO_KEY) || '[]').filter(Array.isArray); } catch (e) { st.undo = []; }
    pushUndo(null);
    let view = 'grid';
    try { view = localStorage.getItem(VIEW_KEY) || 'grid'; } catch (e) { view = 'grid'; }
    setView(view === 'list');
    // All three asked at once; the grid is drawn as soon as the images are here.
    const images = call('GET', 'api/images'), tags = call('GET', 'api/tags'), history = call('GET', 'api/history');
    tags.catch(() => {});
    history.catch(() => {});
    await track('load the images', async () => {
      const doc = await images;
      st.roots = doc.roots || [];
      st.tokenizer = !!doc.tokenizer;
      st.limits = doc.token_limits || st.limits;
      $('title').title = doc.source || '';
      document.title = `${doc.source || 'captions'} \u2013 lorastudio captions`;
      $('retag-box').hidden = !st.roots.some((r) => r.has_probs);
      applyImages(doc.images);
      // Ready once the grid is painted (the frame after layout), not merely in the DOM.
      await new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
      document.body.dataset.ready = '1';
      document.body.dataset.readyMs = String(Math.round(performance.now()));
    });
    await track('load the tags', async () => { st.tags = (await tags).tags; renderTags(); });
    await track('load the history', async () => { st.history = (await history).runs; renderHistory(); });
  }

  // For tests and the curious: the search parser and the live state.
  window.lorastudioCaptions = { parseQuery, get state() { return st; } };
  init();
})();
