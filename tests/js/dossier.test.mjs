// dossier.js against a real release dossier (tests/integration/fixtures/pre_issue9: the sealed
// release the Python verifier passes in full, read where the Python tests read it), and against
// the dossiers of fixtures/dossiers.json: valid ones, and one per attack, each refused with the
// reason the Python verifier gives (make_fixtures.py and tests/unit/test_js_verifier.py check that).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { DOSSIER_FORMAT, NOT_CHECKED_IN_BROWSER, verifyDossier } from "../../ledger/service/console/static/verify/dossier.js";
import { VerificationError } from "../../ledger/service/console/static/verify/merkle.js";
import { decodeBase64, encodeBase64 } from "../../ledger/service/console/static/verify/note.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const DOSSIER = join(FIXTURES, "..", "..", "integration", "fixtures", "pre_issue9");
const TEXT = readFileSync(join(DOSSIER, "sealed-release.dossier.json"), "utf8");
const KEY = readFileSync(join(DOSSIER, "ledger.pub"), "utf8");
const keys = JSON.parse(readFileSync(join(FIXTURES, "keys.json"), "utf8"));
const STORY = JSON.parse(readFileSync(join(FIXTURES, "dossiers.json"), "utf8"));
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
  test("passes in full: proofs, signatures, chains, completeness (its seal)", async () => {
    const report = await verifyDossier(fresh(), KEY);
    assert.equal(report.checkpoint.origin, "evledger.demo/ledger");
    assert.equal(report.checkpoint.size, 27);
    assert.deepEqual(report.checkpoint.extensions, ["evledger-keys 6"]);
    assert.equal(report.keys.length, 7);
    assert.equal(report.policy.index, 7);
    assert.equal(report.entries.length, 19);
    assert.equal(report.entries.at(-1).entry.index, 26);
    assert.match(report.checks[0], /^checkpoint signed by evledger\.demo\/ledger\+a6376cb5: size 27$/);
    assert.equal(report.verdict, "VERIFIED (proofs, signatures, chains, completeness): ivd-analyzer 2.4.20261204201839, sealed at entry 26: complete");
    assert.deepEqual(report.checks.slice(1), [
      "7 key events: complete chain up to entry 6, signatures valid",
      "policy entry 7: included and signed by an admin key",
      "19 entries: included, signed by keys registered and unrevoked at their index",
      "release chain of 19 events unbroken from its first event",
      "release seal at entry 26 commits to the chain before it",
      "hash chain: every entry held links to the entry before it, where the dossier holds both",
    ]);
    assert.equal(report.claimedCompliance, "compliant");
    assert.deepEqual(report.notChecked, NOT_CHECKED_IN_BROWSER);
    assert.match(NOT_CHECKED_IN_BROWSER.join("\n"), /compliance result/);
  });

  test("without its seal it still verifies, but says the release is open and claims no completeness", async () => {
    const dossier = fresh();
    dossier.entries.pop();
    const report = await verifyDossier(dossier, KEY);
    assert.match(report.verdict, /^VERIFIED \(proofs, signatures, chains\): .*OPEN \(not sealed\)/);
    assert.doesNotMatch(report.verdict, /completeness\)/);
    assert.equal(report.completeness.complete, false);
    assert.match(report.completeness.statement, /entry 25 \(event 17 of the release/);
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
    await rejected(verifyDossier({ ...fresh(), extra: true }, KEY), /unknown field `extra`/);
    const { compliance, ...missing } = fresh();
    await rejected(verifyDossier(missing, KEY), /missing required field `compliance`/);
    const extraItemField = fresh();
    extraItemField.keys[0].note = "x";
    await rejected(verifyDossier(extraItemField, KEY), /unknown field `note` - at `\$\.keys\[0\]`/);
    const reordered = fresh();
    reordered.entries.reverse();
    await rejected(verifyDossier(reordered, KEY), /log order/);
    await rejected(verifyDossier("{not json", KEY), /not an intact dossier: JSON is malformed/);
  });
});

describe("the dossiers of a story written with the ledger's rules", () => {
  test("an open release, complete at its checkpoint by the completeness index", async () => {
    const report = await verifyDossier(STORY.valid["open, complete at its checkpoint"], STORY.ledger);
    assert.match(report.verdict, /^VERIFIED \(proofs, signatures, chains, completeness\): js-fixture-analyzer 1\.0\.0, complete at checkpoint 12: 2 of 2 events \(not sealed\)$/);
    assert.ok(report.checks.some((c) => /^completeness index of checkpoint 12: the release's head is its entry 10, 2 events, all held$/.test(c)));
    assert.ok(report.checks.some((c) => /^artifact back-links of 3 entries/.test(c)));
    assert.equal(report.entries.length, 3); // the unchained scan about the build's artifact too
  });

  test("the sealed release", async () => {
    const report = await verifyDossier(STORY.valid.sealed, STORY.ledger);
    assert.match(report.verdict, /sealed at entry 12: complete$/);
    assert.equal(report.checkpoint.extensions.length, 2);
    assert.match(report.checkpoint.extensions[1], /^evledger-index \S+ 0$/);
  });

  test("there are attacks to refuse, each named", () => {
    assert.ok(STORY.attacks.length >= 16);
    assert.equal(new Set(STORY.attacks.map((a) => a.attack)).size, STORY.attacks.length);
  });

  for (const { attack, reason, dossier } of STORY.attacks) {
    test(`refuses ${attack}, as the Python verifier does`, async () => {
      await rejected(verifyDossier(dossier, STORY.ledger), new RegExp(reason));
    });
  }

  test("a dossier whose index proof is cut short, or missing, is refused", async () => {
    const cut = structuredClone(STORY.valid.sealed);
    cut.index_proof = encodeBase64(decodeBase64(cut.index_proof).slice(0, -1));
    await rejected(verifyDossier(cut, STORY.ledger), /the dossier's index proof is malformed/);
    const none = structuredClone(STORY.valid.sealed);
    none.index_proof = null;
    await rejected(verifyDossier(none, STORY.ledger), /carries no index proof for the release/);
    const notBase64 = structuredClone(STORY.valid.sealed);
    notBase64.index_proof = "***";
    await rejected(verifyDossier(notBase64, STORY.ledger), /the dossier's index proof is malformed/);
  });

  test("a malformed timestamp token, or fields of the wrong type, are refused", async () => {
    const stamped = structuredClone(STORY.valid.sealed);
    stamped.timestamps = ["not base64!"];
    await rejected(verifyDossier(stamped, STORY.ledger), /timestamp token is not canonical/);
    const typed = structuredClone(STORY.valid.sealed);
    typed.entries[0].index = "9";
    await rejected(verifyDossier(typed, STORY.ledger), /not an intact dossier: Expected `int`, got `str`/);
    const floated = JSON.stringify(STORY.valid.sealed).replace(/"index":8([,}])/, '"index":8.0$1');
    assert.notEqual(floated, JSON.stringify(STORY.valid.sealed));
    await rejected(verifyDossier(floated, STORY.ledger), /Expected `int`, got `float`/);
  });

  test("a dossier pinned to another key is refused before anything else", async () => {
    await rejected(verifyDossier(STORY.valid.sealed, keys.ledger), /not signed by any trusted key/);
  });
});
