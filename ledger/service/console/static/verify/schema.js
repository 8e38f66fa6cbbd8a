// Typed decoding as the ledger's msgspec Structs do it: required and optional fields, unknown
// fields refused (forbid_unknown_fields) or dropped, `str`, `int` (never a float or a bool), lists.
// Errors are Shape errors worded as msgspec words them, for the caller to restate.

import { isInt, isObject } from "./json.js";

/** A value that does not have the type a Struct field declares. */
export class Shape extends Error {}

/** The msgspec name of a JSON value's type. */
export function kind(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (isInt(value)) return "int";
  if (isObject(value)) return "object";
  return typeof value === "object" ? "float" : ({ boolean: "bool", string: "str" }[typeof value] ?? typeof value);
}

/**
 * Decode `value` as a Struct: `fields` maps each name to `[type, required]`. Unknown fields are
 * refused, or dropped with `keepUnknown`. Returns a plain object with the fields present.
 */
export function struct(value, fields, where, { keepUnknown = false } = {}) {
  if (!isObject(value)) throw new Shape(`Expected \`object\`, got \`${kind(value)}\` - at \`${where}\``);
  for (const key of Object.keys(value)) {
    if (!(key in fields) && !keepUnknown) throw new Shape(`Object contains unknown field \`${key}\` - at \`${where}\``);
  }
  const out = {};
  for (const [key, [type, required]] of Object.entries(fields)) {
    if (!(key in value)) {
      if (required) throw new Shape(`Object missing required field \`${key}\` - at \`${where}\``);
      continue;
    }
    out[key] = type(value[key], `${where}.${key}`);
  }
  return out;
}

export const str = (value, where) => {
  if (typeof value !== "string") throw new Shape(`Expected \`str\`, got \`${kind(value)}\` - at \`${where}\``);
  return value;
};

/** An int within JavaScript's safe range (a larger one names no index of any real log). */
export const int = (value, where) => {
  if (!isInt(value)) throw new Shape(`Expected \`int\`, got \`${kind(value)}\` - at \`${where}\``);
  if (typeof value === "bigint") throw new Shape(`Integer out of range - at \`${where}\``);
  return value;
};

export const object = (value, where) => {
  if (!isObject(value)) throw new Shape(`Expected \`object\`, got \`${kind(value)}\` - at \`${where}\``);
  return value;
};

export const optional = (type) => (value, where) => (value === null ? null : type(value, where));

export const list = (type) => (value, where) => {
  if (!Array.isArray(value)) throw new Shape(`Expected \`array\`, got \`${kind(value)}\` - at \`${where}\``);
  return value.map((item, i) => type(item, `${where}[${i}]`));
};
