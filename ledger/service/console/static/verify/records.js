// What an envelope's payload says, read as admission reads it (ledger/rules/admission.py `_inspect`,
// ledger/records/statement.py, ledger/records/admin.py): the release it belongs to, its subjects'
// digests, an approval's role, a seal's count and head, or the admin record it carries.
//
// Not read here, and so not checked in the browser: each predicate's other fields against its
// schema (schemas/PREDICATES.md) and a published policy's contents and digest (schemas/POLICY.md).
// `evledger verify` checks both; they matter to the compliance result, which only it re-evaluates.

import { decodeBase64Lenient } from "./dsse.js";
import { VerificationError } from "./merkle.js";
import { parseVerifierKey } from "./note.js";
import { codePoints, compareCodePoints, isInt, isObject, jsonHoldsNul, jsonNestsDeeperThan, parseJson, parseOffsetTime, utf8 } from "./json.js";

export const INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const ADMIN_PAYLOAD_TYPE = "application/vnd.evledger.admin+json";
const BASE = "https://evledger.dev";
export const APPROVAL = `${BASE}/approval/v1`;
export const RELEASE_SEAL = `${BASE}/release-seal/v1`;
const GATE_DECISION = "https://slsa.dev/verification_summary/v1";
const GATE_EXTENSION = `${BASE}/gate-decision/v1`;
const STATEMENT_TYPES = ["https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"];
const MAX_JSON_DEPTH = 64;
const MAX_NAME = 256;
const MAX_PREDICATE_TYPE = 512;
const MAX_DIGEST_ALGORITHM = 64;
const MAX_DIGEST_VALUE = 512;
export const ROLE_ADMIN = "admin";
export const DEFAULT_SEAL_ROLES = Object.freeze(["release-manager"]);
const ROLE = /^[a-z][a-z0-9-]{0,63}$/;
const HEX64 = /^[0-9a-f]{64}$/;

const fail = (message) => {
  throw new VerificationError(message);
};
const typeName = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : isInt(v) ? "int" : isObject(v) ? "object" : typeof v);

function decodeJson(payload, what) {
  try {
    return parseJson(utf8(payload, what));
  } catch (exc) {
    return fail(`${what}: ${exc.message}`);
  }
}

// --- in-toto statements ----------------------------------------------------------------------

function checkType(value, test, expected, where, what) {
  if (!test(value)) fail(`${what}: Expected \`${expected}\`, got \`${typeName(value)}\` - at \`${where}\``);
}

function decodeStatement(payload) {
  const what = "payload is not an in-toto Statement";
  const s = decodeJson(payload, what);
  checkType(s, isObject, "object", "$", what);
  if (!("_type" in s)) fail(`${what}: Object missing required field \`_type\``);
  checkType(s._type, (v) => typeof v === "string", "str", "$._type", what);
  const subject = "subject" in s ? s.subject : [];
  checkType(subject, Array.isArray, "array", "$.subject", what);
  subject.forEach((d, i) => {
    const at = `$.subject[${i}]`;
    checkType(d, isObject, "object", at, what);
    for (const f of ["name", "uri", "downloadLocation", "mediaType"]) {
      if (f in d) checkType(d[f], (v) => typeof v === "string", "str", `${at}.${f}`, what);
    }
    if ("annotations" in d) checkType(d.annotations, isObject, "object", `${at}.annotations`, what);
    if ("digest" in d) {
      checkType(d.digest, isObject, "object", `${at}.digest`, what);
      for (const [k, v] of Object.entries(d.digest)) checkType(v, (x) => typeof x === "string", "str", `${at}.digest.${k}`, what);
    }
  });
  const predicateType = "predicateType" in s ? s.predicateType : "";
  checkType(predicateType, (v) => typeof v === "string", "str", "$.predicateType", what);
  const predicate = "predicate" in s ? s.predicate : Object.create(null);
  checkType(predicate, isObject, "object", "$.predicate", what);
  if (!STATEMENT_TYPES.includes(s._type)) {
    fail(`statement _type must be ${STATEMENT_TYPES.join(" or ")}, got ${JSON.stringify(s._type)}`);
  }
  if (!predicateType) fail("statement predicateType must not be empty");
  if (codePoints(predicateType) > MAX_PREDICATE_TYPE) fail(`statement predicateType is longer than ${MAX_PREDICATE_TYPE} characters`);
  if (!subject.length || subject.some((d) => !d.digest || !Object.keys(d.digest).length)) {
    fail("statement needs at least one subject, each with a digest");
  }
  for (const d of subject) {
    for (const [algorithm, value] of Object.entries(d.digest)) {
      if (codePoints(algorithm) > MAX_DIGEST_ALGORITHM || codePoints(value) > MAX_DIGEST_VALUE) {
        fail(`a subject digest has at most ${MAX_DIGEST_ALGORITHM} characters of algorithm and ${MAX_DIGEST_VALUE} of value`);
      }
    }
  }
  return { subject, predicateType, predicate };
}

function releaseOf({ predicateType, predicate }) {
  let release = predicate.release;
  if (predicateType === GATE_DECISION) {
    const extension = predicate[GATE_EXTENSION];
    release = isObject(extension) && "release" in extension ? extension.release : predicate.release;
  }
  if (release === undefined || release === null) return [null, null];
  if (!isObject(release)) fail("predicate.release must be an object with product and version");
  const { product, version } = release;
  if (typeof product !== "string" || !(codePoints(product) > 0 && codePoints(product) <= MAX_NAME)) {
    fail(`predicate.release.product must be a string of 1 to ${MAX_NAME} characters`);
  }
  if (version !== undefined && version !== null && (typeof version !== "string" || !(codePoints(version) > 0 && codePoints(version) <= MAX_NAME))) {
    fail(`predicate.release.version must be a string of 1 to ${MAX_NAME} characters`);
  }
  return [product, version ?? null];
}

function sealOf({ predicateType, predicate }) {
  if (predicateType !== RELEASE_SEAL) return null;
  const { count, head } = predicate;
  if (!isInt(count) || count < 0) fail("a release seal needs predicate.count, the number of release entries before it");
  if (typeof head !== "string" || !HEX64.test(head)) {
    fail("a release seal needs predicate.head, the hex leaf hash of the release's last entry");
  }
  return [Number(count), head];
}

/** Every subject digest as `<algorithm>:<value lowercased>`, sorted, unique (statement.py subject_digests). */
function subjectDigests(subject) {
  const all = new Set(subject.flatMap((d) => Object.entries(d.digest).map(([alg, v]) => `${alg}:${v.toLowerCase()}`)));
  return [...all].sort(compareCodePoints);
}

// --- admin records ---------------------------------------------------------------------------

function fields(record, allowed, required, kindName) {
  for (const key of Object.keys(record)) {
    if (key !== "kind" && !allowed.includes(key)) fail(`admin record is invalid: Object contains unknown field \`${key}\``);
  }
  for (const key of required) if (!(key in record)) fail(`admin record is invalid: Object missing required field \`${key}\``);
  return kindName;
}

const strings = (v, where) => {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) fail(`admin record is invalid: Expected \`array\` of \`str\` - at \`$.${where}\``);
  return v;
};
const text = (v, where) => {
  if (typeof v !== "string") fail(`admin record is invalid: Expected \`str\`, got \`${typeName(v)}\` - at \`$.${where}\``);
  return v;
};

/** The policy's sealing roles (policy.py Policy.seal_roles): `release-manager` without [sealing]. */
function sealRoles(policy) {
  if (!isObject(policy)) fail("admin record is invalid: Expected `object` - at `$.policy`");
  if (!("sealing" in policy)) return DEFAULT_SEAL_ROLES;
  const { sealing } = policy;
  if (!isObject(sealing) || !Array.isArray(sealing.roles) || sealing.roles.some((r) => typeof r !== "string" || !ROLE.test(r))) {
    fail("admin record is invalid: sealing.roles must be a list of roles - at `$.policy.sealing`");
  }
  if (!sealing.roles.length) fail("admin record is invalid: sealing.roles must name at least one role");
  if (new Set(sealing.roles).size !== sealing.roles.length) fail("admin record is invalid: sealing.roles lists a role twice");
  return Object.freeze([...sealing.roles]);
}

/** An admin payload (admin.py decode_admin_record): key.registered, key.revoked or policy.published. */
async function decodeAdminRecord(payload) {
  const r = decodeJson(payload, "admin record is invalid");
  if (!isObject(r)) fail("admin record is invalid: Expected `object`");
  if (r.kind === "key.registered") {
    fields(r, ["key", "owner", "roles", "products", "expires"], ["key", "owner", "roles"]);
    const record = { kind: r.kind, key: text(r.key, "key"), owner: text(r.owner, "owner"), roles: strings(r.roles, "roles") };
    record.products = "products" in r ? strings(r.products, "products") : [];
    record.expires = null;
    try {
      record.verifier = await parseVerifierKey(record.key);
    } catch (exc) {
      if (!(exc instanceof VerificationError)) throw exc;
      fail(`admin record is invalid: ${exc.message}`);
    }
    if (!record.owner.trim()) fail("admin record is invalid: key owner must not be empty");
    if ("expires" in r) {
      record.expires = parseOffsetTime(text(r.expires, "expires"));
      if (record.expires === null) {
        fail(`admin record is invalid: expires ${JSON.stringify(r.expires.slice(0, 40))} is not an RFC 3339 date-time with an offset (e.g. 2027-06-30T00:00:00Z)`);
      }
    }
    const bad = record.roles.filter((role) => !ROLE.test(role)).sort();
    if (!record.roles.length || bad.length) {
      fail(`admin record is invalid: a key needs at least one role, each a lowercase name of letters, digits and '-' (refused: ${JSON.stringify(bad)})`);
    }
    return record;
  }
  if (r.kind === "key.revoked") {
    fields(r, ["keyid", "reason"], ["keyid", "reason"]);
    return { kind: r.kind, keyid: text(r.keyid, "keyid"), reason: text(r.reason, "reason") };
  }
  if (r.kind === "policy.published") {
    fields(r, ["policy", "digest"], ["policy", "digest"]);
    return { kind: r.kind, digest: text(r.digest, "digest"), sealRoles: sealRoles(r.policy), policy: r.policy };
  }
  return fail(`admin record is invalid: Invalid value ${JSON.stringify(r.kind ?? null)} - at \`$.kind\``);
}

/**
 * Read an envelope's payload as admission does, before any signature is looked at. Returns
 * `{kind, product, version, subjects, admin, seal, approvalRole, payload}`; a VerificationError
 * for a payload admission refuses (in the Python verifier's words).
 */
export async function inspect(envelope) {
  let payload;
  try {
    payload = decodeBase64Lenient(envelope.payload, "envelope payload");
  } catch (exc) {
    return fail(exc.message);
  }
  if (jsonHoldsNul(payload)) fail("the payload holds U+0000 (NUL), which the ledger can neither store nor index");
  if (jsonNestsDeeperThan(payload, MAX_JSON_DEPTH)) fail(`the payload nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`);
  if (envelope.payloadType === INTOTO_PAYLOAD_TYPE) {
    const statement = decodeStatement(payload);
    const [product, version] = releaseOf(statement);
    let approvalRole = null;
    if (statement.predicateType === APPROVAL) {
      // The approval predicate's other fields are Python's to check (records.js header).
      approvalRole = statement.predicate.role;
      if (typeof approvalRole !== "string") fail("approval predicate is invalid: Expected `str` - at `$.role`");
    }
    const seal = sealOf(statement);
    if (seal !== null && version === null) fail("a release seal must name its release (predicate.release product and version)");
    const subjects = subjectDigests(statement.subject);
    return { kind: statement.predicateType, product, version, subjects, admin: null, seal, approvalRole, payload };
  }
  if (envelope.payloadType === ADMIN_PAYLOAD_TYPE) {
    const admin = await decodeAdminRecord(payload);
    return { kind: admin.kind, product: null, version: null, subjects: [], admin, seal: null, approvalRole: null, payload };
  }
  return fail(`payloadType must be ${INTOTO_PAYLOAD_TYPE} or ${ADMIN_PAYLOAD_TYPE}, got ${JSON.stringify(envelope.payloadType)}`);
}
