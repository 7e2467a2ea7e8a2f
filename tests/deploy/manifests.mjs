// Shared by the deploy tests: the kustomize base of deploy/k8s as a list of objects, the
// Dockerfile's runtime stage, and small helpers (Kubernetes quantities, durations).
import { execFileSync } from "node:child_process";
import { readFileSync, existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const k8sDir = join(repoRoot, "deploy/k8s");
export const dockerfilePath = join(repoRoot, "deploy/Dockerfile");

// Every YAML document of a file; a syntax error, a warning or a duplicate key is fatal.
export function parseYamlFile(path) {
  const docs = parseAllDocuments(readFileSync(path, "utf8"), { uniqueKeys: true, prettyErrors: true });
  const out = [];
  for (const doc of docs) {
    const problems = [...doc.errors, ...doc.warnings];
    if (problems.length > 0) throw new Error(`${path}: ${problems.map((p) => p.message).join("; ")}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

// The base as kustomize builds it. The base uses only `resources` (plain files); anything else in
// kustomization.yaml is refused here, so this renderer cannot silently diverge from kustomize.
export function loadBase(dir = k8sDir) {
  const [kustomization, ...more] = parseYamlFile(join(dir, "kustomization.yaml"));
  if (!kustomization || more.length > 0) throw new Error("kustomization.yaml must hold exactly one document");
  const supported = new Set(["apiVersion", "kind", "resources"]);
  for (const key of Object.keys(kustomization)) {
    if (!supported.has(key)) {
      throw new Error(`kustomization.yaml uses '${key}', which tests/deploy/manifests.mjs does not render`);
    }
  }
  if (kustomization.kind !== "Kustomization") throw new Error("kustomization.yaml: kind must be Kustomization");
  const objects = [];
  for (const resource of kustomization.resources ?? []) {
    const path = join(dir, resource);
    if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`resource ${resource} is not a file in ${dir}`);
    for (const object of parseYamlFile(path)) objects.push({ file: resource, object });
  }
  return objects;
}

// `kubectl kustomize DIR` when kubectl is installed (null otherwise): the real renderer.
export function kubectlKustomize(dir = k8sDir) {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore", timeout: 20000 });
  } catch {
    return null;
  }
  const text = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60000 });
  return parseAllDocuments(text).map((d) => d.toJS()).filter((v) => v !== null);
}

export function findOne(objects, kind) {
  const found = objects.filter((o) => o.object.kind === kind);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind}, found ${found.length}`);
  return found[0].object;
}

// The final stage of the Dockerfile: ENV (as an object), ENTRYPOINT, USER, EXPOSE, STOPSIGNAL, WORKDIR.
export function dockerRuntime(path = dockerfilePath) {
  const lines = [];
  let buffer = "";
  for (const raw of readFileSync(path, "utf8").split("\n")) {
    if (/^\s*#/.test(raw)) continue;
    if (/\\\s*$/.test(raw)) {
      buffer += raw.replace(/\\\s*$/, " ");
      continue;
    }
    buffer += raw;
    if (buffer.trim()) lines.push(buffer.trim());
    buffer = "";
  }
  let stage = null;
  for (const line of lines) {
    const [, op, rest] = line.match(/^(\S+)\s*(.*)$/);
    const instruction = op.toUpperCase();
    if (instruction === "FROM") {
      stage = { from: rest, env: {}, entrypoint: null, user: null, expose: [], stopsignal: null, workdir: "/" };
      continue;
    }
    if (!stage) continue;
    switch (instruction) {
      case "ENV":
        for (const m of rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) stage.env[m[1]] = m[3] ?? m[2];
        break;
      case "ENTRYPOINT":
        stage.entrypoint = JSON.parse(rest);
        break;
      case "USER":
        stage.user = rest;
        break;
      case "EXPOSE":
        stage.expose.push(...rest.split(/\s+/).map((p) => Number.parseInt(p, 10)));
        break;
      case "STOPSIGNAL":
        stage.stopsignal = rest;
        break;
      case "WORKDIR":
        stage.workdir = rest;
        break;
      default:
        break;
    }
  }
  if (!stage) throw new Error(`${path}: no FROM`);
  return stage;
}

// A Kubernetes quantity ("500m", "2", "1Gi") as a number.
export function quantity(text) {
  const m = String(text).match(/^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/);
  if (!m) throw new Error(`not a quantity: ${text}`);
  const scale = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Number.parseFloat(m[1]) * (m[2] ? scale[m[2]] : 1);
}

// A tokend duration ("20s", "500ms", "10") in seconds.
export function durationSeconds(text) {
  const m = String(text).match(/^([0-9]+)(ms|s)?$/);
  if (!m) throw new Error(`not a tokend duration: ${text}`);
  return Number.parseInt(m[1], 10) / (m[2] === "ms" ? 1000 : 1);
}

// The port of "HOST:PORT" or "[v6]:PORT".
export function listenPort(text) {
  const m = String(text).match(/:(\d+)$/);
  if (!m) throw new Error(`not HOST:PORT: ${text}`);
  return Number.parseInt(m[1], 10);
}

// The containerPort a probe or Service names (by number or by port name).
export function resolvePort(container, port) {
  if (typeof port === "number") return port;
  const named = (container.ports ?? []).find((p) => p.name === port);
  if (!named) throw new Error(`no container port named '${port}'`);
  return named.containerPort;
}

export function envValue(container, name) {
  return (container.env ?? []).find((e) => e.name === name);
}
