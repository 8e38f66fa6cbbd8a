// dsse.js against envelopes the project signed (fixtures/dsse.json, by make_fixtures.py) and the
// envelopes recorded in a real dossier (tests/integration/fixtures/pre_issue9).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { decodeBase64Lenient, pae, verifyEnvelope } from "../../ledger/service/console/static/verify/dsse.js";
import { VerificationError, toHex } from "../../ledger/service/console/static/verify/merkle.js";
import { decodeBase64, parseVerifierKey } from "../../ledger/service/console/static/verify/note.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const load = (name) => JSON.parse(readFileSync(join(FIXTURES, name), "utf8"));
const keys = load("keys.json");
const fx = load("dsse.json");
const dossier = JSON.parse(
  readFileSync(join(FIXTURES, "..", "..", "integration", "fixtures", "pre_issue9", "sealed-release.dossier.json"), "utf8"),
);
const rejected = (promise, message) =>
  assert.rejects(promise, (exc) => exc instanceof VerificationError && (!message || message.test(exc.message)));
const utf8 = (text) => new TextEncoder().encode(text);
const copy = (value) => structuredClone(value);

const builder = await parseVerifierKey(keys.builder);
const other = await parseVerifierKey(keys.other);

describe("PAE", () => {
  test("the DSSE specification's example", () => {
    const encoded = pae("http://example.com/HelloWorld", utf8("hello world"));
    assert.equal(new TextDecoder().decode(encoded), "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  });

  test("the same bytes as the project's pae()", () => {
    const payload = decodeBase64(fx.envelope.payload);
    assert.equal(toHex(pae(fx.envelope.payloadType, payload)), fx.pae_hex);
  });

  test("lengths count bytes, not characters", () => {
    assert.equal(new TextDecoder().decode(pae("t/é", utf8("ü"))), "DSSEv1 4 t/é 2 ü");
  });
});

describe("envelopes signed by the project", () => {
  test("verifies against the signer's key, returning the payload", async () => {
    const result = await verifyEnvelope(fx.envelope, builder);
    assert.deepEqual(result.verified.map((k) => k.keyid), [builder.keyid]);
    assert.equal(JSON.parse(new TextDecoder().decode(result.payload))._type, "https://in-toto.io/Statement/v1");
    await verifyEnvelope(fx.envelope, keys.builder); // the key as its string
  });

  test("two signers: each verifies alone, both together", async () => {
    await verifyEnvelope(fx.envelope_two_signers, builder);
    await verifyEnvelope(fx.envelope_two_signers, other);
    const both = await verifyEnvelope(fx.envelope_two_signers, [builder, other]);
    assert.equal(both.verified.length, 2);
  });

  test("URL-safe base64 without padding, as DSSE allows", async () => {
    const urlSafe = (text) => text.replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    const envelope = copy(fx.envelope);
    envelope.payload = urlSafe(envelope.payload);
    envelope.signatures[0].sig = urlSafe(envelope.signatures[0].sig);
    await verifyEnvelope(envelope, builder);
    assert.throws(() => decodeBase64Lenient("ab-/"), VerificationError); // a mix of both alphabets
    assert.throws(() => decodeBase64Lenient("abcde"), VerificationError); // 5 characters cannot be base64
  });

  test("unknown fields are ignored (they are signed by nobody)", async () => {
    const envelope = copy(fx.envelope);
    envelope.signatures[0].cert = "-----BEGIN CERTIFICATE-----";
    envelope.extra = 1;
    await verifyEnvelope(envelope, builder);
  });
});

describe("envelopes that must be rejected", () => {
  test("a tampered payload or payload type", async () => {
    const payload = decodeBase64(fx.envelope.payload);
    payload[payload.length - 3] ^= 0x01;
    await rejected(verifyEnvelope({ ...fx.envelope, payload: btoa(String.fromCharCode(...payload)) }, builder), /does not verify/);
    await rejected(verifyEnvelope({ ...fx.envelope, payloadType: "application/json" }, builder), /does not verify/);
  });

  test("a signature by another key", async () => {
    // Only the builder signed: trusting only another key, nothing trusted signed.
    await rejected(verifyEnvelope(fx.envelope, other), /no signature by a trusted key/);
    // Another key's signature under the builder's keyid: a trusted key whose signature fails.
    const forged = copy(fx.envelope_two_signers);
    forged.signatures = [{ keyid: builder.keyid, sig: forged.signatures[1].sig }];
    await rejected(verifyEnvelope(forged, builder), /does not verify/);
    // And a bad signature by a trusted key fails the envelope even beside a good one.
    const mixed = copy(fx.envelope);
    mixed.signatures.push(forged.signatures[0]);
    await rejected(verifyEnvelope(mixed, builder), /does not verify/);
  });

  test("a replayed signature: one envelope's signature on another payload", async () => {
    await verifyEnvelope(fx.another_envelope, builder);
    await rejected(verifyEnvelope({ ...fx.another_envelope, signatures: fx.envelope.signatures }, builder), /does not verify/);
  });

  test("malformed envelopes", async () => {
    for (const bad of [
      null,
      { ...fx.envelope, signatures: [] },
      { ...fx.envelope, signatures: Array(17).fill(fx.envelope.signatures[0]) },
      { ...fx.envelope, payload: 7 },
      { payload: fx.envelope.payload, signatures: fx.envelope.signatures },
      { ...fx.envelope, signatures: [{ keyid: builder.keyid }] },
      { ...fx.envelope, payload: "not base64!" },
    ]) {
      await rejected(verifyEnvelope(bad, builder));
    }
    // A signature of the wrong length.
    await rejected(verifyEnvelope({ ...fx.envelope, signatures: [{ keyid: builder.keyid, sig: "AAAA" }] }, builder), /does not verify/);
  });
});

test("every envelope recorded in a real dossier verifies against the keys its key events registered", async () => {
  const entryOf = (item) => JSON.parse(new TextDecoder().decode(decodeBase64(item.entry)));
  const registered = [];
  for (const item of dossier.keys) {
    const { envelope } = entryOf(item);
    // Entry 0 registers the ledger key, signed by itself; the ledger key signs the others.
    const record = JSON.parse(new TextDecoder().decode(decodeBase64Lenient(envelope.payload)));
    assert.equal(record.kind, "key.registered");
    registered.push(await parseVerifierKey(record.key));
    await verifyEnvelope(envelope, registered);
  }
  for (const item of [dossier.policy, ...dossier.entries]) {
    const { envelope } = entryOf(item);
    const { verified } = await verifyEnvelope(envelope, registered);
    assert.deepEqual(verified.map((k) => k.keyid), envelope.signatures.map((s) => s.keyid));
  }
});
