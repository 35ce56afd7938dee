/**
 * Root confinement for everything that reads local files: which roots exist
 * (`resolveFileRoots`: policy `files.roots`, else `warden-files/` beside the
 * KV file) and how a path inside one is opened so that symbolic-link swaps,
 * hard links and Warden's own secrets cannot leak (`openConfined`).
 *
 * @module
 */
export {
  checkNotSecret,
  type Confined,
  ConfinementError,
  type ConfineOptions,
  isInside,
  openConfined,
  OPERATOR_KEY_FILE,
} from "./confine.ts";
export {
  confineVirtualPath,
  MAX_VIRTUAL_PATH_CHARS,
  MAX_VIRTUAL_SEGMENT_BYTES,
} from "./virtual_path.ts";
export { DEFAULT_FILES_DIR, FileRootError, type FileRoots, resolveFileRoots } from "./roots.ts";
