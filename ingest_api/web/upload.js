/* Witness upload page: resumable uploads with tus-js-client, one submission per visit, a signed receipt.
   Optional extras, each sent only with its own consent box ticked: the phone's location, a place marked on a plan
   of the appeal's area (no map tiles: nothing leaves for a third party), and contact details. */
"use strict";
(function () {
  const eventId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const params = new URLSearchParams(location.search);
  const chunkSize = Number(params.get("chunk")) || 512 * 1024;
  const $ = (id) => document.getElementById(id);
  const state = { token: null, receiptUrl: null, rows: [], current: null, event: null, contactSent: false };
  const plan = { lat: 0, lon: 0, metresPerUnit: 1 };  // the plan's viewBox is 100 x 100 units, centred on the event
  const METRES_PER_DEGREE = 111320;
  window.witness = { progress: 0, done: false, failures: 0 };

  function say(text) {
    $("message").textContent = text || "";
    if (text) $("message").scrollIntoView({ block: "center" });  // on a phone the form is far below it
  }
  function network(text) { $("network").textContent = text || ""; }

  async function json(response) {
    let body = {};
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) throw new Error(body.message || ("the server answered " + response.status));
    return body;
  }

  function backOnline() {
    return new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
  }

  /* A small JSON request that waits for the network instead of failing while the phone is offline: a photo
     already stored must never be reported as lost because reading its receipt hit a dead spot. */
  async function request(method, url, body, asText) {
    const init = body === undefined ? { method }
      : { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    for (let attempt = 0; ; attempt += 1) {
      if (!navigator.onLine) await backOnline();
      let response;
      try {
        response = await fetch(url, init);
      } catch (error) {
        window.witness.failures += 1;
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
        continue;
      }
      if (response.status === 204) return {};
      return asText && response.ok ? response.text() : json(response);
    }
  }

  // --- the plan: tap to place a pin, or type coordinates -------------------------------------------------------
  function toPosition(x, y) {
    const north = (50 - y) * plan.metresPerUnit, east = (x - 50) * plan.metresPerUnit;
    const lat = plan.lat + north / METRES_PER_DEGREE;
    const lon = plan.lon + east / (METRES_PER_DEGREE * Math.cos((plan.lat * Math.PI) / 180));
    return { lat: Number(lat.toFixed(6)), lon: Number(lon.toFixed(6)) };
  }

  function toPlan(lat, lon) {
    const north = (lat - plan.lat) * METRES_PER_DEGREE;
    const east = (lon - plan.lon) * METRES_PER_DEGREE * Math.cos((plan.lat * Math.PI) / 180);
    return { x: 50 + east / plan.metresPerUnit, y: 50 - north / plan.metresPerUnit };
  }

  function showPin(x, y) {
    const inside = x >= 0 && x <= 100 && y >= 0 && y <= 100;
    $("pin").setAttribute("cx", String(x)); $("pin").setAttribute("cy", String(y));
    $("pin").setAttribute("visibility", inside ? "visible" : "hidden");
  }

  function setupPlan(area) {  // the server snaps the centre to a coarse grid: the circle is roughly the area
    plan.lat = area.lat; plan.lon = area.lon; plan.metresPerUnit = area.radius_m / 25;  // the circle's r is 25
    $("plan-scale").textContent = "The plan is " + Math.round(100 * plan.metresPerUnit) + " m across; the circle"
      + " is about the " + Math.round(area.radius_m) + " m around the place of the appeal.";
    $("plan").addEventListener("click", (tap) => {
      const box = $("plan").getBoundingClientRect();
      const x = ((tap.clientX - box.left) / box.width) * 100, y = ((tap.clientY - box.top) / box.height) * 100;
      const where = toPosition(x, y);
      $("pin-lat").value = String(where.lat); $("pin-lon").value = String(where.lon);
      showPin(x, y);
    });
    const typed = () => {
      const where = markedPlace();
      if (where) { const spot = toPlan(where.lat, where.lon); showPin(spot.x, spot.y); } else showPin(-1, -1);
    };
    $("pin-lat").addEventListener("input", typed); $("pin-lon").addEventListener("input", typed);
    $("pin-clear").addEventListener("click", () => {
      $("pin-lat").value = ""; $("pin-lon").value = ""; showPin(-1, -1);
    });
  }

  function markedPlace() {
    const lat = $("pin-lat").valueAsNumber, lon = $("pin-lon").valueAsNumber;
    if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
    return { lat, lon };
  }

  // --- contact details -------------------------------------------------------------------------------------
  function contactDetails() {
    const fields = { name: "contact-name", phone: "contact-phone", email: "contact-email", note: "contact-note" };
    const details = {};
    for (const [key, id] of Object.entries(fields)) details[key] = $(id).value.trim() || null;
    return details.name || details.phone || details.email ? details : null;
  }

  /* What the witness typed or ticked must agree before anything is sent: no half-consent, no silent drops. */
  function checkExtras() {
    if (contactDetails() && !$("contact-consent").checked) {
      return "To send your contact details, tick the box agreeing to be contacted, or clear them.";
    }
    if ($("contact-consent").checked && !contactDetails()) {
      return "Give a name, a phone number or an email address, or untick the contact box.";
    }
    const typedSomething = $("pin-lat").value !== "" || $("pin-lon").value !== "";
    if (typedSomething && !markedPlace()) return "The coordinates you typed are not a valid place; fix or clear them.";
    if (markedPlace() && !$("share-pin").checked) {
      return "To send the place you marked, tick the box agreeing to send it, or clear the mark.";
    }
    if ($("share-pin").checked && !markedPlace()) return "Mark the place on the plan, or untick its box.";
    return null;
  }

  // --- photos ----------------------------------------------------------------------------------------------
  async function loadEvent() {
    try {
      const event = await json(await fetch("/v1/events/" + encodeURIComponent(eventId)));
      state.event = event;
      $("event-name").textContent = "Send your photos: " + event.name;
      setupPlan(event.plan);
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
          state.current = null;
          try {
            const document = await request("GET", upload.url);
            row.status.textContent = "stored, SHA-256 " + document.receipt.sha256;
            row.bar.value = 100; row.bytes = row.file.size; updateTotal();
            resolve(document.receipt);
          } catch (error) { reject(error); }
        },
        onError(error) {
          if (!navigator.onLine) {  // out of retries while offline: the "online" handler starts it again
            row.status.textContent = "waiting for the network";
            return;
          }
          state.current = null;
          let message = error.message;
          try { message = JSON.parse(error.originalResponse.getBody()).message || message; } catch (e) { /* keep */ }
          row.status.textContent = "not sent: " + message;
          reject(new Error(row.file.name + ": " + message));
        },
      });
      row.caption.disabled = true;
      state.current = upload;
      upload.start();
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
    // Saved as the server's bytes: re-serialising in JavaScript turns 15.0 into 15 and breaks the signature.
    const text = await request("GET", state.receiptUrl, undefined, true);
    const receipt = JSON.parse(text);
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
    $("receipt-positions").textContent = "";
    for (const position of receipt.positions) {
      const item = document.createElement("li");
      item.className = "receipt-position";
      const how = position.source === "pin" ? "Place you marked" : "Your phone's location";
      item.textContent = how + ": " + position.lat.toFixed(6) + ", " + position.lon.toFixed(6);
      $("receipt-positions").append(item);
    }
    $("receipt-contact").hidden = !state.contactSent;
    const blob = new Blob([text], { type: "application/json" });
    $("receipt-save").href = URL.createObjectURL(blob);
    $("receipt-link").href = state.receiptUrl;
    $("receipt").hidden = false;
    window.witness.done = true;
    window.witness.receipt = receipt;
  }

  /* Contact details and the marked place go first: small, and the witness's intent is fresh. */
  async function sendExtras() {
    const contact = $("contact-consent").checked ? contactDetails() : null;
    if (contact) {
      await request("PUT", state.receiptUrl + "/contact", { ...contact, consent: true });
      state.contactSent = true;
    }
    const place = $("share-pin").checked ? markedPlace() : null;
    if (place) {
      await request("POST", state.receiptUrl + "/positions", { source: "pin", ...place, consent: true });
    }
  }

  async function send(event) {
    event.preventDefault();
    const problem = checkExtras();
    if (problem) { say(problem); return; }
    $("send").disabled = true; $("files").disabled = true; say("");
    try {
      const position = positionIfConsented();
      const opened = await json(await fetch("/v1/events/" + encodeURIComponent(eventId) + "/submissions",
        { method: "POST" }));
      state.token = opened.submission_token; state.receiptUrl = opened.receipt_url;
      try { await sendExtras(); } catch (error) { say("Your contact details or marked place were not sent: "
        + error.message + ". Your photos are being sent."); }
      const results = [];
      for (const row of state.rows) {  // one at a time: a saturated network does better with one stream
        try { results.push(await uploadOne(row)); } catch (error) { say(error.message); }
      }
      const where = await position;
      if (where) await request("POST", state.receiptUrl + "/positions", where);
      if (results.length) await showReceipt();
    } catch (error) {
      say("Sending failed: " + error.message + ". Your photos are still on your phone; try again.");
      $("send").disabled = false;
    }
  }

  window.addEventListener("offline", () => network("You are offline. Uploads will continue when you are back."));
  window.addEventListener("online", () => {
    network("Back online, resuming.");
    const upload = state.current;
    // Resume now rather than when tus-js-client's next retry timer fires (up to 30 s away).
    if (upload) upload.abort().then(() => { if (state.current === upload) upload.start(); });
  });
  $("files").addEventListener("change", renderFiles);
  $("upload-form").addEventListener("submit", send);
  loadEvent();
})();
