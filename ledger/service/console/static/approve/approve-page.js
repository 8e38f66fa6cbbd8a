// The approval page: choose, read exactly what will be signed, re-authenticate, sign here, append.
//
// What is shown before signing is read from the very bytes that will be signed (the statement the
// console prepared), never from the form: the person sees what their signature covers.
import { call, say } from "./ledger-calls.js";
import { loadKey, signEnvelope, supported } from "./keystore.js";
import { decodeBase64 } from "../verify/note.js";
import { sha256, toHex } from "../verify/merkle.js";

const byId = (id) => document.getElementById(id);
const form = byId("approval");
const { product, version, csrf } = form.dataset;
const base = `/ui/releases/${encodeURIComponent(product)}/${encodeURIComponent(version)}/approve`;
const keyState = byId("key-state");
const outcome = byId("outcome");
let key = null;
let prepared = null;

function row(list, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

async function showStatement(answer) {
  const bytes = decodeBase64(answer.payload, "the statement");
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  const statement = JSON.parse(text);
  const approval = statement.predicate;
  const what = byId("what");
  what.replaceChildren();
  row(what, "Release", `${approval.release.product} ${approval.release.version}`);
  row(what, "Candidate (artifact digest)", approval.artifact_digest);
  row(what, "Entries reviewed", approval.entries.join(", "));
  row(what, "Role", approval.role);
  row(what, "Meaning", approval.meaning);
  row(what, "Decision", approval.decision);
  row(what, "Comment", approval.comment ?? "(none)");
  row(what, "Signed by", `${answer.signer.owner} (key ${answer.signer.keyid})`);
  row(what, "Date and time of signing", approval.signed_at);
  byId("statement").textContent = JSON.stringify(statement, null, 2);
  byId("statement-sha").textContent = toHex(await sha256(bytes));
  prepared = { ...answer, bytes };
  form.hidden = true;
  byId("confirm").hidden = false;
  byId("credential").value = "";
  byId("confirm-title").focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const entries = [...form.querySelectorAll("input[name=entry]:checked")].map((box) => Number(box.value));
  const decision = form.querySelector("input[name=decision]:checked");
  say(outcome, "muted", "Preparing the statement…");
  try {
    const answer = await call(`${base}/statement`, {
      keyid: key.keyid,
      role: byId("role").value.trim(),
      meaning: byId("meaning").value,
      decision: decision ? decision.value : "",
      artifact_digest: byId("artifact").value,
      entries,
      comment: byId("comment").value,
      csrf,
    });
    say(outcome, "muted", "");
    await showStatement(answer);
  } catch (error) {
    say(outcome, "error", `Not ready to sign: ${error.message}`);
  }
});

byId("back").addEventListener("click", () => {
  prepared = null;
  byId("confirm").hidden = true;
  form.hidden = false;
  say(outcome, "muted", "");
});

byId("sign").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = byId("sign-button");
  button.disabled = true;
  say(outcome, "muted", "Signing in this browser and appending…");
  try {
    const envelope = await signEnvelope(key, prepared.payload_type, prepared.bytes);
    const credential = byId("credential").value;
    byId("credential").value = "";
    const appended = await call(base, { envelope, credential, csrf });
    byId("confirm").hidden = true;
    const link = byId("appended-link");
    link.href = appended.release_page;
    link.textContent = `entry ${appended.index} of the release`;
    byId("appended").hidden = false;
    say(outcome, "ok", `Signed and appended as entry ${appended.index}.`);
  } catch (error) {
    say(outcome, "error", `Not appended: ${error.message}`);
  } finally {
    button.disabled = false;
  }
});

async function start() {
  if (!supported()) {
    say(keyState, "error", "This browser cannot keep signing keys (it lacks WebCrypto or IndexedDB).");
    return;
  }
  key = await loadKey();
  if (!key) {
    say(keyState, "error", "This browser holds no signing key: make one on the signing key page, and have an admin register it.");
    return;
  }
  const status = await call(`/ui/signing-key/status?keyid=${encodeURIComponent(key.keyid)}`);
  if (!status.registered || status.revoked_at !== null) {
    say(keyState, "error", `Your key ${key.keyid} is ${status.registered ? "revoked" : "not registered yet"}: the ledger would refuse its signature.`);
    return;
  }
  say(keyState, "ok", `You sign as ${status.owner}, with the key ${key.keyid} this browser holds (roles ${status.roles.join(", ")}).`);
  const roles = byId("role-choices");
  roles.replaceChildren(...status.roles.map((role) => Object.assign(document.createElement("option"), { value: role })));
  if (status.roles.length === 1) byId("role").value = status.roles[0];
  form.hidden = false;
}

start().catch((error) => say(keyState, "error", error.message));
