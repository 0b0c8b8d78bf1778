// backprop classroom: draws a network as a graph, lets the user edit inputs
// and weights in place, and shows each node's worked forward and backward
// step. All numbers and formulas come from POST /api/solve, which runs the
// same Go code as `backprop solve`; this script only lays out and renders.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const MAX_SHOWN = 256; // largest tensor drawn element by element in the graph
  const TALL = 40; // a vector longer than this scrolls within its node
  const NEAR_ONE = 0.999; // above this (and below 1) a number is shown as 1 − (1 − v)

  const tabs = {}; // id → tab state
  let order = [];
  let current = null;
  let solves = 0;

  // ---- numbers and math -------------------------------------------------

  // fmt shows a number with four significant digits; a number just below 1
  // (a saturated probability such as p = 0.9999974) as 1 − 2.573e-6, so
  // that it is never shown as 1.
  function fmt(v) {
    if (v === null || v === -Infinity) return "−∞"; // a causal mask's −∞ (null in JSON)
    if (v === 0) return "0";
    if (v > NEAR_ONE && v < 1) return "1 − " + fmt(1 - v);
    const a = Math.abs(v);
    if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(4)));
    return v.toExponential(3).replace(/\.?0+e/, "e");
  }

  function tex(target, latex, display) {
    try {
      katex.render(latex, target, { displayMode: !!display, throwOnError: false, strict: false, output: "htmlAndMathml" });
    } catch (e) {
      target.textContent = latex;
    }
    return target;
  }

  function texNum(v) {
    if (v === null || v === -Infinity) return "-\\infty";
    if (v > NEAR_ONE && v < 1) return "1 - " + texNum(1 - v);
    const s = fmt(v);
    const i = s.indexOf("e");
    if (i < 0) return s;
    return s.slice(0, i) + "\\times 10^{" + Number(s.slice(i + 1)) + "}";
  }

  // texMatrix writes a tensor as LaTeX: vectors as columns, images as one
  // matrix per leading index.
  function texMatrix(shape, data) {
    if (shape.length === 0) return texNum(data[0]);
    let rows, cols;
    if (shape.length === 1) { rows = shape[0]; cols = 1; } else { rows = shape[shape.length - 2]; cols = shape[shape.length - 1]; }
    const blocks = data.length / (rows * cols);
    const out = [];
    for (let b = 0; b < blocks; b++) {
      const rs = [];
      for (let i = 0; i < rows; i++) {
        const cs = [];
        for (let j = 0; j < cols; j++) cs.push(texNum(data[(b * rows + i) * cols + j]));
        rs.push(cs.join(" & "));
      }
      out.push("\\begin{bmatrix}" + rs.join("\\\\ ") + "\\end{bmatrix}");
    }
    return out.length === 1 ? out[0] : "\\left[\\," + out.join(",\\;") + "\\,\\right]";
  }

  // ---- tiny Markdown renderer for the trace and derive output ------------

  function inline(text, parent) {
    const parts = text.split(/(\$[^$]+\$)/);
    for (const p of parts) {
      if (p.length > 2 && p[0] === "$" && p[p.length - 1] === "$") {
        parent.appendChild(tex(el("span"), p.slice(1, -1), false));
        continue;
      }
      const toks = p.split(/(\*\*[^*]+\*\*|\*[^*]+\*|`[^`]+`)/);
      for (const t of toks) {
        if (!t) continue;
        if (t.startsWith("**") && t.endsWith("**") && t.length > 4) parent.appendChild(el("strong", "", t.slice(2, -2)));
        else if (t.startsWith("`") && t.endsWith("`") && t.length > 2) parent.appendChild(el("code", "", t.slice(1, -1)));
        else if (t.startsWith("*") && t.endsWith("*") && t.length > 2) parent.appendChild(el("em", "", t.slice(1, -1)));
        else parent.appendChild(document.createTextNode(t));
      }
    }
    return parent;
  }

  // renderMarkdown renders the subset of Markdown that `backprop solve`
  // and `backprop derive` write: headings, paragraphs (a line ending in a
  // backslash breaks the line), lists, block quotes, $…$ and $$…$$ math.
  // The section headed "Answers" is drawn as a box.
  function renderMarkdown(md, root) {
    const lines = md.split("\n");
    let box = root; // where blocks go: the root, or the answers box
    let i = 0;
    const isBlockStart = (l) => l.trim() === "" || l.trim() === "$$" || /^#{1,6} /.test(l) || l.startsWith("- ") || l.startsWith("> ");
    while (i < lines.length) {
      const l = lines[i];
      if (l.trim() === "$$") {
        const body = [];
        i++;
        while (i < lines.length && lines[i].trim() !== "$$") body.push(lines[i++]);
        i++;
        box.appendChild(tex(el("div", "eq"), body.join("\n"), true));
        continue;
      }
      const h = /^(#{1,6}) (.*)$/.exec(l);
      if (h) {
        box = root;
        const head = inline(h[2], el("h" + Math.min(6, h[1].length + 2)));
        if (h[2].trim() === "Answers") {
          box = el("div", "answers");
          box.appendChild(head);
          root.appendChild(box);
        } else {
          root.appendChild(head);
        }
        i++;
        continue;
      }
      if (l.startsWith("- ")) {
        const ul = el("ul");
        while (i < lines.length && lines[i].startsWith("- ")) ul.appendChild(inline(lines[i++].slice(2), el("li")));
        box.appendChild(ul);
        continue;
      }
      if (l.startsWith("> ")) {
        const q = [];
        while (i < lines.length && (lines[i].startsWith("> ") || lines[i] === ">")) q.push(lines[i++].replace(/^> ?/, ""));
        box.appendChild(renderMarkdown(q.join("\n"), el("blockquote")));
        continue;
      }
      if (l.trim() === "") { i++; continue; }
      const p = el("p");
      let first = true;
      while (i < lines.length && (first || !isBlockStart(lines[i]))) {
        let t = lines[i++];
        const hard = /\\$/.test(t);
        if (hard) t = t.slice(0, -1);
        if (!first) p.appendChild(document.createTextNode(" "));
        inline(t, p);
        if (hard && i < lines.length && !isBlockStart(lines[i])) { p.appendChild(el("br")); first = true; continue; }
        first = false;
      }
      box.appendChild(p);
    }
    return root;
  }

  // ---- talking to the server ----------------------------------------------

  function setStatus(msg, isError) {
    const s = $("#status");
    s.textContent = msg || "";
    s.className = isError ? "error" : "";
  }

  async function solve(tab, values, conventions) {
    const seq = ++tab.seq;
    document.body.dataset.state = "busy";
    setStatus("computing…");
    let res, body;
    try {
      res = await fetch("/api/solve", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ problem: tab.id, values: values, conventions: conventions }),
      });
      body = await res.json();
    } catch (e) {
      body = { error: "cannot reach the server (" + e.message + "); the last good numbers are kept" };
      res = { ok: false };
    }
    if (seq !== tab.seq) return false; // a newer request superseded this one
    document.body.dataset.state = "ready";
    if (!res.ok) {
      setStatus(body.error || "the server refused the request", true);
      tab.pending = null;
      return false;
    }
    const first = !tab.result;
    const previous = tab.result;
    tab.result = body;
    tab.values = {};
    for (const n of body.nodes) if (n.editable) tab.values[n.name] = n.value.slice();
    if (first) tab.original = JSON.parse(JSON.stringify(tab.values));
    tab.conventions = Object.assign({}, body.conventions);
    tab.pending = null;
    solves++;
    document.body.dataset.solves = String(solves);
    setStatus("");
    if (tab === current) render(tab, previous);
    return true;
  }

  // ---- tabs ------------------------------------------------------------------

  async function init() {
    let list;
    try {
      const r = await fetch("/api/problems");
      list = await r.json();
    } catch (e) {
      setStatus("cannot reach the server: " + e.message, true);
      return;
    }
    const nav = $("#tabs");
    // the problem bank is a menu beside the tabs: eleven more tabs would
    // not fit a narrow window
    let bank = null;
    for (const p of list) {
      tabs[p.id] = { id: p.id, label: p.label, title: p.title, group: p.group || "", seq: 0, view: "value", detail: "handout", selected: null, result: null, values: {}, pending: null };
      order.push(p.id);
      if (p.group === "bank") {
        if (!bank) {
          bank = el("select", "bank");
          bank.id = "bank";
          bank.title = "The problem bank: one classic problem of a deep-learning course each";
          bank.setAttribute("aria-label", "problem bank");
          const none = el("option", "", "Problem bank…");
          none.value = "";
          bank.appendChild(none);
          bank.addEventListener("change", () => { if (bank.value) show(bank.value); });
        }
        const o = el("option", "", p.label);
        o.value = p.id;
        bank.appendChild(o);
        continue;
      }
      const b = el("button", "tab", p.label);
      b.type = "button";
      b.setAttribute("role", "tab");
      b.dataset.id = p.id;
      b.addEventListener("click", () => show(p.id));
      nav.appendChild(b);
    }
    if (bank) nav.appendChild(bank);
    $$("input[name=view]").forEach((r) => r.addEventListener("change", () => {
      current.view = r.value;
      render(current);
    }));
    for (const c of ["reshape", "kernel", "label"]) {
      $$("input[name=" + c + "]").forEach((r) => r.addEventListener("change", () => {
        const conv = Object.assign({}, current.conventions);
        conv[c] = r.value;
        solve(current, current.values, conv).then((ok) => { if (!ok) syncToolbar(current); });
      }));
    }
    $("#reset").addEventListener("click", () => {
      if (current && current.original) solve(current, current.original, {});
    });
    window.addEventListener("resize", () => { if (current && current.result) layout(current); });
    // the graph is laid out for the width it has: again when the node
    // panel opens or closes beside it
    let lastWidth = 0;
    if (window.ResizeObserver) {
      new ResizeObserver(() => {
        const w = $("#graphwrap").clientWidth;
        if (w !== lastWidth) {
          lastWidth = w;
          if (current && current.result) layout(current);
        }
      }).observe($("#graphwrap"));
    }
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && current && current.selected && !ev.target.closest("input")) select(current, null);
    });
    const want = location.hash.slice(1);
    show(tabs[want] ? want : order[0]);
  }

  function show(id) {
    current = tabs[id];
    $$(".tab").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.id === id)));
    const bank = $("#bank");
    if (bank) {
      bank.value = current.group === "bank" ? id : "";
      bank.classList.toggle("active", current.group === "bank");
    }
    if (!current.result) $("#panel").hidden = true;
    if (location.hash.slice(1) !== id) history.replaceState(null, "", "#" + id);
    if (current.result) render(current);
    else {
      $("#graph").textContent = "";
      $("#below").textContent = "";
      solve(current, {}, {});
    }
  }

  function syncToolbar(tab) {
    const r = tab.result;
    // an imported ONNX model: its numbers come from its files, and the
    // page says so instead of offering edits
    const ro = $("#readonly");
    ro.hidden = !r.readOnly;
    ro.textContent = r.readOnly || "";
    $("#reset").hidden = !!r.readOnly;
    const hint = $(".hint");
    if (!hint.dataset.editing) hint.dataset.editing = hint.textContent;
    hint.textContent = r.readOnly ? "Click a node to see its forward and backward step. The worked solution below is a handout; its switch shows every element." : hint.dataset.editing;
    $("#view-" + tab.view).checked = true;
    for (const c of ["reshape", "kernel", "label"]) {
      $$("input[name=" + c + "]").forEach((i) => { i.checked = i.value === r.conventions[c]; });
      // a convention this network has no use for is not offered: its
      // switch would change nothing, and the worked solution omits it too
      const fs = $("#conv-" + c);
      fs.hidden = !r.relevant[c];
      fs.disabled = !r.relevant[c];
    }
  }

  // ---- the graph -------------------------------------------------------------

  function nodeByName(tab, name) {
    return tab.result.nodes.find((n) => n.name === name);
  }

  // drawTensor draws a tensor as small matrices whose cells carry their flat
  // index (data-i) and full-precision value (data-v).
  function drawTensor(shape, data, editedMask) {
    const n = data.length;
    if (n > MAX_SHOWN) {
      let lo = Infinity, hi = -Infinity;
      for (const v of data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      return el("div", "big", n + " values, from " + fmt(lo) + " to " + fmt(hi) + " (open the node)");
    }
    let rows, cols;
    if (shape.length === 0) { rows = 1; cols = 1; }
    else if (shape.length === 1) { rows = shape[0]; cols = 1; } // a vector is one column, however long
    else { rows = shape[shape.length - 2]; cols = shape[shape.length - 1]; }
    const blocks = shape.length > 2 ? shape.slice(0, -2).reduce((a, b) => a * b, 1) : 1;
    const wrap = el("div", "blocks");
    for (let b = 0; b < blocks; b++) {
      const blk = el("div", "blk");
      if (blocks > 1) {
        const lead = shape.slice(0, -2);
        const idx = [];
        let r = b;
        for (let d = lead.length - 1; d >= 0; d--) { idx.unshift(r % lead[d] + 1); r = Math.floor(r / lead[d]); }
        blk.appendChild(el("div", "bl", "[" + idx.join(",") + ",:,:]"));
      }
      if (shape.length === 1 && rows > TALL) {
        blk.classList.add("tall");
        blk.appendChild(el("div", "bl", rows + " elements, scroll"));
      }
      const t = el("table", "mat");
      for (let i = 0; i < rows; i++) {
        const tr = el("tr");
        for (let j = 0; j < cols; j++) {
          const k = (b * rows + i) * cols + j;
          const td = el("td");
          if (k < n) {
            const c = el("span", "cell", fmt(data[k]));
            c.dataset.i = String(k);
            c.dataset.v = String(data[k]);
            if (editedMask && editedMask[k]) c.classList.add("edited");
            td.appendChild(c);
          }
          tr.appendChild(td);
        }
        t.appendChild(tr);
      }
      blk.appendChild(t);
      wrap.appendChild(blk);
    }
    return wrap;
  }

  function render(tab, previous) {
    syncToolbar(tab);
    const g = $("#graph");
    g.textContent = "";
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "edges");
    g.appendChild(svg);
    const view = tab.view;
    for (const n of tab.result.nodes) {
      const d = el("div", "node " + n.kind + (n.editable ? " editable" : "") + (n.shared ? " shared" : "") + " show-" + view);
      d.dataset.name = n.name;
      if (n.step) d.dataset.step = String(n.step);
      d.tabIndex = 0;
      if (tab.selected === n.name) d.classList.add("selected");
      const head = el("div", "nh");
      const nm = el("span", "nm");
      tex(nm, view === "grad" ? "\\partial J/\\partial " + n.tex : n.tex, false);
      head.appendChild(nm);
      head.appendChild(el("span", "shape", n.shape.length ? n.shape.join("×") : "scalar"));
      d.appendChild(head);
      if (n.kind !== "value") {
        let tag = n.kind === "objective" ? "objective J" : n.kind;
        if (n.shared) tag = "shared by every step";
        if (n.kind === "input" && n.inputKind && n.inputKind !== "data") tag = n.inputKind; // labels, target, mask
        d.appendChild(el("div", "tag", tag));
      }
      if (view === "grad" && !n.grad) {
        d.appendChild(el("div", "nograd", n.kind === "objective" ? "∂J/∂J = 1" : "no gradient"));
      } else {
        let mask = null;
        if (view === "value" && n.editable && tab.original && tab.original[n.name]) {
          const o = tab.original[n.name];
          mask = n.value.map((v, i) => v !== o[i]);
        }
        d.appendChild(drawTensor(n.shape, view === "grad" ? n.grad : n.value, mask));
      }
      if (n.editable && view === "value") {
        $$(".cell", d).forEach((c) => { c.tabIndex = 0; c.setAttribute("role", "button"); c.setAttribute("aria-label", n.name + " element " + (Number(c.dataset.i) + 1) + ": " + c.dataset.v + ", press Enter to change"); });
      }
      d.addEventListener("click", (ev) => onNodeClick(tab, n, d, ev));
      d.addEventListener("keydown", (ev) => {
        if (ev.key !== "Enter") return;
        if (ev.target === d) select(tab, n.name);
        else if (ev.target.classList.contains("cell") && n.editable && tab.view === "value") {
          ev.preventDefault();
          startEdit(tab, n, ev.target);
        }
      });
      g.appendChild(d);
    }
    if (previous && previous.problem === tab.result.problem) flashChanges(tab, previous);
    layout(tab);
    renderBelow(tab);
    renderPanel(tab);
    if (tab.editNext) {
      const en = tab.editNext;
      tab.editNext = null;
      const n = nodeByName(tab, en.name);
      const c = $('.node[data-name="' + CSS.escape(en.name) + '"] .cell[data-i="' + en.i + '"]');
      if (n && c && tab.view === "value") startEdit(tab, n, c);
    }
  }

  function flashChanges(tab, previous) {
    const key = tab.view === "grad" ? "grad" : "value";
    for (const n of tab.result.nodes) {
      const p = previous.nodes.find((q) => q.name === n.name);
      if (!p || !p[key] || !n[key]) continue;
      $$('.node[data-name="' + CSS.escape(n.name) + '"] .cell').forEach((c) => {
        const i = Number(c.dataset.i);
        if (p[key][i] !== n[key][i]) c.classList.add("changed");
      });
    }
  }

  // layout places the measured nodes: data nodes in columns left to right
  // (stacked when they share a column), and above them a band with each
  // column's parameters side by side, centred over it where there is room.
  // Columns that do not fit the window's width wrap onto a new row (each
  // row with its own parameter band); a graph still wider than the window
  // (one very wide column) is zoomed out to fit it.
  function layout(tab) {
    const g = $("#graph");
    const nodes = tab.result.nodes;
    g.style.transform = "";
    g.style.marginRight = "";
    g.style.marginBottom = "";
    const box = {};
    for (const n of nodes) {
      const d = $('.node[data-name="' + CSS.escape(n.name) + '"]', g);
      box[n.name] = { d: d, w: d.offsetWidth, h: d.offsetHeight, n: n };
    }
    const ncol = Math.max(...nodes.map((n) => n.col)) + 1;
    const HG = 44, VG = 46, PG = 12, DG = 22, RG = 64;
    const MARGIN = 16;
    const wrapEl = $("#graphwrap");
    const avail = Math.max(240, wrapEl.clientWidth - 2 * MARGIN);
    // each column's data nodes and parameters, and the width it takes
    // an unrolled recurrent layer: one column per time step, and the
    // weights every step shares drawn once, in a band above the steps
    const stepCol = {};
    for (const n of nodes) if (n.step && n.kind !== "param") stepCol[n.col] = n.step;
    const shared = nodes.filter((n) => n.kind === "param" && n.shared).sort((a, b) => a.lane - b.lane);
    const sharedW = shared.length ? shared.reduce((a, n) => a + box[n.name].w, 0) + PG * (shared.length - 1) : 0;
    const sharedH = Math.max(0, ...shared.map((n) => box[n.name].h));
    const cols = [];
    for (let c = 0; c < ncol; c++) {
      const ds = nodes.filter((n) => n.col === c && n.kind !== "param").sort((a, b) => a.lane - b.lane);
      const ps = nodes.filter((n) => n.col === c && n.kind === "param" && !n.shared).sort((a, b) => a.lane - b.lane);
      const w = Math.max(0, ...ds.map((n) => box[n.name].w));
      const pw = ps.length ? ps.reduce((a, n) => a + box[n.name].w, 0) + PG * (ps.length - 1) : 0;
      if (w === 0 && pw === 0) continue;
      cols.push({ c: c, ds: ds, ps: ps, w: w, pw: pw, foot: Math.max(w, pw) });
    }
    // pack the columns into rows no wider than the window
    const rows = [];
    let cur = null;
    for (const col of cols) {
      // the time steps stay side by side in one row (zoomed if need be)
      const nextStep = stepCol[col.c] > 1 && cur && cur.cols.length && stepCol[cur.cols[cur.cols.length - 1].c];
      if (!cur || (cur.w + HG + col.foot > avail && !nextStep)) {
        cur = { cols: [], w: -HG };
        rows.push(cur);
      }
      cur.cols.push(col);
      cur.w += HG + col.foot;
    }
    const rowOf = {};
    let y0 = 0, W = 0;
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      const stepsHere = row.cols.filter((col) => stepCol[col.c]);
      const band = Math.max(0, ...row.cols.flatMap((col) => col.ps.map((n) => box[n.name].h)), stepsHere.length && shared.length ? sharedH : 0);
      const top = y0 + (band > 0 ? band + VG : 0);
      let x = 0, bottom = top;
      for (const col of row.cols) {
        const cx = x + col.foot / 2;
        let y = top;
        for (const n of col.ds) {
          const b = box[n.name];
          b.x = cx - b.w / 2; b.y = y;
          b.footL = x; b.footR = x + col.foot;
          y += b.h + DG;
          rowOf[n.name] = r;
        }
        bottom = Math.max(bottom, y - DG);
        let px = cx - col.pw / 2;
        for (const n of col.ps) {
          const b = box[n.name];
          b.x = px; b.y = y0 + band - b.h;
          b.footL = x; b.footR = x + col.foot;
          px += b.w + PG;
          rowOf[n.name] = r;
        }
        x += col.foot + HG;
      }
      if (stepsHere.length && shared.length && !row.shared) {
        // the shared weights centred over the steps of this row
        row.shared = true;
        const first = box[stepsHere[0].ds[0].name], lastc = box[stepsHere[stepsHere.length - 1].ds[0].name];
        const mid = (first.footL + lastc.footR) / 2;
        let px = Math.max(0, mid - sharedW / 2);
        for (const n of shared) {
          const b = box[n.name];
          b.x = px; b.y = y0 + band - b.h;
          b.footL = first.footL; b.footR = lastc.footR;
          px += b.w + PG;
          rowOf[n.name] = r;
        }
        x = Math.max(x, px + HG);
        row.stepTop = top;
        row.stepCols = stepsHere.map((col) => ({ step: stepCol[col.c], x: box[col.ds[0].name].footL, w: col.foot }));
      }
      row.top = y0; row.bottom = bottom;
      W = Math.max(W, x - HG);
      y0 = bottom + RG;
    }
    const H = y0 - RG;
    for (const name in box) {
      const b = box[name];
      b.d.style.left = b.x + "px";
      b.d.style.top = b.y + "px";
    }
    $$(".steplabel", g).forEach((e) => e.remove());
    for (const row of rows) {
      for (const sc of row.stepCols || []) {
        const lab = el("div", "steplabel", "t = " + sc.step);
        lab.dataset.step = String(sc.step);
        lab.style.left = sc.x + "px";
        lab.style.width = sc.w + "px";
        lab.style.top = (row.stepTop - 18) + "px";
        g.appendChild(lab);
      }
    }
    // a long edge within a row runs below it; the last row needs room for it
    const sameRowLong = (a, b) => a.n.kind !== "param" && rowOf[a.n.name] === rowOf[b.n.name] && b.n.col - a.n.col > 1;
    const long = tab.result.edges.some((e) => box[e.from] && box[e.to] && rowOf[e.from] === rows.length - 1 && sameRowLong(box[e.from], box[e.to]));
    const Hall = long ? H + 40 : H;
    g.style.width = W + "px";
    g.style.height = Hall + "px";
    g.dataset.rows = String(rows.length);
    // zoom out what is still wider than the window
    const z = W > avail ? Math.max(0.3, avail / W) : 1;
    tab.zoom = z;
    g.dataset.zoom = String(z);
    if (z < 1) {
      g.style.transformOrigin = "0 0";
      g.style.transform = "scale(" + z + ")";
      g.style.marginRight = (MARGIN - W * (1 - z)) + "px";
      g.style.marginBottom = (MARGIN - Hall * (1 - z)) + "px";
    }
    const svg = $("svg.edges", g);
    svg.setAttribute("width", W);
    svg.setAttribute("height", Hall);
    svg.textContent = "";
    const ns = "http://www.w3.org/2000/svg";
    const defs = document.createElementNS(ns, "defs");
    for (const [id, color] of [["arrow", "#9aa5bd"], ["arrowhot", "#e8590c"]]) {
      const m = document.createElementNS(ns, "marker");
      m.setAttribute("id", id); m.setAttribute("viewBox", "0 0 10 10"); m.setAttribute("refX", "9"); m.setAttribute("refY", "5");
      m.setAttribute("markerWidth", "7"); m.setAttribute("markerHeight", "7"); m.setAttribute("orient", "auto-start-reverse");
      const p = document.createElementNS(ns, "path");
      p.setAttribute("d", "M 0 0 L 10 5 L 0 10 z"); p.setAttribute("fill", color);
      m.appendChild(p); defs.appendChild(m);
    }
    svg.appendChild(defs);
    for (const e of tab.result.edges) {
      const a = box[e.from], b = box[e.to];
      if (!a || !b) continue;
      let d;
      const ra = rowOf[e.from], rb = rowOf[e.to];
      if (ra !== rb) {
        // into a later row (a wrapped graph, or a parameter shared with a
        // layer further on): out of the source's side into the gap beside
        // its column, down to the gap between the rows, across to the gap
        // left of the target's column, down and into the target's left
        // side, so that the edge crosses no node
        const param = a.n.kind === "param";
        const sx = param ? a.x : a.x + a.w, sy = a.y + Math.min(a.h / 2, 40);
        const ga = Math.min(Math.max(param ? a.footL - HG / 2 : a.footR + HG / 2, -10), W + 10);
        const yc = rows[rb].top - RG / 2 + 6;
        const gb = Math.max(b.footL - HG / 2, -10);
        const ty = b.y + Math.min(b.h / 2, 40);
        let via = "";
        if (rb > ra + 1) {
          // past the rows between: along the left margin, which no node uses
          via = " V" + (rows[ra].bottom + RG / 2 - 6) + " H-10";
        }
        d = "M" + sx + "," + sy + " H" + ga + via + " V" + yc + " H" + gb + " V" + ty + " H" + b.x;
      } else if (a.n.kind !== "param" && a.n.col === b.n.col) {
        // within a time step's column: straight down to the node below,
        // else around the column's left side
        const between = tab.result.nodes.some((n) => n.col === a.n.col && n.kind !== "param" && box[n.name] && box[n.name].y > Math.min(a.y, b.y) && box[n.name].y < Math.max(a.y, b.y));
        if (!between && b.y > a.y) {
          const x1 = a.x + a.w / 2;
          d = "M" + x1 + "," + (a.y + a.h) + " L" + x1 + "," + b.y;
        } else {
          const y1 = a.y + Math.min(a.h / 2, 20), y2 = b.y + Math.min(b.h / 2, 20);
          const side = Math.min(a.x, b.x) - 16;
          d = "M" + a.x + "," + y1 + " C" + side + "," + y1 + " " + side + "," + y2 + " " + b.x + "," + y2;
        }
      } else if (a.n.kind === "param") {
        const x1 = a.x + a.w / 2, y1 = a.y + a.h;
        const x2 = Math.min(Math.max(x1, b.x + 12), b.x + b.w - 12), y2 = b.y;
        d = "M" + x1 + "," + y1 + " C" + x1 + "," + (y1 + VG / 2) + " " + x2 + "," + (y2 - VG / 2) + " " + x2 + "," + y2;
      } else if (b.n.col - a.n.col > 1) {
        // a long edge (x to the loss L, a skip connection) goes around
        // below the other nodes of its row
        const x1 = a.x + a.w / 2, y1 = a.y + a.h;
        const x2 = b.x + b.w / 2, y2 = b.y + b.h;
        const low = rows[ra].bottom + 34;
        d = "M" + x1 + "," + y1 + " C" + x1 + "," + low + " " + x2 + "," + low + " " + x2 + "," + y2;
      } else {
        const x1 = a.x + a.w, y1 = a.y + Math.min(a.h / 2, 40);
        const x2 = b.x, y2 = b.y + Math.min(b.h / 2, 40);
        const dx = Math.max(20, (x2 - x1) / 2);
        d = "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 + " " + x2 + "," + y2;
      }
      const p = document.createElementNS(ns, "path");
      p.setAttribute("d", d);
      const hot = tab.selected && (e.from === tab.selected || e.to === tab.selected);
      if (hot) p.setAttribute("class", "hot");
      p.setAttribute("marker-end", hot ? "url(#arrowhot)" : "url(#arrow)");
      p.dataset.from = e.from; p.dataset.to = e.to;
      svg.appendChild(p);
    }
  }

  // ---- selecting and editing --------------------------------------------

  function onNodeClick(tab, n, d, ev) {
    const cell = ev.target.closest(".cell");
    if (cell && n.editable && tab.view === "value" && !cell.querySelector("input")) {
      startEdit(tab, n, cell);
      ev.stopPropagation();
      return;
    }
    if (ev.target.closest("input")) return;
    select(tab, n.name);
  }

  function select(tab, name) {
    tab.selected = name;
    $$(".node").forEach((d) => d.classList.toggle("selected", d.dataset.name === name));
    $$("svg.edges path").forEach((p) => {
      const hot = p.dataset.from === name || p.dataset.to === name;
      p.classList.toggle("hot", hot);
      p.setAttribute("marker-end", hot ? "url(#arrowhot)" : "url(#arrow)");
    });
    renderPanel(tab);
  }

  function clearError() {
    $$(".cell-error").forEach((e) => e.remove());
  }

  function showError(input, msg) {
    clearError();
    input.classList.add("invalid");
    input.setAttribute("aria-invalid", "true");
    const tip = el("div", "cell-error", msg);
    const g = $("#graph");
    const r = input.getBoundingClientRect(), gr = g.getBoundingClientRect();
    const z = (current && current.zoom) || 1; // the graph's own pixels, before its zoom
    tip.style.left = (r.left - gr.left) / z + "px";
    tip.style.top = (r.bottom - gr.top + 3) / z + "px";
    g.appendChild(tip);
  }

  function startEdit(tab, n, cell) {
    const i = Number(cell.dataset.i);
    const old = Number(cell.dataset.v);
    const input = el("input");
    input.type = "text";
    input.inputMode = "decimal";
    input.value = String(old);
    input.setAttribute("aria-label", n.name + " element " + (i + 1));
    cell.textContent = "";
    cell.appendChild(input);
    input.focus();
    input.select();
    let done = false;
    const cancel = () => {
      done = true;
      clearError();
      cell.textContent = fmt(old);
    };
    const commit = (next) => {
      const text = input.value.trim();
      const v = text === "" ? NaN : Number(text);
      if (!Number.isFinite(v)) {
        const why = Number.isNaN(v) ? " is not a number" : " is too large for a number (at most ±1.8e308)";
        showError(input, elementName(n, i) + ": “" + text + "”" + why + "; the last good values are kept");
        input.focus();
        return false;
      }
      done = true;
      clearError();
      cell.textContent = fmt(v);
      if (v !== old) {
        const base = tab.pending || tab.values;
        const values = {};
        for (const k in base) values[k] = base[k].slice();
        values[n.name][i] = v;
        tab.pending = values;
        solve(tab, values, tab.conventions).then((ok) => { if (!ok && tab === current) render(tab); });
      }
      if (next) {
        const cells = $$('.node[data-name="' + CSS.escape(n.name) + '"] .cell');
        const c = cells[(i + next + cells.length) % cells.length];
        // the graph is redrawn when the answer arrives; edit the new cell then
        if (v === old && c) startEdit(tab, n, c);
        else tab.editNext = { name: n.name, i: Number(c.dataset.i) };
      }
      return true;
    };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") { ev.preventDefault(); commit(0); }
      else if (ev.key === "Escape") { ev.preventDefault(); cancel(); }
      else if (ev.key === "Tab") { ev.preventDefault(); commit(ev.shiftKey ? -1 : 1); }
    });
    input.addEventListener("input", () => { input.classList.remove("invalid"); clearError(); });
    input.addEventListener("blur", () => { if (!done) commit(0); });
  }

  // elementName names element i (flat, row-major) of node n as the worked
  // solution does, 1-based: w0[2,1], z[1].
  function elementName(n, i) {
    if (!n.shape.length) return n.name;
    const idx = [];
    for (let d = n.shape.length - 1; d >= 0; d--) { idx.unshift(i % n.shape[d] + 1); i = Math.floor(i / n.shape[d]); }
    return n.name + "[" + idx.join(",") + "]";
  }

  // ---- the node panel -------------------------------------------------------

  // stepSection starts a node's forward or backward step: the step's
  // formula (for a gradient, its chain-rule factors first), then the
  // general element with symbolic indices, and the notes that go with them.
  function stepSection(panel, title, step, cls) {
    const sec = el("section", cls);
    sec.appendChild(el("h3", "", title));
    if (step.chain) {
      const d = tex(el("div", "eq head chain"), step.chain, true);
      d.title = step.chainText || "";
      sec.appendChild(d);
    } else {
      sec.appendChild(tex(el("div", "eq head"), step.head, true));
    }
    if (step.local) sec.appendChild(el("p", "sub local", step.local + "."));
    if (step.rule) {
      sec.appendChild(el("p", "sub", "the general element:"));
      const d = tex(el("div", "eq rule"), step.rule, true);
      d.dataset.text = step.ruleText || "";
      d.title = d.dataset.text;
      sec.appendChild(d);
      if (step.ruleNote) sec.appendChild(el("p", "sub", step.ruleNote + "."));
    }
    if (step.note) sec.appendChild(el("p", "sub", step.note + "."));
    return sec;
  }

  function lines(sec, step) {
    (step.lines || []).forEach((l, k) => {
      const d = el("div", "line");
      d.dataset.text = (step.linesText || [])[k] || "";
      d.title = d.dataset.text;
      tex(d, l, false);
      sec.appendChild(d);
    });
  }

  function renderPanel(tab) {
    const panel = $("#panel");
    panel.textContent = "";
    const n = tab.selected && nodeByName(tab, tab.selected);
    panel.hidden = !n;
    if (!n) return;
    const close = el("button", "close", "×");
    close.type = "button";
    close.title = "close (Esc)";
    close.addEventListener("click", () => select(tab, null));
    panel.appendChild(close);
    const h = el("h2");
    tex(h, n.tex, false);
    h.appendChild(document.createTextNode("  "));
    h.appendChild(el("span", "sub", (n.kind === "value" ? "" : n.kind + ", ") + (n.shape.length ? "shape " + n.shape.join("×") : "scalar")));
    if (n.fileName) h.appendChild(el("span", "sub filename", " · " + n.fileName + " in the file"));
    panel.appendChild(h);
    if (n.heatmap) panel.appendChild(heatmap(n));

    // forward
    if (n.forward) {
      const sec = stepSection(panel, "Forward: formula, numbers substituted, result", n.forward, "fwd");
      if (n.inlineIn) sec.appendChild(el("p", "sub", "The handout gives " + n.name + " a step of its own; the full trace shows it inside the step of " + n.inlineIn + "."));
      lines(sec, n.forward);
      sec.appendChild(tex(el("div", "eq result"), n.forward.result, true));
      panel.appendChild(sec);
    } else {
      const sec = el("section", "fwd");
      sec.appendChild(el("h3", "", "Value"));
      let what = n.kind === "input" ? "An input of the network." : "A parameter.";
      if (tab.result.readOnly) what = (n.kind === "input" ? "An input of the model" : "A parameter (an initializer of the model)") + (n.fileName ? ", named " + n.fileName + " in the file" : "") + ". " + tab.result.readOnly;
      else if (!n.editable) what = "Given with the problem (" + (n.inputKind === "labels" ? "class labels" : n.inputKind === "mask" ? "a dropout mask" : "a given tensor") + "); it is not changed here.";
      else what += " Click a number in the graph to change it.";
      sec.appendChild(el("p", "sub", what));
      sec.appendChild(tex(el("div", "eq result"), n.tex + " = " + texMatrix(n.shape, n.value), true));
      panel.appendChild(sec);
    }

    // a parameter's values after the optimizer steps
    const tr = tab.result.train;
    if (tr && n.kind === "param") {
      const sec = el("section", "steps");
      sec.appendChild(el("h3", "", "Optimizer steps (" + tr.text + ")"));
      for (const st of tr.steps) {
        const p = st.params.find((q) => q.name === n.name);
        if (p) sec.appendChild(tex(el("div", "eq result"), n.tex + "^{(" + st.step + ")} = " + texMatrix(p.shape, p.value), true));
      }
      sec.appendChild(el("p", "sub", "Every element's update is worked in “Optimizer steps” below the graph."));
      panel.appendChild(sec);
    }

    // backward
    if (n.backward) {
      const sec = stepSection(panel, "Backward: upstream gradient × local derivative", n.backward, "bwd");
      for (const c of n.consumers || []) {
        const cn = nodeByName(tab, c);
        if (!cn) continue;
        const label = el("p", "sub", "upstream gradient from " + c + ":");
        sec.appendChild(label);
        const up = cn.backward ? cn.backward.result : "\\frac{\\partial J}{\\partial " + cn.tex + "} = " + (cn.kind === "objective" ? "1" : texMatrix(cn.shape, cn.grad || []));
        sec.appendChild(tex(el("div", "eq upstream"), up, true));
      }
      sec.appendChild(el("p", "sub", "element by element, the numbers substituted:"));
      lines(sec, n.backward);
      sec.appendChild(el("p", "sub", "result:"));
      sec.appendChild(tex(el("div", "eq result"), n.backward.result, true));
      panel.appendChild(sec);
    } else {
      const sec = el("section", "bwd");
      sec.appendChild(el("h3", "", "Backward"));
      let why = "J does not depend on " + n.name + ", so it has no gradient.";
      if (n.kind === "objective") why = "This node is the objective J itself: ∂J/∂J = 1 starts the backward pass.";
      else if (n.kind === "input") why = n.name + " is data, not a parameter: no gradient is taken with respect to it.";
      sec.appendChild(el("p", "sub", why));
      panel.appendChild(sec);
    }
    fitWide(panel);
    // measured again once KaTeX's fonts are in: they change the widths
    if (document.fonts && document.fonts.status !== "loaded") document.fonts.ready.then(() => { if (!panel.hidden) fitWide(panel); });
  }

  // fitWide shrinks every display formula of root that is wider than its
  // box (a node's upstream gradient, a long result) until it fits, down to
  // 60 % of its size; what is still wider scrolls sideways with a visible
  // scroll bar (class "scrolls"), so that no column is ever cut off.
  function fitWide(root) {
    for (const e of $$(".eq", root)) {
      e.style.fontSize = "";
      e.classList.remove("scrolls");
      let size = 100;
      for (let k = 0; k < 4 && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1 && size > 60; k++) {
        size = Math.max(60, Math.floor(size * e.clientWidth / e.scrollWidth));
        e.style.fontSize = size + "%";
      }
      e.dataset.scale = String(size);
      if (e.scrollWidth > e.clientWidth + 1) e.classList.add("scrolls");
    }
  }

  // heatmap draws an attention head's scores or attention weights as a
  // heat map: row i is what token i attends to, each cell coloured by its
  // value and showing it (the full value on hover). Scores are coloured
  // from blue (negative) through white to red (positive), attention
  // weights from white (0) to blue (1); a masked score (−∞) is grey.
  function heatmap(n) {
    const sec = el("section", "heat");
    const what = { scores: "Scores", masked: "Masked scores", attention: "Attention weights" }[n.heatmap];
    sec.appendChild(el("h3", "", what + " as a heat map"));
    sec.appendChild(el("p", "sub", n.heatmap === "attention"
      ? "Row i: how much token i attends to each token (each row sums to 1)."
      : "Row i: token i's query against each token's key" + (n.heatmap === "masked" ? "; above the diagonal the causal mask writes −∞ (a token does not see later tokens)." : ".")));
    const rows = n.shape[0], cols = n.shape[1];
    let big = 0;
    for (const v of n.value) if (Number.isFinite(v)) big = Math.max(big, Math.abs(v));
    const t = el("table", "heatmap");
    t.dataset.kind = n.heatmap;
    const hr = el("tr");
    hr.appendChild(el("th", "", ""));
    for (let j = 0; j < cols; j++) hr.appendChild(el("th", "", "key " + (j + 1)));
    t.appendChild(hr);
    for (let i = 0; i < rows; i++) {
      const tr = el("tr");
      tr.appendChild(el("th", "", "token " + (i + 1)));
      for (let j = 0; j < cols; j++) {
        const v = n.value[i * cols + j];
        const td = el("td", "hc", Number.isFinite(v) ? fmt(v) : "−∞");
        td.dataset.i = String(i * cols + j);
        td.dataset.v = String(v);
        td.title = n.name + "[" + (i + 1) + "," + (j + 1) + "] = " + (Number.isFinite(v) ? String(v) : "−∞");
        let bg = "#d9dde6", ink = "#1d2433";
        if (Number.isFinite(v)) {
          if (n.heatmap === "attention") {
            const a = Math.max(0, Math.min(1, v));
            bg = "rgba(37, 99, 235, " + a.toFixed(3) + ")";
            if (a > 0.55) ink = "#fff";
          } else {
            const a = big > 0 ? Math.abs(v) / big : 0;
            bg = (v >= 0 ? "rgba(220, 38, 38, " : "rgba(37, 99, 235, ") + (0.85 * a).toFixed(3) + ")";
            if (a > 0.65) ink = "#fff";
          }
        }
        td.style.background = bg;
        td.style.color = ink;
        tr.appendChild(td);
      }
      t.appendChild(tr);
    }
    sec.appendChild(t);
    return sec;
  }

  // ---- below the graph --------------------------------------------------------

  function renderBelow(tab) {
    const below = $("#below");
    const r = tab.result;
    const openState = {};
    $$("details", below).forEach((d) => { openState[d.dataset.key] = d.open; });
    below.textContent = "";
    const mk = (key, title, open, fill) => {
      const d = el("details");
      d.dataset.key = key;
      d.open = key in openState ? openState[key] : open;
      d.appendChild(el("summary", "", title));
      const body = el("div", "md");
      d.appendChild(body);
      let filled = false;
      const fillOnce = () => { if (!filled && d.open) { filled = true; fill(body); } };
      d.addEventListener("toggle", fillOnce);
      below.appendChild(d);
      fillOnce();
    };
    mk("conv", "Objective and conventions", true, (b) => {
      b.appendChild(el("p", "", r.objective));
      const ul = el("ul");
      for (const c of r.header) ul.appendChild(el("li", "", c));
      b.appendChild(ul);
    });
    const isAE = tab.id === "autoencoder";
    mk("derive", "Derived gradient equations (backprop derive)", isAE, (b) => {
      if (r.derivation) renderMarkdown(r.derivation, b);
      else b.appendChild(el("p", "muted", "No derivation: " + (r.derivationError || "unavailable")));
    });
    if (r.train) mk("train", "Optimizer steps: " + r.train.text, true, (b) => renderTrain(tab, b));
    mk("worked", "Worked solution with these numbers (backprop solve)", true, (b) => renderWorked(tab, b));
  }

  // renderTrain draws the optimizer steps of a spec with train: — for each
  // step the objective before the update, every element's update with the
  // numbers substituted (grouped by parameter) and every parameter after
  // it — and the objective after the last step.
  function renderTrain(tab, body) {
    const tr = tab.result.train;
    body.textContent = "";
    const intro = el("p", "sub");
    intro.textContent = "After the gradients, " + tr.steps.length + " update" + (tr.steps.length === 1 ? "" : "s") + " of every parameter by " + tr.text +
      (tr.maximize ? "; J is maximized, so each step goes along +∂J/∂θ (maximize=True)." : ".");
    body.appendChild(intro);
    for (const st of tr.steps) {
      const sec = el("section", "trainstep");
      sec.dataset.step = String(st.step);
      sec.dataset.objective = String(st.objective);
      const h = el("h4");
      h.appendChild(document.createTextNode("Step " + st.step + ": "));
      tex(h, "J = " + texNum(st.objective), false);
      h.appendChild(document.createTextNode(" before the update"));
      sec.appendChild(h);
      const byParam = [];
      for (const u of st.updates) {
        let grp = byParam.find((x) => x.name === u.param);
        if (!grp) { grp = { name: u.param, ups: [] }; byParam.push(grp); }
        grp.ups.push(u);
      }
      for (const grp of byParam) {
        const pd = el("div", "trainparam");
        pd.dataset.param = grp.name;
        const rows = [];
        for (const u of grp.ups) rows.push(u.tex.join("\\\\ "));
        const eq = tex(el("div", "eq updates"), "\\begin{aligned}" + rows.join("\\\\ ") + "\\end{aligned}", true);
        eq.title = grp.ups.map((u) => u.text.join("\n")).join("\n");
        pd.appendChild(eq);
        const after = st.params.find((p) => p.name === grp.name);
        if (after) {
          const a = tex(el("div", "eq after"), after.tex + "^{(" + st.step + ")} = " + texMatrix(after.shape, after.value), true);
          a.dataset.name = after.name;
          a.dataset.values = JSON.stringify(after.value);
          pd.appendChild(a);
        }
        sec.appendChild(pd);
      }
      body.appendChild(sec);
    }
    const fin = el("p", "final");
    fin.dataset.objective = String(tr.finalObjective);
    fin.appendChild(document.createTextNode("After " + tr.steps.length + " step" + (tr.steps.length === 1 ? "" : "s") + ": "));
    tex(fin, "J = " + texNum(tr.finalObjective), false);
    fin.appendChild(document.createTextNode(" (it was " + fmt(tr.steps[0].objective) + " before the first)."));
    body.appendChild(fin);
  }

  // DETAILS are the two readings of the worked solution: the handout (the
  // compact model answer, the default) and every element of every step.
  const DETAILS = [
    { id: "handout", label: "handout", title: "The compact model answer: each step's general formula, a few elements worked in numbers, the answers asked for (backprop solve)", key: "worked" },
    { id: "full", label: "every element", title: "Every element of every step with the numbers substituted (backprop solve --detail full)", key: "workedFull" },
  ];

  // renderWorked draws the worked solution in the tab's chosen detail, with
  // a switch to the other one; both texts came with the last answer.
  function renderWorked(tab, body) {
    const r = tab.result;
    body.textContent = "";
    const bar = el("div", "seg detail");
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "detail of the worked solution");
    for (const d of DETAILS) {
      const b = el("button", "", d.label);
      b.type = "button";
      b.id = "detail-" + d.id;
      b.title = d.title;
      b.setAttribute("aria-pressed", String(tab.detail === d.id));
      b.addEventListener("click", () => {
        if (tab.detail === d.id) return;
        tab.detail = d.id;
        renderWorked(tab, body);
      });
      bar.appendChild(b);
    }
    body.appendChild(bar);
    const d = DETAILS.find((x) => x.id === tab.detail) || DETAILS[0];
    const text = el("div", "worked");
    text.dataset.detail = d.id;
    if (r[d.key]) renderMarkdown(r[d.key], text);
    else text.appendChild(el("p", "muted", r[d.key + "Error"] || "unavailable"));
    body.appendChild(text);
  }

  init();
})();
