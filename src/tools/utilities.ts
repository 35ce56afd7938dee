/**
 * The utility tool family (SPEC §5 "Utilities"): time, calculator, UUIDs and
 * strings. Each is stateless apart from the v7 UUID ordering, so a fault in
 * one cannot leave another in a bad state.
 *
 * @module
 */
import { calculateTool } from "./calculator.ts";
import { transformStringTool } from "./string.ts";
import { convertTimeTool, getTimeTool } from "./time.ts";
import { generateUuidTool, validateUuidTool } from "./uuid.ts";

/** The six utility tools, in the order SPEC.md lists them. */
export const utilityTools = [
  getTimeTool,
  convertTimeTool,
  calculateTool,
  generateUuidTool,
  validateUuidTool,
  transformStringTool,
] as const;
