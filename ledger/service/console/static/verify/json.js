// Strict JSON (RFC 8259) for the browser verifier, read the way the ledger's Python code reads it.
//
// The ledger decodes JSON with msgspec, which tells integers from floats (`1` is an int, `1.0` and
// `1E2` are floats), keeps integers of any size, refuses a lone surrogate escape and anything that
// is not RFC 8259 JSON (a byte order mark, trailing commas, NaN). `JSON.parse` does none of that,
// so this module parses JSON itself: integers come back as Numbers (BigInts past 2^53 - 1), floats
// as JsonFloat, objects with a null prototype. `canonicalJson` writes values back as the ledger's
// encoder does (keys sorted by code point, no whitespace), so re-encoding shows whether bytes were
// canonical (docs/formats.md "Entries"). Also here: the payload rules of admission (NUL, depth),
// code-point string order and length, and the time formats entries and keys use.

import { VerificationError } from "./merkle.js";

/** A JSON number written with a fraction or an exponent: a float, never an integer. */
export class JsonFloat {
  constructor(text) {
    this.value = Number(text);
  }
}

const MAX_DEPTH = 512; // msgspec stops at its recursion limit; nothing the ledger writes comes near

/** Whether `value` is a JSON object as parseJson returns it (not an array, not null, not a float). */
export const isObject = (value) =>
  value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof JsonFloat);

/** Whether `value` is a JSON integer (a Number or a BigInt from parseJson, or a safe JS integer). */
export const isInt = (value) => typeof value === "bigint" || Number.isSafeInteger(value);

/** Decode UTF-8 bytes strictly (no replacement characters, a byte order mark kept as text). */
export function utf8(bytes, what = "value") {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new VerificationError(`${what} is not valid UTF-8`);
  }
}

/** Parse one JSON text (a string) strictly; a VerificationError naming the position otherwise. */
export function parseJson(text) {
  let at = 0;
  const fail = (why) => {
    throw new VerificationError(`JSON is malformed: ${why} (character ${at})`);
  };
  const space = () => {
    while (at < text.length && " \t\n\r".includes(text[at])) at++;
  };
  const literal = (word, value) => {
    if (text.startsWith(word, at)) {
      at += word.length;
      return value;
    }
    return fail("invalid character");
  };
  const hex4 = () => {
    const digits = text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) fail("invalid escape");
    at += 4;
    return parseInt(digits, 16);
  };
  const string = () => {
    at++; // the opening quote
    let out = "";
    for (;;) {
      if (at >= text.length) fail("unterminated string");
      const c = text[at];
      if (c === '"') break;
      if (c.charCodeAt(0) < 0x20) fail("invalid character in string");
      if (c !== "\\") {
        out += c;
        at++;
        continue;
      }
      const e = text[at + 1];
      at += 2;
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
      if (simple !== undefined) {
        out += simple;
        continue;
      }
      if (e !== "u") fail("invalid escape");
      const unit = hex4();
      if (unit >= 0xdc00 && unit <= 0xdfff) fail("lone surrogate escape");
      if (unit >= 0xd800 && unit <= 0xdbff) {
        if (text.slice(at, at + 2) !== "\\u") fail("lone surrogate escape");
        at += 2;
        const low = hex4();
        if (low < 0xdc00 || low > 0xdfff) fail("lone surrogate escape");
        out += String.fromCharCode(unit, low);
      } else {
        out += String.fromCharCode(unit);
      }
    }
    at++;
    return out;
  };
  const number = () => {
    const match = /^-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(at, at + 1024));
    if (!match) fail("invalid number");
    at += match[0].length;
    if (match[1] !== undefined || match[2] !== undefined) return new JsonFloat(match[0]);
    const big = BigInt(match[0]);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) || 0 : big;
  };
  const value = (depth) => {
    if (depth > MAX_DEPTH) fail("nested too deeply");
    space();
    const c = text[at];
    if (c === "{") {
      at++;
      const out = Object.create(null);
      space();
      if (text[at] === "}") {
        at++;
        return out;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail("expected a string key");
        const key = string();
        space();
        if (text[at] !== ":") fail("expected ':'");
        at++;
        out[key] = value(depth + 1);
        space();
        if (text[at] === ",") at++;
        else if (text[at] === "}") {
          at++;
          return out;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      at++;
      const out = [];
      space();
      if (text[at] === "]") {
        at++;
        return out;
      }
      for (;;) {
        out.push(value(depth + 1));
        space();
        if (text[at] === ",") at++;
        else if (text[at] === "]") {
          at++;
          return out;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    if (c === "t") return literal("true", true);
    if (c === "f") return literal("false", false);
    if (c === "n") return literal("null", null);
    return fail(at >= text.length ? "input data was truncated" : "invalid character");
  };
  const result = value(0);
  space();
  if (at !== text.length) fail("trailing characters");
  return result;
}

/** Compare two strings by code point, as Python orders `str` (JS `<` compares UTF-16 units). */
export function compareCodePoints(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

/** A string's length in code points, as Python's `len` counts it. */
export const codePoints = (text) => [...text].length;

/** Canonical JSON of a value: keys sorted by code point, no whitespace, integers only (msgspec's sorted encoder). */
export function canonicalJson(value) {
  if (value === null || value === true || value === false) return String(value);
  if (typeof value === "string") return JSON.stringify(value); // escapes exactly as msgspec does
  if (typeof value === "bigint" || Number.isSafeInteger(value)) return String(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort(compareCodePoints);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  throw new VerificationError("only strings, integers, lists and objects have a canonical encoding");
}

// --- admission's payload rules (ledger/core/encoding.py) -------------------------------------

/** Whether a JSON text (bytes) holds U+0000, raw or as the escape \u0000 after an even run of backslashes. */
export function jsonHoldsNul(bytes) {
  if (bytes.includes(0)) return true;
  const text = new TextDecoder("latin1").decode(bytes);
  for (let at = text.indexOf("\\u0000"); at !== -1; at = text.indexOf("\\u0000", at + 1)) {
    let before = at;
    while (before > 0 && text[before - 1] === "\\") before--;
    if ((at - before) % 2 === 0) return true;
  }
  return false;
}

/** Whether a (well-formed) JSON text nests arrays and objects deeper than `limit`, strings skipped. */
export function jsonNestsDeeperThan(bytes, limit) {
  const text = new TextDecoder("latin1").decode(bytes);
  const brackets = text.replace(/"(?:[^"\\]|\\.)*"/gs, "").match(/[[\]{}]/g) ?? [];
  let depth = 0;
  for (const b of brackets) {
    depth += b === "[" || b === "{" ? 1 : -1;
    if (depth > limit) return true;
  }
  return false;
}

// --- times ---------------------------------------------------------------------------------

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const leap = (y) => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);

/** Microseconds since 1970 (a BigInt) of a UTC date and time, or null when a field is out of range. */
function micros(y, mo, d, h, mi, s, us) {
  const days = mo === 2 && leap(y) ? 29 : DAYS[mo - 1];
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days || h > 23 || mi > 59 || s > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // years 1-99 too (Date.UTC would read them as 1901-1999)
  date.setUTCHours(h, mi, s, 0);
  return BigInt(date.getTime()) * 1000n + BigInt(us);
}

const ENTRY_TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z$/;

/**
 * An entry time (RFC 3339 UTC, milliseconds, Z; ledger/core/encoding.py parse_time) as microseconds
 * since 1970, a BigInt; a VerificationError for any other spelling or an impossible date.
 */
export function parseEntryTime(text) {
  const m = typeof text === "string" ? ENTRY_TIME.exec(text) : null;
  if (!m) throw new VerificationError(`time ${JSON.stringify(text)} is not RFC 3339 UTC with milliseconds and Z`);
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number);
  const at = micros(y, mo, d, h, mi, s, ms * 1000);
  if (at === null) throw new VerificationError(`time ${JSON.stringify(text)} is not a valid date and time`);
  return at;
}

const DATE = "(?:([0-9]{4})-([0-9]{2})-([0-9]{2})|([0-9]{4})([0-9]{2})([0-9]{2}))";
const TIME = "(?:([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?|([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:[.,]([0-9]+))?)?)?)";
const ZONE = "(?:(Z)|([+-])([0-9]{2})(?::([0-9]{2})(?::([0-9]{2})(?:\\.([0-9]{1,6}))?)?|([0-9]{2})(?:([0-9]{2})(?:\\.([0-9]{1,6}))?)?)?)";
const OFFSET_TIME = new RegExp(`^${DATE}T${TIME}${ZONE}$`);

/**
 * A date and time with its zone (ledger/records/formats.py parse_offset_time: what Python's ISO 8601
 * reader takes with a T and a zone), as microseconds since 1970 (BigInt); null for anything else.
 * The common spellings are read (extended and basic, fractions, Z or an offset); week dates and
 * Python's rarer leniencies are not, so such a time is refused here though Python reads it.
 */
export function parseOffsetTime(text) {
  const m = typeof text === "string" ? OFFSET_TIME.exec(text) : null;
  if (!m) return null;
  const pick = (...at) => at.map((i) => m[i]).find((v) => v !== undefined);
  const n = (v) => Number(v ?? 0);
  const [y, mo, d] = [pick(1, 4), pick(2, 5), pick(3, 6)].map(Number);
  const [h, mi, s, frac] = [pick(7, 11), pick(8, 12), pick(9, 13), pick(10, 14) ?? ""];
  const local = micros(y, mo, d, n(h), n(mi), n(s), Number((frac + "000000").slice(0, 6)));
  if (local === null) return null;
  if (m[15]) return local; // Z
  const [sign, oh, om, os, ofrac] = [m[16], m[17], pick(18, 21), pick(19, 22), pick(20, 23) ?? ""];
  if (n(oh) > 23 || n(om) > 59 || n(os) > 59) return null;
  const offset = (BigInt(n(oh)) * 3600n + BigInt(n(om)) * 60n + BigInt(n(os))) * 1000000n + BigInt((ofrac + "000000").slice(0, 6));
  return sign === "-" ? local + offset : local - offset;
}
