/**
 * `warden keygen`: makes an operator key pair.
 * @module
 */
import { generateOperatorKey } from "../governance/mod.ts";
import { type Config } from "../config.ts";
import { oneLine } from "./_common.ts";

/** `warden keygen --out DIR [--name NAME]`: an operator key pair. */
export async function keygenCommand(config: Readonly<Config>): Promise<number> {
  if (!config.out) {
    console.error("warden: keygen needs --out DIR");
    return 2;
  }
  const { keyFile, pubFile, publicKey } = await generateOperatorKey(
    config.operatorName ?? "operator",
  );
  try {
    await Deno.mkdir(config.out, { recursive: true });
  } catch (e) {
    console.error(`warden: cannot create --out directory ${config.out}: ${oneLine(e)}`);
    return 1;
  }
  const keyPath = `${config.out}/operator.key`;
  try {
    await Deno.writeTextFile(keyPath, keyFile, { mode: 0o600, createNew: true });
  } catch (e) {
    console.error(
      `warden: cannot write ${keyPath}: ${
        (e as Error).message
      } (an existing key is never overwritten)`,
    );
    return 1;
  }
  await Deno.writeTextFile(`${config.out}/operator.pub`, pubFile);
  console.log(`wrote ${keyPath} (private, mode 0600) and ${config.out}/operator.pub`);
  console.log(
    `add to the policy's "operators": ${
      JSON.stringify({ name: config.operatorName ?? "operator", public_key: publicKey })
    }`,
  );
  return 0;
}
