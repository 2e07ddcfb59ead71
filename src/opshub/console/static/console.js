// The console's own script: times in the viewer's zone, and what follows a live stream's end.
(function () {
  "use strict";
  var dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  var timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

  // The server counts "today" and days in the viewer's zone: the sign-in form sends it (so the
  // first page after signing in is already in it), and the cookie follows a later change.
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

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-viewer-zone]").forEach(function (el) {
      el.value = zone || "";
    });
    localTimes(document);
  });
  document.addEventListener("htmx:afterSettle", function (e) { localTimes(e.target); });
  document.addEventListener("opshub:swapped", function (e) { localTimes(e.detail.root); });
  document.addEventListener("htmx:sseClose", function (e) {
    // A run's stream closes on its last step: the page redraws with the final state.
    if (e.detail && e.detail.type === "message") {
      document.body.dispatchEvent(new CustomEvent("opshub:run-ended"));
    }
  });
})();
