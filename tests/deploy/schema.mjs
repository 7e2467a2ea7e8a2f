// Validation of Kubernetes objects against the OpenAPI schemas of npm kubernetes-models, with
// unknown fields refused as the API server's strict field validation would. Shared by the checks
// of the base (validate.mjs), the PostgreSQL overlay (validate_postgres.mjs) and the gateways.
import { expect } from "../support/node/checks.mjs";

// ---------------------------------------------------------------------------------------------
// Schema validation.

export async function modelFor(object) {
  const { apiVersion, kind } = object;
  expect(typeof apiVersion === "string" && typeof kind === "string", "apiVersion and kind are required strings");
  let module;
  try {
    module = await import(`kubernetes-models/${apiVersion}/${kind}`);
  } catch {
    throw new Error(`kubernetes-models knows no ${apiVersion} ${kind}`);
  }
  const Model = module[kind] ?? module.default;
  expect(typeof Model === "function", `no model class for ${apiVersion} ${kind}`);
  return Model;
}

// The schema errors of an object ([] when valid).
export function schemaErrors(Model, object) {
  try {
    new Model(structuredClone(object)).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    return e.errors;
  }
}

function pointer(path) {
  return path.map((p) => "/" + String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("");
}

function setAt(object, path, value) {
  let node = object;
  for (const key of path.slice(0, -1)) node = node[key];
  node[path[path.length - 1]] = value;
}

// The schemas accept unknown fields, so a typo (`readinesProbe`) would pass. Each field is probed
// instead: replaced by a value no Kubernetes field accepts (a nested array), the object must fail
// validation at that field. A field that accepts anything is one the schema does not know.
export function unknownFields(Model, object) {
  const probe = [[["not a valid value for any field"]]];
  const unknown = [];
  const walk = (node, path) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => walk(child, [...path, i]));
      return;
    }
    if (node === null || typeof node !== "object") return;
    for (const key of Object.keys(node)) {
      const fieldPath = [...path, key];
      const copy = structuredClone(object);
      setAt(copy, fieldPath, probe);
      const at = pointer(fieldPath);
      const errors = schemaErrors(Model, copy);
      if (!errors.some((e) => e.instancePath === at || e.instancePath.startsWith(at + "/"))) {
        unknown.push(at);
        continue;  // nothing below an unknown field is known either
      }
      walk(node[key], fieldPath);
    }
  };
  walk(object, []);
  return unknown;
}

export async function validateObject(object) {
  const Model = await modelFor(object);
  const errors = schemaErrors(Model, object);
  expect(errors.length === 0, errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("\n"));
  const unknown = unknownFields(Model, object);
  expect(unknown.length === 0, `fields unknown to the ${object.kind} schema: ${unknown.join(", ")}`);
}


// True when validateObject refuses `object` (a check that the validator has teeth).
export async function refuses(object) {
  try {
    await validateObject(object);
  } catch {
    return true;
  }
  return false;
}
