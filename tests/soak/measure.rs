//! The soak's instruments: one sample of every component's memory, the worker's own memory over
//! wrangler's inspector, and Postgres's client connections.

use std::collections::BTreeMap;
use std::time::Instant;

use mayfly_e2e::inspector::Inspector;
use mayfly_e2e::procfs::pss_kib;
use mayfly_e2e::SeparateProcessStack;

/// One memory and connection sample.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Sample {
    pub(crate) at_s: f64,
    pub(crate) phase: &'static str,
    /// Proportional resident memory per process group, and the worker's heap and wasm memory.
    pub(crate) memory_kib: BTreeMap<&'static str, u64>,
    /// Postgres client connections of turns' database roles.
    pub(crate) turn_connections: i64,
    /// Postgres client connections of everyone else: scratchdb's admin pool.
    pub(crate) admin_connections: i64,
}

/// scratchdb's admin pool holds at most this many connections (its `admin_connections` default).
pub(crate) const ADMIN_POOL_MAX: i64 = 8;

/// The worker's JavaScript heap after a collection. workerd's resident memory is the runtime's and
/// the worker's together, and keeps its high-water mark (workerd's allocator returns nothing to
/// the system), so the worker is judged by its own memory and workerd's rows are reported.
const WORKER_HEAP: &str = "worker: JavaScript heap";

/// The worker's Rust side: the linear memory of its wasm instances.
const WORKER_WASM: &str = "worker: wasm memory";

/// Judged flat or not, in the order the report lists them.
pub(crate) const JUDGED: [&str; 6] = [WORKER_HEAP, WORKER_WASM, "wrangler", "sandboxd", "scratchdb", "postgres"];

/// The local Workers runtime's processes: reported, not judged (see docs/reliability.md).
pub(crate) const RUNTIME: [&str; 2] = ["workerd: worker", "workerd: proxy"];

pub(crate) fn sample(
    stack: &SeparateProcessStack,
    started: Instant,
    phase: &'static str,
    inspector: &mut Option<Inspector>,
) -> Sample {
    let mut memory_kib: BTreeMap<&'static str, u64> =
        stack.pids().into_iter().map(|(name, pids)| (name, pids.into_iter().map(pss_kib).sum())).collect();
    // A session that broke is opened again at the next sample; a sample without it has no heap row.
    if inspector.is_none() {
        *inspector = Inspector::connect(stack.inspector_port()).map_err(|err| eprintln!("inspector: {err:#}")).ok();
    }
    if let Some(session) = inspector.as_mut() {
        // The wasm memories are counted first: finding them collects garbage, so the heap read
        // right after is what the worker holds live.
        match session.wasm_memory().and_then(|wasm| Ok((wasm, session.heap_usage()?))) {
            Ok((wasm, heap)) => {
                memory_kib.insert(WORKER_WASM, wasm / 1024);
                memory_kib.insert(WORKER_HEAP, heap.used / 1024);
            }
            Err(err) => {
                eprintln!("inspector: {err:#}");
                *inspector = None;
            }
        }
    }
    let (turn_connections, admin_connections) = stack.postgres_connections_by_kind().unwrap_or((-1, -1));
    Sample { at_s: started.elapsed().as_secs_f64(), phase, memory_kib, turn_connections, admin_connections }
}
