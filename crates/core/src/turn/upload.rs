//! Uploading the code and the files: all at once, as soon as the sandbox is ready, while the
//! database may still be being made (`provision.rs`; a fork's after its copy, `session.rs`); only
//! the process start waits for the database's URL.

use std::pin::pin;

use bytes::Bytes;
use futures::future::{self, Either};

use super::{Ending, Turn, TurnSink};
use crate::providers::{Clock, DatabaseProvider, SandboxHandle, SandboxProvider};
use crate::wire::event::EventBody;

impl<S, D, C, K> Turn<'_, S, D, C, K>
where
    S: SandboxProvider,
    D: DatabaseProvider,
    C: Clock,
    K: TurnSink,
{
    /// Uploads the code and every file, stopping early on cancellation or at the deadline: `None`
    /// once everything is in the sandbox, else how the turn ends.
    pub(super) async fn upload_until_interrupted(&self, sandbox: &SandboxHandle) -> Option<Ending> {
        let started = self.clock.now_ms();
        let uploaded = match future::select(pin!(self.upload(sandbox)), pin!(self.interrupted())).await {
            Either::Left((uploaded, _)) => uploaded,
            Either::Right((ending, _)) => Err(ending),
        };
        if uploaded.is_ok() {
            self.timings.borrow_mut().upload_ms = Some(self.clock.now_ms() - started);
        }
        uploaded.err()
    }

    /// Every upload at once, each told by its own `code.uploaded` as it lands; the first that
    /// fails, in the spec's order, fails the turn.
    async fn upload(&self, sandbox: &SandboxHandle) -> Result<(), Ending> {
        let code = std::iter::once((self.spec.language.code_path().to_owned(), self.spec.code.as_str()));
        let files = self.spec.files.iter().map(|file| (file.sandbox_path(), file.content.as_str()));
        let uploads = code.chain(files).map(|(path, content)| async move {
            let bytes = Bytes::copy_from_slice(content.as_bytes());
            match self.sandboxes.upload(sandbox, &path, bytes).await {
                Ok(()) => {
                    self.emitter.emit(EventBody::CodeUploaded { path, bytes: content.len() as u64 });
                    Ok(())
                }
                Err(error) => Err(format!("{path} could not be uploaded: {error}")),
            }
        });
        if let Some(Err(error)) = future::join_all(uploads).await.into_iter().find(Result::is_err) {
            return Err(Ending::Failed(error));
        }
        if self.emitter.is_closed() {
            return Err(Ending::SinkClosed);
        }
        Ok(())
    }
}
