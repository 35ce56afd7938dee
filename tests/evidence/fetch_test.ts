import assert from "node:assert/strict";
import { fetchEvidence, type FetchOptions } from "../../src/evidence/mod.ts";
import { FetchFailedError, FetchRefusedError } from "../../src/net/mod.ts";

// Nothing here may reach the internet: names go through an injected resolver,
// IP literals are refused before any connection, and the only real server is
// Deno.serve on 127.0.0.1.

const BASE: FetchOptions = {
  allowHosts: [],
  maxBytes: 1_000_000,
  timeoutMs: 5_000,
  maxChars: 100_000,
  resolve: (host) => Promise.reject(new Error(`unexpected DNS lookup of ${host}`)),
  fetch: (input) => Promise.reject(new Error(`unexpected connection to ${input}`)),
};

/** The local server's options: only 127.0.0.1 allowlisted, the real fetch. */
function local(options: Partial<FetchOptions> = {}): FetchOptions {
  return { ...BASE, allowHosts: ["127.0.0.1"], fetch: undefined, ...options };
}

async function hexSha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  // Independent of the vault hasher that fetchEvidence uses.
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toHex();
}

async function withServer(
  handler: (request: Request, origin: string) => Response | Promise<Response>,
  body: (origin: string) => Promise<void>,
): Promise<void> {
  let origin = "";
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => handler(request, origin),
  );
  origin = `http://127.0.0.1:${server.addr.port}`;
  try {
    await body(origin);
  } finally {
    await server.shutdown();
  }
}

async function assertRefused(
  promise: Promise<unknown>,
  message: RegExp | string,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof FetchRefusedError, `expected FetchRefusedError, got ${error}`);
    if (typeof message === "string") assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

Deno.test("fetchEvidence() refuses private IP literals and localhost without DNS or a connection", async () => {
  const cases: [string, RegExp][] = [
    ["http://127.0.0.1/", /^Refused: 127\.0\.0\.1 is a loopback address \(host "127\.0\.0\.1"\)/],
    ["http://localhost/", /^Refused: 127\.0\.0\.1 is a loopback address \(host "localhost"\)/],
    ["http://api.localhost:8080/", /loopback address \(host "api\.localhost"\)/],
    ["http://[::1]/", /^Refused: ::1 is a loopback address \(host "\[::1\]"\)/],
    // The WHATWG parser turns decimal, hex and octal spellings into 127.0.0.1.
    ["http://2130706433/", /^Refused: 127\.0\.0\.1 is a loopback address/],
    ["http://0x7f.1/", /^Refused: 127\.0\.0\.1 is a loopback address/],
    ["http://017700000001/", /^Refused: 127\.0\.0\.1 is a loopback address/],
    [
      "http://169.254.169.254/latest/meta-data/",
      /^Refused: 169\.254\.169\.254 is a link-local address \(cloud metadata service\)/,
    ],
    ["http://[::ffff:127.0.0.1]/", /IPv4-mapped loopback address \(127\.0\.0\.1\)/],
    ["http://[64:ff9b::a9fe:a9fe]/", /NAT64 link-local address \(cloud metadata service\)/],
    ["http://10.0.0.1/", /^Refused: 10\.0\.0\.1 is a private address/],
    ["http://0.0.0.0:8080/", /this-network address/],
    ["https://[fd00::1]/", /unique local address/],
  ];
  for (const [url, message] of cases) await assertRefused(fetchEvidence(url, BASE), message);
});

Deno.test("fetchEvidence() names the allowlist in its refusal", async () => {
  await assertRefused(
    fetchEvidence("http://localhost/", BASE),
    'Refused: 127.0.0.1 is a loopback address (host "localhost"); ' +
      "add the host to policy fetch.allow_hosts to allow it",
  );
});

Deno.test("fetchEvidence() refuses a name when any of its addresses is private", async () => {
  const dns: Record<string, string[]> = {
    "metadata.internal": ["169.254.169.254"],
    "evil.example": ["93.184.216.34", "10.0.0.5"],
    "sneaky.example": ["2606:2800:220:1::248", "::ffff:192.168.1.1"],
  };
  const options = { ...BASE, resolve: (host: string) => Promise.resolve(dns[host] ?? []) };
  await assertRefused(
    fetchEvidence("http://metadata.internal/computeMetadata/v1/", options),
    /^Refused: 169\.254\.169\.254 is a link-local address .*\(host "metadata\.internal"\)/,
  );
  await assertRefused(
    fetchEvidence("https://evil.example/", options),
    /^Refused: 10\.0\.0\.5 is a private address \(host "evil\.example"\)/,
  );
  await assertRefused(
    fetchEvidence("https://sneaky.example/", options),
    /IPv4-mapped private address \(192\.168\.1\.1\)/,
  );
});

Deno.test("fetchEvidence() fetches a name whose addresses are all public", async () => {
  const requested: string[] = [];
  const result = await fetchEvidence("https://good.example/page", {
    ...BASE,
    resolve: () => Promise.resolve(["93.184.216.34", "2606:2800:220:1::248"]),
    fetch: (input) => {
      requested.push(String(input));
      return Promise.resolve(
        new Response("plain words", { headers: { "content-type": "text/plain" } }),
      );
    },
  });
  assert.deepEqual(requested, ["https://good.example/page"]);
  assert.equal(result.text, "plain words");
  assert.equal(result.truncated, false);
});

Deno.test("fetchEvidence() reports a DNS failure as FetchFailedError", async () => {
  await assert.rejects(
    fetchEvidence("https://nowhere.example/", {
      ...BASE,
      resolve: () => Promise.reject(new Error("NXDOMAIN")),
    }),
    (error: unknown) => {
      assert.ok(error instanceof FetchFailedError);
      assert.equal(
        error.message,
        'Cannot fetch https://nowhere.example/: cannot resolve host "nowhere.example": NXDOMAIN',
      );
      return true;
    },
  );
});

Deno.test("fetchEvidence() matches IPv6 allowlist entries with or without brackets", async () => {
  const ok = () => Promise.resolve(new Response("ok"));
  for (const entry of ["::1", "[::1]", "0:0:0:0:0:0:0:1"]) {
    const result = await fetchEvidence("http://[::1]:8080/", {
      ...BASE,
      allowHosts: [entry],
      fetch: ok,
    });
    assert.equal(result.text, "ok", entry);
  }
});

Deno.test("fetchEvidence() refuses non-http schemes and URLs with credentials", async () => {
  for (const url of ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:text/plain,hi"]) {
    await assertRefused(
      fetchEvidence(url, local()),
      /^Refused: (file|ftp|data): URLs are not fetched, only http: and https:$/,
    );
  }
  await assertRefused(
    fetchEvidence("http://user:secret@127.0.0.1/", local()),
    "Refused: URLs with credentials are not fetched",
  );
  await assertRefused(
    fetchEvidence("not a url", local()),
    'Refused: "not a url" is not a valid URL',
  );
});

Deno.test("fetchEvidence() extracts title and text from an allowlisted HTML page", async () => {
  const page = new TextEncoder().encode(
    "<!DOCTYPE html><html><head><title>Caf&eacute; &amp; Bar</title>" +
      "<script>var secret = 1;</script></head><body><h1>Menu</h1>" +
      "<p>Tea &lt;hot&gt;</p><ul><li>one</li><li>two</li></ul></body></html>",
  );
  const seen: Headers[] = [];
  await withServer((request) => {
    seen.push(request.headers);
    return new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } });
  }, async (origin) => {
    const result = await fetchEvidence(`${origin}/menu`, local());
    assert.equal(result.status, 200);
    assert.equal(result.contentType, "text/html; charset=utf-8");
    // &eacute; is not among the decoded names, so it stays as written.
    assert.equal(result.title, "Caf&eacute; & Bar");
    assert.equal(result.text, "Menu\nTea <hot>\none\ntwo");
    assert.equal(result.bytes, page.byteLength);
    assert.equal(result.sha256, await hexSha256(page));
    assert.equal(result.truncated, false);
    assert.equal(result.url, `${origin}/menu`);
    assert.equal(result.finalUrl, `${origin}/menu`);
    assert.deepEqual(result.redirects, []);
    assert.ok(!Number.isNaN(Date.parse(result.fetchedAt)));
  });
  assert.equal(seen[0].get("user-agent"), "Warden-fetch/1");
  assert.equal(
    seen[0].get("accept"),
    "text/html, text/plain, application/json;q=0.9, */*;q=0.5",
  );
});

Deno.test("fetchEvidence() sniffs HTML sent without a content type", async () => {
  await withServer(
    () => new Response(new TextEncoder().encode("  <html><p>x</p><p>y</p></html>")),
    async (origin) => {
      const result = await fetchEvidence(origin, local());
      assert.equal(result.text, "x\ny");
    },
  );
});

Deno.test("fetchEvidence() passes JSON through and hashes binary without text", async () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2]);
  await withServer((request) => {
    if (new URL(request.url).pathname === "/json") {
      return new Response('{"a": [1, 2]}', { headers: { "content-type": "application/json" } });
    }
    return new Response(png, { headers: { "content-type": "image/png" } });
  }, async (origin) => {
    const json = await fetchEvidence(`${origin}/json`, local());
    assert.equal(json.text, '{"a": [1, 2]}');
    const image = await fetchEvidence(`${origin}/png`, local());
    assert.equal(image.text, "");
    assert.equal(image.bytes, png.byteLength);
    assert.equal(image.sha256, await hexSha256(png));
    assert.equal(image.note, "binary content (image/png) is not converted to text");
  });
});

Deno.test("fetchEvidence() refuses a redirect to a link-local address", async () => {
  await withServer(
    () => new Response(null, { status: 302, headers: { location: "http://169.254.169.254/" } }),
    async (origin) => {
      await assertRefused(
        fetchEvidence(`${origin}/start`, local()),
        new RegExp(
          `^Refused: 169\\.254\\.169\\.254 is a link-local address \\(cloud metadata service\\) ` +
            `\\(host "169\\.254\\.169\\.254"\\) \\(redirected from ${origin}/start\\)`,
        ),
      );
    },
  );
});

Deno.test("fetchEvidence() refuses a redirect to localhost when only 127.0.0.1 is allowlisted", async () => {
  await withServer((request, origin) => {
    const port = new URL(origin).port;
    if (new URL(request.url).pathname === "/start") {
      return new Response(null, {
        status: 307,
        headers: { location: `http://localhost:${port}/` },
      });
    }
    return new Response("reached");
  }, async (origin) => {
    await assertRefused(
      fetchEvidence(`${origin}/start`, local()),
      /^Refused: 127\.0\.0\.1 is a loopback address \(host "localhost"\) \(redirected from/,
    );
  });
});

Deno.test("fetchEvidence() refuses a redirect chain longer than maxRedirects", async () => {
  await withServer((request) => {
    const n = Number(new URL(request.url).pathname.slice(1));
    return new Response(null, { status: 302, headers: { location: `/${n + 1}` } });
  }, async (origin) => {
    await assertRefused(
      fetchEvidence(`${origin}/0`, local({ maxRedirects: 3 })),
      `Refused: more than 3 redirects (the next one from ${origin}/3 to ${origin}/4)`,
    );
  });
});

Deno.test("fetchEvidence() follows and records redirects within the allowlisted host", async () => {
  await withServer((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/old") return new Response(null, { status: 301, headers: { location: "/mid" } });
    if (path === "/mid") {
      return new Response("moved", { status: 303, headers: { location: "/new?x=1" } });
    }
    return new Response(`at ${path}`, { headers: { "content-type": "text/plain" } });
  }, async (origin) => {
    const result = await fetchEvidence(`${origin}/old`, local());
    assert.equal(result.text, "at /new");
    assert.equal(result.url, `${origin}/old`);
    assert.equal(result.finalUrl, `${origin}/new?x=1`);
    assert.deepEqual(result.redirects, [`${origin}/mid`, `${origin}/new?x=1`]);
  });
});

Deno.test("fetchEvidence() stops reading at maxBytes and hashes what it read", async () => {
  const chunk = new Uint8Array(65_536).map((_, i) => i % 251);
  await withServer(() => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 16) return controller.close(); // 16 × 64 KiB = 1 MiB
        sent += 1;
        controller.enqueue(chunk.slice());
      },
    });
    return new Response(body, { headers: { "content-type": "application/octet-stream" } });
  }, async (origin) => {
    const result = await fetchEvidence(origin, local({ maxBytes: 10_000 }));
    assert.equal(result.truncated, true);
    assert.equal(result.bytes, 10_000);
    assert.equal(result.sha256, await hexSha256(chunk.slice(0, 10_000)));
    assert.match(result.note ?? "", /body cut at maxBytes \(10000 bytes\)/);
  });
});

Deno.test("fetchEvidence() cuts text at maxChars but hashes the whole body", async () => {
  const body = new TextEncoder().encode("abcdefghij");
  await withServer(
    () => new Response(body, { headers: { "content-type": "text/plain" } }),
    async (origin) => {
      const result = await fetchEvidence(origin, local({ maxChars: 4 }));
      assert.equal(result.text, "abcd");
      assert.equal(result.truncated, true);
      assert.equal(result.bytes, 10);
      assert.equal(result.sha256, await hexSha256(body));
    },
  );
});

Deno.test("fetchEvidence() times out on a body that never ends", async () => {
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  await withServer(() => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
        c.enqueue(new TextEncoder().encode("first bytes, then silence"));
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  }, async (origin) => {
    try {
      await assert.rejects(fetchEvidence(`${origin}/stall`, local({ timeoutMs: 200 })), {
        name: "FetchFailedError",
        message: `Cannot fetch ${origin}/stall: timed out after 200 ms`,
      });
    } finally {
      // End the stalled response so the server can shut down cleanly (the
      // stream may already be cancelled by the client's disconnect).
      try {
        controller?.close();
      } catch { /* already cancelled */ }
    }
  });
});

Deno.test("fetchEvidence() times out when the response headers never come", async () => {
  const { promise: released, resolve: release } = Promise.withResolvers<void>();
  await withServer(async () => {
    // Hold the response until the client has given up; releasing it then lets
    // the server finish the request and shut down cleanly.
    await released;
    return new Response("too late");
  }, async (origin) => {
    try {
      await assert.rejects(fetchEvidence(`${origin}/hang`, local({ timeoutMs: 200 })), {
        name: "FetchFailedError",
        message: `Cannot fetch ${origin}/hang: timed out after 200 ms`,
      });
    } finally {
      release();
    }
  });
});

Deno.test("fetchEvidence() rethrows the caller's abort reason unchanged", async () => {
  const controller = new AbortController();
  const reason = new Error("client went away");
  controller.abort(reason);
  await assert.rejects(
    fetchEvidence("https://good.example/", {
      ...BASE,
      signal: controller.signal,
      resolve: () => Promise.resolve(["93.184.216.34"]),
    }),
    (error: unknown) => error === reason,
  );
});
