// The pass/fail bookkeeping of the Node.js tests: one line per check ("ok" or "FAIL" with why),
// then "N passed, N failed" and exit status 1 if any failed. Node built-ins only, so it runs from
// any test directory whatever its node_modules hold.

let passed = 0;
let failed = 0;

function pass(name) {
  passed++;
  console.log(`ok   ${name}`);
}
function fail(name, detail) {
  failed++;
  console.log(`FAIL ${name}${detail ? `\n     ${String(detail).split("\n").join("\n     ")}` : ""}`);
}

// A check that passes unless `fn` throws (or rejects); its message is the reason.
export async function check(name, fn) {
  try {
    await fn();
    pass(name);
  } catch (e) {
    fail(name, e.message);
  }
}

// A check of a condition already computed; `detail` is shown when it fails.
export function record(name, condition, detail = "") {
  if (condition) pass(name);
  else fail(name, detail);
}

// Throws `message` (failing the enclosing check) unless `condition` holds.
export function expect(condition, message) {
  if (!condition) throw new Error(message);
}

export const failures = () => failed;

// The summary line, then the process ends: 0 when every check passed.
export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
