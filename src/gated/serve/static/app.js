// The page of gated serve. Everything a user typed, and everything the server sends back, reaches the page
// through textContent or a canvas: never innerHTML, so a review holding markup is shown, never run.
"use strict";
(function () {
  const C = window.GatedColors;
  const CELL = 22; // px per token column; matches --cell in style.css
  const ROW = 12; // px per heatmap row
  const DEBOUNCE_MS = 250;
  const $ = (id) => document.getElementById(id);

  const params = new URLSearchParams(location.search);
  let lang = "en";
  let runs = [];
  let reading = null; // the last reading shown
  let readSeq = 0; // only the newest answer is drawn
  let readAbort = null;
  let dropped = new Set();
  let generation = null; // AbortController of a running generation

  // -- small helpers ----------------------------------------------------------------------------

  // The page's own sentences (strings.js), then the figures' labels it shares with the tour (labels.js).
  function t(key, values) {
    const tables = [window.GATED_STRINGS[lang], window.GATED_LABELS[lang], window.GATED_STRINGS.en, window.GATED_LABELS.en];
    const found = tables.find((table) => table && table[key] !== undefined);
    let s = found ? found[key] : key;
    for (const [k, v] of Object.entries(values || {})) s = s.split(`{${k}}`).join(String(v));
    return s;
  }

  // An element with attributes and children; strings become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "style") node.style.cssText = v; // through the CSSOM: the CSP refuses style attributes
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  const fmt = (x, digits = 3) => (x === null || x === undefined ? "\u2013" : Number(x).toFixed(digits));
  const signed = (x) => (x >= 0 ? "+" : "") + fmt(x);
  const gateName = (name) => t("gate." + name) === "gate." + name ? name : t("gate." + name);

  // A vector or matrix from the API: {shape, float32: base64} -> numbers, or rows of numbers.
  function decode(m) {
    const bytes = Uint8Array.from(atob(m.float32), (c) => c.charCodeAt(0));
    const flat = new Float32Array(bytes.buffer);
    if (m.shape.length === 1) return Array.from(flat);
    const [rows, cols] = m.shape;
    const out = [];
    for (let r = 0; r < rows; r++) out.push(flat.subarray(r * cols, (r + 1) * cols));
    return out; // out[token][k]
  }

  async function api(path, body, signal) {
    const response = await fetch(path, {
      method: body ? "POST" : "GET",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
      signal,
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || String(response.status));
    return data;
  }

  function canvas(width, height, label) {
    const c = el("canvas", { role: "img", "aria-label": label || "" });
    const ratio = window.devicePixelRatio || 1;
    c.width = Math.max(1, Math.round(width * ratio));
    c.height = Math.max(1, Math.round(height * ratio));
    c.style.width = width + "px";
    c.style.height = height + "px";
    const ctx = c.getContext("2d");
    ctx.scale(ratio, ratio);
    return [c, ctx];
  }

  // rows: arrays of values per column; kind "gate" (0..1) or "state" (signed, shared bound).
  function drawHeatmap(ctx, rows, kind, cellWidth, rowHeight) {
    let bound = 1e-6;
    if (kind !== "gate") for (const row of rows) for (const v of row) if (Number.isFinite(v)) bound = Math.max(bound, Math.abs(v));
    rows.forEach((row, r) => {
      for (let i = 0; i < row.length; i++) {
        ctx.fillStyle = C.css(C.color(kind, row[i], bound));
        ctx.fillRect(i * cellWidth, r * rowHeight, Math.ceil(cellWidth), rowHeight - 1);
      }
    });
    return bound;
  }

  function drawLine(ctx, values, width, height, cellWidth, color) {
    ctx.fillStyle = "#f3f3f3";
    ctx.fillRect(0, height / 2, width, height / 2);
    ctx.strokeStyle = "#999";
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(0, height / 2);
    ctx.lineTo(width, height / 2);
    ctx.stroke();
    ctx.setLineDash([]);
    drawLineOver(ctx, values, height, cellWidth, color);
    ctx.fillStyle = color;
    values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      ctx.beginPath();
      ctx.arc((i + 0.5) * cellWidth, 3 + (1 - v) * (height - 6), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    });
  }

  // The label column beside a line of probabilities: its scale, 1 at the top, 0.5 at the dashed line, 0.
  function axis(label) {
    return el("div", { class: "row-label axis" }, el("span", { class: "tick top", text: "1" }),
      el("span", { class: "tick mid", text: `${label}  0.5` }), el("span", { class: "tick bottom", text: "0" }));
  }

  const CELL_COLORS = { rnn: "#D55E00", lstm: "#0072B2", gru: "#009E73" };

  // -- the page's words -------------------------------------------------------------------------

  function translate() {
    document.documentElement.lang = lang;
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
    $("text").placeholder = t("placeholder");
    $("lang-" + lang).setAttribute("aria-current", "page");
  }

  // -- reading ----------------------------------------------------------------------------------

  function currentRun() {
    return runs.find((r) => r.name === $("run").value);
  }

  function readable(text) {
    const run = currentRun();
    if (!run) return false;
    return run.reads === "characters" ? text.length > 0 : /[\p{L}\p{N}]/u.test(text);
  }

  let timer = null;
  function scheduleRead() {
    clearTimeout(timer);
    timer = setTimeout(readNow, DEBOUNCE_MS);
  }

  async function readNow() {
    const text = $("text").value;
    dropped = new Set();
    if (!readable(text)) {
      reading = null;
      $("status").textContent = text ? t("status.nowords") : t("status.idle");
      $("verdict").textContent = "";
      $("reading").replaceChildren();
      $("whatif-words").replaceChildren();
      return;
    }
    const seq = ++readSeq;
    if (readAbort) readAbort.abort();
    readAbort = new AbortController();
    $("status").textContent = t("status.reading");
    try {
      const r = await api("/api/read", { run: $("run").value, text }, readAbort.signal);
      if (seq !== readSeq) return;
      show(r);
    } catch (error) {
      if (error.name === "AbortError") return;
      $("status").textContent = t("status.error", { e: error.message });
    }
  }

  // The per-token means and weights arrive packed too: unpack them once.
  function unpack(r) {
    if (r.unpacked) return r;
    for (const gate of r.gates) r.mean[gate.name] = decode(r.mean[gate.name]);
    r.top.weights = decode(r.top.weights);
    r.unpacked = true;
    return r;
  }

  function verdictLine(r) {
    if (r.verdict !== null) return t("verdict", { v: r.verdict, p: fmt(r.confidence) });
    const known = r.prediction.filter((p) => p !== null);
    const mean = known.length ? known.reduce((a, b) => a + b, 0) / known.length : null;
    return t("verdict.chars", { p: fmt(mean) });
  }

  function show(r) {
    reading = r;
    r.rows = {};
    unpack(r);
    for (const gate of r.gates) r.rows[gate.name] = decode(r.values[gate.name]);
    const n = r.tokens.length;
    $("status").textContent = r.unread ? t("status.unread", { n, m: r.unread }) : t("status.read", { n });
    $("verdict").textContent = verdictLine(r);
    const box = $("reading");
    box.replaceChildren();
    const width = n * CELL;
    // The running prediction.
    const [line, lctx] = canvas(width, 70, t("prediction", { t: r.target }));
    drawLine(lctx, r.prediction, width, 70, CELL, CELL_COLORS[r.model] || "#0072B2");
    hoverColumns(line, CELL);
    box.append(el("div", { class: "row" }, axis(`p(${r.target})`), line));
    // The tokens.
    const words = el("div", { class: "words", id: "words", "aria-label": t("words") });
    r.tokens.forEach((token, i) => {
      const shown = token === "\n" ? "\u21b5" : token === " " ? "\u2423" : token;
      const span = el("span", { class: "word" + (r.known[i] ? "" : " unknown"), tabindex: "0", "data-i": String(i), text: shown });
      span.addEventListener("mouseenter", () => details(i));
      span.addEventListener("focus", () => details(i));
      words.append(span);
    });
    words.addEventListener("mouseup", selectionToSpan);
    box.append(el("div", { class: "row" }, el("div", { class: "row-label" }), words));
    // One heatmap per gate and state.
    for (const gate of r.gates) box.append(panel(r, gate));
    box.dataset.version = String(Number(box.dataset.version) + 1);
    box.dataset.tokens = String(n);
    $("span-from").max = $("span-to").max = String(n);
    whatifWords(r);
    $("whatif-result").textContent = t("whatif.none");
    $("whatif-gates").replaceChildren();
    if ($("compare-out").childElementCount) compare();
  }

  function panel(r, gate) {
    const n = r.tokens.length;
    const rows = [];
    const labels = [];
    if (gate.kind === "gate") {
      rows.push(r.mean[gate.name]);
      labels.push(el("div", { style: `height:${ROW}px;line-height:${ROW}px`, text: t("mean") }));
    }
    r.units.forEach((u, k) => {
      rows.push(r.rows[gate.name].map((row) => row[k]));
      const button = el("button", { type: "button", "data-unit": String(u), text: `${t("unit")} ${u}` });
      button.addEventListener("click", () => showUnit(u));
      labels.push(el("div", { style: `height:${ROW}px;line-height:${ROW}px` }, button));
    });
    const [c, ctx] = canvas(n * CELL, rows.length * ROW, gateName(gate.name));
    c.dataset.gate = gate.name;
    c.dataset.rows = String(rows.length);
    drawHeatmap(ctx, rows, gate.kind, CELL, ROW);
    hoverColumns(c, CELL);
    const scale = gate.kind === "gate" ? t("scale.gate") : t("scale.state");
    return el("div", { class: "panel" },
      el("div", { class: "panel-title" }, gateName(gate.name) + " ", el("small", { text: scale })),
      el("div", { class: "row" }, el("div", { class: "row-label" }, ...labels), c));
  }

  function hoverColumns(c, cellWidth) {
    c.addEventListener("mousemove", (event) => {
      const i = Math.floor(event.offsetX / cellWidth);
      if (reading && i >= 0 && i < reading.tokens.length) details(i);
    });
  }

  function details(i) {
    const r = reading;
    if (!r) return;
    for (const w of document.querySelectorAll(".word.active")) w.classList.remove("active");
    const word = document.querySelector(`.word[data-i="${i}"]`);
    if (word) word.classList.add("active");
    const before = i === 0 ? 0.5 : r.prediction[i - 1];
    const p = r.prediction[i];
    const body = [el("p", { class: "detail-word" }, t("details.word", { w: r.tokens[i], i: i + 1 }),
      r.known[i] ? "" : " " + t("details.unknown"))];
    if (r.verdict !== null) body.push(el("p", { text: t("details.p", { t: r.target, p: fmt(p), d: signed(p - before) }) }));
    else body.push(el("p", { text: (p === null ? "" : `p = ${fmt(p)}; `) + t("details.expect", { c: r.expected[i] === "\n" ? "\u21b5" : r.expected[i] }) }));
    const gates = el("ul", { class: "plain" });
    for (const gate of r.gates) {
      const v = r.mean[gate.name][i];
      const sw = el("span", { class: "swatch" });
      sw.style.background = C.css(C.color(gate.kind, v, 1));
      gates.append(el("li", {}, sw, `${gateName(gate.name)}: ${fmt(v)}`));
    }
    body.push(el("h4", { text: t("details.gates") }), gates);
    const units = el("ul", { class: "plain", id: "details-units" });
    r.top.units[i].forEach((u, k) => {
      const button = el("button", { type: "button", "data-unit": String(u), text: t("details.weight", { u, w: signed(r.top.weights[i][k]) }) });
      button.addEventListener("click", () => showUnit(u));
      units.append(el("li", {}, button));
    });
    body.push(el("h4", { text: t("details.units") }), units);
    $("details-body").replaceChildren(...body);
  }

  async function showUnit(u) {
    const text = $("text").value;
    if (!reading) return;
    try {
      const r = await api("/api/read", { run: $("run").value, text, units: [u] });
      const out = [el("p", { class: "unit-heading", text: t("unit.heading", { u }) })];
      const width = Math.max(200, $("unit-body").clientWidth - 10);
      for (const gate of r.gates) {
        const values = decode(r.values[gate.name]).map((row) => row[0]);
        const [c, ctx] = canvas(width, 46, `${gateName(gate.name)}, ${t("unit")} ${u}`);
        c.dataset.gate = gate.name;
        const cell = width / values.length;
        if (gate.kind === "gate") drawLine(ctx, values, width, 46, cell, "#444");
        else {
          const bound = Math.max(1e-6, ...values.map(Math.abs));
          drawLine(ctx, values.map((v) => 0.5 + v / (2 * bound)), width, 46, cell, "#444");
        }
        out.push(el("div", { class: "unit-gate", text: `${gateName(gate.name)} (${fmt(Math.min(...values), 2)} \u2026 ${fmt(Math.max(...values), 2)})` }), c);
      }
      $("unit-body").replaceChildren(...out);
      $("unit-body").dataset.unit = String(u);
    } catch (error) {
      $("unit-body").replaceChildren(el("p", { text: t("status.error", { e: error.message }) }));
    }
  }

  // -- a span and its matches (LSTMVis) ---------------------------------------------------------

  function selectionToSpan() {
    const selection = window.getSelection();
    if (!selection || selection.isCollapsed) return;
    const chosen = [...document.querySelectorAll(".word")].filter((w) => selection.containsNode(w, true)).map((w) => Number(w.dataset.i));
    if (!chosen.length) return;
    $("span-from").value = String(Math.min(...chosen) + 1);
    $("span-to").value = String(Math.max(...chosen) + 1);
    findMatches();
  }

  async function findMatches() {
    if (!reading) return;
    const start = Number($("span-from").value) - 1;
    const end = Number($("span-to").value) - 1;
    const threshold = Number($("threshold").value);
    const out = $("matches");
    try {
      const m = await api("/api/match", { run: $("run").value, text: $("text").value, start: Math.min(start, end), end: Math.max(start, end), threshold });
      const span = m.span.join(currentRun().reads === "words" ? " " : "");
      const parts = [];
      if (!m.units.length) parts.push(el("p", { text: t("span.nounits", { t: fmt(threshold, 2) }) }));
      else {
        const list = el("p", { class: "units-on" }, t("span.units", { s: span, n: m.units.length }) + " ");
        for (const u of m.units) {
          const b = el("button", { type: "button", "data-unit": String(u), text: String(u) });
          b.addEventListener("click", () => showUnit(u));
          list.append(b, " ");
        }
        parts.push(list, el("h4", { text: t("span.matches", { n: m.indexed.toLocaleString(lang) }) }));
        if (!m.matches.length) parts.push(el("p", { text: t("span.nomatch") }));
        const sep = currentRun().reads === "words" ? " " : "";
        for (const hit of m.matches) {
          parts.push(el("p", { class: "match" },
            el("span", { class: "before", text: hit.before.join(sep) + sep }),
            el("mark", { text: hit.tokens.join(sep) }),
            el("span", { class: "after", text: sep + hit.after.join(sep) }),
            el("small", { text: ` (${t("span.score", { s: fmt(hit.score, 2) })})` })));
        }
      }
      out.replaceChildren(...parts);
      out.dataset.units = String(m.units.length);
      out.dataset.matches = String(m.matches.length);
    } catch (error) {
      out.replaceChildren(el("p", { text: t("status.error", { e: error.message }) }));
    }
  }

  // -- what if ----------------------------------------------------------------------------------

  function whatifWords(r) {
    const box = $("whatif-words");
    box.replaceChildren();
    r.tokens.forEach((token, i) => {
      const b = el("button", { type: "button", "aria-pressed": "false", "data-i": String(i), text: token === "\n" ? "\u21b5" : token });
      b.addEventListener("click", () => {
        if (dropped.has(i)) dropped.delete(i);
        else dropped.add(i);
        b.setAttribute("aria-pressed", String(dropped.has(i)));
        whatif();
      });
      box.append(b);
    });
  }

  async function whatif() {
    const r = reading;
    if (!r) return;
    if (!dropped.size || dropped.size === r.tokens.length) {
      $("whatif-result").textContent = t("whatif.none");
      $("whatif-gates").replaceChildren();
      return;
    }
    try {
      const w = unpack(await api("/api/read", { run: $("run").value, text: $("text").value, drop: [...dropped] }));
      const p = w.verdict !== null ? w.confidence : w.prediction[w.prediction.length - 1];
      $("whatif-result").textContent = t("whatif.result", { v: w.verdict ?? "", p: fmt(p), w: r.verdict ?? "", q: fmt(r.verdict !== null ? r.confidence : r.prediction[r.prediction.length - 1]) });
      // Line the reading without the words up with the one with them: a blank where a word was left out.
      const align = (values) => {
        const out = [];
        let k = 0;
        for (let i = 0; i < r.tokens.length; i++) out.push(dropped.has(i) ? NaN : values[k++]);
        return out;
      };
      const parts = [];
      const n = r.tokens.length;
      const cell = Math.max(4, Math.min(CELL, ($("whatif").clientWidth - 200) / n));
      const lineRows = [r.prediction, align(w.prediction)];
      const [lc, lctx] = canvas(n * cell, 60, t("prediction", { t: r.target }));
      drawLine(lctx, lineRows[0], n * cell, 60, cell, "#bbbbbb");
      drawLineOver(lctx, lineRows[1], 60, cell, CELL_COLORS[r.model] || "#0072B2");
      parts.push(el("div", { class: "row" }, axis(`p(${r.target})`), lc));
      for (const gate of r.gates) {
        const rows = [r.mean[gate.name], align(w.mean[gate.name])];
        const [c, ctx] = canvas(n * cell, 2 * ROW, gateName(gate.name));
        c.dataset.gate = gate.name;
        drawHeatmap(ctx, rows, gate.kind, cell, ROW);
        parts.push(el("div", { class: "panel-title", text: gateName(gate.name) + ` (${t("mean")})` }),
          el("div", { class: "row" }, el("div", { class: "row-label" },
            el("div", { style: `height:${ROW}px;line-height:${ROW}px`, text: t("whatif.with") }),
            el("div", { style: `height:${ROW}px;line-height:${ROW}px`, text: t("whatif.without") })), c));
      }
      $("whatif-gates").replaceChildren(...parts);
      $("whatif-gates").dataset.dropped = String(dropped.size);
    } catch (error) {
      $("whatif-result").textContent = t("status.error", { e: error.message });
    }
  }

  function drawLineOver(ctx, values, height, cellWidth, color) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      const x = (i + 0.5) * cellWidth;
      const y = 3 + (1 - v) * (height - 6);
      if (started) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      started = true;
    });
    ctx.stroke();
  }

  // -- compare ----------------------------------------------------------------------------------

  async function compare() {
    const text = $("text").value;
    if (!readable(text)) return;
    const out = $("compare-out");
    try {
      const data = await api("/api/compare", { run: $("run").value, text });
      const columns = [];
      const width = Math.max(240, Math.floor((out.clientWidth || 900) / Math.max(1, data.readings.length)) - 16);
      for (const r of data.readings.map(unpack)) {
        const n = r.tokens.length;
        const cell = width / n;
        const [line, lctx] = canvas(width, 60, t("prediction", { t: r.target }));
        drawLine(lctx, r.prediction, width, 60, cell, CELL_COLORS[r.model] || "#0072B2");
        const parts = [el("h3", { text: `${r.model.toUpperCase()} (${r.run})` }), el("p", { class: "verdict", text: verdictLine(r) }), line];
        for (const gate of r.gates) {
          const rows = decode(r.values[gate.name]);
          const heat = [];
          if (gate.kind === "gate") heat.push(r.mean[gate.name]);
          for (let k = 0; k < r.units.length; k++) heat.push(rows.map((row) => row[k]));
          const [c, ctx] = canvas(width, heat.length * 6, gateName(gate.name));
          drawHeatmap(ctx, heat, gate.kind, cell, 6);
          parts.push(el("div", { class: "unit-gate", text: gateName(gate.name) }), c);
        }
        columns.push(el("div", { class: "card", "data-run": r.run }, ...parts));
      }
      out.replaceChildren(...columns);
      out.dataset.version = String(Number(out.dataset.version) + 1);
    } catch (error) {
      out.replaceChildren(el("p", { text: t("status.error", { e: error.message }) }));
    }
  }

  // -- generate ---------------------------------------------------------------------------------

  async function generate() {
    const run = $("gen-run").value;
    if (!run) return;
    if (generation) generation.abort();
    generation = new AbortController();
    const query = new URLSearchParams({ run, prime: $("gen-prime").value, temperature: $("gen-temperature").value, length: $("gen-length").value });
    const out = $("generated");
    out.replaceChildren(el("span", { class: "prime", text: $("gen-prime").value }));
    out.dataset.chars = "0";
    const gatesBox = $("gen-gates");
    gatesBox.replaceChildren();
    $("gen-go").disabled = true;
    $("gen-stop").disabled = false;
    $("gen-status").textContent = "";
    const length = Number($("gen-length").value) || 300;
    const strips = {}; // gate name -> {ctx, kind, bound, columns}
    const COLUMN = 4;
    let count = 0;
    const paint = (strip, column, i) => {
      column.forEach((v, r) => {
        strip.ctx.fillStyle = C.css(C.color(strip.kind, v, strip.bound));
        strip.ctx.fillRect(i * COLUMN, r * 5, COLUMN, 4);
      });
    };
    const onEvent = (name, data) => {
      if (name === "start") {
        for (const gate of data.gates) {
          const [c, ctx] = canvas(Math.min(length, 2000) * COLUMN, (data.units.length + 1) * 5, gateName(gate.name));
          c.dataset.gate = gate.name;
          strips[gate.name] = { ctx, kind: gate.kind, bound: 1, columns: [] };
          gatesBox.append(el("div", { class: "unit-gate", text: `${gateName(gate.name)} (${t("mean")}, ${data.units.length} × ${t("unit")})` }), c);
        }
      } else if (name === "char") {
        const color = C.viridis(data.p);
        const span = el("span", { text: data.char, title: t("generate.char", { c: data.char, p: fmt(data.p) }) });
        span.style.background = C.css(color);
        span.style.color = C.ink(color);
        span.addEventListener("mouseenter", () => { $("gen-char").textContent = span.title; });
        out.append(span);
        for (const [gname, g] of Object.entries(data.gates)) {
          const strip = strips[gname];
          if (!strip) continue;
          const column = [g.mean, ...g.units];
          strip.columns.push(column);
          const biggest = Math.max(...column.map(Math.abs));
          if (strip.kind === "state" && biggest > strip.bound) { // a wider scale: repaint what is there
            strip.bound = biggest * 1.25;
            strip.columns.forEach((col, i) => paint(strip, col, i));
          } else paint(strip, column, count);
        }
        count++;
        out.dataset.chars = String(count);
      } else if (name === "end") {
        $("gen-status").textContent = t("generate.done", { n: data.length, s: fmt(data.seconds, 1) });
      }
    };
    try {
      const response = await fetch("/api/generate?" + query.toString(), { signal: generation.signal });
      if (!response.ok) throw new Error((await response.json()).error);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let name = "message";
          let data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) onEvent(name, JSON.parse(data));
        }
      }
    } catch (error) {
      if (error.name !== "AbortError") $("gen-status").textContent = t("status.error", { e: error.message });
    } finally {
      $("gen-go").disabled = false;
      $("gen-stop").disabled = true;
      generation = null;
    }
  }

  // -- start ------------------------------------------------------------------------------------

  function fillRuns() {
    const select = $("run");
    const gen = $("gen-run");
    for (const run of runs) {
      const label = `${run.name} (${run.model.toUpperCase()}, ${run.task}` + (run.value === null ? ")" : `, ${run.metric} ${fmt(run.value)})`);
      select.append(el("option", { value: run.name, text: label }));
      if (run.task === "charlm") gen.append(el("option", { value: run.name, text: label }));
    }
    if (!gen.options.length) {
      $("gen-go").disabled = true;
      $("gen-status").textContent = t("generate.none");
    }
  }

  async function start() {
    const config = await api("/api/config");
    lang = params.get("lang") || config.lang;
    if (!config.languages.includes(lang)) lang = "en";
    translate();
    runs = (await api("/api/runs")).runs;
    fillRuns();
    $("status").textContent = t("status.idle");
    $("details-body").replaceChildren(el("p", { class: "hint", text: t("details.none") }));
    $("unit-body").replaceChildren(el("p", { class: "hint", text: t("unit.none") }));
    $("whatif-result").textContent = t("whatif.none");
    $("text").addEventListener("input", scheduleRead);
    $("run").addEventListener("change", readNow);
    $("find").addEventListener("click", findMatches);
    $("threshold").addEventListener("input", () => { $("threshold-value").textContent = fmt($("threshold").value, 2); });
    $("gen-temperature").addEventListener("input", () => { $("gen-temperature-value").textContent = fmt($("gen-temperature").value, 1); });
    $("compare-go").addEventListener("click", compare);
    $("gen-go").addEventListener("click", generate);
    $("gen-stop").addEventListener("click", () => generation && generation.abort());
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((error) => { $("status").textContent = t("status.error", { e: error.message }); });
  });
})();
