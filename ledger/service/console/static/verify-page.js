// The console's verify page: a dossier (a file, or fetched from this console) checked in this
// browser against the ledger key the auditor pins. Everything shown is set as text, never as
// HTML: a dossier and the server's answers are untrusted input.
import { CHECKED_IN_BROWSER, NOT_CHECKED_IN_BROWSER, verifyDossier } from "./verify/dossier.js";
import { parseVerifierKey } from "./verify/note.js";

const REMEMBERED = "evledger.pinned-ledger-key"; // localStorage: the key string, and when it was pinned
const form = document.getElementById("verify");
const keyField = document.getElementById("key");
const remember = document.getElementById("remember");
const pinned = document.getElementById("pinned");
const forget = document.getElementById("forget");
const fileField = document.getElementById("dossier");
const verdict = document.getElementById("verdict");
const completeness = document.getElementById("completeness");
const claimed = document.getElementById("claimed");
const checks = document.getElementById("checks");
const fetched = form.dataset.product !== undefined ? { product: form.dataset.product, version: form.dataset.version } : null;

const items = (list, lines) =>
  list.replaceChildren(
    ...lines.map((line) => {
      const item = document.createElement("li");
      item.textContent = line;
      return item;
    }),
  );
items(document.getElementById("checked-here"), CHECKED_IN_BROWSER);
items(document.getElementById("not-checked"), NOT_CHECKED_IN_BROWSER);

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage switched off: the key is simply not remembered
  }
}

function remembered() {
  try {
    const value = JSON.parse(storage()?.getItem(REMEMBERED) ?? "null");
    return value && typeof value.key === "string" ? value : null;
  } catch {
    return null;
  }
}

/** Say which key is pinned, from where, plainly: the auditor must see what the check trusts. */
async function showPinned() {
  const saved = remembered();
  forget.hidden = saved === null;
  if (saved === null) {
    pinned.textContent = "No key is remembered in this browser: paste the ledger's verifier key.";
    return;
  }
  let who = "a key that does not parse";
  try {
    who = (await parseVerifierKey(saved.key)).keyid;
  } catch {}
  pinned.textContent = `Remembered in this browser since ${saved.since}: ${who}. Check it against the key your ledger's operator published.`;
}

const saved = remembered();
if (saved !== null) {
  keyField.value = saved.key;
  remember.checked = true;
}
showPinned();

forget.addEventListener("click", () => {
  storage()?.removeItem(REMEMBERED);
  remember.checked = false;
  showPinned();
});

function show(state, text, lines = [], { whole = null, claim = null } = {}) {
  verdict.className = state;
  verdict.textContent = text;
  completeness.hidden = whole === null;
  completeness.textContent = whole ?? "";
  claimed.hidden = claim === null;
  claimed.textContent = claim === null ? "" : `The dossier claims the release is ${claim}. This browser does not re-evaluate compliance: evledger verify does.`;
  items(checks, lines);
}

/** The dossier of the release named in the page's address, as this console serves it (checked, not trusted). */
async function fetchDossier() {
  const path = `/ui/releases/${encodeURIComponent(fetched.product)}/${encodeURIComponent(fetched.version)}/dossier`;
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" }, redirect: "error" });
  const text = await response.text();
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = JSON.parse(text).detail ?? detail;
    } catch {}
    throw new Error(`the console did not hand over the dossier (${response.status}): ${detail}`);
  }
  return text;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = keyField.value.trim();
  show("muted", "Verifying…");
  try {
    const file = fileField.files[0];
    const text = file ? await file.text() : fetched ? await fetchDossier() : null;
    if (text === null) throw new Error("pick a dossier file");
    if (remember.checked) {
      const before = remembered();
      const since = before?.key === key ? before.since : new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
      storage()?.setItem(REMEMBERED, JSON.stringify({ key, since }));
    } else {
      storage()?.removeItem(REMEMBERED);
    }
    showPinned();
    const report = await verifyDossier(text, key);
    show("ok", report.verdict, report.checks, { whole: report.completeness.statement, claim: report.claimedCompliance });
  } catch (error) {
    const sides = error.expected !== undefined ? ` (expected ${error.expected}, found ${error.calculated})` : "";
    show("error", `FAILED: ${error.message}${sides}`);
  }
});
