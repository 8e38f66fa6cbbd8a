// The browser verifier's decoders agree with the ledger's Python ones: entries (canonical or not),
// times, strict JSON, and the completeness index's proofs and checkpoint lines. The expectations of
// fixtures/parity.json are what the Python code said of each input (make_fixtures.py).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { MAX_ENTRY_SIZE, parseEntry } from "../../ledger/service/console/static/verify/entry.js";
import { decodeIndexProof, indexLineOf, keyChainHeadOf, verifyIndexProof } from "../../ledger/service/console/static/verify/index.js";
import {
  JsonFloat,
  canonicalJson,
  compareCodePoints,
  jsonHoldsNul,
  jsonNestsDeeperThan,
  parseEntryTime,
  parseJson,
  parseOffsetTime,
} from "../../ledger/service/console/static/verify/json.js";
import { VerificationError } from "../../ledger/service/console/static/verify/merkle.js";
import { decodeBase64, encodeBase64 } from "../../ledger/service/console/static/verify/note.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const PARITY = JSON.parse(readFileSync(join(FIXTURES, "parity.json"), "utf8"));
const refused = (fn, message) => assert.throws(fn, (exc) => exc instanceof VerificationError && (!message || message.test(exc.message)));
const bytes = (text) => new TextEncoder().encode(text);

describe("entries: canonical exactly when the Python parse_entry says so", () => {
  for (const { desc, entry, canonical } of PARITY.entries) {
    test(`${desc}: ${canonical ? "canonical" : "refused"}`, () => {
      const data = decodeBase64(entry);
      if (canonical) assert.equal(parseEntry(data).v, 1);
      else refused(() => parseEntry(data));
    });
  }

  test("an entry over 65,535 bytes is refused before it is read", () => {
    refused(() => parseEntry(new Uint8Array(MAX_ENTRY_SIZE + 1)), /over the 65535-byte limit/);
  });
});

describe("times, as the Python readers read them", () => {
  for (const [text, micros] of PARITY.offset_times) {
    test(`a key's expiry ${JSON.stringify(text)}`, () => {
      const got = parseOffsetTime(text);
      assert.equal(got === null ? null : String(got), micros);
    });
  }
  for (const [text, micros] of PARITY.entry_times) {
    test(`an entry time ${JSON.stringify(text)}`, () => {
      if (micros === null) refused(() => parseEntryTime(text));
      else assert.equal(String(parseEntryTime(text)), micros);
    });
  }
});

describe("strict JSON", () => {
  test("integers and floats are told apart; large integers are kept whole", () => {
    const value = parseJson('{"a":1,"b":1.0,"c":1E2,"d":123456789012345678901234567890,"e":-0}');
    assert.equal(value.a, 1);
    assert.ok(value.b instanceof JsonFloat && value.c instanceof JsonFloat);
    assert.equal(value.d, 123456789012345678901234567890n);
    assert.ok(Object.is(value.e, 0));
  });

  test("what RFC 8259 does not allow is refused", () => {
    for (const text of ['"\\ud800"', '"\\udc00x"', "[1,]", "\ufeff{}", '{"a":1}x', "0123", "NaN", '"a\u0001"', "{'a':1}", ""]) {
      refused(() => parseJson(text), /JSON is malformed/);
    }
  });

  test("a repeated key keeps its last value; __proto__ is an ordinary key", () => {
    const value = parseJson('{"a":1,"a":2,"__proto__":{"x":1}}');
    assert.equal(value.a, 2);
    assert.equal(value.__proto__.x, 1);
    assert.equal({}.x, undefined);
  });

  test("canonical JSON sorts keys by code point and escapes as the ledger's encoder", () => {
    assert.ok(compareCodePoints("\uffff", "\u{1f600}") < 0); // UTF-16 order says otherwise
    assert.equal(canonicalJson({ "\u{1f600}": 1, "\uffff": 2, b: [1, "\u001f/é"], a: null }), '{"a":null,"b":[1,"\\u001f/é"],"\uffff":2,"\u{1f600}":1}');
    refused(() => canonicalJson({ a: new JsonFloat("1.5") }));
  });

  test("NUL and depth, as admission counts them", () => {
    assert.ok(jsonHoldsNul(bytes('{"a":"\\u0000"}')));
    assert.ok(jsonHoldsNul(bytes('{"a":"\\\\\\u0000"}')));
    assert.ok(!jsonHoldsNul(bytes('{"a":"\\\\u0000"}')));
    assert.ok(jsonNestsDeeperThan(bytes("[".repeat(65) + "]".repeat(65)), 64));
    assert.ok(!jsonNestsDeeperThan(bytes("[".repeat(64) + "]".repeat(64)), 64));
    assert.ok(!jsonNestsDeeperThan(bytes(`["${"[".repeat(100)}"]`), 64));
  });
});

describe("the completeness index", () => {
  const root = new Uint8Array(32);

  test("an empty map's proof shows any key absent", async () => {
    assert.equal(await verifyIndexProof(root, new Uint8Array(32).fill(7), Uint8Array.of(1, 1, 0, 0)), null);
  });

  test("proofs that do not decode are refused as malformed", () => {
    for (const proof of [[1, 1, 0], [2, 1, 0, 0], [1, 3, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 0, 1, 0x40], [1, 1, 0, 1, 0x80]]) {
      assert.throws(() => decodeIndexProof(Uint8Array.from(proof)), (exc) => exc.malformed === true);
    }
    const empty = Uint8Array.from([1, 1, 0, 1, 0x80, ...new Uint8Array(32)]);
    assert.throws(() => decodeIndexProof(empty), /marked non-EMPTY but is EMPTY/);
    const noEntries = Uint8Array.from([1, 0, 0, 0, ...new Uint8Array(48)]);
    assert.throws(() => decodeIndexProof(noEntries), /counts at least one entry/);
  });

  test("a proof for another root, or ending at a leaf of the key itself, is refused", async () => {
    await assert.rejects(verifyIndexProof(new Uint8Array(32).fill(1), root, Uint8Array.of(1, 1, 0, 0)), /does not lead to the index root/);
    const key = new Uint8Array(32).fill(9);
    const head = new Uint8Array(48);
    head[7] = 1;
    await assert.rejects(verifyIndexProof(root, key, Uint8Array.from([1, 2, 0, 0, ...key, ...head])), /ends at a leaf of that same key/);
  });

  test("checkpoint lines: evledger-keys and evledger-index", () => {
    assert.equal(keyChainHeadOf(["evledger-keys 6"]), 6);
    assert.equal(keyChainHeadOf(["evledger-keys x", "other 1"]), null);
    const root64 = encodeBase64(new Uint8Array(32).fill(3));
    assert.deepEqual(indexLineOf(["evledger-keys 6", `evledger-index ${root64} 12`]).chainedFrom, 12);
    assert.equal(indexLineOf(["evledger-keys 6"]), null);
    for (const bad of [`evledger-index ${root64}`, `evledger-index ${root64} 012`, "evledger-index AAAA 1", "evledger-index !! 1"]) {
      refused(() => indexLineOf([bad]));
    }
  });
});
