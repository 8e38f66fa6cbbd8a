// note.js against signed notes and checkpoints the project made (fixtures/checkpoints.json,
// fixtures/keys.json by make_fixtures.py) and the example of docs/formats.md (fixtures/docs-example.json).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { VerificationError, leafHash, toHex, verifyInclusion } from "../../ledger/service/console/static/verify/merkle.js";
import {
  computeKeyId,
  decodeBase64,
  encodeBase64,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseNote,
  parseVerifierKey,
} from "../../ledger/service/console/static/verify/note.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const load = (name) => JSON.parse(readFileSync(join(FIXTURES, name), "utf8"));
const keys = load("keys.json");
const cp = load("checkpoints.json");
const docs = load("docs-example.json");
const rejected = (promise, message) => assert.rejects(promise, (exc) => exc instanceof VerificationError && (!message || message.test(exc.message)));

const ledger = await parseVerifierKey(keys.ledger);
const textOf = (note) => note.slice(0, note.lastIndexOf("\n\n") + 1);
const signaturesOf = (note) => note.slice(note.lastIndexOf("\n\n") + 2);

describe("verifier keys", () => {
  test("the docs' test key: name, key ID and keyid string", async () => {
    const key = await parseVerifierKey(docs.verifier);
    assert.equal(key.name, "ledger.example/prod");
    assert.equal(key.keyId, 0x77b80c1d);
    assert.equal(key.keyid, "ledger.example/prod+77b80c1d");
    assert.equal(await computeKeyId(key.name, key.publicKey), 0x77b80c1d);
  });

  test("every key the project wrote parses, its key ID recomputed from name and key", async () => {
    for (const text of [keys.ledger, keys.impostor, keys.other, keys.builder]) {
      const key = await parseVerifierKey(text);
      assert.equal(`${key.keyid}+${encodeBase64(Uint8Array.of(1, ...key.publicKey))}`, text);
    }
    // Same name as the ledger, another key: another key ID.
    assert.notEqual((await parseVerifierKey(keys.impostor)).keyId, ledger.keyId);
  });

  test("a wrong key ID, algorithm byte, length or base64 is refused", async () => {
    const [name, id, material] = [ledger.name, ledger.keyid.split("+")[1], keys.ledger.split("+").slice(2).join("+")];
    await rejected(parseVerifierKey(`${name}+${(parseInt(id, 16) ^ 1).toString(16).padStart(8, "0")}+${material}`), /does not match/);
    await rejected(parseVerifierKey(docs.verifier.replace("77b80c1d", "77B80C1D")), /8 lowercase hex/);
    await rejected(parseVerifierKey(`${name}+${id.slice(1)}+${material}`), /8 lowercase hex/);
    await rejected(parseVerifierKey(`other.example/name+${id}+${material}`), /does not match/);
    // A cosignature/v1 key (type 0x04) is not a note or DSSE key, whatever its ID.
    await rejected(parseVerifierKey(keys.witness), /Ed25519/);
    await rejected(parseVerifierKey(`${name}+${id}+${encodeBase64(ledger.publicKey)}`), /Ed25519/);
    await rejected(parseVerifierKey(`${name}+${id}+${material.replaceAll("+", "-")}`), /base64/); // URL-safe
    await rejected(parseVerifierKey(`${name}+${id}+${material}==`), /base64/);
    await rejected(parseVerifierKey(`${name}+${id}`));
    await rejected(parseVerifierKey(`bad name+${id}+${material}`), /key name/);
  });
});

test("base64 is read only in its canonical spelling (docs/formats.md, Conventions)", () => {
  assert.deepEqual(decodeBase64("AQ=="), Uint8Array.of(1));
  for (const bad of ["AR==", "AQ", "AQ=", "A===", "AQ==\n", "_w==", " AQ=="]) {
    assert.throws(() => decodeBase64(bad), VerificationError, JSON.stringify(bad));
  }
});

describe("signed notes and checkpoints made by the project", () => {
  test("the ledger's checkpoint opens with its key", async () => {
    const checkpoint = await openCheckpoint(cp.note, ledger, { origin: cp.origin });
    assert.equal(checkpoint.origin, cp.origin);
    assert.equal(checkpoint.size, cp.size);
    assert.equal(toHex(checkpoint.rootHash), cp.root_hex);
    assert.deepEqual(checkpoint.extensions, []);
    assert.equal(checkpoint.text, textOf(cp.note));
    // The key may be given as its string too; and the note as UTF-8 bytes.
    await openCheckpoint(new TextEncoder().encode(cp.note), keys.ledger);
  });

  test("a witness cosignature line (a key it does not know) is skipped", async () => {
    const note = await openNote(cp.note_cosigned, ledger);
    assert.equal(note.signatures.length, 2);
    assert.deepEqual(note.verified.map((k) => k.keyid), [ledger.keyid]);
  });

  test("the docs/formats.md example: key, checkpoint with extension lines, entry 0 its only leaf", async () => {
    const checkpoint = await openCheckpoint(docs.note, docs.verifier, { origin: "ledger.example/prod" });
    assert.deepEqual(checkpoint.extensions, docs.extensions);
    assert.equal(checkpoint.size, 1);
    const leaf = await leafHash(decodeBase64(docs.entry));
    assert.equal(toHex(leaf), docs.leaf_hash);
    await verifyInclusion(0, checkpoint.size, leaf, [], checkpoint.rootHash);
  });

  test("a checkpoint for another origin is refused when the origin is pinned", async () => {
    await rejected(openCheckpoint(cp.note, ledger, { origin: "another.example/log" }), /another log/);
  });
});

describe("notes that must be rejected", () => {
  test("a tampered byte in the note body", async () => {
    const text = textOf(cp.note);
    for (const at of [0, cp.origin.length + 1, text.length - 10, text.length - 1]) {
      const changed = text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
      await rejected(openNote(changed + "\n" + signaturesOf(cp.note), ledger));
    }
    // Size 7 said as 8, still a well-formed checkpoint: the signature no longer holds.
    await rejected(openCheckpoint(cp.note.replace(`\n${cp.size}\n`, `\n${cp.size + 1}\n`), ledger), /does not verify/);
    // A line appended to the text.
    await rejected(openNote(text + "evledger-keys 0\n\n" + signaturesOf(cp.note), ledger), /does not verify/);
  });

  test("a signature by another key, or by another key under the ledger's name", async () => {
    await rejected(openCheckpoint(cp.note_by_other, ledger), /not signed by any trusted key/);
    // Same name, another key ID: an unknown key, ignored; then nothing trusted signed.
    await rejected(openCheckpoint(cp.note_by_impostor, ledger), /not signed by any trusted key/);
    // Another key's signature presented under the ledger's name and key ID: a known key that fails.
    const raw = decodeBase64(signaturesOf(cp.note_by_other).trim().split(" ").pop());
    raw.set(decodeBase64(signaturesOf(cp.note).trim().split(" ").pop()).slice(0, 4));
    await rejected(openNote(`${textOf(cp.note)}\n\u2014 ${ledger.name} ${encodeBase64(raw)}\n`, ledger), /does not verify/);
    // A bad signature by the trusted key fails the whole note, even beside a good one.
    await rejected(openNote(`${cp.note}\u2014 ${ledger.name} ${encodeBase64(raw)}\n`, ledger), /does not verify/);
  });

  test("a replayed signature: the ledger's signature of one checkpoint on another", async () => {
    await openCheckpoint(cp.note_size5, ledger);
    await rejected(openCheckpoint(textOf(cp.note) + "\n" + signaturesOf(cp.note_size5), ledger), /does not verify/);
    await rejected(openCheckpoint(textOf(cp.note_size5) + "\n" + signaturesOf(cp.note), ledger), /does not verify/);
  });

  test("malformed notes", () => {
    const body = textOf(cp.note);
    const line = signaturesOf(cp.note);
    const sig = line.trim().split(" ").pop();
    for (const bad of [
      body, // no signatures
      body + "\n", // an empty signature block
      body + "\n" + line.trimEnd(), // no final newline
      body + "\n" + line.replace("\u2014", "-"), // not an em dash
      body + "\n" + line.replace(sig, sig.replace(/=$/, "")), // not canonical base64
      body + "\n" + line.replace(sig, "AAA="), // shorter than a key ID
      body.replace("\n", "\t\n") + "\n" + line, // a control character
      body + "\n" + line.repeat(101), // over 100 signatures
    ]) {
      assert.throws(() => parseNote(bad), VerificationError, JSON.stringify(bad.slice(-40)));
    }
    assert.throws(() => parseNote(Uint8Array.of(0xff, 0x0a, 0x0a)), VerificationError); // not UTF-8
  });

  test("malformed checkpoint text", () => {
    const root = encodeBase64(new Uint8Array(32));
    for (const bad of [
      `o\n7\n${root}`, // no final newline
      `o\n7\n`, // two lines
      `\n7\n${root}\n`, // empty origin
      `o\n07\n${root}\n`, // leading zero
      `o\n+7\n${root}\n`,
      `o\n7\n${encodeBase64(new Uint8Array(31))}\n`, // root of 31 bytes
      `o\n7\n${root.replace("=", "")}\n`, // unpadded
      `o\n7\n${root}\n\next\n`, // empty extension line
    ]) {
      assert.throws(() => parseCheckpoint(bad), VerificationError, JSON.stringify(bad));
    }
    assert.equal(parseCheckpoint(`o\n0\n${root}\n`).size, 0);
    assert.equal(parseCheckpoint(`o\n18446744073709551615\n${root}\n`).size, 18446744073709551615n);
  });
});
