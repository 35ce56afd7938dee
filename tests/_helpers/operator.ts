/** An operator made with the real CLI (`warden keygen`), and its signed decisions (`warden approve|deny`). */
import assert from "node:assert/strict";
import { type CliResult, runCli } from "./cli.ts";

/** The files `warden keygen --out <dir>/op` wrote, and the public key read back from them. */
export interface CliOperator {
  readonly name: string;
  readonly publicKey: string;
  readonly keyFile: string;
}

/** Runs `warden keygen --out <dir>/op --name <name>` (asserted to exit 0). */
export async function keygenOperator(dir: string, name = "alice"): Promise<CliOperator> {
  const keygen = await runCli(["keygen", "--out", `${dir}/op`, "--name", name]);
  assert.equal(keygen.code, 0, keygen.stderr);
  const publicKey = (await Deno.readTextFile(`${dir}/op/operator.pub`)).trim();
  return { name, publicKey, keyFile: `${dir}/op/operator.key` };
}

/**
 * Writes `<dir>/policy.json`: `calculate` held for the operator, the concurrency limit off and
 * the per-principal rate `perPrincipalPerMinute` (0: off). Returns the file's path.
 */
export async function writeHeldCalculatePolicy(
  dir: string,
  operator: CliOperator,
  perPrincipalPerMinute = 0,
): Promise<string> {
  const path = `${dir}/policy.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      tools: { calculate: { hold: true } },
      operators: [{ name: operator.name, public_key: operator.publicKey }],
      rate_limits: {
        per_principal_per_minute: perPrincipalPerMinute,
        max_concurrent_per_principal: 0,
      },
    }),
  );
  return path;
}

/** Runs `warden <decision> <holdId> --key … --url … [--token …]`, without judging the outcome. */
export async function decideByCli(
  decision: "approve" | "deny",
  holdId: string,
  options: { keyFile: string; url: string; token?: string },
): Promise<CliResult> {
  return await runCli([
    decision,
    holdId,
    "--key",
    options.keyFile,
    "--url",
    options.url,
    ...(options.token ? ["--token", options.token] : []),
  ]);
}

/** {@link decideByCli}, asserted to exit 0 (stderr is the assertion's message). */
export async function decidedByCli(
  decision: "approve" | "deny",
  holdId: string,
  options: { keyFile: string; url: string; token?: string },
): Promise<CliResult> {
  const r = await decideByCli(decision, holdId, options);
  assert.equal(r.code, 0, r.stderr);
  return r;
}
