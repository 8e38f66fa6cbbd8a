// The console's verify page: read a dossier file and a pinned key, and verify in this browser.
// Everything shown is set as text (never as HTML): a dossier is untrusted input.
import { NOT_YET_CHECKED, verifyDossier } from "./verify/dossier.js";

const form = document.getElementById("verify");
const verdict = document.getElementById("verdict");
const checks = document.getElementById("checks");
const notChecked = document.getElementById("not-checked");

for (const item of NOT_YET_CHECKED) {
  const line = document.createElement("li");
  line.textContent = item;
  notChecked.append(line);
}

function show(state, text, lines) {
  verdict.className = state;
  verdict.textContent = text;
  checks.replaceChildren(
    ...lines.map((line) => {
      const item = document.createElement("li");
      item.textContent = line;
      return item;
    }),
  );
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = document.getElementById("dossier").files[0];
  const key = document.getElementById("key").value.trim();
  show("muted", "Verifying…", []);
  try {
    const dossier = JSON.parse(await file.text());
    const report = await verifyDossier(dossier, key);
    // Honest about its reach: the checkpoint and every inclusion proof, not yet all of `evledger verify`.
    show("ok", `PROOFS HOLD: ${dossier.product} ${dossier.version} (checkpoint and inclusion; see below for the rest)`, report.checks);
  } catch (error) {
    show("error", `FAILED: ${error.message}`, []);
  }
});
