// Offline checks of the load-test Job deploy/k8s/bench:
//   1. every object validates against the Kubernetes schemas, unknown fields refused (schema.mjs),
//      and the validator refuses a broken copy;
//   2. it stays apart: the base deploy/k8s does not include it, so applying the service never
//      starts a load test;
//   3. bounded: one attempt, a deadline longer than warmup + duration, a TTL, --duration given;
//   4. it loads the base's Service (name and port) with the key of the Secret tokend-bootstrap,
//      mounted as a file (never a literal, an argument or an environment variable), and prints JSON;
//   5. every flag is one tokend-bench knows (its --help text in bench/cli.cpp), and the image has
//      tokend-bench where the command says (deploy/Dockerfile's runtime stage);
//   6. resources set, restrictive security context, the image's uid;
//   7. where kubectl is installed, `kubectl kustomize` renders the same objects.
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import {
  dockerRuntime,
  dockerfilePath,
  envValue,
  findOne,
  k8sDir,
  loadBase,
  quantity,
  repoRoot,
} from "./manifests.mjs";
import { check, expect, finish } from "../support/node/checks.mjs";
import { checkRendering, checkSchemas, expectLockedDown } from "./k8s_checks.mjs";
import { modelFor, refuses, unknownFields } from "./schema.mjs";

const benchDir = join(k8sDir, "bench");
const objects = loadBase(benchDir);
console.log(`deploy/k8s/bench: ${objects.map((o) => `${o.object.kind}/${o.object.metadata?.name}`).join(", ")}`);
await checkSchemas(objects);

const job = findOne(objects, "Job");
const pod = job.spec.template.spec;
const container = pod.containers.find((c) => c.name === "tokend-bench") ?? pod.containers[0];
const base = loadBase();

// --flag=value arguments as a map (tokend-bench also takes "--flag value"; the Job uses one form).
function flags(args) {
  const out = new Map();
  for (const arg of args ?? []) {
    const m = String(arg).match(/^--([a-z-]+)(?:=(.*))?$/);
    expect(m, `argument '${arg}' is not --flag or --flag=value`);
    expect(!out.has(m[1]), `--${m[1]} given twice`);
    out.set(m[1], m[2] ?? true);
  }
  return out;
}
const args = flags(container.args);

// Seconds of a tokend-bench duration: 10s, 500ms, 2m, 1h or a bare number of seconds.
function benchSeconds(text) {
  const m = String(text).match(/^([0-9.]+)(ms|s|m|h)?$/);
  if (!m) throw new Error(`not a tokend-bench duration: ${text}`);
  return Number.parseFloat(m[1]) * { ms: 1e-3, s: 1, m: 60, h: 3600 }[m[2] ?? "s"];
}

await check("the validator refuses a wrong field type and a misspelt field in the Job", async () => {
  for (const [what, mutate] of [
    ["backoffLimit as a string", (j) => (j.spec.backoffLimit = "0")],
    ["args as a string", (j) => (j.spec.template.spec.containers[0].args = "--json")],
    ["activeDeadlineSeconds as a string", (j) => (j.spec.activeDeadlineSeconds = "300")],
  ]) {
    const broken = structuredClone(job);
    mutate(broken);
    expect(await refuses(broken), `a Job with ${what} passed validation`);
  }
  const typo = structuredClone(job);
  typo.spec.ttlSecondAfterFinished = typo.spec.ttlSecondsAfterFinished;
  delete typo.spec.ttlSecondsAfterFinished;
  const unknown = unknownFields(await modelFor(typo), typo);
  expect(isDeepStrictEqual(unknown, ["/spec/ttlSecondAfterFinished"]), `misspelt field not reported: ${unknown}`);
});

await check("apart from the base: `kubectl apply -k deploy/k8s` starts no load test", () => {
  expect(!base.some((o) => o.object.kind === "Job"), "the base holds a Job");
  const text = readFileSync(join(k8sDir, "kustomization.yaml"), "utf8");
  expect(!/^\s*-\s*\.?\/?bench\b/m.test(text), "the base kustomization lists bench/");
});

await check("bounded: one attempt, a deadline past warmup + duration, a TTL, never restarted", () => {
  expect(job.spec.backoffLimit === 0, `backoffLimit must be 0, found ${job.spec.backoffLimit}`);
  expect(pod.restartPolicy === "Never", "restartPolicy must be Never");
  expect(args.has("duration"), "--duration must bound the run");
  const run = benchSeconds(args.get("duration")) + (args.has("warmup") ? benchSeconds(args.get("warmup")) : 0);
  const deadline = job.spec.activeDeadlineSeconds;
  expect(Number.isInteger(deadline), "activeDeadlineSeconds must be set");
  expect(deadline > run + 30, `activeDeadlineSeconds ${deadline} leaves no room past the ${run}s run`);
  expect(deadline <= 3600, `activeDeadlineSeconds ${deadline}: a load test of more than an hour?`);
  const ttl = job.spec.ttlSecondsAfterFinished;
  expect(Number.isInteger(ttl) && ttl > 0, "ttlSecondsAfterFinished must be set");
});

await check("it loads the base's Service on its port and prints the JSON report", () => {
  const service = findOne(base, "Service");
  const url = new URL(args.get("url"));
  expect(url.protocol === "http:", `--url must be http, found ${url.protocol}`);
  expect(url.hostname === service.metadata.name, `--url host ${url.hostname} is not the Service ${service.metadata.name}`);
  const port = Number.parseInt(url.port || "80", 10);
  expect(service.spec.ports.some((p) => p.port === port), `--url port ${port} is not a port of the Service`);
  expect(args.get("json") === true, "--json: the report must be one JSON object in the log");
});

await check("the key comes from the Secret tokend-bootstrap as a file, and is written nowhere", () => {
  expect(!args.has("token") && !args.has("create-token"), "no key in the arguments (visible in the pod spec)");
  expect((container.env ?? []).length === 0 && !container.envFrom, "no key in the environment");
  const sts = findOne(base, "StatefulSet");
  const stsContainer = sts.spec.template.spec.containers[0];
  const ref = envValue(stsContainer, "TOKEND_BOOTSTRAP_TOKEN").valueFrom.secretKeyRef;
  const file = String(args.get("token-file"));
  const mount = (container.volumeMounts ?? []).find((m) => file.startsWith(m.mountPath + "/"));
  expect(mount, `--token-file ${file} is on no volume mount`);
  expect(mount.readOnly === true, "the key's mount must be read-only");
  const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
  expect(volume?.secret?.secretName === ref.name, `the volume must be the Secret ${ref.name}`);
  const item = (volume.secret.items ?? []).find((i) => i.key === ref.key);
  expect(item && `${mount.mountPath}/${item.path}` === file, `--token-file must be the Secret's '${ref.key}'`);
  expect((volume.secret.defaultMode & 0o007) === 0, "the key file must not be readable by others");
  expect(!/[0-9a-f]{64}/.test(JSON.stringify(objects)), "something key-shaped (64 hex characters) is written");
  expect(!objects.some((o) => o.object.kind === "Secret"), "the Job's directory must not carry a Secret");
});

await check("every flag is one tokend-bench knows, and the image has tokend-bench at the command's path", () => {
  const cli = readFileSync(join(repoRoot, "bench/cli.cpp"), "utf8");
  for (const name of args.keys()) expect(cli.includes(`\n  --${name} `), `tokend-bench has no --${name}`);
  expect(container.command?.length === 1, "command: the tokend-bench binary alone, flags in args");
  const runtime = readFileSync(dockerfilePath, "utf8").split(/^FROM /m).pop();
  const copied = [...runtime.matchAll(/^COPY\s+--from=\S+\s+\S+\s+(\S+)\s*$/gm)].map((m) => m[1]);
  expect(copied.includes(container.command[0]), `the runtime stage copies ${copied}, not ${container.command[0]}`);
  const sts = findOne(base, "StatefulSet");
  expect(container.image === sts.spec.template.spec.containers[0].image, "the same image as the StatefulSet");
});

await check("resources: requests and limits for cpu and memory; no more threads than CPUs", () => {
  const r = container.resources ?? {};
  for (const kind of ["requests", "limits"]) {
    for (const what of ["cpu", "memory"]) expect(r[kind]?.[what] !== undefined, `resources.${kind}.${what} missing`);
  }
  expect(quantity(r.requests.cpu) <= quantity(r.limits.cpu), "cpu request above its limit");
  expect(quantity(r.requests.memory) <= quantity(r.limits.memory), "memory request above its limit");
  const threads = Number.parseInt(args.get("threads") ?? "2", 10);
  expect(threads <= Math.ceil(quantity(r.limits.cpu)), `--threads ${threads} above the cpu limit`);
});

await check("restrictive security context, the image's uid", () => {
  const podSc = pod.securityContext ?? {};
  const sc = container.securityContext ?? {};
  expect((sc.runAsNonRoot ?? podSc.runAsNonRoot) === true, "runAsNonRoot must be true");
  const uid = sc.runAsUser ?? podSc.runAsUser;
  expect(uid !== 0, "must not run as uid 0");
  const image = Number.parseInt(String(dockerRuntime().user).split(":")[0], 10);
  expect(uid === undefined || uid === image, `runAsUser ${uid} != Dockerfile USER ${image}`);
  expectLockedDown(pod, container, "tokend-bench");
});

await checkRendering(benchDir, objects);

finish();
