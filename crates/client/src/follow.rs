//! The event stream that resumes by itself: [`crate::resume::Resume`] decides, a [`Backend`]
//! does the I/O. One connection at a time; when it drops, the stream says so, waits as the
//! policy says, and opens the next one after the last event taken.

use std::time::Duration;

use futures::{Stream, StreamExt};
use mayfly_core::Event;

use crate::backend::Backend;
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::resume::{Next, Resume, Take};

/// What a followed stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A connection opened; it carries the events after `after`.
    Connected { after: u64 },
    /// The next event of the turn.
    Event(Event),
    /// The connection dropped (or could not be opened): attempt `attempt` follows after
    /// `delay`, asking for the events after `after`.
    Reconnecting { attempt: u32, after: u64, delay: Duration },
}

/// The stream's state between two items.
struct Follower<B: Backend> {
    client: Client<B>,
    turn_id: String,
    resume: Resume,
    frames: Option<B::Frames>,
    /// What to do before the next attempt: wait, after asking the API about the turn or not.
    pending: Option<(Duration, bool)>,
    over: bool,
}

/// A turn's events, as a [`Client`] follows them.
impl<B: Backend> Client<B> {
    /// The turn's events from the first, each once and in order, reconnecting after the last one
    /// whenever a connection drops; the stream ends after `turn.finished`, or with the error that
    /// ended it (the API refused the key or the turn, or the retry policy ran out).
    pub fn events(&self, turn_id: &str) -> impl Stream<Item = Result<Event>> + Unpin + 'static {
        self.follow(turn_id, 0).filter_map(|update| {
            futures::future::ready(match update {
                Ok(Update::Event(event)) => Some(Ok(event)),
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            })
        })
    }

    /// The events after `after`, with the connection's ups and downs between them, for a view
    /// that shows them.
    pub fn follow(&self, turn_id: &str, after: u64) -> impl Stream<Item = Result<Update>> + Unpin + 'static {
        follow(self.clone(), turn_id.to_owned(), Resume::after(after, self.policy))
    }
}

fn follow<B: Backend>(
    client: Client<B>,
    turn_id: String,
    resume: Resume,
) -> impl Stream<Item = Result<Update>> + Unpin + 'static {
    let follower = Follower { client, turn_id, resume, frames: None, pending: None, over: false };
    // Boxed so that callers can `.next()` it as it is.
    Box::pin(futures::stream::unfold(follower, |mut follower| async move {
        let item = follower.step().await?;
        Some((item, follower))
    }))
}

impl<B: Backend> Follower<B> {
    async fn step(&mut self) -> Option<Result<Update>> {
        loop {
            if self.over {
                return None;
            }
            let Some(frames) = self.frames.as_mut() else {
                match self.open().await {
                    Ok(update) => return Some(Ok(update)),
                    Err(err) => return self.dropped(Some(err)),
                }
            };
            let frame = frames.next().await;
            match frame {
                Some(Ok(text)) => match self.resume.frame(&text) {
                    Take::Deliver(event) => {
                        if self.resume.is_finished() {
                            // The last event: the connection is closed, not left to the server.
                            self.frames = None;
                            self.over = true;
                        }
                        return Some(Ok(Update::Event(event)));
                    }
                    Take::Skip => {}
                    Take::Reopen => {
                        self.frames = None;
                        return self.dropped(None);
                    }
                },
                Some(Err(err)) => {
                    self.frames = None;
                    return self.dropped(Some(err));
                }
                None => {
                    self.frames = None;
                    return self.dropped(None);
                }
            }
        }
    }

    /// Waits as the last failure asked, then opens the next connection.
    async fn open(&mut self) -> Result<Update> {
        if let Some((delay, check)) = self.pending.take() {
            if check {
                let answer = self.client.detail(&self.turn_id).await.map(drop);
                if let Some(refusal) = self.resume.checked(answer) {
                    return Err(refusal);
                }
            }
            self.client.backend.sleep(delay).await;
        }
        let after = self.resume.last_seq();
        let client = &self.client;
        let frames = client.backend.open_events(&client.endpoint, &client.key, &self.turn_id, after).await?;
        self.resume.opened();
        self.frames = Some(frames);
        Ok(Update::Connected { after })
    }

    fn dropped(&mut self, why: Option<ClientError>) -> Option<Result<Update>> {
        match self.resume.dropped(why) {
            Next::Done => {
                self.over = true;
                None
            }
            Next::Retry { attempt, delay, check } => {
                self.pending = Some((delay, check));
                Some(Ok(Update::Reconnecting { attempt, after: self.resume.last_seq(), delay }))
            }
            Next::GiveUp(err) => {
                self.over = true;
                Some(Err(err))
            }
        }
    }
}

#[cfg(test)]
mod tests;
