/* Witness upload page: resumable uploads with tus-js-client, one submission per visit, a signed receipt. */
"use strict";
(function () {
  const eventId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const params = new URLSearchParams(location.search);
  const chunkSize = Number(params.get("chunk")) || 512 * 1024;
  const $ = (id) => document.getElementById(id);
  const state = { token: null, receiptUrl: null, rows: [], uploads: [] };
  window.witness = { progress: 0, done: false, failures: 0 };

  function say(text) { $("message").textContent = text || ""; }
  function network(text) { $("network").textContent = text || ""; }

  async function json(response) {
    let body = {};
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw new Error(body.message || ("the server answered " + response.status));
    return body;
  }

  async function loadEvent() {
    try {
      const event = await json(await fetch("/v1/events/" + encodeURIComponent(eventId)));
      $("event-name").textContent = "Send your photos: " + event.name;
      if (!event.accepts_uploads) { say("This appeal is closed and no longer accepts photos."); return; }
    } catch (error) { say("This appeal could not be loaded: " + error.message); }
  }

  function renderFiles() {
    const list = $("file-list");
    list.textContent = "";
    state.rows = Array.from($("files").files).map((file, index) => {
      const item = document.createElement("li");
      item.className = "file";
      item.dataset.index = String(index);
      const name = document.createElement("div");
      name.textContent = file.name + " (" + Math.round(file.size / 1024) + " kB)";
      const caption = document.createElement("input");
      caption.type = "text"; caption.maxLength = 500; caption.placeholder = "What does this photo show? (optional)";
      caption.setAttribute("aria-label", "Caption for " + file.name);
      const bar = document.createElement("progress"); bar.max = 100; bar.value = 0;
      const status = document.createElement("div"); status.className = "status"; status.textContent = "ready";
      item.append(name, caption, bar, status);
      list.append(item);
      return { file, caption, bar, status, bytes: 0 };
    });
    $("send").disabled = state.rows.length === 0;
  }

  function updateTotal() {
    const total = state.rows.reduce((sum, row) => sum + row.file.size, 0);
    const sent = state.rows.reduce((sum, row) => sum + row.bytes, 0);
    window.witness.progress = total ? sent / total : 0;
  }

  function uploadOne(row) {
    return new Promise((resolve, reject) => {
      const upload = new tus.Upload(row.file, {
        endpoint: "/v1/uploads",
        chunkSize: chunkSize,
        retryDelays: [0, 1000, 2000, 4000, 8000, 15000, 30000, 30000, 30000],
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        metadata: {
          event_id: eventId, submission_token: state.token, filename: row.file.name,
          caption: row.caption.value, filetype: row.file.type,
        },
        onProgress(sent, total) {
          row.bytes = sent; row.bar.value = Math.floor((100 * sent) / total);
          row.status.textContent = "sending " + row.bar.value + "%"; updateTotal();
        },
        onShouldRetry(error) {
          window.witness.failures += 1;
          const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
          row.status.textContent = navigator.onLine ? "connection problem, retrying" : "waiting for the network";
          return status === 0 || status === 409 || status === 423 || status === 429 || status >= 500;
        },
        async onSuccess() {
          try {
            const document = await json(await fetch(upload.url));
            row.status.textContent = "stored, SHA-256 " + document.receipt.sha256;
            row.bar.value = 100; row.bytes = row.file.size; updateTotal();
            resolve(document.receipt);
          } catch (error) { reject(error); }
        },
        onError(error) {
          if (!navigator.onLine) {  // out of retries while offline: go on when the network is back
            row.status.textContent = "waiting for the network";
            window.addEventListener("online", () => upload.start(), { once: true });
            return;
          }
          let message = error.message;
          try { message = JSON.parse(error.originalResponse.getBody()).message || message; } catch (e) { /* keep */ }
          row.status.textContent = "not sent: " + message;
          reject(new Error(row.file.name + ": " + message));
        },
      });
      row.caption.disabled = true;
      upload.start();
      state.uploads.push(upload);
    });
  }

  function positionIfConsented() {
    if (!$("share-location").checked || !navigator.geolocation) return Promise.resolve(null);
    return new Promise((resolve) => {
      navigator.geolocation.getCurrentPosition(
        (where) => resolve({
          source: "device", lat: where.coords.latitude, lon: where.coords.longitude,
          accuracy_m: where.coords.accuracy, captured_at: new Date(where.timestamp).toISOString(), consent: true,
        }),
        () => resolve(null), { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    });
  }

  async function showReceipt() {
    const receipt = await json(await fetch(state.receiptUrl));
    const list = $("receipt-files");
    list.textContent = "";
    for (const file of receipt.files) {
      const item = document.createElement("li");
      item.className = "receipt-file";
      const code = document.createElement("code");
      code.textContent = file.sha256;
      item.append((file.filename || "photo") + " · " + file.status + " · " + file.received_at + " · ", code);
      list.append(item);
    }
    const blob = new Blob([JSON.stringify(receipt, null, 2)], { type: "application/json" });
    $("receipt-save").href = URL.createObjectURL(blob);
    $("receipt-link").href = state.receiptUrl;
    $("receipt").hidden = false;
    window.witness.done = true;
    window.witness.receipt = receipt;
  }

  async function send(event) {
    event.preventDefault();
    $("send").disabled = true; $("files").disabled = true; say("");
    try {
      const position = positionIfConsented();
      const opened = await json(await fetch("/v1/events/" + encodeURIComponent(eventId) + "/submissions",
        { method: "POST" }));
      state.token = opened.submission_token; state.receiptUrl = opened.receipt_url;
      const results = [];
      for (const row of state.rows) {  // one at a time: a saturated network does better with one stream
        try { results.push(await uploadOne(row)); } catch (error) { say(error.message); }
      }
      const where = await position;
      if (where) {
        await fetch(state.receiptUrl + "/positions", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(where),
        });
      }
      if (results.length) await showReceipt();
    } catch (error) {
      say("Sending failed: " + error.message + ". Your photos are still on your phone; try again.");
      $("send").disabled = false;
    }
  }

  window.addEventListener("offline", () => network("You are offline. Uploads will continue when you are back."));
  window.addEventListener("online", () => network("Back online, resuming."));
  $("files").addEventListener("change", renderFiles);
  $("upload-form").addEventListener("submit", send);
  loadEvent();
})();
