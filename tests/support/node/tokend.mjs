// The real tokend binary under a Node.js test: started with its output captured, killed if the
// test ends first, and the ports it listens on read from its "tokend listening" log line.
import { spawn } from "node:child_process";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Ends the test with the line "FAIL <message>" once `deadline` (a Date.now() value) has passed.
export function failAt(deadline, message) {
  setTimeout(() => {
    console.log(`FAIL ${message}`);
    process.exit(1);
  }, deadline - Date.now()).unref();
}

// `binary argv` with `options` as for child_process.spawn. The result's `out` and `err` grow as the
// process writes; `exit` is null until it ends, then {code, signal}, which `exited` resolves with.
export function startTokend(binary, argv, options) {
  const t = { out: "", err: "", exit: null };
  t.child = spawn(binary, argv, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  t.child.stdout.on("data", (d) => (t.out += d));
  t.child.stderr.on("data", (d) => (t.err += d));
  t.exited = new Promise((resolve) =>
    t.child.on("exit", (code, signal) => resolve((t.exit = { code, signal }))),
  );
  process.on("exit", () => {
    if (t.exit === null) t.child.kill("SIGKILL");
  });
  // The ports of its "tokend listening" line, or null when it exits or `until` passes first.
  t.listening = async (until) => {
    while (Date.now() < until && t.exit === null) {
      for (const line of t.out.split("\n")) {
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
  };
  return t;
}
