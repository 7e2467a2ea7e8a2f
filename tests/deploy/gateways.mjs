// Offline checks of the gateway integrations in deploy/gateways (the nginx snippets have their own
// test, nginx_gateway_test.sh, which runs `nginx -t` and a real nginx):
//   1. the ingress-nginx Ingress validates against the Kubernetes schemas (like deploy/k8s), and the
//      validator refuses a broken copy;
//   2. every integration points at tokend's Service as deploy/k8s defines it (name, port) and at
//      /verify, passes X-Tokend-User-Id and X-Tokend-Token-Type upstream, fails closed and keeps
//      the key from the service behind: Envoy's bootstrap, Envoy Gateway's SecurityPolicy and
//      Traefik's Middleware (no schema for these here: their fields are checked one by one);
//   3. the guide links only to files of the repository, and every link resolves.
// Prints one line per check and "N passed, N failed"; exits 1 if any failed.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { findOne, k8sDir, loadBase, parseYamlFile, repoRoot } from "./manifests.mjs";
import { check, expect, finish } from "../support/node/checks.mjs";
import { refuses, validateObject } from "./schema.mjs";

function sameSet(actual, wanted, what) {
  const a = [...(actual ?? [])].map((s) => String(s).toLowerCase()).sort();
  const w = [...wanted].map((s) => s.toLowerCase()).sort();
  expect(JSON.stringify(a) === JSON.stringify(w), `${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
}

const gateways = join(repoRoot, "deploy/gateways");
const service = findOne(loadBase(k8sDir), "Service");
const servicePort = service.spec.ports.find((p) => p.name === "http").port;
// The URL of /verify as seen from another namespace; the examples put tokend in namespace `tokend`.
const verifyUrl = `http://${service.metadata.name}.tokend.svc.cluster.local:${servicePort}/verify`;
const userHeaders = ["X-Tokend-User-Id", "X-Tokend-Token-Type"];

// ---------------------------------------------------------------------------------------------
// ingress-nginx

const [ingress, ...moreIngress] = parseYamlFile(join(gateways, "ingress-nginx/ingress.yaml"));
await check("ingress-nginx/ingress.yaml: one Ingress, valid against the Kubernetes schema", async () => {
  expect(moreIngress.length === 0 && ingress.kind === "Ingress", "expected exactly one Ingress");
  await validateObject(ingress);
});
await check("ingress-nginx: the validator refuses a broken copy", async () => {
  for (const [what, change] of [
    ["a misspelt field", (o) => (o.spec.rules[0].http.paths[0].pathTyp = "Prefix")],
    ["a port number as a string", (o) => (o.spec.rules[0].http.paths[0].backend.service.port.number = "80")],
  ]) {
    const copy = structuredClone(ingress);
    change(copy);
    expect(await refuses(copy), `${what} was accepted`);
  }
});
await check("ingress-nginx: auth-url is tokend's /verify, user headers passed, keep-alive, no auth cache", () => {
  const a = ingress.metadata.annotations ?? {};
  const p = "nginx.ingress.kubernetes.io/";
  expect(a[p + "auth-url"] === verifyUrl, `auth-url ${a[p + "auth-url"]}, expected ${verifyUrl}`);
  sameSet(a[p + "auth-response-headers"]?.split(",").map((s) => s.trim()), userHeaders, "auth-response-headers");
  expect(Number(a[p + "auth-keepalive"]) > 0, "auth-keepalive must keep connections to tokend");
  // An auth cache lets a deleted key pass for its duration: the example must not turn it on.
  expect(!(p + "auth-cache-key" in a) && !(p + "auth-cache-duration" in a), "the example must not enable the auth cache");
  expect(!Object.keys(a).some((k) => k.endsWith("-snippet")), "snippet annotations are often disabled; none here");
});

// ---------------------------------------------------------------------------------------------
// Envoy (static bootstrap)

const [envoy, ...moreEnvoy] = parseYamlFile(join(gateways, "envoy/envoy.yaml"));
const hcm = envoy.static_resources.listeners[0].filter_chains[0].filters.find(
  (f) => f.name === "envoy.filters.network.http_connection_manager",
).typed_config;
const filters = hcm.http_filters;
const extAuthz = filters.find((f) => f.name === "envoy.filters.http.ext_authz")?.typed_config;
await check("envoy/envoy.yaml: one bootstrap, ext_authz before the router", () => {
  expect(moreEnvoy.length === 0, "one YAML document expected");
  expect(
    hcm["@type"] ===
      "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "HttpConnectionManager type",
  );
  expect(extAuthz, "no envoy.filters.http.ext_authz filter");
  expect(extAuthz["@type"] === "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz", "ExtAuthz type");
  const names = filters.map((f) => f.name);
  expect(names.at(-1) === "envoy.filters.http.router", `the router must be last: ${names}`);
  expect(names.indexOf("envoy.filters.http.ext_authz") < names.length - 1, "ext_authz must run before the router");
});
await check("envoy: the HTTP service is tokend's /verify, fails closed, passes the user headers", () => {
  expect(extAuthz.transport_api_version === "V3", "transport_api_version V3");
  expect(extAuthz.failure_mode_allow === false, "failure_mode_allow must be false");
  expect(!("grpc_service" in extAuthz), "HTTP mode, not gRPC");
  const http = extAuthz.http_service;
  expect(http.path_prefix === "/verify", `path_prefix ${http.path_prefix}`);
  const cluster = envoy.static_resources.clusters.find((c) => c.name === http.server_uri.cluster);
  expect(cluster, `no cluster named ${http.server_uri.cluster}`);
  const address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  expect(address.port_value === servicePort, `tokend port ${address.port_value}, expected ${servicePort}`);
  expect(http.server_uri.uri === `http://${address.address}:${address.port_value}`, `server_uri ${http.server_uri.uri}`);
  expect(/^\d+(\.\d+)?s$/.test(http.server_uri.timeout), "a timeout in seconds");
  const allowed = http.authorization_request.allowed_headers.patterns.map((p) => p.exact);
  expect(allowed.includes("authorization"), "the Authorization header must reach tokend");
  sameSet(http.authorization_response.allowed_upstream_headers.patterns.map((p) => p.exact), userHeaders,
          "allowed_upstream_headers");
  expect(!("with_request_body" in extAuthz), "tokend needs no body");
});
await check("envoy: the route removes Authorization before the service", () => {
  for (const host of hcm.route_config.virtual_hosts) {
    for (const route of host.routes) {
      expect((route.request_headers_to_remove ?? []).includes("authorization"), `route ${JSON.stringify(route.match)}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Envoy Gateway

const egDocs = parseYamlFile(join(gateways, "envoy/securitypolicy.yaml"));
await check("envoy/securitypolicy.yaml: SecurityPolicy extAuth http to tokend's /verify", () => {
  const policy = egDocs.find((d) => d.kind === "SecurityPolicy");
  expect(policy?.apiVersion === "gateway.envoyproxy.io/v1alpha1", "a gateway.envoyproxy.io/v1alpha1 SecurityPolicy");
  const ext = policy.spec.extAuth;
  expect(ext.failOpen === false, "failOpen must be false");
  expect(ext.http.path === "/verify", `path ${ext.http.path}`);
  const [ref] = ext.http.backendRefs;
  expect(ref.name === service.metadata.name && ref.port === servicePort, `backendRef ${JSON.stringify(ref)}`);
  sameSet(ext.http.headersToBackend, userHeaders, "headersToBackend");
  expect((ext.headersToExtAuth ?? []).map((h) => h.toLowerCase()).includes("authorization"), "Authorization to tokend");
  expect(policy.spec.targetRefs?.length > 0, "targetRefs");
  const grant = egDocs.find((d) => d.kind === "ReferenceGrant");
  expect(grant, "a cross-namespace backendRef needs a ReferenceGrant");
  expect(grant.metadata.namespace === ref.namespace, "the grant lives in tokend's namespace");
  expect(grant.spec.from.some((f) => f.kind === "SecurityPolicy" && f.namespace === policy.metadata.namespace),
         "the grant names the policy's namespace");
  expect(grant.spec.to.some((t) => t.kind === "Service" && t.name === ref.name), "the grant names tokend's Service");
});

// ---------------------------------------------------------------------------------------------
// Traefik

const traefikDocs = parseYamlFile(join(gateways, "traefik/middleware.yaml"));
await check("traefik/middleware.yaml: ForwardAuth to tokend's /verify, user headers passed", () => {
  const auth = traefikDocs.find((d) => d.kind === "Middleware" && d.spec.forwardAuth);
  expect(auth?.apiVersion === "traefik.io/v1alpha1", "a traefik.io/v1alpha1 Middleware with forwardAuth");
  expect(auth.spec.forwardAuth.address === verifyUrl, `address ${auth.spec.forwardAuth.address}, expected ${verifyUrl}`);
  sameSet(auth.spec.forwardAuth.authResponseHeaders, userHeaders, "authResponseHeaders");
  expect(auth.spec.forwardAuth.trustForwardHeader === false, "X-Forwarded-* set by Traefik, not the client");
  const strip = traefikDocs.find((d) => d.kind === "Middleware" && d.spec.headers);
  expect(strip?.spec.headers.customRequestHeaders?.Authorization === "", "a middleware that removes Authorization");
  const route = traefikDocs.find((d) => d.kind === "IngressRoute");
  const names = route.spec.routes[0].middlewares.map((m) => m.name);
  expect(JSON.stringify(names) === JSON.stringify([auth.metadata.name, strip.metadata.name]),
         `middlewares in order check, then strip: ${names}`);
});

// ---------------------------------------------------------------------------------------------
// The guide

await check("README.md links only to files of the repository, and they exist", () => {
  const path = join(gateways, "README.md");
  const text = readFileSync(path, "utf8");
  expect(!/https?:\/\//.test(text.replace(/```[\s\S]*?```/g, "").replace(/`[^`]*`/g, "")), "no links outside the repository");
  const links = [...text.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1].split("#")[0]).filter(Boolean);
  expect(links.length > 0, "the guide links its files");
  for (const link of links) expect(existsSync(resolve(dirname(path), link)), `broken link ${link}`);
});

finish();
