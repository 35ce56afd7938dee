/**
 * Read-only HTTP access to the vault: the verifier key, signed checkpoints,
 * entries and proofs. Everything a client needs to check the log without
 * trusting the server.
 */
import { Hono } from "hono";
import { buildRoot } from "../merkle/mod.ts";
import { type Ledger } from "../vault/mod.ts";
import { toBase64 } from "../lib/mod.ts";
import { HttpError } from "./errors.ts";

const MAX_PAGE = 1000;

function parseCount(value: string | undefined, name: string): number {
  if (value === undefined || value === "") {
    throw new HttpError(400, `Bad Request: query parameter "${name}" is required`);
  }
  if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new HttpError(
      400,
      `Bad Request: "${name}" must be a non-negative integer, got "${value}"`,
    );
  }
  return Number(value);
}

function notFound(message: string): never {
  throw new HttpError(404, `Not Found: ${message}`);
}

/** Routes mounted under `/vault`. */
export function createVaultRoutes(ledger: Ledger, vkey: string): Hono {
  const app = new Hono();

  app.get("/key", (c) => c.text(vkey + "\n"));

  app.get("/checkpoint", async (c) => {
    const note = await ledger.latestCheckpoint();
    if (!note) notFound("no checkpoint has been signed yet (the log is empty)");
    return c.text(note);
  });

  app.get("/checkpoints", async (c) => {
    const after = c.req.query("after") === undefined
      ? 0
      : parseCount(c.req.query("after"), "after");
    const out: { size: number; note: string }[] = [];
    for await (const cp of ledger.checkpoints()) {
      if (cp.size > after) out.push(cp);
      if (out.length >= MAX_PAGE) break;
    }
    return c.json({ checkpoints: out });
  });

  app.get("/head", async (c) => {
    const head = await ledger.head();
    return c.json({ origin: ledger.origin, size: head.size, root: head.root });
  });

  app.get("/entries", async (c) => {
    const start = parseCount(c.req.query("start"), "start");
    const limit = c.req.query("limit") === undefined
      ? 100
      : Math.min(MAX_PAGE, parseCount(c.req.query("limit"), "limit"));
    const { size } = await ledger.head();
    const end = Math.min(size, start + limit);
    const entries: { index: number; data: string; leaf_hash: string }[] = [];
    if (start < end) {
      for await (const e of ledger.entries(start, end)) {
        entries.push({ index: e.index, data: toBase64(e.bytes), leaf_hash: e.leafHash });
      }
    }
    return c.json({ start, size, entries });
  });

  app.get("/entries/:index", async (c) => {
    const index = parseCount(c.req.param("index"), "index");
    const entry = await ledger.entry(index);
    if (!entry) notFound(`no entry ${index}`);
    return c.json({
      index,
      data: toBase64(entry.bytes),
      leaf_hash: entry.leafHash,
      entry: JSON.parse(new TextDecoder().decode(entry.bytes)),
    });
  });

  app.get("/blobs/:hash", async (c) => {
    const hash = c.req.param("hash");
    if (!/^[0-9a-f]{64}$/.test(hash)) {
      throw new HttpError(400, "Bad Request: hash must be 64 hex digits");
    }
    const bytes = await ledger.blob(hash);
    if (!bytes) notFound(`no body ${hash}`);
    return c.body(new Uint8Array(bytes), 200, { "content-type": "application/json" });
  });

  app.get("/proof/inclusion", async (c) => {
    const index = parseCount(c.req.query("index"), "index");
    const head = await ledger.head();
    const size = c.req.query("size") === undefined
      ? head.size
      : parseCount(c.req.query("size"), "size");
    if (size > head.size) notFound(`tree size ${size} exceeds the log size ${head.size}`);
    if (index >= size) notFound(`entry ${index} is not in a tree of size ${size}`);
    const proof = await ledger.inclusionProof(index, size);
    const entry = await ledger.entry(index);
    const root = await buildRoot(size, { getNodes: (ids) => ledger.nodes(ids) });
    return c.json({
      index,
      size,
      leaf_hash: entry?.leafHash,
      root: toBase64(root),
      proof: proof.map(toBase64),
    });
  });

  app.get("/proof/consistency", async (c) => {
    const from = parseCount(c.req.query("from"), "from");
    const to = parseCount(c.req.query("to"), "to");
    if (from === 0) throw new HttpError(400, 'Bad Request: "from" must be at least 1');
    if (from > to) throw new HttpError(400, 'Bad Request: "from" must not exceed "to"');
    const head = await ledger.head();
    if (to > head.size) notFound(`tree size ${to} exceeds the log size ${head.size}`);
    const proof = await ledger.consistencyProof(from, to);
    const source = { getNodes: (ids: Parameters<Ledger["nodes"]>[0]) => ledger.nodes(ids) };
    const [root1, root2] = await Promise.all([buildRoot(from, source), buildRoot(to, source)]);
    return c.json({
      from,
      to,
      root1: toBase64(root1),
      root2: toBase64(root2),
      proof: proof.map(toBase64),
    });
  });

  return app;
}
