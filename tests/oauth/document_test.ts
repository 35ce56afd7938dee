/**
 * readJsonDocument() of src/oauth/_document.ts (private to src/oauth/; the OpenID provider's
 * metadata and keys and a client's metadata document are read through it): a real loopback
 * server, each way a document is refused.
 */
import assert from "node:assert/strict";
import { readJsonDocument } from "../../src/oauth/_document.ts";

class Refused extends Error {
  constructor(readonly why: string) {
    super(why);
  }
}

const ERRORS = {
  unreadable: (why: string) => new Refused(`unreadable: ${why}`),
  status: (status: number) => new Refused(`status ${status}`),
  tooLarge: () => new Refused("too large"),
  notJson: () => new Refused("not json"),
};

Deno.test("readJsonDocument() parses a document and refuses a status, a size, a non-JSON body, a redirect and a private host", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/doc") return Response.json({ issuer: "x" });
    if (path === "/at-cap") return new Response(`"${"a".repeat(62)}"`);
    if (path === "/big") return new Response(`"${"a".repeat(63)}"`);
    if (path === "/text") return new Response("not json");
    if (path === "/moved") {
      return new Response(null, { status: 302, headers: { location: "/doc" } });
    }
    return new Response("no", { status: 404 });
  });
  const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const read = (path: string, allowed = true) =>
    readJsonDocument(`${base}${path}`, { allowed, maxBytes: 64, timeoutMs: 5_000 }, ERRORS);
  try {
    assert.deepEqual(await read("/doc"), { issuer: "x" });
    assert.equal(await read("/at-cap"), "a".repeat(62), "64 bytes is within the cap");
    await assert.rejects(read("/big"), { why: "too large" });
    await assert.rejects(read("/missing"), { why: "status 404" });
    await assert.rejects(read("/text"), { why: "not json" });
    await assert.rejects(
      read("/moved"),
      (e: unknown) => e instanceof Refused && /^unreadable: /.test(e.why),
    );
    await assert.rejects(
      read("/doc", false),
      (e: unknown) =>
        e instanceof Refused && /^unreadable: Refused: 127\.0\.0\.1 is a loopback/.test(e.why),
    );
  } finally {
    await server.shutdown();
  }
});
