/**
 * The HTTP edge's error type and the one hold-code → status table (issue 8 §1): governance's
 * HoldError carries a code, and the statuses the REST routes and the dashboard answer with are the
 * ones HoldError used to carry itself; likewise the gateway's RegistrationError.
 */
import assert from "node:assert/strict";
import {
  HOLD_STATUS,
  holdStatus,
  HttpError,
  REGISTRATION_STATUS,
  statusOf,
} from "../../src/http/mod.ts";
import { RegistrationError } from "../../src/gateway/mod.ts";
import { createHoldStore, HoldError } from "../../src/governance/mod.ts";

Deno.test("HttpError takes rpcCode and headers in an options object, -32000 and none by default", () => {
  const plain = new HttpError(404, "Not Found");
  assert.equal(plain.status, 404);
  assert.equal(plain.rpcCode, -32000);
  assert.deepEqual(plain.headers, {});
  const auth = new HttpError(401, "Unauthorized", {
    rpcCode: -32001,
    headers: { "www-authenticate": "Bearer" },
  });
  assert.equal(auth.rpcCode, -32001);
  assert.equal(auth.headers["www-authenticate"], "Bearer");
  assert.ok(auth instanceof Error);
});

Deno.test("holdStatus() answers each hold refusal with the status HoldError used to carry", () => {
  // The statuses the throw sites of governance/holds.ts passed before the codes replaced them.
  assert.deepEqual(HOLD_STATUS, {
    unknown_hold: 404,
    contended: 409,
    too_many_open: 429,
    expired: 410,
    already_decided: 409,
    unknown_operator: 403,
    bad_signature: 403,
    duplicate_approval: 409,
    different_call: 403,
    already_used: 409,
    denied: 403,
    pending: 409,
  });
});

Deno.test("a hold store refusal carries a code, not an HTTP status", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = createHoldStore(kv);
    const refused = await store.release("00000000-0000-4000-8000-000000000000", "0".repeat(64))
      .then(() => undefined, (e: unknown) => e);
    assert.ok(refused instanceof HoldError, String(refused));
    assert.equal(refused.code, "unknown_hold");
    assert.equal("status" in refused, false);
    assert.equal(holdStatus(refused.code), 404);
  } finally {
    kv.close();
  }
});

Deno.test("statusOf() answers a gateway refusal with the status RegistrationError used to carry", () => {
  // 400 invalid input, 404 no such upstream or tool, 409 a name or definition conflict, 403 an
  // operator signature that does not verify: the numbers the throw sites passed before.
  assert.deepEqual(REGISTRATION_STATUS, {
    invalid: 400,
    not_found: 404,
    conflict: 409,
    bad_signature: 403,
  });
  const e = new RegistrationError('No upstream named "x"', "not_found", "name");
  assert.equal(statusOf(e), 404);
  assert.equal(e.field, "name");
  assert.equal("status" in e, false);
});
