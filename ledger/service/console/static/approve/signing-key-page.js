// The signing key page: make the key in this browser, show its public key and its registration.
import { call, say } from "./ledger-calls.js";
import { createKey, forgetKey, loadKey, supported } from "./keystore.js";

const byId = (id) => document.getElementById(id);
const state = byId("key-state");

async function showRegistration(key) {
  const registration = byId("registration");
  try {
    const status = await call(`/ui/signing-key/status?keyid=${encodeURIComponent(key.keyid)}`);
    if (!status.registered) {
      say(registration, "warn", "Not registered yet: the ledger will refuse what this key signs until an admin registers it.");
    } else if (status.revoked_at !== null) {
      say(registration, "error", `Revoked at entry ${status.revoked_at}${status.revoke_reason ? `: ${status.revoke_reason}` : ""}.`);
    } else {
      const products = status.products.length ? status.products.join(", ") : "every product";
      say(registration, "ok", `Registered to ${status.owner} at entry ${status.registered_at}, roles ${status.roles.join(", ")}, for ${products}.`);
    }
  } catch (error) {
    say(registration, "error", error.message);
  }
}

function showKey(key) {
  byId("no-key").hidden = true;
  byId("has-key").hidden = false;
  byId("key-name").textContent = key.name;
  byId("key-id").textContent = key.keyid;
  byId("verifier").textContent = key.verifier;
  byId("created").textContent = key.created;
  const file = key.name.split("/").pop() || "signing-key";
  const link = byId("download");
  link.href = URL.createObjectURL(new Blob([`${key.verifier}\n`], { type: "text/plain" }));
  link.download = `${file}.pub`;
  byId("register-command").textContent =
    `evledger key register ${file}.pub --owner "<full name>" --role <role> --product <product>`;
  say(state, "ok", "This browser holds your signing key. Its private part cannot be read or copied, not even by this page.");
  return showRegistration(key);
}

async function start() {
  if (!supported()) {
    say(state, "error", "This browser cannot make or keep signing keys (it lacks WebCrypto or IndexedDB).");
    return;
  }
  const key = await loadKey();
  if (key) return showKey(key);
  byId("no-key").hidden = false;
  say(state, "muted", "This browser holds no signing key yet.");
}

byId("make-key").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await showKey(await createKey(byId("new-key-name").value.trim()));
  } catch (error) {
    say(state, "error", `No key was made: ${error.message}`);
  }
});

byId("forget").addEventListener("click", async () => {
  const sure = byId("forget-sure");
  if (!sure.checked) {
    say(state, "error", "Tick the box first: a deleted key cannot be recovered.");
    return;
  }
  await forgetKey();
  window.location.reload();
});

start().catch((error) => say(state, "error", error.message));
