/**
 * Composition step: what runs while the server serves and how it stops — the metrics' sources,
 * the daily usage summary, the reaper (sessions, SSE records, published counts, expired holds,
 * lapsed in-flight counts), the checkpointer, the mirror check at start, and the shutdown order.
 * @module
 */
import type { Config } from "../config.ts";
import type { DeadlineScheduler, Logger } from "../lib/mod.ts";
import type { ExpiryWatch, Governance } from "../governance/mod.ts";
import type { Gateway } from "../gateway/mod.ts";
import type {
  LegacySseManager,
  ModernHandler,
  StreamableManager,
  TaskEngine,
  WebSocketManager,
} from "../mcp/mod.ts";
import type { OAuthServer } from "../oauth/mod.ts";
import type { EventBus } from "../services/mod.ts";
import type { BatchWriter } from "../store/mod.ts";
import {
  type Accounting,
  createDailySummary,
  type DailySummary,
  type KvLimiter,
  type Metrics,
} from "../usage/mod.ts";
import type { VaultStep } from "./vault.ts";

/** What {@link startBackground} runs over. */
export interface BackgroundDeps {
  readonly kv: Deno.Kv;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly startedAtMs: number;
  readonly vault: VaultStep;
  readonly governance: Governance;
  readonly limiter: KvLimiter;
  readonly accounting: Accounting;
  readonly metrics: Metrics;
  readonly streamable: StreamableManager;
  readonly sse: LegacySseManager;
  /** Publishes this instance's live session counts. */
  readonly publishSessions: () => Promise<void>;
  readonly reaperMs: number;
}

/** The running background work, stopped by {@link closeApp}. */
export interface Background {
  readonly usageSummary: DailySummary;
  readonly reaper: ReturnType<typeof setInterval>;
  readonly checkpointer: ReturnType<typeof setInterval>;
}

/** Starts the background work of a serving app. */
export function startBackground(deps: BackgroundDeps): Background {
  const { kv, config, logger, vault, governance, limiter, streamable, sse } = deps;
  const { ledger } = vault;
  const publishSessions = deps.publishSessions;
  deps.metrics.setSources({
    vaultSize: async () => (await ledger.head()).size,
    checkpointAgeMs: () => Date.now() - (vault.lastCheckpointMs() ?? deps.startedAtMs),
    holdsOpen: async () => (await governance.holds.listOpen(1000)).length,
    sessions: () => ({ streamable: streamable.liveCount, sse: sse.liveCount }),
    vaultCommits: () => ledger.commitStats(),
    worker: config.workerIndex,
  });
  const usageSummary = createDailySummary({
    kv,
    accounting: deps.accounting,
    append: vault.append,
    logger,
  });
  usageSummary.start();
  publishSessions().catch((e) => logger.warn("cannot publish session counts", { error: e }));
  const reaper = setInterval(() => {
    streamable.reap().catch((e) => logger.warn("session reaper failed", { error: e }));
    sse.refresh().catch((e) => logger.warn("cannot refresh SSE session records", { error: e }));
    publishSessions().catch((e) => logger.warn("cannot publish session counts", { error: e }));
    // A hold nobody looks at again still has its expiry sealed.
    governance.holds.sweepExpired().catch((e) =>
      logger.warn("cannot sweep expired holds", { error: e })
    );
    limiter.sweep().catch((e) => logger.warn("cannot sweep lapsed in-flight counts", { error: e }));
  }, deps.reaperMs);
  // A refusal repeats every tick until an operator acts: logged once a minute, not every tick.
  let lastSignErrorLogMs = -Infinity;
  const checkpointer = setInterval(() => {
    vault.checkpointIfNeeded().catch((e) => {
      const now = Date.now();
      if (now - lastSignErrorLogMs < 60_000) return;
      lastSignErrorLogMs = now;
      logger.error("cannot sign checkpoint", { error: e });
    });
  }, config.checkpointIntervalMs);
  if (config.checkpointMirror !== undefined) {
    ledger.checkMirror().then((m) => {
      if (!m.ok) {
        logger.error("the log does not match its checkpoint mirror: no checkpoint will be signed", {
          reason: m.reason,
        });
      }
    }).catch((e) => logger.error("cannot check the checkpoint mirror", { error: e }));
  }
  return { usageSummary, reaper, checkpointer };
}

/** Everything {@link closeApp} stops, closes or flushes. */
export interface ClosingParts {
  readonly background: Background;
  readonly holdExpiries: ExpiryWatch;
  readonly oauth?: OAuthServer;
  readonly events: EventBus;
  readonly gateway: Gateway;
  readonly sse: LegacySseManager;
  readonly websocket: WebSocketManager;
  readonly streamable: StreamableManager;
  readonly modern: ModernHandler;
  readonly tasks: TaskEngine;
  readonly writer: BatchWriter;
  readonly accounting: Accounting;
  readonly vault: VaultStep;
  readonly limiter: KvLimiter;
  readonly deadlines: DeadlineScheduler;
  readonly logger: Logger;
}

/** Stops the app: timers first, then the surfaces, then every buffered write, then a checkpoint. */
export async function closeApp(p: ClosingParts): Promise<void> {
  const { logger } = p;
  const { ledger } = p.vault;
  clearInterval(p.background.reaper);
  p.holdExpiries.close();
  p.oauth?.close();
  clearInterval(p.background.checkpointer);
  p.background.usageSummary.close();
  await p.events.close();
  await p.gateway.close();
  await p.sse.close();
  await p.websocket.close();
  await p.streamable.close();
  await p.modern.close();
  await p.tasks.close();
  await p.writer.flush();
  await p.accounting.close();
  await ledger.flush();
  await p.limiter.flush().catch((e) => logger.warn("cannot commit releases", { error: e }));
  // Every acknowledged entry is covered by a signed checkpoint before exit,
  // unless signing is refused (a log behind or forked from its mirror): then
  // the refusal is logged and shutdown goes on rather than hang.
  try {
    await ledger.signCheckpoint();
  } catch (e) {
    logger.error("cannot sign the final checkpoint", { error: e });
  } finally {
    p.deadlines.close();
  }
}
