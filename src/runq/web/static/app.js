// runq web dashboard: live updates over server-sent events, and the two small charts.
// Plain DOM code, no library; every value is set with textContent (never parsed as HTML).
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";

  function setBadge(el, status) {
    if (el.textContent === status) return;
    el.textContent = status;
    for (const c of Array.from(el.classList)) if (c.startsWith("s-")) el.classList.remove(c);
    el.classList.add("s-" + status);
  }

  function svg(tag, attrs) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  }

  function fmt(v, unit) {
    if (unit === "s") return v < 1 ? (v * 1000).toFixed(0) + " ms" : v.toFixed(1) + " s";
    return (v < 10 ? v.toFixed(1) : v.toFixed(0)) + unit;
  }

  function draw(box, history) {
    const names = box.dataset.series.split(","), unit = box.dataset.unit;
    const pts = history.filter(p => names.some(n => p[n] !== null && p[n] !== undefined));
    box.replaceChildren();
    if (pts.length < 2) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "collecting samples…";
      box.append(p);
      return;
    }
    const W = 600, H = 160, L = 46, B = 18;
    const t0 = pts[0].time, t1 = pts[pts.length - 1].time || t0 + 1;
    let top = 0;
    for (const p of pts) for (const n of names) if (p[n] > top) top = p[n];
    top = top > 0 ? top * 1.15 : 1;
    const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img"});
    root.append(svg("line", {x1: L, y1: H - B, x2: W, y2: H - B, class: "axis"}));
    root.append(svg("line", {x1: L, y1: 4, x2: L, y2: H - B, class: "axis"}));
    const label = (x, y, s, anchor) => {
      const t = svg("text", {x: x, y: y, "text-anchor": anchor || "end"});
      t.textContent = s;
      root.append(t);
    };
    label(L - 4, 12, fmt(top, unit));
    label(L - 4, H - B, "0");
    label(W, H - 4, new Date(t1 * 1000).toLocaleTimeString());
    label(L, H - 4, new Date(t0 * 1000).toLocaleTimeString(), "start");
    names.forEach((n, i) => {
      const xy = pts.filter(p => p[n] !== null && p[n] !== undefined).map(p =>
        `${(L + (p.time - t0) / (t1 - t0 || 1) * (W - L)).toFixed(1)},` +
        `${(H - B - p[n] / top * (H - B - 4)).toFixed(1)}`);
      root.append(svg("polyline", {points: xy.join(" "), class: "l" + i}));
    });
    box.append(root);
    if (names.length > 1) {
      const legend = document.createElement("div");
      legend.className = "legend";
      legend.textContent = names.map((n, i) => (i ? "orange: " : "blue: ") + n).join(" · ");
      box.append(legend);
    }
  }

  function drawAll(history) {
    for (const box of document.querySelectorAll(".chart")) draw(box, history);
  }

  function apply(data) {
    for (const el of document.querySelectorAll("[data-count]")) {
      el.textContent = String(data.counts[el.dataset.count] || 0);
    }
    for (const el of document.querySelectorAll("[data-workers]")) {
      el.textContent = String(data.workers[el.dataset.workers] || 0);
    }
    for (const el of document.querySelectorAll("[data-status-of]")) {
      const st = data.tasks[el.dataset.statusOf];
      if (st) setBadge(el, st);
    }
    for (const el of document.querySelectorAll("[data-worker-status]")) {
      setBadge(el, data.worker_status[el.dataset.workerStatus] || "EXITED");
    }
    for (const el of document.querySelectorAll("[data-worker-task]")) {
      const tid = data.worker_task[el.dataset.workerTask];
      const a = el.querySelector("a");
      if ((a ? a.textContent : "") === (tid || "")) continue;
      el.replaceChildren();
      if (tid) {
        const link = document.createElement("a");
        link.href = "/tasks/" + encodeURIComponent(tid);
        link.textContent = tid;
        el.append(link);
      } else el.textContent = "—";
    }
    if (data.history) drawAll(data.history);
  }

  function flash(text, ok) {
    let box = document.querySelector("main > .flash");
    if (!box) {
      box = document.createElement("p");
      box.className = "flash";
      box.setAttribute("role", "status");
      document.querySelector("main").prepend(box);
    }
    box.textContent = text;
    box.classList.toggle("bad", !ok);
  }

  // Action forms post to the JSON API without leaving the page (the forms still work
  // without JavaScript); the page then follows the change through the live updates.
  function enhance(form) {
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const button = form.querySelector("button");
      if (button) button.disabled = true;
      try {
        const res = await fetch(form.dataset.api, {
          method: "POST", credentials: "same-origin",
          headers: {"X-CSRF-Token": document.body.dataset.csrf, "Accept": "application/json"},
        });
        let body = {};
        try { body = await res.json(); } catch (e) { body = {message: res.statusText}; }
        flash(body.message || body.error || String(res.status), res.ok);
        if (res.ok && form.dataset.task !== undefined) {
          if (body.task_id === null) location.assign("/tasks");
          else if (body.task_id && body.task_id !== form.dataset.task) {
            location.assign("/tasks/" + encodeURIComponent(body.task_id));
          }
        }
      } catch (e) {
        flash("request failed: " + e, false);
      } finally {
        if (button) button.disabled = false;
      }
    });
  }

  function start() {
    for (const form of document.querySelectorAll("form[data-api]")) enhance(form);
    const initial = document.getElementById("history");
    if (initial) drawAll(JSON.parse(initial.textContent || "[]"));
    if (!window.EventSource) return;
    const ids = Array.from(document.querySelectorAll("[data-task-id]"), el => el.dataset.taskId);
    const url = "/events" + (ids.length ? "?tasks=" + encodeURIComponent(ids.join(",")) : "");
    const live = document.getElementById("live");
    const source = new EventSource(url);
    source.addEventListener("update", ev => {
      apply(JSON.parse(ev.data));
      if (live) { live.classList.add("on"); live.title = "live: updated " + new Date().toLocaleTimeString(); }
    });
    source.onerror = () => { if (live) live.classList.remove("on"); };
    // Close the stream when leaving the page: a browser allows ~6 connections per server,
    // and streams kept open by pages in its back/forward cache would stall the next pages.
    window.addEventListener("pagehide", () => source.close());
  }

  document.addEventListener("DOMContentLoaded", start);
})();
