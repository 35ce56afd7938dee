/**
 * The dashboard's two streamed answers when the browser goes away mid-way
 * (a closed tab, a reload): the live feed and the full verification must end
 * quietly — no write into the closed stream, which would surface as an
 * uncaught error (contained and logged by main.ts, a failure here) — and the
 * verification must stop and free its slot.
 */
import assert from "node:assert/strict";
import { callStream } from "../../src/dashboard/feed.ts";
import { csrfIn, loginCookie, startDashboardServer } from "../_helpers/dashboard.ts";

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("dashboard feed: cancelled while reading the vault head, the stream writes nothing more", async () => {
  const f = await startDashboardServer();
  try {
    for (let i = 0; i < 3; i++) await f.server.app.ledger.append({ type: "note", text: `n${i}` });
    await f.server.app.ledger.flush();
    let closed = 0;
    const stream = callStream(f.server.app.ledger, {}, {
      after: -1,
      pollMs: 10,
      onClose: () => closed++,
    });
    const reader = stream.getReader();
    const first = await reader.read(); // the retry line, queued by start; the first poll is in flight
    assert.match(new TextDecoder().decode(first.value), /^retry: /);
    await reader.cancel();
    await settle(100);
    assert.equal(closed, 1, "closed once");
  } finally {
    await f.close();
  }
});

Deno.test("dashboard verification: a browser that leaves mid-way ends it quietly and frees the slot", async () => {
  const f = await startDashboardServer();
  const base = f.server.url;
  try {
    // Enough entries that the export is still running when the browser leaves.
    await Promise.all(
      Array.from(
        { length: 3000 },
        (_, i) => f.server.app.ledger.append({ type: "note", text: `n${i}` }),
      ),
    );
    await f.server.app.ledger.flush();
    const cookie = await loginCookie(base, "audrey");
    const vault = await (await fetch(`${base}/dashboard/vault`, { headers: { cookie } })).text();
    const post = () =>
      f.server.app.fetch(
        new Request(`${base}/dashboard/vault/verify`, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            cookie,
            host: new URL(base).host,
          },
          body: new URLSearchParams({ csrf: csrfIn(vault) }),
        }),
      );
    // In process, so the cancel lands before the verification can finish.
    const res = await post();
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await settle(400); // past a progress beat (250 ms)
    const again = await post();
    assert.equal(again.status, 200, "the slot was freed");
    const text = await again.text();
    assert.match(text, /data-ok="true"/);
  } finally {
    await f.close();
  }
});
