// The contributor page: a form kept as one object, checked by the server as you type (the CLI's validator),
// previewed through the SDG pipeline and committed on a new branch. Plain DOM code: no build step to run.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const SIMPLE_FIELDS = ["path", "created_by", "task_description", "domain", "document_outline"];
let seeds = [];
let documentsInfo = [];
let checkTimer = null;
let checkSerial = 0;

async function api(path, options = {}) {
  const headers = Object.assign({ "X-Seedlab-Token": TOKEN }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  return response;
}

async function apiJson(path, body) {
  const response = await api(path, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: `the server answered ${response.status}` }; }
  return { ok: response.ok, data };
}

function kind() {
  return document.querySelector('input[name="kind"]:checked').value;
}

function emptySeed(k) {
  if (k === "knowledge") {
    return { context: "", questions_and_answers: [0, 1, 2].map(() => ({ question: "", answer: "" })) };
  }
  return k === "grounded" ? { context: "", question: "", answer: "" } : { question: "", answer: "" };
}

function readForm() {
  const form = { kind: kind() };
  for (const name of SIMPLE_FIELDS) form[name] = $(name).value;
  form.seed_examples = seeds;
  if (form.kind === "knowledge") {
    form.document = {
      repo: $("doc-repo").value,
      commit: $("doc-commit").value,
      patterns: $("doc-patterns").value.split("\n").map((p) => p.trim()).filter((p) => p),
    };
  }
  return form;
}

function fillForm(form) {
  document.querySelector(`input[name="kind"][value="${form.kind}"]`).checked = true;
  for (const name of SIMPLE_FIELDS) $(name).value = form[name] || "";
  const doc = form.document || {};
  $("doc-repo").value = doc.repo || "";
  $("doc-commit").value = doc.commit || "";
  $("doc-patterns").value = (doc.patterns || []).join("\n");
  seeds = form.seed_examples || [];
  applyKind();
}

function applyKind() {
  document.body.dataset.kind = kind();
  renderSeeds();
  scheduleCheck();
}

function bindText(element, target, key, field) {
  element.value = target[key] || "";
  element.closest(".field").dataset.field = field;
  element.addEventListener("input", () => { target[key] = element.value; scheduleCheck(); });
}

function renderSeeds() {
  const k = kind();
  const box = $("seeds");
  box.textContent = "";
  seeds.forEach((seed, i) => {
    const template = $(k === "knowledge" ? "knowledge-seed" : "skill-seed");
    const node = template.content.firstElementChild.cloneNode(true);
    node.dataset.field = `seed_examples[${i}]`;
    node.querySelector(".seed-title").textContent = `Example ${i + 1}`;
    const at = `seed_examples[${i}]`;
    if (k === "knowledge") {
      bindText(node.querySelector(".context"), seed, "context", `${at}.context`);
      const qnas = node.querySelector(".qnas");
      seed.questions_and_answers = seed.questions_and_answers || [];
      seed.questions_and_answers.forEach((qa, j) => {
        const pair = document.createElement("div");
        pair.className = "qna field";
        pair.dataset.field = `${at}.questions_and_answers[${j}]`;
        for (const part of ["question", "answer"]) {
          const wrap = document.createElement("div");
          wrap.className = "field";
          const label = document.createElement("label");
          label.textContent = `${part === "question" ? "Question" : "Answer"} ${j + 1}`;
          const area = document.createElement("textarea");
          area.rows = 2;
          area.className = part;
          wrap.append(label, area);
          pair.append(wrap);
          bindText(area, qa, part, `${at}.questions_and_answers[${j}].${part}`);
        }
        qnas.append(pair);
      });
    } else {
      const context = node.querySelector(".context");
      if (k === "grounded") bindText(context, seed, "context", `${at}.context`);
      else context.closest(".field").remove();
      bindText(node.querySelector(".question"), seed, "question", `${at}.question`);
      bindText(node.querySelector(".answer"), seed, "answer", `${at}.answer`);
    }
    node.querySelector(".remove").addEventListener("click", () => { seeds.splice(i, 1); renderSeeds(); scheduleCheck(); });
    node.querySelector(".up").addEventListener("click", () => move(i, -1));
    node.querySelector(".down").addEventListener("click", () => move(i, 1));
    box.append(node);
  });
}

function move(i, step) {
  const j = i + step;
  if (j < 0 || j >= seeds.length) return;
  [seeds[i], seeds[j]] = [seeds[j], seeds[i]];
  renderSeeds();
  scheduleCheck();
}

function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(check, 250);
}

async function check() {
  const serial = ++checkSerial;
  const { ok, data } = await apiJson("/api/check", readForm());
  if (serial !== checkSerial) return; // a newer check is on its way
  if (!ok) {
    $("yaml").textContent = "";
    showProblems([{ field: data.field || "", level: "error", message: data.error }]);
    $("verdict").textContent = "The form cannot be written yet: " + data.error;
    $("verdict").className = "status bad";
    return;
  }
  $("yaml").textContent = data.yaml;
  showProblems(data.problems);
  const warnings = data.problems.length - data.errors;
  $("verdict").textContent = data.errors
    ? `${data.errors} error(s), ${warnings} warning(s): fix the errors before you commit.`
    : `Valid${warnings ? `, with ${warnings} warning(s)` : ""}: ready to preview and commit.`;
  $("verdict").className = data.errors ? "status bad" : "status good";
  if (!$("branch").dataset.edited) $("branch").value = "add-" + (data.folder.split("/").pop() || "leaf").replace(/_/g, "-");
  if (!$("message").dataset.edited) $("message").value = `Add ${data.folder} seed file`;
}

function showProblems(problems) {
  document.querySelectorAll(".problem").forEach((p) => p.remove());
  document.querySelectorAll(".has-error").forEach((f) => f.classList.remove("has-error"));
  const general = $("general-problems");
  general.textContent = "";
  for (const problem of problems) {
    const item = document.createElement("div");
    item.className = `problem ${problem.level}`;
    item.textContent = `${problem.level}: ${problem.message}`;
    const field = fieldFor(problem.field);
    if (field) {
      field.append(item);
      if (problem.level === "error") field.classList.add("has-error");
    } else {
      const li = document.createElement("li");
      li.append(item);
      general.append(li);
    }
  }
}

function fieldFor(name) {
  // The most precise place shown: "seed_examples[2].answer", else its example, else nothing (the general list).
  let path = name;
  while (path) {
    const found = document.querySelector(`[data-field="${CSS.escape(path)}"]`);
    if (found) return found;
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    path = cut > 0 ? path.slice(0, cut) : "";
  }
  return null;
}

async function loadState() {
  const { ok, data } = await apiJson("/api/state");
  if (!ok) { $("verdict").textContent = data.error; $("verdict").className = "status bad"; return; }
  $("where").textContent = `taxonomy ${data.taxonomy}` + (data.branch ? ` (on branch ${data.branch})` : "");
  $("folders").textContent = "";
  for (const folder of data.folders) $("folders").append(new Option(folder, folder));
  const leaves = $("load-leaf");
  leaves.length = 1;
  for (const leaf of data.leaves) leaves.append(new Option(leaf, leaf));
  documentsInfo = data.documents;
  const pick = $("doc-pick");
  pick.length = 1;
  documentsInfo.forEach((doc, i) => pick.append(new Option(`${doc.repo.split("/").pop()}: ${doc.path}`, String(i))));
}

async function loadLeaf() {
  const path = $("load-leaf").value;
  if (!path) return;
  const { ok, data } = await apiJson("/api/leaf?path=" + encodeURIComponent(path));
  if (!ok) { $("verdict").textContent = data.error; $("verdict").className = "status bad"; return; }
  fillForm(data.form);
}

async function upload() {
  const file = $("doc-upload").files[0];
  if (!file) return;
  $("upload-status").textContent = `Uploading ${file.name}…`;
  const response = await api("/api/upload?name=" + encodeURIComponent(file.name), { method: "POST", body: file });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: `the server answered ${response.status}` }; }
  if (!response.ok) {
    $("upload-status").textContent = data.error;
    $("upload-status").className = "status bad";
    return;
  }
  $("upload-status").textContent = `${file.name} committed to the document repository at ${data.commit.slice(0, 8)}.`;
  $("upload-status").className = "status good";
  setDocument(data.repo, data.commit, data.pattern);
  await loadState();
}

function setDocument(repo, commit, pattern) {
  $("doc-repo").value = repo;
  $("doc-commit").value = commit;
  $("doc-patterns").value = pattern;
  scheduleCheck();
}

async function preview() {
  const list = $("preview-list");
  list.textContent = "";
  $("preview-status").textContent = "Asking the teacher…";
  $("preview-status").className = "status";
  $("preview").disabled = true; // one preview at a time
  try {
    const response = await api("/api/preview", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(readForm()),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
      $("preview-status").textContent = data.error || data.detail || `the server answered ${response.status}`;
      $("preview-status").className = "status bad";
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        showCandidate(JSON.parse(buffer.slice(0, newline)));
        buffer = buffer.slice(newline + 1);
      }
    }
  } catch (error) {
    $("preview-status").textContent = `The preview stopped: ${error}`;
    $("preview-status").className = "status bad";
  } finally {
    $("preview").disabled = false;
  }
}

function showCandidate(line) {
  if (line.error) {
    $("preview-status").textContent = line.error;
    $("preview-status").className = "status bad";
    return;
  }
  if (line.status) {
    $("preview-status").textContent = line.status + "…";
    return;
  }
  if (line.done) {
    $("preview-status").textContent = `${line.kept} kept, ${line.dropped} dropped by the checks.`;
    $("preview-status").className = line.kept ? "status good" : "status bad";
    return;
  }
  const item = document.createElement("li");
  item.className = line.kept ? "kept" : "dropped";
  if (line.kept) {
    const q = document.createElement("p");
    q.className = "q";
    q.textContent = line.question;
    const a = document.createElement("p");
    a.className = "a";
    a.textContent = line.answer;
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = `kept: passed ${line.passed.join(", ") || "no checks"}`
      + (line.rating !== undefined ? `; judge rating ${line.rating} of 3` : "");
    item.append(q, a, meta);
  } else {
    item.textContent = `dropped at ${line.drop.check}: ${line.drop.reason}`;
  }
  $("preview-list").append(item);
  $("preview-status").textContent = `${$("preview-list").children.length} candidate(s) so far…`;
}

async function commit() {
  const box = $("commit-result");
  box.textContent = "Committing…";
  const { ok, data } = await apiJson("/api/commit", {
    form: readForm(), branch: $("branch").value, message: $("message").value,
  });
  box.textContent = "";
  if (!ok) {
    const p = document.createElement("p");
    p.className = "status bad";
    p.textContent = data.error;
    box.append(p);
    return;
  }
  const lines = [
    `Committed ${data.file} on branch ${data.branch} (${data.commit.slice(0, 8)}).`,
    `taxonomy diff: ${data.verdict}`,
  ].concat(data.problems);
  for (const text of lines) {
    const p = document.createElement("p");
    p.textContent = text;
    box.append(p);
  }
  const push = document.createElement("code");
  push.id = "push-command";
  push.textContent = data.push;
  const label = document.createElement("p");
  label.textContent = "To open a pull request, push the branch (the page never pushes):";
  box.append(label, push);
  await loadState();
}

function start() {
  document.querySelectorAll('input[name="kind"]').forEach((r) => r.addEventListener("change", () => {
    const k = kind();
    const knowledge = k === "knowledge";
    if (seeds.length === 0 || knowledge !== ("questions_and_answers" in seeds[0])) {
      seeds = [0, 1, 2, 3, 4].map(() => emptySeed(k));
    } else if (k === "grounded") {
      seeds.forEach((s) => { s.context = s.context || ""; });
    } else if (k === "freeform") {
      seeds.forEach((s) => { delete s.context; });
    }
    applyKind();
  }));
  for (const name of SIMPLE_FIELDS) $(name).addEventListener("input", scheduleCheck);
  for (const id of ["doc-repo", "doc-commit", "doc-patterns"]) $(id).addEventListener("input", scheduleCheck);
  for (const id of ["branch", "message"]) $(id).addEventListener("input", () => { $(id).dataset.edited = "1"; });
  $("add-seed").addEventListener("click", () => { seeds.push(emptySeed(kind())); renderSeeds(); scheduleCheck(); });
  $("load").addEventListener("click", loadLeaf);
  $("doc-upload").addEventListener("change", upload);
  $("doc-pick").addEventListener("change", () => {
    const doc = documentsInfo[Number($("doc-pick").value)];
    if ($("doc-pick").value && doc) setDocument(doc.repo, doc.commit, doc.path);
  });
  $("preview").addEventListener("click", preview);
  $("commit").addEventListener("click", commit);
  seeds = [0, 1, 2, 3, 4].map(() => emptySeed(kind()));
  applyKind();
  loadState();
}

start();
