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
