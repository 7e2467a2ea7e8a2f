// Offline checks of the PostgreSQL overlay deploy/k8s/overlays/postgres:
//   1. every object validates against the Kubernetes schemas, unknown fields refused (schema.mjs);
//   2. several stateless replicas: a Deployment, no volume claim, TOKEND_STORE=postgres, the
//      database URL from the Secret tokend-postgres (never written down), a revocation poll bound;
//   3. a HorizontalPodAutoscaler that targets that Deployment, on CPU, with CPU requests to scale on;
//   4. what the base promises still holds: probes on the admin port, the Service on the API port
//      only, grace period over preStop + drain, restrictive security context, Secret bootstrap key;
//   5. where kubectl is installed, `kubectl kustomize` renders the same objects.
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { isDeepStrictEqual } from "node:util";
import { join } from "node:path";
import {
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
import { checkRendering, checkSchemas } from "./k8s_checks.mjs";
import { refuses } from "./schema.mjs";

const overlayDir = join(k8sDir, "overlays/postgres");

const objects = loadBase(overlayDir);
console.log(`overlays/postgres: ${objects.map((o) => `${o.object.kind}/${o.object.metadata?.name}`).join(", ")}`);
await checkSchemas(objects);

const deployment = findOne(objects, "Deployment");
const hpa = findOne(objects, "HorizontalPodAutoscaler");
const pod = deployment.spec.template.spec;
const container = pod.containers.find((c) => c.name === "tokend") ?? pod.containers[0];

await check("the validator refuses a wrong field type in the Deployment and the HPA", async () => {
  for (const [what, object, mutate] of [
    ["Deployment replicas as a string", deployment, (o) => (o.spec.replicas = "3")],
    ["HPA minReplicas as a string", hpa, (o) => (o.spec.minReplicas = "3")],
    ["HPA with a misspelt field", hpa, (o) => (o.spec.maxReplica = 5)],
  ]) {
    const broken = structuredClone(object);
    mutate(broken);
    expect(await refuses(broken), `${what} passed validation`);
  }
});

await check("several stateless replicas: a Deployment, no StatefulSet, no volume claim", () => {
  expect(deployment.spec.replicas >= 2, `replicas must be at least 2, found ${deployment.spec.replicas}`);
  expect(!objects.some((o) => o.object.kind === "StatefulSet"), "a StatefulSet has no place in this overlay");
  expect(!objects.some((o) => o.object.kind === "PersistentVolumeClaim"), "no volume claim: pods hold no data");
  for (const v of pod.volumes ?? []) expect(!v.persistentVolumeClaim, `volume ${v.name} is a claim`);
  expect(deployment.spec.strategy?.rollingUpdate?.maxUnavailable === 0, "rolling updates keep every replica serving");
});

await check("the PostgreSQL store, its URL from the Secret tokend-postgres, a revocation poll bound", () => {
  expect(envValue(container, "TOKEND_STORE")?.value === "postgres", "TOKEND_STORE must be postgres");
  const url = envValue(container, "TOKEND_POSTGRES_URL");
  expect(url, "TOKEND_POSTGRES_URL is not set");
  expect(url.value === undefined, "TOKEND_POSTGRES_URL must not be a literal value (it holds a password)");
  const ref = url.valueFrom?.secretKeyRef;
  expect(ref?.name === "tokend-postgres" && ref?.key === "url", "secretKeyRef tokend-postgres/url expected");
  const poll = envValue(container, "TOKEND_REVOCATION_POLL");
  expect(poll?.value && durationSeconds(poll.value) <= 5, "TOKEND_REVOCATION_POLL must be set, 5s at most");
  const text = JSON.stringify(objects);
  expect(!/postgres(ql)?:\/\//.test(text), "a connection URL is written in the manifests");
  expect(!/[0-9a-f]{64}/.test(text), "something key-shaped (64 hex characters) is written in the manifests");
  expect(!objects.some((o) => o.object.kind === "Secret"), "the overlay must not carry a Secret");
  const bootstrap = envValue(container, "TOKEND_BOOTSTRAP_TOKEN")?.valueFrom?.secretKeyRef;
  expect(bootstrap?.name === "tokend-bootstrap" && bootstrap?.key === "token", "bootstrap key from tokend-bootstrap/token");
});

await check("the HorizontalPodAutoscaler scales that Deployment on CPU", () => {
  const target = hpa.spec.scaleTargetRef;
  expect(
    target.kind === "Deployment" && target.name === deployment.metadata.name && target.apiVersion === "apps/v1",
    `scaleTargetRef ${JSON.stringify(target)} does not name the Deployment`,
  );
  expect(hpa.spec.minReplicas >= 2, "minReplicas of at least 2 (one pod is no failover)");
  expect(hpa.spec.maxReplicas > hpa.spec.minReplicas, "maxReplicas must exceed minReplicas");
  expect(deployment.spec.replicas >= hpa.spec.minReplicas && deployment.spec.replicas <= hpa.spec.maxReplicas,
    "the Deployment's replicas lie outside the HPA's range");
  const cpu = (hpa.spec.metrics ?? []).find((m) => m.type === "Resource" && m.resource?.name === "cpu");
  expect(cpu?.resource?.target?.type === "Utilization", "a CPU utilisation target");
  expect(quantity(container.resources?.requests?.cpu ?? "0") > 0, "CPU requests are needed to compute utilisation");
});

await check("selectors match the pod labels (Deployment, Service, PodDisruptionBudget)", () => {
  const labels = deployment.spec.template.metadata.labels ?? {};
  const matches = (selector) => Object.keys(selector ?? {}).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
  expect(matches(deployment.spec.selector.matchLabels), "the Deployment selector does not match its pods");
  expect(matches(findOne(objects, "Service").spec.selector), "the Service does not select the pods");
  expect(matches(findOne(objects, "PodDisruptionBudget").spec.selector.matchLabels), "the PDB does not select the pods");
});

await check("as in the base: probes, API-only Service, grace over preStop + drain, security", () => {
  const apiPort = listenPort(envValue(container, "TOKEND_LISTEN").value);
  const adminPort = listenPort(envValue(container, "TOKEND_ADMIN_LISTEN").value);
  const want = { startupProbe: "/healthz", livenessProbe: "/healthz", readinessProbe: "/readyz" };
  for (const [probe, path] of Object.entries(want)) {
    expect(container[probe]?.httpGet?.path === path, `${probe} must ask ${path}`);
    expect(resolvePort(container, container[probe].httpGet.port) === adminPort, `${probe} must use the admin port`);
  }
  const service = findOne(objects, "Service");
  const targets = service.spec.ports.map((p) => resolvePort(container, p.targetPort ?? p.port));
  expect(isDeepStrictEqual(targets, [apiPort]), `the Service targets ${targets}, only ${apiPort} belongs there`);
  const cmd = container.lifecycle?.preStop?.exec?.command ?? [];
  const preStop = cmd.length === 2 && /sleep$/.test(cmd[0]) ? Number(cmd[1]) : 0;
  const drain = durationSeconds(envValue(container, "TOKEND_DRAIN_TIMEOUT").value);
  expect(pod.terminationGracePeriodSeconds > preStop + drain, "grace period must exceed preStop + drain");
  const sc = container.securityContext ?? {};
  expect((sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) === true, "runAsNonRoot");
  expect(sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false, "read-only root, no escalation");
  expect((sc.capabilities?.drop ?? []).includes("ALL"), "capabilities must drop ALL");
  expect(pod.automountServiceAccountToken === false, "no service account token");
});

await checkRendering(overlayDir, objects);

finish();
