/**
 * Health: the vitals `check_vital` reports and the readiness `GET /health?ready` answers, over
 * the stores they read (passed in, never opened here).
 * @module
 */
export {
  createVitals,
  type UpstreamVitals,
  type Vitals,
  type VitalsReader,
  type VitalsSources,
} from "./vitals.ts";
export {
  checkReadiness,
  type Readiness,
  type ReadinessCheck,
  type ReadinessSources,
} from "./readiness.ts";
