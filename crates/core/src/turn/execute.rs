//! Running the code: start it, stream its output (batched, capped, decoded without splitting
//! characters) until it exits, the deadline passes or the turn is cancelled. The code and files
//! are uploaded before, while the turn is provisioned (`upload.rs`).

use std::pin::pin;

use futures::future::{self, Either};
use futures::{FutureExt, StreamExt};

use super::utf8::Utf8StreamDecoder;
use super::{Ending, Turn, TurnSink};
use crate::providers::{
    Clock, Database, DatabaseProvider, ProcessEvent, ProcessEvents, ProcessRequest, ProviderError, SandboxHandle,
    SandboxProvider,
};
use crate::wire::event::EventBody;

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    /// Ends when the turn is cancelled (`Cancelled`) or its deadline passes (`TimedOut`): the work
    /// raced against it is stopped by being dropped.
    pub(super) async fn interrupted(&self) -> Ending {
        let until_deadline = self.deadline_unix_ms.saturating_sub(self.clock.now_ms());
        match future::select(pin!(self.control.cancelled()), self.clock.sleep(until_deadline)).await {
            Either::Left(_) => Ending::Cancelled,
            Either::Right(_) => Ending::TimedOut,
        }
    }

    /// Runs the uploaded code, stopping early at the deadline or on cancellation. Stopping is just
    /// dropping the work: the reap that follows kills the sandbox, and the process with it.
    pub(super) async fn execute_until_interrupted(
        &self,
        sandbox: &SandboxHandle,
        database: Option<&Database>,
    ) -> Ending {
        let work = pin!(self.execute(sandbox, database));
        let ending = match future::select(work, pin!(self.interrupted())).await {
            Either::Left((ending, _)) | Either::Right((ending, _)) => ending,
        };
        // Every way out of the run passes here, so the run's duration is taken here.
        if let Some(started) = self.run_started_at.get() {
            self.timings.borrow_mut().run_ms = Some(self.clock.now_ms() - started);
        }
        ending
    }

    /// Whether a broken-off process stream is the provider stopping the process at the turn's
    /// deadline. The provider's timer starts after this turn's (it counts from when it got the
    /// request), so its stop always comes at or after the deadline by this turn's clock.
    fn is_provider_deadline(&self) -> bool {
        self.clock.now_ms() >= self.deadline_unix_ms
    }

    async fn execute(&self, sandbox: &SandboxHandle, database: Option<&Database>) -> Ending {
        // The caller's variables, then mayfly's, whose names the spec keeps the caller from using.
        let mut env: Vec<(String, String)> = self.spec.env.clone();
        if let Some(database) = database {
            // The one place the URL with its password goes: the process's environment.
            env.push(("PG_URL".to_owned(), database.connection_url.clone()));
            env.push(("DATABASE_URL".to_owned(), database.connection_url.clone()));
        }
        let process = ProcessRequest {
            command: self.spec.language.command(),
            env,
            cwd: "/home/user".to_owned(),
            timeout_ms: self.deadline_unix_ms.saturating_sub(self.clock.now_ms()),
        };
        self.run_started_at.set(Some(self.clock.now_ms()));
        let mut events = match self.sandboxes.start(sandbox, process).await {
            Ok(events) => events,
            Err(error) => return Ending::Failed(format!("the code could not be started: {error}")),
        };
        let mut stdout = Utf8StreamDecoder::default();
        let mut stderr = Utf8StreamDecoder::default();
        // An item read ahead while batching output, to be handled next.
        let mut carried = None;
        let ending = loop {
            let next = match carried.take() {
                Some(next) => next,
                None => events.next().await,
            };
            let event = match next {
                Some(Ok(event)) => event,
                // The provider enforces the same deadline (E2B's `Connect-Timeout-Ms`) and may end
                // the stream a moment before this turn's own timer fires: that is a timeout too.
                Some(Err(_)) if self.is_provider_deadline() => break Ending::TimedOut,
                Some(Err(error)) => break Ending::Failed(format!("the process's output broke off: {error}")),
                None if self.is_provider_deadline() => break Ending::TimedOut,
                None => {
                    break Ending::Failed(format!("the process's output broke off: {}", ProviderError::StreamTruncated))
                }
            };
            match event {
                ProcessEvent::Started { pid } => self.emitter.emit(EventBody::ProcessStarted { pid }),
                ProcessEvent::Stdout(bytes) => {
                    let data = batch_output(&mut events, &mut carried, &mut stdout, &bytes, true);
                    self.emit_output(Stream::Stdout, data);
                }
                ProcessEvent::Stderr(bytes) => {
                    let data = batch_output(&mut events, &mut carried, &mut stderr, &bytes, false);
                    self.emit_output(Stream::Stderr, data);
                }
                ProcessEvent::Exited { exit_code } => break Ending::Exited(exit_code),
            }
            if self.emitter.is_closed() {
                break Ending::SinkClosed;
            }
        };
        // Whatever way the output ended, an incomplete character left over is shown as U+FFFD.
        self.emit_output(Stream::Stdout, stdout.finish());
        self.emit_output(Stream::Stderr, stderr.finish());
        if let Ending::Exited(exit_code) = ending {
            let ms = self.clock.now_ms() - self.run_started_at.get().unwrap_or(self.clock.now_ms());
            self.emitter.emit(EventBody::ProcessExited { exit_code, ms });
        }
        ending
    }
}

/// Output is sent as it comes, but chunks that are already waiting when one is read go out with it
/// as one event, up to this size. A slow consumer (a viewer, the log's storage) then sees fewer,
/// larger events instead of falling further behind; a fast one sees each chunk alone.
pub const OUTPUT_BATCH_BYTES: usize = 64 * 1024;

/// The text of `first` and of every chunk of the same stream that is ready now, up to
/// [`OUTPUT_BATCH_BYTES`]. Anything else that is ready is left in `carried` for the caller.
fn batch_output(
    events: &mut ProcessEvents<'_>,
    carried: &mut Option<Option<Result<ProcessEvent, ProviderError>>>,
    decoder: &mut Utf8StreamDecoder,
    first: &[u8],
    stdout: bool,
) -> String {
    let mut data = decoder.push(first);
    while data.len() < OUTPUT_BATCH_BYTES {
        // Polled once: only what has already arrived joins the batch, nothing waits for more.
        match events.next().now_or_never() {
            None => break,
            Some(Some(Ok(ProcessEvent::Stdout(more)))) if stdout => data.push_str(&decoder.push(&more)),
            Some(Some(Ok(ProcessEvent::Stderr(more)))) if !stdout => data.push_str(&decoder.push(&more)),
            Some(other) => {
                *carried = Some(other);
                break;
            }
        }
    }
    data
}

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    /// Emits output while the turn's output limit allows; the output that reaches the limit is cut
    /// on a character boundary, followed by one `output.truncated`, and later output is dropped.
    fn emit_output(&self, stream: Stream, mut data: String) {
        if data.is_empty() || self.output_truncated.get() {
            return;
        }
        let room = self.options.max_output_bytes.saturating_sub(self.output_bytes.get());
        let over = data.len() > room;
        if over {
            let mut cut = room;
            while !data.is_char_boundary(cut) {
                cut -= 1;
            }
            data.truncate(cut);
        }
        self.output_bytes.set(self.output_bytes.get() + data.len());
        if !data.is_empty() {
            self.emitter.emit(match stream {
                Stream::Stdout => EventBody::Stdout { data },
                Stream::Stderr => EventBody::Stderr { data },
            });
        }
        if over {
            self.output_truncated.set(true);
            self.emitter.emit(EventBody::OutputTruncated { kept_bytes: self.output_bytes.get() as u64 });
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}
