// owl web board: live updates from /events/stream (server-sent events). No build step.
"use strict";
(function () {
  const live = document.getElementById("live");
  const list = document.getElementById("events");
  const overview = document.getElementById("overview");
  const datasetId = document.getElementById("dataset-id");
  let pending = null;

  function refreshOverview() {
    // one fetch at most per second, however many events arrive
    if (!overview || pending) return;
    pending = setTimeout(function () {
      fetch(overview.dataset.refresh, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { overview.innerHTML = html; })
        .catch(function () {})
        .finally(function () { pending = null; });
    }, 1000);
  }

  function addEvent(e) {
    if (!list) return;
    const li = document.createElement("li");
    const when = new Date(Number(e.t) / 1000).toLocaleTimeString();
    li.textContent = when + "  " + e.ds + "  " + e.st + "  " + (e.fr || "-") + " → " + e.to +
      "  by " + e.by + (e.why ? "  (" + e.why + ")" : "");
    li.className = "state " + e.to;
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 50) list.removeChild(list.lastChild);
  }

  if (!window.EventSource) return;
  const source = new EventSource("/events/stream");
  source.onopen = function () { if (live) live.className = "on"; };
  source.onerror = function () { if (live) live.className = "muted"; };
  source.addEventListener("transition", function (msg) {
    const e = JSON.parse(msg.data);
    addEvent(e);
    refreshOverview();
    if (datasetId && e.ds === datasetId.textContent && !document.getElementById("stale")) {
      const p = document.createElement("p");
      p.id = "stale";
      p.className = "notice";
      p.innerHTML = "This dataset changed: <a href=''>reload</a>.";
      datasetId.parentNode.after(p);
    }
  });
  source.addEventListener("resync", refreshOverview);
})();
