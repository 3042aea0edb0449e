// shoprec playground: plain JS against the public API. Data is written with textContent only.
"use strict";

const $ = (id) => document.getElementById(id);
let lastItems = [];

function headers(json) {
  const h = {};
  const key = $("apikey").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

async function api(path, options) {
  const res = await fetch(path, options || { headers: headers(false) });  // the key when given
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const d = body.detail;
    const msg = Array.isArray(d) ? d.map((e) => (e.loc || []).join(".") + ": " + e.msg).join("; ") : d;
    throw new Error(res.status + " " + (msg || res.statusText));
  }
  return body;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function titles(ids) {
  if (!ids.length) return {};
  const items = await api("/v1/items?ids=" + encodeURIComponent(ids.join(",")));
  return Object.fromEntries(items.map((it) => [it.item_id, it]));
}

function explain(x) {
  const why = el("div", "why");
  for (const s of x.sources || []) why.appendChild(el("span", "tag", s));
  const lines = [...(x.evidence || []), ...(x.adjustments || [])];
  why.appendChild(document.createTextNode(lines.join(" · ")));
  return why;
}

// `ticket` is the action this load belongs to: a response that arrives after a newer action
// began is dropped, so an older, slower answer never overwrites a newer one.
async function loadRecs(ticket) {
  const user = $("user").value.trim();
  if (!user) return;
  const q = new URLSearchParams({ user_id: user, k: $("k").value || "10",
                                  diversity: $("diversity").value });
  const cat = $("category").value.trim();
  if (cat) q.set("category", cat);
  const data = await api("/v1/recommendations?" + q.toString());
  const info = await titles(data.items.map((r) => r.item_id));
  if (ticket !== actionTicket) return data;
  $("model-version").textContent = "model: " + data.model_version;
  const list = $("recs");
  list.replaceChildren();
  const before = new Set(lastItems);
  for (const r of data.items) {
    const li = el("li");
    li.dataset.item = r.item_id;
    if (lastItems.length && !before.has(r.item_id)) li.classList.add("new");
    const it = info[r.item_id] || {};
    li.appendChild(el("span", "title", it.title || r.item_id));
    li.appendChild(el("span", "muted", "  " + r.item_id + (it.category ? " · " + it.category : "")));
    li.appendChild(el("span", "score", "  score " + r.score.toFixed(3)));
    li.appendChild(explain(r.explanation || {}));
    li.addEventListener("click", () => { $("event-item").value = r.item_id; });
    list.appendChild(li);
  }
  lastItems = data.items.map((r) => r.item_id);
  return data;
}

async function loadHistory(ticket) {
  const user = $("user").value.trim();
  const list = $("history");
  let data;
  try {
    data = await api("/v1/users/" + encodeURIComponent(user) + "/history?n=20",
                     { headers: headers(false) });
  } catch (err) {
    if (ticket !== actionTicket) return;
    list.replaceChildren(el("li", "muted", "history needs an API key with the read scope (" +
                                          String(err.message || err) + ")"));
    return;
  }
  if (ticket !== actionTicket) return;
  list.replaceChildren();
  if (!data.events.length) list.appendChild(el("li", "muted", "no events yet (cold start)"));
  for (const e of data.events) {
    const li = el("li");
    li.dataset.item = e.item_id || "";
    li.appendChild(el("span", "tag", e.event_type));
    li.appendChild(el("span", "", (e.title || e.item_id || "") + " "));
    li.appendChild(el("span", "muted", new Date(e.timestamp * 1000).toISOString().slice(0, 16)));
    list.appendChild(li);
  }
}

// Each user action takes a ticket; only the latest action may write its outcome, so a slow
// refresh (e.g. fired by leaving the key field) never hides the answer to a newer click.
let actionTicket = 0;

function finalStatus(ticket, text, isError) {
  if (ticket === actionTicket) setStatus(text, isError);
}

async function refresh(resetDiff) {
  if (resetDiff) lastItems = [];
  const ticket = ++actionTicket;
  try {
    setStatus("Loading...");
    await Promise.all([loadRecs(ticket), loadHistory(ticket)]);
    finalStatus(ticket, "Showing " + $("user").value.trim() + ".");
  } catch (err) {
    finalStatus(ticket, String(err.message || err), true);
  }
}

async function sendEvent(ev) {
  ev.preventDefault();
  const user = $("user").value.trim();
  const item = $("event-item").value.trim();
  if (!user || !item) { setStatus("Pick a user and an item first.", true); return; }
  const event = { user_id: user, item_id: item, event_type: $("event-type").value,
                  timestamp: Date.now() / 1000 };
  const ticket = ++actionTicket;
  try {
    const out = await api("/v1/events", { method: "POST", headers: headers(true),
                                          body: JSON.stringify([event]) });
    if (out.rejected.length) {
      finalStatus(ticket, "Rejected: " + out.rejected[0].reason, true);
      return;
    }
    await Promise.all([loadRecs(ticket), loadHistory(ticket)]);
    finalStatus(ticket, "Event sent; new items are highlighted.");
  } catch (err) {
    finalStatus(ticket, String(err.message || err), true);
  }
}

async function init() {
  const saved = sessionStorage.getItem("shoprec-key");
  if (saved) $("apikey").value = saved;
  $("apikey").addEventListener("change", () => {
    sessionStorage.setItem("shoprec-key", $("apikey").value);
    refresh(false);
  });
  try {
    const cfg = await api("/playground/config.json");
    for (const u of cfg.users) { const o = el("option"); o.value = u; $("user-list").appendChild(o); }
    if (cfg.users.length && !$("user").value) $("user").value = cfg.users[0];
  } catch (err) { /* the page still works with a typed user id */ }
  $("load").addEventListener("click", () => refresh(true));
  $("user").addEventListener("keydown", (e) => { if (e.key === "Enter") refresh(true); });
  $("diversity").addEventListener("input", () => {
    $("diversity-value").textContent = Number($("diversity").value).toFixed(1);
  });
  $("diversity").addEventListener("change", () => refresh(true));
  $("k").addEventListener("change", () => refresh(true));
  $("category").addEventListener("change", () => refresh(true));
  $("event-form").addEventListener("submit", sendEvent);
}

init();
