//! TypeScript types for the JavaScript package: every event and every body its methods take and
//! answer, as core serializes them. wasm-bindgen writes [`DEFINITIONS`] into the package's
//! `.d.ts`; the tests below hold it to core's types, event by event and field by field, so a
//! new event or field fails here until it is written down.

/// The package's types, one declaration a line (the tests read them back).
pub const DEFINITIONS: &str = r#"
/** One event of a turn: `seq` (1, 2, 3, … without gaps), `at_ms` (since the turn was accepted) and the fields of its `type`. */
export type TurnEvent = { seq: number; at_ms: number } & TurnEventBody;
/** Every event type with its fields. */
export type TurnEventBody =
  | { type: "turn.accepted"; turn_id: string; deadline_ms: number }
  | { type: "sandbox.creating"; template: string }
  | { type: "sandbox.ready"; sandbox_id: string; ms: number }
  | { type: "database.creating"; from?: string }
  | { type: "database.ready"; ms: number; host: string; database: string }
  | { type: "database.copying"; from: string }
  | { type: "database.copied"; ms: number; bytes: number }
  | { type: "database.seeding"; bytes: number }
  | { type: "database.seeded"; ms: number }
  | { type: "database.summary"; summary?: DatabaseSummary; diff?: SummaryDiff; error?: string }
  | { type: "database.checkpointed"; keep_until_unix_ms: number }
  | { type: "code.uploaded"; path: string; bytes: number }
  | { type: "process.started"; pid: number }
  | { type: "stdout"; data: string }
  | { type: "stderr"; data: string }
  | { type: "output.truncated"; kept_bytes: number }
  | { type: "process.exited"; exit_code: number; ms: number }
  | { type: "sandbox.reaped"; ms: number }
  | { type: "database.reaped"; ms: number }
  | { type: "database.kept"; claim: ClaimInfo }
  | { type: "reap.failed"; resource: Resource; error: string; retry_at: number }
  | { type: "turn.finished"; outcome: Outcome; timings: Timings; error?: string };
export type TurnEventType = TurnEventBody["type"];
export type Outcome = "succeeded" | "failed" | "cancelled" | "timed_out";
export type TurnState = "accepted" | "provisioning" | "running" | "reaping" | "finished";
export type Resource = "sandbox" | "database";
export type ReapState = "live" | "reaping" | "reaped" | "kept" | "checkpointed" | "failed";
export type Language = "python" | "bash" | "node";
export interface ClaimInfo { claim_url: string; upgrade_jwt?: string; expires_at?: string; instructions: string }
export interface Timings { sandbox_ms?: number; database_ms?: number; provision_ms?: number; upload_ms?: number; copy_ms?: number; seed_ms?: number; run_ms?: number; reap_ms?: number; total_ms: number }
export interface CreateTurnRequest { code: string; language?: Language; files?: Record<string, string>; template?: string; timeout_s?: number; database?: boolean | DatabaseOptions; checkpoint?: CheckpointRequest; env?: Record<string, string> }
export interface DatabaseOptions { from?: string; seed_sql?: string }
export interface CheckpointRequest { keep_s?: number }
export interface CheckpointView { turn_id: string; live: boolean; keep_until_unix_ms: number; limit_unix_ms: number; summary?: DatabaseSummary }
export interface DatabaseSummary { tables: TableSummary[]; bytes: number; truncated?: boolean }
export interface TableSummary { name: string; rows: number; columns: string[] }
export interface SummaryDiff { parent_turn_id: string; added: string[]; dropped: string[]; altered: string[]; rows: RowDelta[]; bytes_before: number; bytes_after: number }
export interface RowDelta { table: string; before: number; after: number }
export interface CreateTurnResponse { turn_id: string; events_url: string; status_url: string }
export interface ResourceView { resource: Resource; id?: string; reap: ReapState; deadline_unix_ms: number; error?: string }
export interface SpecView { language: Language; template: string; timeout_s: number; database: boolean; code: string; code_bytes: number; code_elided: boolean; files: string[]; env: string[]; from?: string; seed_sql_bytes?: number; checkpoint_keep_s?: number }
export interface TurnDetail { turn_id: string; created_unix_ms: number; state: TurnState; outcome?: Outcome; error?: string; exit_code?: number; spec: SpecView; timings: Timings; resources: ResourceView[]; events: number; checkpoint?: CheckpointView }
export interface KeepResponse { claim: ClaimInfo; connection_url: string }
/** How the event stream's connection is doing, for `EventsOptions.onStatus`. */
export type StreamStatus = { state: "connected"; after: number } | { state: "reconnecting"; attempt: number; after: number; delay_ms: number };
/** `after`: follow from the event after this `seq`; `signal`: stop following (the promise resolves with `undefined`). */
export interface EventsOptions { after?: number; onStatus?: (status: StreamStatus) => void; signal?: AbortSignal }
/** What every method of `MayflyClient` rejects with: the API's `status` and `code` when it answered. */
export interface MayflyError extends Error { name: "MayflyError"; status?: number; code?: string }
"#;

#[cfg(test)]
mod tests;
