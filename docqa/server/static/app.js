// docqa's page: chat over the HTTP API, kept conversations, the cited pages, documents,
// settings. Everything shown from a document or an answer is inserted as text (textContent),
// never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "docqa-api-key";
const COLLECTION_KEY = "docqa-collection";
const DEFAULT = "default";
const EMPTY = "The index is empty: upload documents to ask about them.";
const STATUS_EVERY_MS = 5000; // the status line follows the server (index, workers, queue)
const CONVERSATION_KEY = "docqa-conversation";
let conversationId = sessionStorage.getItem(CONVERSATION_KEY); // the kept conversation shown
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
  // The one chosen, else the default, else the key's first (a key may have no default).
  if (!listing.data.some((c) => c.name === collection)) {
    collection = listing.data.some((c) => c.name === DEFAULT) ? DEFAULT : (listing.data[0] || { name: DEFAULT }).name;
  }
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

// Chat: each answer is shown once, checked; how checking changed the model's words is a note,
// the model's own text behind a disclosure.
const REVISIONS = {
  cited: "Checked: citations added.",
  trimmed: "Checked: cut to what the sources support.",
  quoted: "Checked: the model's answer was not supported by the sources, so they are quoted instead.",
  declined: "Checked: the model's answer was not supported by the sources.",
};

function addMessage(role, text) {
  const item = el("li", undefined, role);
  item.append(el("div", text, "text"));
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function sourceLabel(source) {
  const file = names[source.source] || source.source;
  return `${file}, ${source.locator}${source.ocr ? " (OCR)" : ""}`;
}

// The answer's text with each [n] a button that shows source n.
function showAnswer(node, answer, sources) {
  node.replaceChildren();
  const byNumber = new Map(sources.map((source) => [source.n, source]));
  let last = 0;
  for (const match of answer.matchAll(/\[(\d+)\]/g)) {
    node.append(answer.slice(last, match.index));
    const source = byNumber.get(Number(match[1]));
    if (source) {
      const cite = el("button", match[0], "cite");
      cite.type = "button";
      cite.setAttribute("aria-label", `Source ${source.n}: ${sourceLabel(source)}`);
      cite.addEventListener("click", () => openSource(source, cite));
      node.append(cite);
    } else node.append(match[0]);
    last = match.index + match[0].length;
  }
  node.append(answer.slice(last));
}

function showTurn(item, turn) {
  const text = item.querySelector(".text");
  showAnswer(text, turn.answer, turn.sources || []);
  if (turn.revision) {
    const note = el("details", undefined, "revision");
    note.append(el("summary", REVISIONS[turn.revision] || "Checked."));
    const own = el("p");
    own.append(el("span", "The model's own words: ", "label"), el("q", turn.raw_answer || ""));
    note.append(own);
    item.append(note);
  }
  if (turn.sources && turn.sources.length) showSources(item, turn.sources);
}

function showSources(item, sources) {
  const list = el("div", undefined, "citations");
  for (const source of sources) {
    const details = el("details");
    const what = source.document ? ` — ${source.document.label}` : "";
    details.append(el("summary", `[${source.n}] ${sourceLabel(source)} (score ${source.score.toFixed(3)})${what}`));
    const show = el("button", source.view ? "Show the page" : "Show the passage", "show");
    show.type = "button";
    show.addEventListener("click", () => openSource(source, show));
    details.append(show, el("pre", source.text));
    list.append(details);
  }
  item.append(list);
}

async function ask(question) {
  notice("");
  addMessage("user", question);
  const item = addMessage("assistant", "");
  const text = item.querySelector(".text");
  text.classList.add("streaming");
  controller = new AbortController();
  $("stop").hidden = false;
  $("send").disabled = true;
  let final = null;
  try {
    if (!conversationId) await startConversation(question);
    const body = {
      model: collection === DEFAULT ? "docqa" : `docqa/${collection}`,
      messages: [{ role: "user", content: question }], stream: true,
      k: Number($("k").value), temperature: Number($("temperature").value),
      top_p: Number($("top_p").value), max_tokens: Number($("max_tokens").value),
      docqa: { conversation: conversationId },
    };
    if (picked.size) body.docqa.source = [...picked.values()].flat().map(literal);
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
        if (choice && choice.delta && choice.delta.content && !final) text.textContent += choice.delta.content;
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
    text.classList.remove("streaming");
  }
  if (final) {
    text.classList.add("settled"); // the streamed words give way to the checked answer
    showTurn(item, final);
    refreshConversations();
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

// Conversations, kept by the server for this API key: listed, reopened, renamed, exported,
// deleted. The one shown is remembered for this tab, so a reload reopens it.
function keepShown(id) {
  conversationId = id;
  if (id) sessionStorage.setItem(CONVERSATION_KEY, id);
  else sessionStorage.removeItem(CONVERSATION_KEY);
}

async function startConversation(question) {
  const created = await (await api("/v1/conversations", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ title: question.slice(0, 80), collection }),
  })).json();
  keepShown(created.id);
}

function newConversation() {
  if (controller) controller.abort();
  keepShown(null);
  $("messages").replaceChildren();
  closeViewer();
  notice("");
  refreshConversations();
}
$("new").addEventListener("click", () => { newConversation(); $("question").focus(); });

async function openConversation(id) {
  if (controller) controller.abort();
  const kept = await (await api(`/v1/conversations/${encodeURIComponent(id)}`)).json();
  if (kept.collection && kept.collection !== collection) {
    collection = kept.collection;
    sessionStorage.setItem(COLLECTION_KEY, collection);
    await refreshCollections();
    await refreshDocuments();
  }
  keepShown(kept.id);
  $("messages").replaceChildren();
  closeViewer();
  for (const turn of kept.turns) {
    addMessage("user", turn.question);
    showTurn(addMessage("assistant", ""), turn);
  }
  refreshConversations();
}

async function refreshConversations() {
  let listing;
  try { listing = await (await api("/v1/conversations")).json(); } catch (error) { return; }
  const list = $("conversation-list");
  list.replaceChildren();
  if (!listing.data.length) list.append(el("li", "None yet: ask a question.", "empty"));
  for (const kept of listing.data) {
    const item = el("li", undefined, kept.id === conversationId ? "current" : undefined);
    const open = el("button", kept.title || "(untitled)", "open");
    open.type = "button";
    if (kept.id === conversationId) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => openConversation(kept.id).catch((error) => notice(error.message)));
    item.append(open);
    for (const [label, action] of [["Rename", renameConversation], ["Export", exportConversation], ["Delete", deleteConversation]]) {
      const button = el("button", label, "small");
      button.type = "button";
      button.setAttribute("aria-label", `${label} ${kept.title}`);
      button.addEventListener("click", () => action(kept).catch((error) => notice(error.message)));
      item.append(button);
    }
    list.append(item);
  }
}

async function renameConversation(kept) {
  const title = (prompt("New name of the conversation:", kept.title) || "").trim();
  if (!title) return;
  await api(`/v1/conversations/${encodeURIComponent(kept.id)}`, {
    method: "PATCH", body: JSON.stringify({ title }), headers: { "Content-Type": "application/json" },
  });
  await refreshConversations();
}

async function exportConversation(kept) {
  const markdown = await (await api(`/v1/conversations/${encodeURIComponent(kept.id)}/export`)).blob();
  const link = el("a");
  link.href = URL.createObjectURL(markdown);
  link.download = `${kept.id}.md`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

async function deleteConversation(kept) {
  if (!confirm(`Delete the conversation "${kept.title}"?`)) return;
  await api(`/v1/conversations/${encodeURIComponent(kept.id)}`, { method: "DELETE" });
  if (kept.id === conversationId) newConversation();
  else await refreshConversations();
}

// The viewer: a PDF source's page as an image with the passage highlighted (arrow keys turn
// pages, + and - zoom, Escape closes); another format's passage as text, the sentence marked.
const ZOOMS = [0.5, 0.75, 1, 1.5, 2, 3];
const viewer = { path: "", query: null, cited: 0, page: 0, pages: 0, zoom: 2, label: "", opener: null, image: null };

function openSource(source, opener) {
  viewer.opener = opener;
  viewer.label = names[source.source] || source.source;
  $("viewer").hidden = false;
  document.body.classList.add("viewing");
  const quote = source.quote ? `Highlighted: “${source.quote}”` : "";
  $("viewer-quote").textContent = quote;
  if (source.view) {
    const url = new URL(source.view, location.origin);
    viewer.path = url.pathname.replace(/\d+$/, "");
    viewer.query = url.searchParams;
    viewer.cited = viewer.page = Number(url.pathname.match(/(\d+)$/)[1]);
    $("passage").hidden = true;
    showPage();
  } else {
    viewer.path = "";
    $("page-image").hidden = true;
    $("viewer-title").textContent = `${viewer.label}, ${source.locator}`;
    const passage = $("passage");
    passage.hidden = false;
    passage.replaceChildren();
    const found = findQuote(source.text, source.quote || "");
    if (!found) passage.append(source.text);
    else passage.append(source.text.slice(0, found.index), el("mark", found[0]), source.text.slice(found.index + found[0].length));
    updateButtons();
  }
  $("viewer-title").focus();
}

// Where the quote's words stand in the text, whatever whitespace is between them there.
function findQuote(text, quote) {
  const words = quote.split(/\s+/).filter(Boolean).map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return words.length ? new RegExp(words.join("\\s+")).exec(text) : null;
}

async function showPage() {
  const query = new URLSearchParams(viewer.query);
  if (viewer.page !== viewer.cited) query.delete("quote");
  if (ZOOMS[viewer.zoom] > 1) query.set("dpi", "200");
  const title = `${viewer.label}, page ${viewer.page}`;
  $("viewer-title").textContent = `${title} (loading…)`;
  try {
    const response = await api(`${viewer.path}${viewer.page}?${query}`);
    viewer.pages = Number(response.headers.get("X-Docqa-Pages")) || viewer.page;
    const boxes = JSON.parse(response.headers.get("X-Docqa-Highlights") || "[]");
    const image = $("page-image");
    if (image.src) URL.revokeObjectURL(image.src);
    image.src = URL.createObjectURL(await response.blob());
    image.hidden = false;
    image.alt = `Page ${viewer.page} of ${viewer.label}` + (boxes.length ? ", the passage highlighted in yellow" : "");
    await image.decode();
    image.style.width = `${ZOOMS[viewer.zoom] * 100}%`;
    $("viewer-title").textContent = `${title} of ${viewer.pages}`;
    if (boxes.length) {
      const frame = $("page-frame");
      const scale = image.clientHeight / image.naturalHeight;
      frame.scrollTop = Math.max(0, boxes[0][1] * scale - frame.clientHeight / 3);
    }
  } catch (error) {
    $("viewer-title").textContent = `${title}: ${error.message}`;
  }
  updateButtons();
}

function updateButtons() {
  const paged = Boolean(viewer.path);
  $("previous-page").disabled = !paged || viewer.page <= 1;
  $("next-page").disabled = !paged || viewer.page >= viewer.pages;
  $("zoom-out").disabled = !paged || viewer.zoom === 0;
  $("zoom-in").disabled = !paged || viewer.zoom === ZOOMS.length - 1;
}

function turnPage(by) {
  const page = viewer.page + by;
  if (!viewer.path || page < 1 || page > viewer.pages) return;
  viewer.page = page;
  showPage();
}

function zoom(by) {
  const next = Math.min(Math.max(viewer.zoom + by, 0), ZOOMS.length - 1);
  if (!viewer.path || next === viewer.zoom) return;
  const sharper = (ZOOMS[next] > 1) !== (ZOOMS[viewer.zoom] > 1);
  viewer.zoom = next;
  if (sharper) showPage();
  else { $("page-image").style.width = `${ZOOMS[next] * 100}%`; updateButtons(); }
}

function closeViewer() {
  if ($("viewer").hidden) return;
  $("viewer").hidden = true;
  document.body.classList.remove("viewing");
  if (viewer.opener && viewer.opener.isConnected) viewer.opener.focus();
}

$("previous-page").addEventListener("click", () => turnPage(-1));
$("next-page").addEventListener("click", () => turnPage(1));
$("zoom-in").addEventListener("click", () => zoom(1));
$("zoom-out").addEventListener("click", () => zoom(-1));
$("close-viewer").addEventListener("click", closeViewer);
$("viewer").addEventListener("keydown", (event) => {
  const keys = { ArrowLeft: () => turnPage(-1), ArrowRight: () => turnPage(1), "+": () => zoom(1), "=": () => zoom(1), "-": () => zoom(-1), Escape: closeViewer };
  if (keys[event.key] && !event.altKey && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    keys[event.key]();
  }
});

async function start() {
  await refreshStatus();
  try {
    await loadSettings();
    await refreshCollections();
    await refreshDocuments();
    await refreshConversations();
    if (conversationId) await openConversation(conversationId);
  } catch (error) {
    if (conversationId && /no such conversation/.test(error.message)) newConversation();
    else notice(error.message);
  }
}

start();
setInterval(refreshStatus, STATUS_EVERY_MS);
