// The home page, live: each event of the tenant's stream patches the run it names from the
// event's own data, at most once per animation frame; the figures (success rate, p50, cost, …)
// and the other lists are fetched again on a slow timer once events go quiet.
(function () {
  "use strict";
  var panels = document.getElementById("panels");
  if (!panels || !window.EventSource) return;

  var QUIET_MS = Number(panels.dataset.refreshQuiet);  // refresh once events pause this long
  var MAX_WAIT_MS = Number(panels.dataset.refreshMax);  // … or at the latest this long after one
  var KEEP = 500;  // events remembered to re-apply over a refresh rendered before them
  var dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  var queued = [];   // received, not yet drawn
  var applied = [];  // drawn, newest last: {cursor, type, data}
  var frame = 0, fallback = 0;
  var quietTimer = 0, maxTimer = 0, fetching = false, again = false;

  function liveState(text, ok) {
    var el = document.getElementById("live-state");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("offline", !ok);
  }

  function statusBadge(status) {
    var badge = document.createElement("span");
    badge.className = "status status-" + status;
    badge.textContent = status.replace(/_/g, " ");
    return badge;
  }

  function timeElement(iso) {
    var when = new Date(iso);
    var el = document.createElement("time");
    el.setAttribute("datetime", iso);
    el.title = when.toISOString();
    el.textContent = dateTime.format(when);
    el.dataset.local = "1";
    return el;
  }

  // A run the page does not show yet: a row like the server's, filled in by the next refresh.
  function newRow(list, data, ts) {
    var li = document.createElement("li");
    li.dataset.task = data.task_id;
    var link = document.createElement("a");
    link.href = "/console/runs/" + data.task_id;
    link.textContent = data.input || "New run";
    var meta = document.createElement("span");
    meta.className = "meta";
    meta.append((data.crew || "routing") + " · ", timeElement(ts), " · –");
    li.append(statusBadge(data.status), " ", link, " ", meta);
    list.prepend(li);
    var limit = Number(list.dataset.limit);
    while (list.children.length > limit) list.lastElementChild.remove();
    var empty = document.getElementById("no-runs");
    if (empty) empty.hidden = true;
    return li;
  }

  function applyTask(event) {
    var data = event.data;
    var list = document.getElementById("recent-runs");
    if (!list || !data.task_id || !data.status) return;
    var row = list.querySelector('li[data-task="' + CSS.escape(data.task_id) + '"]');
    if (!row) {
      // Only a new run goes on top; an older one's change waits for the list to be fetched.
      if (event.type === "task.queued") newRow(list, data, event.ts);
      return;
    }
    var badge = row.querySelector(".status");
    if (badge && badge.textContent !== data.status.replace(/_/g, " ")) {
      badge.replaceWith(statusBadge(data.status));
    }
  }

  function draw() {
    cancelAnimationFrame(frame);
    clearTimeout(fallback);
    frame = fallback = 0;
    var batch = queued;
    queued = [];
    batch.forEach(function (event) {
      if (event.type.indexOf("task.") === 0) applyTask(event);
      applied.push(event);
    });
    if (applied.length > KEEP) applied.splice(0, applied.length - KEEP);
  }

  // A hidden tab gets no animation frames: the timer draws then, so nothing waits for a frame.
  function scheduleDraw() {
    if (frame || fallback) return;
    frame = requestAnimationFrame(draw);
    fallback = setTimeout(draw, 100);
  }

  // Keeps what a person was doing across a refresh: open agent lists, the focused link.
  function swap(html, cursor) {
    var open = Array.prototype.map.call(
      panels.querySelectorAll("details[open]"),
      function (el) { return el.closest("[data-crew]").dataset.crew; }
    );
    var focused = panels.contains(document.activeElement) && document.activeElement.getAttribute("href");
    panels.innerHTML = html;
    open.forEach(function (crew) {
      var el = panels.querySelector('[data-crew="' + CSS.escape(crew) + '"] details');
      if (el) el.open = true;
    });
    if (focused) {
      var target = panels.querySelector('[href="' + CSS.escape(focused) + '"]');
      if (target) target.focus();
    }
    document.dispatchEvent(new CustomEvent("opshub:swapped", { detail: { root: panels } }));
    // What the stream said after the server read its figures is drawn over them once more.
    applied.forEach(function (event) {
      if (event.cursor > cursor && event.type.indexOf("task.") === 0) applyTask(event);
    });
  }

  function refresh() {
    clearTimeout(quietTimer);
    clearTimeout(maxTimer);
    quietTimer = maxTimer = 0;
    if (fetching) { again = true; return; }
    fetching = true;
    fetch("/console/panels", { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/console/login"); return null; }
        if (!response.ok) throw new Error("panels answered " + response.status);
        var cursor = Number(response.headers.get("X-Opshub-Cursor"));
        return response.text().then(function (html) { swap(html, cursor); });
      })
      .catch(function () {
        if (!maxTimer) maxTimer = setTimeout(refresh, MAX_WAIT_MS);
      })
      .finally(function () {
        fetching = false;
        if (again) { again = false; scheduleRefresh(); }
      });
  }

  function scheduleRefresh() {
    clearTimeout(quietTimer);
    quietTimer = setTimeout(refresh, QUIET_MS);
    if (!maxTimer) maxTimer = setTimeout(refresh, MAX_WAIT_MS);
  }

  function onEvent(message) {
    var data;
    try { data = JSON.parse(message.data); } catch (e) { return; }
    queued.push({ cursor: Number(message.lastEventId), type: message.type, ts: data.ts, data: data });
    scheduleDraw();
    scheduleRefresh();
  }

  var source = new EventSource(panels.dataset.events);
  panels.dataset.names.split(" ").forEach(function (name) {
    source.addEventListener(name, onEvent);
  });
  source.addEventListener("open", function () { liveState("Live", true); });
  source.addEventListener("error", function () {
    liveState(source.readyState === EventSource.CLOSED ? "Offline: reload the page" : "Reconnecting…", false);
  });
})();
