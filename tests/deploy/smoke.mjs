// Smoke test of the Kubernetes container spec against the real binary: starts `tokend` with exactly
// the container's command, args, env and ports from deploy/k8s (over the image's ENV and WORKDIR
// from deploy/Dockerfile), with a temporary directory in place of each volume mount and a fresh
// `tokend keygen` key in place of the Secret. Then it asks every path the probes and the scrape
// annotations name (each must answer 200), uses the API with the bootstrap key through the
// Service's target port, stops the process with the image's STOPSIGNAL and expects exit 0 within
// the drain deadline, and checks that the key never reached the output.
//
// Usage: node smoke.mjs TOKEND_BINARY
//   With TOKEND_SMOKE_NETNS=1 (run.sh sets it inside a private network namespace) the manifest's
//   ports are used as they are; otherwise every listen port becomes 0 and the ports the process
//   logs are mapped back to the manifest's, so nothing on the machine can collide with it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { failures, finish, record as check } from "../support/node/checks.mjs";
import { failAt, sleep, startTokend } from "../support/node/tokend.mjs";
import { dockerRuntime, durationSeconds, findOne, listenPort, loadBase, quantity, resolvePort } from "./manifests.mjs";

const binary = process.argv[2];
if (!binary) {
  console.error("usage: node smoke.mjs TOKEND_BINARY");
  process.exit(2);
}
const fixedPorts = process.env.TOKEND_SMOKE_NETNS === "1";
const overallDeadline = Date.now() + 90_000;

const objects = loadBase();
const sts = findOne(objects, "StatefulSet");
const service = findOne(objects, "Service");
const pod = sts.spec.template.spec;
const container = pod.containers.find((c) => c.name === "tokend") ?? pod.containers[0];
const image = dockerRuntime();

// ---------------------------------------------------------------------------------------------
// The command line and environment of the container, made runnable here.

const root = mkdtempSync(join(tmpdir(), "tokend-k8s-smoke-"));
const mounts = (container.volumeMounts ?? []).map((m) => ({ path: m.mountPath, local: join(root, m.name) }));
for (const m of mounts) execFileSync("mkdir", ["-p", m.local]);
// A path inside a volume mount becomes the same path in its temporary directory.
const localize = (value) => {
  for (const m of mounts) {
    if (value === m.path) return m.local;
    if (value.startsWith(m.path + "/")) return m.local + value.slice(m.path.length);
  }
  return value;
};

const key = execFileSync(binary, ["keygen"], { encoding: "utf8", timeout: 10_000 }).trim();
const secrets = { "tokend-bootstrap/token": key };

function resolveEnv(e) {
  if (e.value !== undefined) return String(e.value);
  const from = e.valueFrom ?? {};
  if (from.secretKeyRef) {
    const id = `${from.secretKeyRef.name}/${from.secretKeyRef.key}`;
    if (!(id in secrets)) throw new Error(`env ${e.name}: the smoke test knows no Secret ${id}`);
    return secrets[id];
  }
  if (from.resourceFieldRef) {
    const { resource, divisor = "1" } = from.resourceFieldRef;
    const [kind, what] = resource.split(".");
    const amount = container.resources?.[kind]?.[what];
    if (amount === undefined) throw new Error(`env ${e.name}: ${resource} is not set`);
    // As the kubelet does: rounded up to a whole number of divisors.
    return String(Math.ceil(quantity(amount) / quantity(divisor)));
  }
  if (from.fieldRef) {
    const fields = { "metadata.name": `${sts.metadata.name}-0`, "metadata.namespace": "default", "status.podIP": "127.0.0.1" };
    if (!(from.fieldRef.fieldPath in fields)) throw new Error(`env ${e.name}: unsupported ${from.fieldRef.fieldPath}`);
    return fields[from.fieldRef.fieldPath];
  }
  throw new Error(`env ${e.name}: unsupported valueFrom ${JSON.stringify(from)}`);
}

// Image ENV first, then the container's env (which wins), as the container runtime builds it.
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
for (const [name, value] of Object.entries(image.env)) env[name] = localize(value);
for (const e of container.env ?? []) env[e.name] = localize(resolveEnv(e));

const command = container.command ?? image.entrypoint;
if (basename(command[0]) !== "tokend") throw new Error(`the container runs ${command[0]}, not tokend`);
const argv = [...command.slice(1), ...(container.args ?? [])].map(localize);

// The ports tokend binds, from its configuration, by container port.
const apiPort = listenPort(env.TOKEND_LISTEN ?? "0.0.0.0:8080");
const adminPort = listenPort(env.TOKEND_ADMIN_LISTEN ?? "0.0.0.0:9090");
if (!fixedPorts) {
  env.TOKEND_LISTEN = env.TOKEND_LISTEN.replace(/:\d+$/, ":0");
  env.TOKEND_ADMIN_LISTEN = env.TOKEND_ADMIN_LISTEN.replace(/:\d+$/, ":0");
}
const cwd = localize(container.workingDir ?? image.workdir);

console.log(`running ${binary} ${argv.join(" ")} in ${cwd}${fixedPorts ? " (private network namespace)" : ""}`);
console.log(`env: ${Object.keys(env).filter((k) => k.startsWith("TOKEND_")).join(" ")}`);

// ---------------------------------------------------------------------------------------------

const tokend = startTokend(binary, argv, { env, cwd });
process.on("exit", () => rmSync(root, { recursive: true, force: true }));
failAt(overallDeadline, "the smoke test ran out of time (90s)");

function get(port, path, headers = {}, method = "GET", body = undefined) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path, method, headers, timeout: 3000, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve({ status: 0, error: e.message, body: "" }));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// The ports tokend actually listens on: its "tokend listening" log line.
const bound = await tokend.listening(Math.min(overallDeadline, Date.now() + 30_000));
check("tokend starts with the container's command, args and env", bound !== null,
  `exit ${JSON.stringify(tokend.exit)}; stderr: ${tokend.err}`);
if (bound === null) {
  console.log(`0 passed, ${failures()} failed`);
  process.exit(1);
}
if (fixedPorts) {
  check("it listens on the manifest's ports", bound.api === apiPort && bound.admin === adminPort, JSON.stringify(bound));
}
// containerPort -> the port to use here.
const portMap = new Map([
  [apiPort, bound.api],
  [adminPort, bound.admin],
]);
const local = (containerPort) => {
  if (!portMap.has(containerPort)) throw new Error(`container port ${containerPort} is not one tokend listens on`);
  return portMap.get(containerPort);
};

// Probes: poll as the kubelet would (within the probe's own failure budget, capped), expect 200.
for (const name of ["startupProbe", "readinessProbe", "livenessProbe"]) {
  const probe = container[name];
  if (!probe) {
    check(`${name} is defined`, false);
    continue;
  }
  const g = probe.httpGet;
  const port = local(resolvePort(container, g.port));
  const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
  const budget = Math.min(30_000, 1000 * (probe.periodSeconds ?? 10) * (probe.failureThreshold ?? 3));
  const until = Date.now() + budget;
  let r;
  do {
    r = await get(port, g.path, headers);
    if (r.status === 200) break;
    await sleep(50);
  } while (Date.now() < until);
  check(`${name}: GET ${g.path} on container port ${resolvePort(container, g.port)} answers 200`, r.status === 200, JSON.stringify(r));
}

// The scrape annotations.
const annotations = sts.spec.template.metadata.annotations ?? {};
if (annotations["prometheus.io/scrape"] === "true") {
  const port = local(Number.parseInt(annotations["prometheus.io/port"], 10));
  const r = await get(port, annotations["prometheus.io/path"] ?? "/metrics");
  check(`scrape: GET ${annotations["prometheus.io/path"]} on ${annotations["prometheus.io/port"]} answers 200`, r.status === 200);
  check("the metrics say ready", /^tokend_ready 1$/m.test(r.body));
}

// The API, through the port the Service targets, with the key from the Secret.
const target = service.spec.ports[0];
const api = local(resolvePort(container, target.targetPort ?? target.port));
const json = { "Content-Type": "application/json" };
const created = await get(
  api,
  "/api/v2/tokens",
  { ...json, Authorization: `Bearer ${key}`, "X-Request-Id": "smoke-1" },
  "POST",
  JSON.stringify({ type: "admin", description: "k8s smoke test" }),
);
check("POST /api/v2/tokens with the bootstrap key (Bearer) answers 200", created.status === 200, JSON.stringify(created));
check("the response echoes X-Request-Id", created.headers?.["x-request-id"] === "smoke-1");
let newKey = "";
try {
  newKey = JSON.parse(created.body).token.token;
} catch {
  // reported above
}
const listed = await get(api, `/api/v2/tokens?token=${key}`);
check("GET /api/v2/tokens?token=<bootstrap key> answers 200", listed.status === 200, JSON.stringify(listed));
let descriptions = [];
try {
  descriptions = JSON.parse(listed.body).tokens.map((t) => t.description);
} catch {
  // reported above
}
check("the list holds the bootstrap key and the new one", descriptions.includes("bootstrap") && descriptions.includes("k8s smoke test"), JSON.stringify(descriptions));
const refused = await get(api, "/api/v2/tokens");
check("no key: 401", refused.status === 401);
const adminOnApi = await get(api, "/metrics");
check("the API port does not serve /metrics", adminOnApi.status === 404);

// Stop as Kubernetes does (the image's STOPSIGNAL), within the drain deadline.
const drain = durationSeconds(env.TOKEND_DRAIN_TIMEOUT ?? "10s");
const signal = image.stopsignal ?? "SIGTERM";
const stoppedAt = Date.now();
tokend.child.kill(signal);
const status = await Promise.race([tokend.exited, sleep((drain + 5) * 1000).then(() => null)]);
check(`${signal} stops it with exit code 0 within the drain deadline (${drain}s)`, status?.code === 0, JSON.stringify(status));
check(
  "the stop fits in terminationGracePeriodSeconds",
  (Date.now() - stoppedAt) / 1000 < (pod.terminationGracePeriodSeconds ?? 30),
);

// Logs: JSON lines, and no key anywhere.
const lines = tokend.out.split("\n").filter((l) => l.length > 0);
const notJson = lines.filter((l) => {
  try {
    return typeof JSON.parse(l) !== "object";
  } catch {
    return true;
  }
});
check("every stdout line is a JSON object", lines.length > 0 && notJson.length === 0, notJson.slice(0, 3).join("\n     "));
check("stderr is empty", tokend.err === "", tokend.err);
const output = tokend.out + tokend.err;
check("no key reaches the output", !output.includes(key) && (newKey === "" || !output.includes(newKey)));

finish();
