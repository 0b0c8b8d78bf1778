// Training view: polls /api/train/status once a second and draws it. When
// the status carries controls (backprop serve), the page also starts and
// stops a small training job.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const colors = ["#4a6cf7", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#c92a2a"];
  let gridVersion = -1;
  let formBuilt = false;
  let busy = false; // a start or stop request is on its way

  // controls draws the start form once, then keeps its buttons in step
  // with the job; without controls the card stays hidden.
  function controls(c) {
    $("jobs").hidden = !c;
    if (!c) return;
    if (!c.enabled) {
      $("off").hidden = false; $("off").textContent = c.off;
      $("jobform").hidden = true;
      return;
    }
    if (!formBuilt) {
      formBuilt = true;
      const sel = $("job-model");
      for (const m of c.models) {
        const o = document.createElement("option");
        o.value = m.id; o.textContent = m.label; o.dataset.min = m.minImages;
        sel.appendChild(o);
      }
      const img = $("job-images");
      img.max = c.maxImages; img.value = c.defaultImages;
      const ep = $("job-epochs");
      ep.min = 1; ep.max = c.maxEpochs;
      const setMin = () => { img.min = sel.selectedOptions[0] ? sel.selectedOptions[0].dataset.min : 1; };
      sel.addEventListener("change", setMin);
      setMin();
      $("jobform").hidden = false;
      $("jobform").addEventListener("submit", (ev) => { ev.preventDefault(); send("/api/train/start", { model: sel.value, images: Number(img.value), epochs: Number(ep.value) }); });
      $("job-stop").addEventListener("click", () => send("/api/train/stop", {}));
      $("job-note").textContent = "Trains on the first images of " + c.data + " (at most " + c.maxImages + " images, " + c.maxEpochs +
        " epoch" + (c.maxEpochs > 1 ? "s" : "") + "), one job at a time, stopped after " + duration(c.maxSeconds) + " at the latest; nothing is saved.";
    }
    $("job-start").disabled = busy || c.running;
    $("job-stop").hidden = !c.running;
    $("job-stop").disabled = busy;
    $("jobs").dataset.running = String(c.running);
  }

  async function send(url, body) {
    busy = true;
    $("job-error").hidden = true;
    $("job-start").disabled = true;
    try {
      const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const j = await r.json();
      if (!r.ok) throw new Error(j.error || r.status + " " + r.statusText);
      busy = false;
      show(j);
    } catch (e) {
      busy = false;
      $("job-error").textContent = e.message;
      $("job-error").hidden = false;
      $("job-start").disabled = false;
    }
  }

  function duration(s) {
    if (!(s > 0)) return "–";
    s = Math.round(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + sec + "s";
  }

  function chart(svg, legend, series) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    legend.textContent = "";
    const all = series.flatMap((s) => s.points);
    if (all.length === 0) return;
    const W = Math.max(200, svg.clientWidth || 600), H = 220, pad = 34;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    let x0 = Math.min(...all.map((p) => p.step)), x1 = Math.max(...all.map((p) => p.step));
    let y0 = Math.min(...all.map((p) => p.value)), y1 = Math.max(...all.map((p) => p.value));
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const ns = "http://www.w3.org/2000/svg";
    const sx = (x) => pad + (W - 2 * pad) * (x - x0) / (x1 - x0);
    const sy = (y) => H - pad - (H - 2 * pad) * (y - y0) / (y1 - y0);
    for (const [y, label] of [[y0, y0], [y1, y1]]) {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", 2); t.setAttribute("y", sy(y) + 4);
      t.setAttribute("font-size", "10"); t.setAttribute("fill", "#5b6478");
      t.textContent = Number(label).toPrecision(3);
      svg.appendChild(t);
    }
    for (const [x, anchor] of [[x0, "start"], [x1, "end"]]) {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", sx(x)); t.setAttribute("y", H - 8); t.setAttribute("text-anchor", anchor);
      t.setAttribute("font-size", "10"); t.setAttribute("fill", "#5b6478");
      t.textContent = "step " + x;
      svg.appendChild(t);
    }
    series.forEach((s, i) => {
      const c = s.color || colors[i % colors.length];
      const pl = document.createElementNS(ns, "polyline");
      pl.setAttribute("points", s.points.map((p) => sx(p.step).toFixed(1) + "," + sy(p.value).toFixed(1)).join(" "));
      pl.setAttribute("fill", "none"); pl.setAttribute("stroke", c);
      pl.setAttribute("stroke-width", "1.8");
      svg.appendChild(pl);
      const span = document.createElement("span");
      const sw = document.createElement("i"); sw.style.background = c;
      span.appendChild(sw);
      const last = s.points[s.points.length - 1];
      span.appendChild(document.createTextNode(s.name + (last ? " = " + Number(last.value).toPrecision(4) : "")));
      legend.appendChild(span);
    });
  }

  function show(st) {
    controls(st.controls);
    const started = st.started && !st.started.startsWith("0001-");
    $("empty").hidden = started;
    if (st.controls && st.controls.enabled) $("empty").textContent = "No training job yet: start one above, and its losses and samples appear here as it trains.";
    else if (st.controls) $("empty").textContent = "No training job yet. A training command started with --serve shows its progress on its own page.";
    const end = st.error ? " (failed)" : st.stopped ? " (stopped)" : " (finished)";
    $("title").textContent = started ? "Training: " + (st.kind || "job") + (st.done ? end : "") : "Training";
    document.body.dataset.job = !started ? "none" : st.done ? (st.error ? "failed" : st.stopped ? "stopped" : "finished") : "running";
    $("bar").style.width = (st.progress || 0).toFixed(1) + "%";
    $("progress").textContent = started ? (st.progress || 0).toFixed(1) + " %" : "–";
    $("epoch").textContent = st.epochs ? st.epoch + " / " + st.epochs : (st.epoch || "–");
    $("step").textContent = st.totalSteps ? st.step + " / " + st.totalSteps : (st.step || "–");
    $("elapsed").textContent = duration(st.elapsedSeconds);
    $("eta").textContent = st.done ? "done" : duration(st.etaSeconds);
    $("started").textContent = started ? new Date(st.started).toLocaleString() : "–";
    $("message").textContent = st.error ? st.error : (st.message || "–");
    $("message").className = st.error ? "err" : "";
    const losses = Object.keys(st.losses || {}).sort().map((k) => ({ name: k, points: st.losses[k] }));
    chart($("losses"), $("lossLegend"), losses);
    const hasD = (st.dReal || []).length > 0;
    $("dcard").hidden = !hasD;
    if (hasD) chart($("dscores"), $("dLegend"), [{ name: "D(x)", points: st.dReal }, { name: "D(G(z))", points: st.dFake }]);
    $("gridTitle").textContent = st.kind === "autoencoder" ? "Latest reconstructions: test images above, the auto-encoder's output below" : "Latest samples";
    if (!st.hasGrid) {
      // a new job has no grid yet: the previous job's is not shown
      $("grid").hidden = true; $("nogrid").hidden = false;
      gridVersion = -1;
    } else if (st.gridVersion !== gridVersion) {
      gridVersion = st.gridVersion;
      $("grid").src = "/api/train/grid.png?v=" + gridVersion;
      $("grid").hidden = false; $("nogrid").hidden = true;
    }
  }

  async function poll() {
    try {
      const r = await fetch("/api/train/status", { cache: "no-store" });
      if (!r.ok) throw new Error(r.status + " " + r.statusText);
      show(await r.json());
      $("conn").textContent = "";
    } catch (e) {
      $("conn").textContent = "server unreachable, retrying…";
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
