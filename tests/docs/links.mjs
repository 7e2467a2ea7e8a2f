// Every link in every tracked Markdown file of the repository must resolve inside it: a relative
// link names a file or directory that exists, an #anchor names a heading of the target file (as
// GitHub derives anchors from headings), and no link leaves the repository, whether through
// ../ past its root, an absolute path, or a URL with a scheme (http:, file:, ...). Links inside
// code blocks and code spans are not links.
//
// Usage: node links.mjs [REPOSITORY_ROOT]   (default: two levels above this file)
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), "..", ".."));
// Tracked files plus new ones not yet committed, so a link is checked before its commit; outside
// a git checkout (a source archive), every Markdown file but those of build and npm directories.
function markdownFiles() {
  try {
    return execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "*.md"], {
      cwd: root,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).split("\n");
  } catch {
    return readdirSync(root, { recursive: true }).filter(
      (f) => f.endsWith(".md") && !/^(build|\.git)\//.test(f),
    );
  }
}
const files = markdownFiles().filter(
  (f) => f && !f.split("/").includes("node_modules") && existsSync(join(root, f)),
);

// Markdown text without fenced code blocks and code spans (same length per line is not needed).
function prose(text) {
  const lines = [];
  let fence = null;
  for (const line of text.split("\n")) {
    const m = line.match(/^\s*(```+|~~~+)/);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
      lines.push("");
      continue;
    }
    if (m) {
      fence = m[1];
      lines.push("");
      continue;
    }
    lines.push(line.replace(/(`+)[\s\S]*?\1/g, ""));
  }
  return lines;
}

// GitHub's heading anchors: lower case, punctuation dropped (hyphens and underscores kept),
// spaces to hyphens, -1, -2... for repeats.
function anchorsOf(file) {
  const seen = new Map();
  const anchors = new Set();
  let fence = null;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = line.match(/^\s*(```+|~~~+)/);
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length) fence = null;
      continue;
    }
    if (m) {
      fence = m[1];
      continue;
    }
    const h = line.match(/^#{1,6}\s+(.*?)\s*#*\s*$/);
    if (!h) continue;
    const text = h[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/<[^>]+>/g, "")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(text) ?? 0;
    seen.set(text, n + 1);
    anchors.add(n === 0 ? text : `${text}-${n}`);
  }
  return anchors;
}

const problems = [];
let links = 0;
for (const file of files) {
  const lines = prose(readFileSync(join(root, file), "utf8"));
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    // Inline links and images [text](target "title"), reference definitions [id]: target, autolinks <scheme:...>.
    const targets = [
      ...[...line.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
      ...[...line.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map((m) => m[1]),
      ...[...line.matchAll(/<([a-z][a-z0-9+.-]*:[^>\s]*)>/gi)].map((m) => m[1]),
    ];
    for (const target of targets) {
      links++;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
        problems.push(`${where}: ${target} leaves the repository`);
        continue;
      }
      const [pathPart, anchor] = target.split("#", 2);
      if (pathPart.startsWith("/")) {
        problems.push(`${where}: ${target} is an absolute path`);
        continue;
      }
      const resolved = pathPart === "" ? join(root, file) : resolve(dirname(join(root, file)), decodeURIComponent(pathPart));
      const inside = relative(root, resolved);
      if (inside.startsWith("..") || inside.split(sep)[0] === "..") {
        problems.push(`${where}: ${target} points outside the repository`);
        continue;
      }
      if (!existsSync(resolved)) {
        problems.push(`${where}: ${target}: no such file in the repository`);
        continue;
      }
      if (anchor !== undefined) {
        if (!statSync(resolved).isFile() || !resolved.endsWith(".md")) {
          problems.push(`${where}: ${target}: an anchor into something other than a Markdown file`);
        } else if (!anchorsOf(resolved).has(anchor)) {
          problems.push(`${where}: ${target}: no heading with that anchor`);
        }
      }
    }
  });
}

for (const p of problems) console.log(`FAIL ${p}`);
console.log(`${files.length} Markdown files, ${links} links, ${problems.length} problems`);
process.exit(problems.length === 0 && files.length > 0 ? 0 : 1);
