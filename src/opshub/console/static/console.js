// The console's own script: times in the viewer's zone, and what follows a live stream's end.
(function () {
  "use strict";
  var dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  var timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

  // The server counts "today" and days in the viewer's zone; a first visit learns it here.
  if (zone && document.cookie.indexOf("opshub_tz=" + zone) === -1) {
    // IANA names are plain cookie text (letters, "/", "_", "-", "+").
    document.cookie = "opshub_tz=" + zone + "; path=/console; SameSite=Lax";
  }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) return;
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.title = when.toISOString();
      el.textContent = el.closest(".step") ? timeOnly.format(when) : dateTime.format(when);
      el.dataset.local = "1";
    });
  }

  function liveState(text, ok) {
    var el = document.getElementById("live-state");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("offline", !ok);
  }

  // htmx's throttle redraws at once and drops what follows within its window: a change that
  // came in the window is drawn by one more redraw once the window has passed.
  var trailing = new WeakMap();
  document.addEventListener("htmx:sseMessage", function (e) {
    var el = e.target.closest("[data-trailing-refresh]");
    if (!el || trailing.get(el)) return;
    trailing.set(el, setTimeout(function () {
      trailing.delete(el);
      htmx.trigger(el, "opshub:settled");
    }, Number(el.dataset.trailingRefresh)));
  });

  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  document.addEventListener("htmx:afterSettle", function (e) { localTimes(e.target); });
  document.addEventListener("htmx:sseOpen", function () { liveState("Live", true); });
  document.addEventListener("htmx:sseError", function () { liveState("Reconnecting…", false); });
  document.addEventListener("htmx:sseClose", function (e) {
    // A run's stream closes on its last step: the page redraws with the final state.
    if (e.detail && e.detail.type === "message") {
      document.body.dispatchEvent(new CustomEvent("opshub:run-ended"));
    }
  });
})();
