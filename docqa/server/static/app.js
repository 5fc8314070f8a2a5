// docqa's page: chat over the HTTP API, documents, settings. Everything shown from a document
// or an answer is inserted as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "docqa-api-key";
const COLLECTION_KEY = "docqa-collection";
const DEFAULT = "default";
const EMPTY = "The index is empty: upload documents to ask about them.";
const STATUS_EVERY_MS = 5000; // the status line follows the server (index, workers, queue)
const conversation = []; // {role, content} as OpenAI messages
let controller = null; // the running answer's AbortController
const names = {}; // an indexed file's source -> the name to show (an upload's own name)
const picked = new Map(); // a checked document's id -> its file names: questions use only those
let collection = sessionStorage.getItem(COLLECTION_KEY) || DEFAULT;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function headers(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

function notice(message) {
  $("notice").textContent = message || "";
  $("notice").hidden = !message;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers) });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new Error("The server is down or unreachable.");
  }
  if (response.status === 401) {
    askForToken();
    throw new Error("This server needs its API key.");
  }
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After") || "a few";
      message = `The server is busy: try again in ${wait} s.`;
    }
    throw new Error(message);
  }
  return response;
}

function askForToken() {
  const dialog = $("token-dialog");
  if (!dialog.open) dialog.showModal();
}

$("token-form").addEventListener("submit", () => {
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  start();
});

// Status: index, model, queue.
async function refreshStatus() {
  try {
    const health = await (await fetch("/healthz", { headers: headers() })).json();
    if (!health.index) return; // what is loaded is shown only for the server's key
    const index = health.index;
    const model = health.model || {};
    const name = model.name || (model.workers && model.workers[0] && model.workers[0].model);
    const parts = [];
    parts.push(index.loaded ? `${index.files} files, ${index.chunks} chunks` : "no index yet");
    if (name) parts.push(`model ${name}`);
    if (model.workers) parts.push(`${model.workers.length} worker(s)`);
    if (health.queue && !health.queue.reachable) parts.push("queue unreachable");
    $("status").textContent = parts.join(" · ");
    if (!index.loaded) notice(EMPTY);
    else if ($("notice").textContent === EMPTY) notice("");
  } catch (_) {
    $("status").textContent = "The server is down or unreachable.";
  }
}

// Collections: each with its own documents; the page works in the one selected.
function inCollection(path) {
  if (collection === DEFAULT) return path;
  return `${path}${path.includes("?") ? "&" : "?"}collection=${encodeURIComponent(collection)}`;
}

async function refreshCollections() {
  const listing = await (await api("/v1/collections")).json();
  if (!listing.data.some((c) => c.name === collection)) collection = DEFAULT;
  const select = $("collection");
  select.replaceChildren(...listing.data.map((c) => el("option", c.name)));
  select.value = collection;
}

async function chooseCollection(name) {
  collection = name;
  sessionStorage.setItem(COLLECTION_KEY, name);
  picked.clear();
  newConversation();
  try {
    await refreshCollections();
    await refreshDocuments();
  } catch (error) { notice(error.message); }
}

$("collection").addEventListener("change", (event) => chooseCollection(event.target.value));
$("new-collection").addEventListener("click", async () => {
  const name = (prompt("Name of the new collection (letters, digits, - and _):") || "").trim();
  if (!name) return;
  try {
    await api("/v1/collections", {
      method: "POST", body: JSON.stringify({ name }), headers: { "Content-Type": "application/json" },
    });
    await chooseCollection(name);
  } catch (error) { notice(error.message); }
});

// A file name as a glob that matches only itself.
const literal = (name) => name.replace(/[[\]*?]/g, (c) => `[${c}]`);

// Documents.
async function refreshDocuments() {
  const listing = await (await api(inCollection("/v1/documents"))).json();
  const indexed = $("indexed");
  indexed.replaceChildren();
  const present = new Set(listing.data.map((doc) => doc.id));
  for (const id of [...picked.keys()]) if (!present.has(id)) picked.delete(id);
  for (const doc of listing.data) {
    for (const source of doc.sources) names[source] = doc.name;
    const item = el("li");
    const pick = el("input");
    pick.type = "checkbox";
    pick.checked = picked.has(doc.id);
    pick.setAttribute("aria-label", `Ask only about ${doc.name} (and other checked documents)`);
    pick.addEventListener("change", () => {
      if (pick.checked) picked.set(doc.id, doc.sources);
      else picked.delete(doc.id);
      $("picked").hidden = picked.size === 0;
    });
    item.append(pick);
    item.append(el("span", `${doc.name} — ${doc.document.label}; ${doc.pages} pages, ${doc.chunks} chunks`));
    const remove = el("button", "Delete");
    remove.setAttribute("aria-label", `Delete ${doc.name}`);
    remove.addEventListener("click", () => removeDocument(doc.id));
    item.append(remove);
    indexed.append(item);
  }
  const failed = $("failed");
  failed.replaceChildren();
  if (listing.failed.length) failed.append(el("li", "Not indexed:", "heading"));
  for (const file of listing.failed) failed.append(el("li", `${names[file.source] || file.source}: ${file.reason}`));
}

async function removeDocument(id) {
  try {
    const path = inCollection(`/v1/documents/${encodeURIComponent(id)}`);
    const job = await (await api(path, { method: "DELETE" })).json();
    await followIngest(job.job_id, el("li"));
  } catch (error) { notice(error.message); }
}

async function upload(files) {
  for (const file of files) {
    const line = el("li", `${file.name}: uploading…`);
    $("uploads").append(line);
    try {
      const body = new FormData();
      body.append("file", file, file.name);
      const job = await (await api(inCollection("/v1/documents"), { method: "POST", body })).json();
      await followIngest(job.job_id, line, file.name);
    } catch (error) {
      line.textContent = `${file.name}: ${error.message}`;
    }
  }
}

async function followIngest(jobId, line, name = "index") {
  for (;;) {
    const job = await (await api(`/v1/jobs/${encodeURIComponent(jobId)}`)).json();
    const p = job.progress || {};
    if (job.status === "queued") line.textContent = `${name}: waiting for the ingest before it…`;
    else if (job.status === "running") line.textContent =
      `${name}: ingesting (${p.pages || 0} pages read, ${p.embedded || 0} chunks embedded)…`;
    else {
      await Promise.all([refreshDocuments(), refreshStatus()]);
      line.textContent = job.status === "done" ? `${name}: indexed` : `${name}: ${job.error ? job.error.message : job.status}`;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  upload([...event.dataTransfer.files]);
});
$("files").addEventListener("change", (event) => { upload([...event.target.files]); event.target.value = ""; });

// Settings: sliders within the server's limits.
const SETTINGS = ["k", "temperature", "top_p", "max_tokens"];
function showSetting(name) { $(`${name}-value`).textContent = $(name).value; }
for (const name of SETTINGS) $(name).addEventListener("input", () => showSetting(name));

async function loadSettings() {
  const info = await (await api("/v1/info")).json();
  $("k").max = info.limits.max_k;
  $("max_tokens").max = info.limits.max_tokens;
  for (const name of SETTINGS) {
    $(name).value = info.defaults[name];
    showSetting(name);
  }
}

// Chat.
function addMessage(role, text) {
  const item = el("li", undefined, role);
  item.append(el("div", text, "text"));
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function showSources(item, sources) {
  const list = el("div", undefined, "citations");
  for (const source of sources) {
    const details = el("details");
    const file = names[source.source] || source.source;
    const ocr = source.ocr ? " (OCR)" : "";
    const what = source.document ? ` — ${source.document.label}` : "";
    details.append(el("summary", `[${source.n}] ${file}, ${source.locator}${ocr} (score ${source.score.toFixed(3)})${what}`));
    details.append(el("pre", source.text));
    list.append(details);
  }
  item.append(list);
}

async function ask(question) {
  notice("");
  addMessage("user", question);
  const item = addMessage("assistant", "");
  const text = item.querySelector(".text");
  const messages = [...conversation, { role: "user", content: question }];
  const body = {
    model: collection === DEFAULT ? "docqa" : `docqa/${collection}`, messages, stream: true,
    k: Number($("k").value), temperature: Number($("temperature").value),
    top_p: Number($("top_p").value), max_tokens: Number($("max_tokens").value),
  };
  if (picked.size) body.docqa = { source: [...picked.values()].flat().map(literal) };
  controller = new AbortController();
  $("stop").hidden = false;
  $("send").disabled = true;
  let final = null;
  try {
    const response = await api("/v1/chat/completions", {
      method: "POST", body: JSON.stringify(body), signal: controller.signal,
      headers: { "Content-Type": "application/json" },
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("");
        if (!data || data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const choice = chunk.choices && chunk.choices[0];
        if (choice && choice.delta && choice.delta.content) text.textContent += choice.delta.content;
        if (chunk.docqa) final = chunk.docqa;
      }
    }
  } catch (error) {
    if (error.name === "AbortError") item.append(el("div", "(stopped)", "stopped"));
    else notice(error.message);
  } finally {
    controller = null;
    $("stop").hidden = true;
    $("send").disabled = false;
  }
  if (final) {
    if (final.answer !== text.textContent) item.append(el("div", `Checked: ${final.answer}`, "checked"));
    if (final.sources && final.sources.length) showSources(item, final.sources);
    conversation.push({ role: "user", content: question }, { role: "assistant", content: final.answer });
  }
}

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || controller) return;
  $("question").value = "";
  ask(question);
});
$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
});
$("stop").addEventListener("click", () => controller && controller.abort());
function newConversation() {
  if (controller) controller.abort();
  conversation.length = 0;
  $("messages").replaceChildren();
  notice("");
}
$("new").addEventListener("click", () => { newConversation(); $("question").focus(); });

async function start() {
  await refreshStatus();
  try {
    await loadSettings();
    await refreshCollections();
    await refreshDocuments();
  } catch (error) { notice(error.message); }
}

start();
setInterval(refreshStatus, STATUS_EVERY_MS);
