// The checks every kustomize build under deploy/k8s gets (the base and each overlay): each object
// valid against the Kubernetes schemas, and `kubectl kustomize` rendering what the test read.
import { isDeepStrictEqual } from "node:util";
import { check, expect } from "../support/node/checks.mjs";
import { kubectlKustomize } from "./manifests.mjs";
import { validateObject } from "./schema.mjs";

export async function checkSchemas(objects) {
  for (const { file, object } of objects) {
    const name = `${file}: ${object.kind}/${object.metadata?.name}`;
    await check(`${name} validates against the Kubernetes schema`, () => validateObject(object));
  }
}

// `dir`'s rendering by kubectl equals `objects`; skipped (and said so) without kubectl.
export async function checkRendering(dir, objects) {
  await check("kubectl kustomize renders the same objects (skipped without kubectl)", () => {
    const rendered = kubectlKustomize(dir);
    if (rendered === null) {
      console.log("     (kubectl not installed: skipped)");
      return;
    }
    const key = (o) => `${o.apiVersion}/${o.kind}/${o.metadata?.name}`;
    const mine = new Map(objects.map(({ object }) => [key(object), object]));
    const count = `kubectl rendered ${rendered.length} objects, the test read ${mine.size}`;
    expect(rendered.length === mine.size, count);
    for (const object of rendered) {
      const same = isDeepStrictEqual(object, mine.get(key(object)));
      expect(same, `${key(object)} differs from kubectl's rendering`);
    }
  });
}

// The container hardening every manifest of ours holds to (the user id is checked by each caller).
export function expectLockedDown(pod, container, who) {
  const podSc = pod.securityContext ?? {};
  const sc = container.securityContext ?? {};
  expect(sc.readOnlyRootFilesystem === true, "readOnlyRootFilesystem must be true");
  expect(sc.allowPrivilegeEscalation === false, "allowPrivilegeEscalation must be false");
  expect(sc.privileged !== true, "must not be privileged");
  expect((sc.capabilities?.drop ?? []).includes("ALL"), "capabilities must drop ALL");
  expect((sc.capabilities?.add ?? []).length === 0, "no capability may be added");
  expect((sc.seccompProfile ?? podSc.seccompProfile)?.type === "RuntimeDefault", "seccompProfile RuntimeDefault");
  expect(pod.automountServiceAccountToken === false, `${who} needs no service account token`);
  expect(!pod.hostNetwork && !pod.hostPID && !pod.hostIPC, "no host namespaces");
}
