// Live check of docs/openapi.yaml against the real binary: starts `tokend`, sends a request for
// every documented operation and status it can provoke from outside (and for the answers the
// document describes in prose: unknown paths, other methods), and validates each response
// against the document: the status must be listed for that operation, the Content-Type must be
// one of its media types, the body must match the schema (JSON Schema 2020-12, with ajv) and every
// declared header must be present when required and match its schema when present. Which
// listener a request goes to is read from the document's servers, so a path documented on the
// wrong listener fails too. Finally, every documented (operation, status) must have been
// exercised, except the few no client can provoke (listed below).
//
// Usage: node openapi_live.mjs TOKEND_BINARY
import Ajv2020 from "ajv/dist/2020.js";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const binary = process.argv[2];
if (!binary) {
  console.error("usage: node openapi_live.mjs TOKEND_BINARY");
  process.exit(2);
}
const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const docPath = process.env.TOKEND_OPENAPI ?? join(repo, "docs", "openapi.yaml");
const doc = YAML.parse(readFileSync(docPath, "utf8"));

// Statuses no client can provoke against a healthy binary: a bug (500), and a list failing in
// the store (the fault file fails writes only). Everything else documented must be exercised.
const unreachable = new Set(["* 500", "GET /api/v2/tokens 503"]);

const overallDeadline = Date.now() + 90_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let passed = 0;
let failed = 0;
function check(name, condition, detail = "") {
  if (condition) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? `\n     ${detail}` : ""}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The document: local references, and its schemas compiled by ajv.

function deref(node) {
  let n = node;
  for (let hops = 0; n && n.$ref; hops++) {
    if (!n.$ref.startsWith("#/") || hops > 10) throw new Error(`unsupported $ref ${n.$ref}`);
    n = n.$ref
      .slice(2)
      .split("/")
      .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"))
      .reduce((o, k) => o?.[k], doc);
    if (n === undefined) throw new Error(`dangling $ref ${node.$ref}`);
  }
  return n;
}

// The component schemas become one schema resource, so that their $refs resolve inside ajv.
const schemaBase = "tokend-openapi";
const rewriteRefs = (value) =>
  JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', `"${schemaBase}#/$defs/`));
const ajv = new Ajv2020({ strict: true, allErrors: true });
ajv.addSchema({ $id: schemaBase, $defs: rewriteRefs(doc.components?.schemas ?? {}) });
const compiled = new Map();
function validate(schema, value) {
  const key = JSON.stringify(schema);
  if (!compiled.has(key)) compiled.set(key, ajv.compile(rewriteRefs(schema)));
  const fn = compiled.get(key);
  return fn(value) ? null : ajv.errorsText(fn.errors, { separator: "; " });
}

// The listener of a path: the port variable of its servers (or the document's).
function portOf(servers) {
  const s = servers?.[0];
  return String(s?.variables?.port?.default ?? new URL(s.url).port);
}
const apiDocPort = portOf(doc.servers);
const listenerOfPath = (path) => (portOf(doc.paths[path]?.servers ?? doc.servers) === apiDocPort ? "api" : "admin");

// ---------------------------------------------------------------------------------------------
// The binary.

const root = mkdtempSync(join(tmpdir(), "tokend-openapi-"));
const faultFile = join(root, "fault");
writeFileSync(faultFile, "");
const key = execFileSync(binary, ["keygen"], { encoding: "utf8", timeout: 10_000 }).trim();
// The environment minus tokend's own variables, which would change what is served (a sanitizer
// runtime's options still reach the binary).
const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TOKEND_")));
let out = "";
let err = "";
const child = spawn(
  binary,
  ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", join(root, "data"),
    "--threads", "1", "--test-fault-file", faultFile],
  { env: { ...inherited, TOKEND_BOOTSTRAP_TOKEN: key }, stdio: ["ignore", "pipe", "pipe"] },
);
child.stdout.on("data", (d) => (out += d));
child.stderr.on("data", (d) => (err += d));
let exit = null;
const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve((exit = { code, signal }))));
process.on("exit", () => {
  if (exit === null) child.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});
setTimeout(() => {
  console.log("FAIL the OpenAPI live check ran out of time (90s)");
  process.exit(1);
}, overallDeadline - Date.now()).unref();

async function listening() {
  const until = Date.now() + 30_000;
  while (Date.now() < until && exit === null) {
    for (const line of out.split("\n")) {
      try {
        const v = JSON.parse(line);
        if (v.msg === "tokend listening") return { api: v.api_port, admin: v.admin_port };
      } catch {
        // not a complete line yet
      }
    }
    await sleep(20);
  }
  return null;
}
const ports = await listening();
if (ports === null) {
  console.log(`FAIL tokend did not start: ${JSON.stringify(exit)} ${err}`);
  process.exit(1);
}

// One exchange on a fresh connection, byte for byte what is given, so malformed requests can be
// sent too. Resolves with the parsed response, or with {status: 0, error} on a transport failure.
function exchange(port, raw) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(result);
    };
    const parse = () => {
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return null;
      const [statusLine, ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const length = Number(headers["content-length"] ?? 0);
      if (data.length < end + 4 + length) return null;
      return {
        status: Number(statusLine.split(" ")[1]),
        headers,
        body: data.subarray(end + 4, end + 4 + length).toString("utf8"),
      };
    };
    socket.setTimeout(5000, () => finish({ status: 0, error: "timeout" }));
    socket.on("data", (d) => {
      data = Buffer.concat([data, d]);
      const r = parse();
      if (r) finish(r);
    });
    // The server may answer and close before reading all we send (413, 431): a reset after the
    // response is complete is not an error.
    socket.on("error", (e) => finish(parse() ?? { status: 0, error: e.message }));
    socket.on("end", () => finish(parse() ?? { status: 0, error: "closed without a complete response" }));
    socket.write(raw);
  });
}

function rawRequest({ method, target, headers = {}, body }) {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: tokend", "Connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join("\r\n")}\r\n\r\n${body ?? ""}`;
}

// ---------------------------------------------------------------------------------------------
// Validation of one response against the document.

const exercised = new Set();

function responseSpecFor(path, method, status, listener) {
  // A documented path asked on the other listener is an unknown path there.
  const op = listener === listenerOfPath(path) ? doc.paths[path]?.[method.toLowerCase()] : undefined;
  if (op) {
    exercised.add(`${method} ${path} ${status}`);
    const r = op.responses[String(status)] ?? op.responses.default;
    return r ? { spec: deref(r) } : { problem: `status ${status} is not documented for ${method} ${path}` };
  }
  // Answers the document gives in prose for any other path or method.
  const generic = { 400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge", 431: "HeadersTooLarge" };
  const name = generic[status];
  return name ? { spec: deref(doc.components.responses[name]) } : { problem: `${method} ${path} is not documented` };
}

// Keys stay out of the test's output too, even throwaway ones.
const redact = (text) => text.replace(/[0-9a-f]{64}/g, "[key]");

function mediaMatches(documented, actual) {
  const norm = (s) => s.toLowerCase().replace(/\s*;\s*/g, "; ").trim();
  if (norm(documented) === norm(actual)) return true;
  return !documented.includes(";") && norm(documented) === norm(actual.split(";")[0]);
}

function problemsOf(path, method, listener, res) {
  const { spec, problem } = responseSpecFor(path, method, res.status, listener);
  if (problem) return [problem];
  const problems = [];
  for (const [name, h] of Object.entries(spec.headers ?? {})) {
    const header = deref(h);
    const value = res.headers[name.toLowerCase()];
    if (value === undefined) {
      if (header.required) problems.push(`required header ${name} is missing`);
      continue;
    }
    const why = header.schema ? validate(header.schema, value) : null;
    if (why) problems.push(`header ${name}: ${JSON.stringify(value)} ${why}`);
  }
  const contentType = res.headers["content-type"];
  const content = spec.content ?? {};
  if (Object.keys(content).length === 0) {
    if (res.body.length > 0) problems.push("a body where the document describes none");
    return problems;
  }
  const media = contentType && Object.keys(content).find((m) => mediaMatches(m, contentType));
  if (!media) return [...problems, `Content-Type ${JSON.stringify(contentType)} is not one of ${Object.keys(content).join(", ")}`];
  const schema = content[media].schema;
  if (!schema) return problems;
  let value = res.body;
  if (media.startsWith("application/json")) {
    try {
      value = JSON.parse(res.body);
    } catch {
      return [...problems, `the body is not JSON: ${redact(res.body).slice(0, 80)}`];
    }
  }
  const why = validate(schema, value);
  if (why) problems.push(`body ${redact(res.body).slice(0, 160)}: ${why}`);
  return problems;
}

// Sends a request for a documented path (or an undocumented one, to its listener) and validates
// the answer; `expect` is the status the scenario must produce, so that a wrong scenario cannot
// pass unnoticed. Returns the response.
async function exercise(name, { method, path, query = "", headers, body, raw, listener = listenerOfPath(path), expect }) {
  const port = ports[listener];
  const res = await exchange(port, raw ?? rawRequest({ method, target: path + query, headers, body }));
  if (res.status === 0) {
    check(name, false, `transport: ${res.error}`);
    return res;
  }
  const problems = res.status === expect ? problemsOf(path, method, listener, res) : [`status ${res.status}, expected ${expect}: ${redact(res.body)}`];
  check(`${name}: ${method} ${path} (${listener}) -> ${res.status}`, problems.length === 0, problems.join("\n     "));
  return res;
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

const tokens = "/api/v2/tokens";
const q = `?token=${key}`;
const json = { "Content-Type": "application/json" };
const unknownKey = execFileSync(binary, ["keygen"], { encoding: "utf8", timeout: 10_000 }).trim();

const created = await exercise("create", {
  method: "POST", path: tokens, query: q, headers: json, body: JSON.stringify({ type: "admin", description: "openapi" }), expect: 200,
});
let newKey = "";
try {
  newKey = JSON.parse(created.body).token.token;
} catch {
  // reported above
}
await exercise("list", { method: "GET", path: tokens, query: q, expect: 200 });
await exercise("list, paged, Bearer key", {
  method: "GET", path: tokens, query: "?page=0&pageSize=1", headers: { Authorization: `Bearer ${key}` }, expect: 200,
});
await exercise("list, bad pageSize", { method: "GET", path: tokens, query: `${q}&pageSize=0`, expect: 400 });
await exercise("list, no key", { method: "GET", path: tokens, expect: 401 });
await exercise("list, two different keys", {
  method: "GET", path: tokens, query: q, headers: { Authorization: `Bearer ${newKey}` }, expect: 401,
});
await exercise("create, unknown key", {
  method: "POST", path: tokens, query: `?token=${unknownKey}`, headers: json, body: '{"type":"admin","description":"x"}', expect: 401,
});
await exercise("create, not JSON", { method: "POST", path: tokens, query: q, headers: json, body: "{", expect: 400 });
await exercise("create, empty description", {
  method: "POST", path: tokens, query: q, headers: json, body: '{"type":"admin","description":""}', expect: 400,
});
await exercise("create, form body", {
  method: "POST", path: tokens, query: q, headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "type=admin", expect: 415,
});
await exercise("delete, unknown key", {
  method: "DELETE", path: tokens, query: q, headers: json, body: JSON.stringify({ token: unknownKey }), expect: 404,
});
await exercise("delete, no token", { method: "DELETE", path: tokens, query: q, headers: json, body: "{}", expect: 400 });
await exercise("delete, text body", {
  method: "DELETE", path: tokens, query: q, headers: { "Content-Type": "text/plain" }, body: "x", expect: 415,
});
await exercise("delete, missing key", { method: "DELETE", path: tokens, headers: json, body: "{}", expect: 401 });
await exercise("delete", { method: "DELETE", path: tokens, query: q, headers: json, body: JSON.stringify({ token: newKey }), expect: 200 });
await exercise("list with the deleted key", { method: "GET", path: tokens, query: `?token=${newKey}`, expect: 401 });

const echoed = await exercise("list with a request id", {
  method: "GET", path: tokens, query: q, headers: { "X-Request-Id": "docs.check-1" }, expect: 200,
});
check("a sane X-Request-Id comes back as it was sent", echoed.headers?.["x-request-id"] === "docs.check-1");

for (const path of ["/healthz", "/readyz", "/metrics"]) {
  await exercise("admin", { method: "GET", path, expect: 200 });
}

// Failing writes: creates and deletes answer 503 and the store reports not ready.
writeFileSync(faultFile, "fail");
await exercise("create, store failing", {
  method: "POST", path: tokens, query: q, headers: json, body: '{"type":"admin","description":"x"}', expect: 503,
});
await exercise("delete, store failing", {
  method: "DELETE", path: tokens, query: q, headers: json, body: JSON.stringify({ token: unknownKey }), expect: 503,
});
await exercise("readiness, store failing", { method: "GET", path: "/readyz", expect: 503 });
writeFileSync(faultFile, "");

// Refusals while reading, on every documented operation.
for (const [path, item] of Object.entries(doc.paths)) {
  for (const method of Object.keys(item).filter((m) => ["get", "post", "put", "delete", "patch"].includes(m))) {
    const M = method.toUpperCase();
    await exercise("body too large", { method: M, path, headers: json, body: "x".repeat(20_000), expect: 413 });
    await exercise("headers too large", { method: M, path, headers: { "X-Padding": "y".repeat(9000) }, expect: 431 });
    await exercise("malformed HTTP", {
      method: M, path, raw: `${M} ${path} HTTP/1.1\r\nHost: tokend\r\nContent-Length: 1x\r\n\r\n`, expect: 400,
    });
  }
}

// What the document describes in prose: other paths and other methods, on both listeners.
await exercise("unknown path", { method: "GET", path: "/api/v2/nothing", listener: "api", expect: 404 });
await exercise("unknown path", { method: "GET", path: "/metrics", listener: "api", expect: 404 });
await exercise("unknown path", { method: "GET", path: "/nothing", listener: "admin", expect: 404 });
const notAllowed = await exercise("other method", { method: "PUT", path: tokens, query: q, headers: json, body: "{}", expect: 405 });
check("405 on the API lists its methods", notAllowed.headers?.allow === "GET, POST, DELETE");
const adminNotAllowed = await exercise("other method", { method: "POST", path: "/healthz", expect: 405 });
check("405 on the admin listener allows GET", adminNotAllowed.headers?.allow === "GET");

// Everything documented was exercised, but for what no client can provoke.
for (const [path, item] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(item)) {
    if (!op?.responses) continue;
    for (const status of Object.keys(op.responses)) {
      const id = `${method.toUpperCase()} ${path} ${status}`;
      if (unreachable.has(`* ${status}`) || unreachable.has(id)) continue;
      check(`documented and exercised: ${id}`, exercised.has(id));
    }
  }
}

child.kill("SIGTERM");
const status = await Promise.race([exited, sleep(15_000).then(() => null)]);
check("tokend stops on SIGTERM with exit code 0", status?.code === 0, JSON.stringify(status));
check("no key reaches the output", !(out + err).includes(key) && (newKey === "" || !(out + err).includes(newKey)));

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
