/**
 * The 2026-07-28 requestState conformance fixtures (`--conformance-fixtures`), called as the
 * conformance harness calls them: a confirmation asked for with a signed state, answered once the
 * retry brings both back, and refused when the state was tampered with or minted for another.
 */
import assert from "node:assert/strict";
import { spawnServer } from "../_helpers/server.ts";
import { modernMeta, postModern } from "../_helpers/raw.ts";

const CAPS = { elicitation: {} };

function call(base: string, name: string, extra: Record<string, unknown> = {}) {
  return postModern(base, "tools/call", { name, arguments: {}, ...extra }, {
    meta: modernMeta(CAPS),
  });
}

const CONFIRMED = { confirm: { action: "accept", content: { ok: true } } };

Deno.test("conformance fixtures: request_state and tampered_state ask, then answer a retry with their own state", async () => {
  const server = await spawnServer(["--kv", ":memory:", "--conformance-fixtures"]);
  try {
    for (
      const [fixture, done] of [
        ["test_input_required_result_request_state", "state-ok: confirmed"],
        ["test_input_required_result_tampered_state", "state-ok"],
      ]
    ) {
      const first = (await call(server.url, fixture)).json;
      const asked = first.result;
      assert.equal(asked.resultType, "input_required", JSON.stringify(first));
      assert.equal(asked.inputRequests.confirm.params.message, "Please confirm");
      assert.deepEqual(asked.inputRequests.confirm.params.requestedSchema.required, ["ok"]);
      assert.equal(typeof asked.requestState, "string");

      const retry = (await call(server.url, fixture, {
        inputResponses: CONFIRMED,
        requestState: asked.requestState,
      })).json;
      assert.deepEqual(
        retry.result?.content,
        [{ type: "text", text: done }],
        JSON.stringify(retry),
      );

      // Confirmed without the state, the fixture asks again.
      const stateless = (await call(server.url, fixture, { inputResponses: CONFIRMED })).json;
      assert.equal(stateless.result.resultType, "input_required");

      const tampered = (await call(server.url, fixture, {
        inputResponses: CONFIRMED,
        requestState: asked.requestState.slice(0, -2) +
          (asked.requestState.endsWith("A") ? "BB" : "AA"),
      })).json;
      assert.equal(tampered.error?.code, -32602, JSON.stringify(tampered));
      assert.match(tampered.error.message, /Invalid or expired requestState/);
    }
    // A state minted for one fixture is not accepted by the other.
    const minted = (await call(server.url, "test_input_required_result_request_state")).json.result;
    const crossed = (await call(server.url, "test_input_required_result_tampered_state", {
      inputResponses: CONFIRMED,
      requestState: minted.requestState,
    })).json;
    assert.equal(crossed.error?.code, -32602, JSON.stringify(crossed));
  } finally {
    await server.stop();
  }
});
