// dossier.js against a real release dossier (tests/integration/fixtures/pre_issue9: the sealed
// release the Python verifier passes in full, read where the Python tests read it).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { DOSSIER_FORMAT, NOT_YET_CHECKED, verifyDossier } from "../../ledger/service/console/static/verify/dossier.js";
import { VerificationError } from "../../ledger/service/console/static/verify/merkle.js";
import { decodeBase64, encodeBase64 } from "../../ledger/service/console/static/verify/note.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const DOSSIER = join(FIXTURES, "..", "..", "integration", "fixtures", "pre_issue9");
const TEXT = readFileSync(join(DOSSIER, "sealed-release.dossier.json"), "utf8");
const KEY = readFileSync(join(DOSSIER, "ledger.pub"), "utf8");
const keys = JSON.parse(readFileSync(join(FIXTURES, "keys.json"), "utf8"));
const fresh = () => JSON.parse(TEXT);
const rejected = (promise, message) =>
  assert.rejects(promise, (exc) => exc instanceof VerificationError && (!message || message.test(exc.message)));

/** The item's entry with byte `at` replaced by `value` (or its low bit flipped). */
function tamper(item, at, value) {
  const bytes = decodeBase64(item.entry);
  bytes[at] = value ?? bytes[at] ^ 0x01;
  return { ...item, entry: encodeBase64(bytes) };
}

describe("a real dossier", () => {
  test("passes: checkpoint signed by the pinned key, every entry included", async () => {
    const report = await verifyDossier(fresh(), KEY);
    assert.equal(report.checkpoint.origin, "evledger.demo/ledger");
    assert.equal(report.checkpoint.size, 27);
    assert.deepEqual(report.checkpoint.extensions, ["evledger-keys 6"]);
    assert.equal(report.keys.length, 7);
    assert.equal(report.policy.index, 7);
    assert.equal(report.entries.length, 19);
    assert.equal(report.entries.at(-1).entry.index, 26);
    assert.match(report.checks[0], /^checkpoint signed by evledger\.demo\/ledger\+a6376cb5: size 27$/);
    assert.deepEqual(report.notChecked, NOT_YET_CHECKED);
  });

  test("passes as JSON text too, and with a witness's cosignature line it does not know", async () => {
    await verifyDossier(TEXT, KEY);
    const dossier = fresh();
    dossier.checkpoint += "\u2014 witness.example/w1 " + encodeBase64(new Uint8Array(76)) + "\n";
    await verifyDossier(dossier, KEY);
  });
});

describe("a dossier that must fail", () => {
  test("one tampered entry byte, keeping the entry valid JSON: it is not in the tree", async () => {
    const dossier = fresh();
    const bytes = decodeBase64(dossier.entries[3].entry);
    const at = new TextDecoder().decode(bytes).indexOf('"time":"') + 8 + 3; // the year's last digit
    dossier.entries[3] = tamper(dossier.entries[3], at, bytes[at] === 0x37 ? 0x38 : 0x37);
    JSON.parse(new TextDecoder().decode(decodeBase64(dossier.entries[3].entry)));
    await rejected(verifyDossier(dossier, KEY), /release entry \d+ is not in the tree of the dossier's checkpoint/);
  });

  test("any one flipped entry byte, in a release entry, a key event or the policy", async () => {
    const positions = (item) => {
      const n = decodeBase64(item.entry).length;
      return [0, 1, Math.floor(n / 3), Math.floor(n / 2), n - 2, n - 1];
    };
    for (const list of ["entries", "keys"]) {
      for (const i of [0, fresh()[list].length - 1]) {
        for (const at of positions(fresh()[list][i])) {
          const dossier = fresh();
          dossier[list][i] = tamper(dossier[list][i], at);
          await rejected(verifyDossier(dossier, KEY));
        }
      }
    }
    for (const at of positions(fresh().policy)) {
      const dossier = fresh();
      dossier.policy = tamper(dossier.policy, at);
      await rejected(verifyDossier(dossier, KEY));
    }
  });

  test("a tampered inclusion proof, or one of the wrong size", async () => {
    const dossier = fresh();
    const proof = dossier.entries[0].inclusion_proof;
    proof[0] = (proof[0][0] === "0" ? "1" : "0") + proof[0].slice(1);
    await rejected(verifyDossier(dossier, KEY), /does not lead to the root/);
    const longer = fresh();
    longer.entries[0].inclusion_proof.push(longer.entries[0].inclusion_proof[0]);
    await rejected(verifyDossier(longer, KEY), /wrong length/);
    const upper = fresh();
    upper.entries[0].inclusion_proof[0] = upper.entries[0].inclusion_proof[0].toUpperCase();
    await rejected(verifyDossier(upper, KEY), /malformed/);
  });

  test("an entry listed at another index, or proven with another entry's proof", async () => {
    const moved = fresh();
    const last = moved.entries.length - 1;
    moved.entries[last] = { ...moved.entries[last], index: moved.entries[last].index + 1 };
    await rejected(verifyDossier(moved, KEY), /listed as/);
    const swapped = fresh();
    swapped.entries[1].inclusion_proof = swapped.entries[2].inclusion_proof;
    await rejected(verifyDossier(swapped, KEY), /not in the tree/);
  });

  test("a checkpoint not signed by the pinned key, or altered", async () => {
    await rejected(verifyDossier(fresh(), keys.ledger), /not signed by any trusted key/);
    const altered = fresh();
    altered.checkpoint = altered.checkpoint.replace("\n27\n", "\n28\n");
    await rejected(verifyDossier(altered, KEY), /does not verify/);
    const noteless = fresh();
    noteless.checkpoint = noteless.checkpoint.slice(0, noteless.checkpoint.lastIndexOf("\n\n") + 1);
    await rejected(verifyDossier(noteless, KEY));
  });

  test("another format, unknown or missing fields, entries out of log order", async () => {
    await rejected(verifyDossier({ ...fresh(), format: "evledger-dossier/v2" }, KEY), new RegExp(DOSSIER_FORMAT));
    await rejected(verifyDossier({ ...fresh(), extra: true }, KEY), /unknown fields/);
    const { compliance, ...missing } = fresh();
    await rejected(verifyDossier(missing, KEY), /lacks fields/);
    const extraItemField = fresh();
    extraItemField.keys[0].note = "x";
    await rejected(verifyDossier(extraItemField, KEY), /not \{index, entry, inclusion_proof\}/);
    const reordered = fresh();
    reordered.entries.reverse();
    await rejected(verifyDossier(reordered, KEY), /log order/);
    await rejected(verifyDossier("{not json", KEY), /not JSON/);
  });
});
