/** The real CLI plus the test-only tools, for child-process tests. */
import { main } from "../../main.ts";
import { testTools } from "./tools.ts";

Deno.exit(await main(Deno.args, { extraTools: testTools }));
