// Rongxin member platform: the little JavaScript the pages use (written here; nothing downloaded).
// Pages work without it; it adds upload progress and local times.
"use strict";

function localTimes() {
  document.querySelectorAll(".ts[data-ms]").forEach(function (el) {
    var ms = Number(el.dataset.ms);
    if (ms > 1e11) { el.textContent = new Date(ms).toLocaleString(); el.title = new Date(ms).toISOString(); }
  });
  document.querySelectorAll(".age[data-ms]").forEach(function (el) {
    var ms = Number(el.dataset.ms);
    if (ms > 1e11) { el.textContent = Math.max(0, Math.round((Date.now() - ms) / 1000)); }
  });
}

function uploadWithProgress(form) {
  var bar = document.getElementById(form.dataset.progress);
  var status = document.getElementById("upload-status");
  form.addEventListener("submit", function (ev) {
    if (!window.XMLHttpRequest || !window.FormData) { return; }
    ev.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    bar.hidden = false;
    status.textContent = status.dataset.text;
    form.querySelector("button[type=submit]").disabled = true;
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
    });
    xhr.addEventListener("load", function () {
      // a redirect was followed: show the page it led to (the work, or the form with its error)
      if (xhr.responseURL && xhr.responseURL !== window.location.href && xhr.status < 400) {
        window.location.assign(xhr.responseURL);
      } else {
        document.open(); document.write(xhr.responseText); document.close();
      }
    });
    xhr.addEventListener("error", function () {
      form.querySelector("button[type=submit]").disabled = false;
      status.textContent = "✘";
    });
    xhr.send(new FormData(form));
  });
}

function liveScan(section) {
  // the scan page also refreshes itself while the scan runs; the socket makes it live
  if (!window.WebSocket) { return; }
  var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(proto + window.location.host + section.dataset.ws);
  var first = true;
  ws.addEventListener("message", function (ev) {
    var doc;
    try { doc = JSON.parse(ev.data); } catch (e) { return; }
    var table = document.getElementById("scan-counts");
    while (table.firstChild) { table.removeChild(table.firstChild); }
    Object.keys(doc.counts || {}).sort().forEach(function (k) {
      var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
      th.textContent = k; td.textContent = String(doc.counts[k]);
      tr.appendChild(th); tr.appendChild(td); table.appendChild(tr);
    });
    section.dataset.state = doc.state;
    if (doc.state !== "running" && !first) { window.location.reload(); }
    first = false;
  });
}

document.addEventListener("DOMContentLoaded", function () {
  localTimes();
  document.querySelectorAll("section[data-ws]").forEach(liveScan);
  document.querySelectorAll("form[data-progress]").forEach(uploadWithProgress);
});
