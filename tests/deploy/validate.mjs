// Offline checks of the kustomize base deploy/k8s:
//   1. every object validates against the Kubernetes OpenAPI schemas (npm kubernetes-models), with
//      unknown fields refused as the API server's strict field validation would;
//   2. the validator has teeth: a wrong field type and a misspelt field must fail;
//   3. the deployment rules of docs/OPERATIONS.md hold (one replica with a volume claim, admin port off the
//      Service, probes, grace period longer than the drain, security context, Secret-sourced
//      bootstrap key, scrape annotations, PDB), and the manifest agrees with deploy/Dockerfile;
//   4. where kubectl is installed, `kubectl kustomize` renders the same objects as this test reads.
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { isDeepStrictEqual } from "node:util";
import {
  dockerRuntime,
  durationSeconds,
  envValue,
  findOne,
  k8sDir,
  listenPort,
  loadBase,
  quantity,
  resolvePort,
} from "./manifests.mjs";
import { check, expect, finish } from "../support/node/checks.mjs";
import { checkRendering, checkSchemas, expectLockedDown } from "./k8s_checks.mjs";
import { modelFor, refuses, unknownFields } from "./schema.mjs";

// ---------------------------------------------------------------------------------------------

const objects = loadBase();
console.log(`deploy/k8s: ${objects.map((o) => `${o.object.kind}/${o.object.metadata?.name} (${o.file})`).join(", ")}`);

await checkSchemas(objects);

const sts = findOne(objects, "StatefulSet");
const pod = sts.spec.template.spec;
const container = pod.containers.find((c) => c.name === "tokend") ?? pod.containers[0];

await check("the validator refuses a wrong field type and a misspelt field", async () => {
  const cases = [
    ["replicas as a string", (s) => (s.spec.replicas = "1")],
    ["containerPort as a string", (s) => (s.spec.template.spec.containers[0].ports[0].containerPort = "8080")],
    ["env as a map", (s) => (s.spec.template.spec.containers[0].env = { TOKEND_DATA_DIR: "/data" })],
    ["runAsNonRoot as a string", (s) => (s.spec.template.spec.securityContext.runAsNonRoot = "true")],
    ["probe port as a list", (s) => (s.spec.template.spec.containers[0].livenessProbe.httpGet.port = [8080])],
  ];
  for (const [what, mutate] of cases) {
    const broken = structuredClone(sts);
    mutate(broken);
    expect(await refuses(broken), `a StatefulSet with ${what} passed validation`);
  }
  const typo = structuredClone(sts);
  const c = typo.spec.template.spec.containers[0];
  c.readinesProbe = c.readinessProbe;
  delete c.readinessProbe;
  const Model = await modelFor(typo);
  const unknown = unknownFields(Model, typo);
  expect(
    isDeepStrictEqual(unknown, ["/spec/template/spec/containers/0/readinesProbe"]),
    `a misspelt readinessProbe was not reported (got ${JSON.stringify(unknown)})`,
  );
});

await check("one replica, one writer per volume: a ReadWriteOnce claim template mounted at the data dir", () => {
  expect(sts.spec.replicas === 1, `replicas must be 1 until the shared store exists, found ${sts.spec.replicas}`);
  const claims = sts.spec.volumeClaimTemplates ?? [];
  expect(claims.length === 1, "exactly one volumeClaimTemplate");
  const claim = claims[0];
  const modes = claim.spec.accessModes ?? [];
  expect(
    modes.length > 0 && modes.every((m) => m === "ReadWriteOnce" || m === "ReadWriteOncePod"),
    `access modes must be single-writer, found ${modes}`,
  );
  expect(quantity(claim.spec.resources.requests.storage) > 0, "the claim requests storage");
  const mount = (container.volumeMounts ?? []).find((m) => m.name === claim.metadata.name);
  expect(mount, `the claim '${claim.metadata.name}' is not mounted`);
  const dataDir = envValue(container, "TOKEND_DATA_DIR");
  expect(dataDir?.value, "TOKEND_DATA_DIR must be set explicitly");
  expect(
    dataDir.value === mount.mountPath || dataDir.value.startsWith(mount.mountPath + "/"),
    `TOKEND_DATA_DIR (${dataDir.value}) must live on the claim (mounted at ${mount.mountPath})`,
  );
});

await check("selectors match the pod labels; serviceName names the Service", () => {
  const labels = sts.spec.template.metadata.labels ?? {};
  const matches = (selector) => Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
  expect(matches(sts.spec.selector.matchLabels), "the StatefulSet selector does not match its pod labels");
  for (const { object } of objects.filter((o) => o.object.kind === "Service")) {
    expect(Object.keys(object.spec.selector ?? {}).length > 0, `Service ${object.metadata.name} has no selector`);
    expect(matches(object.spec.selector), `Service ${object.metadata.name} does not select the pods`);
  }
  const pdb = findOne(objects, "PodDisruptionBudget");
  expect(matches(pdb.spec.selector.matchLabels), "the PodDisruptionBudget does not select the pods");
  expect(
    objects.some((o) => o.object.kind === "Service" && o.object.metadata.name === sts.spec.serviceName),
    `serviceName '${sts.spec.serviceName}' names no Service of the base`,
  );
});

await check("the Service exposes the API port only, never the admin port", () => {
  const apiPort = listenPort(envValue(container, "TOKEND_LISTEN").value);
  const adminPort = listenPort(envValue(container, "TOKEND_ADMIN_LISTEN").value);
  expect(apiPort === 8080 && adminPort === 9090, `API on 8080 and admin on 9090 expected (${apiPort}, ${adminPort})`);
  for (const { object } of objects.filter((o) => o.object.kind === "Service")) {
    const targets = object.spec.ports.map((p) => resolvePort(container, p.targetPort ?? p.port));
    expect(
      isDeepStrictEqual(targets, [apiPort]),
      `Service ${object.metadata.name} targets ${targets}; only ${apiPort} belongs there`,
    );
  }
  const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
  expect(ports.http === apiPort, `container port 'http' must be ${apiPort} (TOKEND_LISTEN)`);
  expect(ports.admin === adminPort, `container port 'admin' must be ${adminPort} (TOKEND_ADMIN_LISTEN)`);
});

await check("startup and liveness probe /healthz, readiness probes /readyz, all on the admin port", () => {
  const adminPort = listenPort(envValue(container, "TOKEND_ADMIN_LISTEN").value);
  const want = { startupProbe: "/healthz", livenessProbe: "/healthz", readinessProbe: "/readyz" };
  for (const [probe, path] of Object.entries(want)) {
    const p = container[probe];
    expect(p?.httpGet, `${probe} must be an httpGet probe`);
    expect(p.httpGet.path === path, `${probe} must ask ${path}, asks ${p.httpGet.path}`);
    expect(resolvePort(container, p.httpGet.port) === adminPort, `${probe} must use the admin port`);
  }
});

await check("terminationGracePeriodSeconds outlasts preStop + TOKEND_DRAIN_TIMEOUT", () => {
  const drain = envValue(container, "TOKEND_DRAIN_TIMEOUT");
  expect(drain?.value, "TOKEND_DRAIN_TIMEOUT must be set explicitly");
  const cmd = container.lifecycle?.preStop?.exec?.command ?? [];
  const preStop =
    container.lifecycle?.preStop?.sleep?.seconds ?? (cmd.length === 2 && /sleep$/.test(cmd[0]) ? Number(cmd[1]) : 0);
  const grace = pod.terminationGracePeriodSeconds;
  expect(Number.isInteger(grace), "terminationGracePeriodSeconds must be set");
  expect(
    grace > preStop + durationSeconds(drain.value),
    `grace ${grace}s must exceed preStop ${preStop}s + drain ${drain.value}`,
  );
});

await check("resources: requests and limits for cpu and memory", () => {
  const r = container.resources ?? {};
  for (const kind of ["requests", "limits"]) {
    for (const what of ["cpu", "memory"]) expect(r[kind]?.[what] !== undefined, `resources.${kind}.${what} missing`);
  }
  expect(quantity(r.requests.cpu) <= quantity(r.limits.cpu), "cpu request above its limit");
  expect(quantity(r.requests.memory) <= quantity(r.limits.memory), "memory request above its limit");
});

await check("restrictive security context", () => {
  const podSc = pod.securityContext ?? {};
  const sc = container.securityContext ?? {};
  expect((sc.runAsNonRoot ?? podSc.runAsNonRoot) === true, "runAsNonRoot must be true");
  expect((sc.runAsUser ?? podSc.runAsUser ?? 1) !== 0, "must not run as uid 0");
  expectLockedDown(pod, container, "tokend");
});

await check("the bootstrap key comes from the Secret tokend-bootstrap, and no key is written down", () => {
  const env = envValue(container, "TOKEND_BOOTSTRAP_TOKEN");
  expect(env, "TOKEND_BOOTSTRAP_TOKEN is not set");
  expect(env.value === undefined, "TOKEND_BOOTSTRAP_TOKEN must not be a literal value");
  const ref = env.valueFrom?.secretKeyRef;
  expect(ref?.name === "tokend-bootstrap" && ref?.key === "token", "secretKeyRef tokend-bootstrap/token expected");
  const text = JSON.stringify(objects);
  expect(!/[0-9a-f]{64}/.test(text), "something key-shaped (64 hex characters) is written in the manifests");
  expect(!objects.some((o) => o.object.kind === "Secret"), "the base must not carry a Secret");
});

await check("Prometheus scrape annotations name the admin port and /metrics", () => {
  const a = sts.spec.template.metadata.annotations ?? {};
  const adminPort = listenPort(envValue(container, "TOKEND_ADMIN_LISTEN").value);
  expect(a["prometheus.io/scrape"] === "true", "prometheus.io/scrape must be \"true\"");
  expect(a["prometheus.io/port"] === String(adminPort), `prometheus.io/port must be "${adminPort}"`);
  expect(a["prometheus.io/path"] === "/metrics", "prometheus.io/path must be /metrics");
});

await check("a PodDisruptionBudget covers the pods and lets a drain proceed", () => {
  const pdb = findOne(objects, "PodDisruptionBudget");
  const { maxUnavailable, minAvailable } = pdb.spec;
  expect((maxUnavailable === undefined) !== (minAvailable === undefined), "exactly one of maxUnavailable, minAvailable");
  // With one replica, a budget that allows no disruption blocks every node drain (docs/OPERATIONS.md).
  const allowed = maxUnavailable !== undefined ? maxUnavailable : sts.spec.replicas - minAvailable;
  expect(Number.isInteger(allowed) && allowed >= 1, `the budget allows ${allowed} disruptions for ${sts.spec.replicas} replica(s)`);
});

await check("the manifest agrees with deploy/Dockerfile (entrypoint, user, ports, env)", () => {
  const image = dockerRuntime();
  expect(isDeepStrictEqual(container.command, image.entrypoint), `command ${container.command} != ENTRYPOINT ${image.entrypoint}`);
  expect((container.args ?? []).length === 0, "args would change what the image runs; use TOKEND_* env");
  const uid = Number.parseInt(String(image.user).split(":")[0], 10);
  const runAs = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
  expect(runAs === undefined || runAs === uid, `runAsUser ${runAs} != Dockerfile USER ${image.user}`);
  const ports = container.ports.map((p) => p.containerPort).sort();
  expect(isDeepStrictEqual(ports, [...image.expose].sort()), `container ports ${ports} != EXPOSE ${image.expose}`);
  expect(image.stopsignal === "SIGTERM", "STOPSIGNAL SIGTERM");
  for (const [name, value] of Object.entries(image.env)) {
    const e = envValue(container, name);
    if (e?.value !== undefined) expect(e.value === value, `${name}: manifest ${e.value}, image ${value}`);
  }
});

await checkRendering(k8sDir, objects);

finish();
