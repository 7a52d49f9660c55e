//! The turn's log and its viewers: every event is written, folded into the summary and sent to
//! each viewer, in that order; a viewer that joins gets the log so far and then the live events,
//! as a WebSocket (hibernatable) or as Server-Sent Events.

use std::time::Duration;

use mayfly_core::{ApiError, ErrorCode, Event};
use worker::{Request, Response, WebSocketPair};

use super::sse::SseViewer;
use super::{internal, Live, Turn};

/// How many viewers (WebSockets and event streams together) one turn serves at once: each holds
/// memory of the object's and a connection of the runtime's, which every turn shares.
const MAX_VIEWERS: usize = 16;
/// How often a silent event stream gets a comment.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

impl Turn {
    /// Logs `event`: folds it into the summary, writes both, and sends it to every viewer. The
    /// writes are issued before the sends, and the runtime's output gate holds the sends until
    /// the writes are durable, so no viewer sees an event that could be lost.
    pub(super) fn log(&self, event: Event) {
        let Ok(json) = serde_json::to_string(&event) else { return };
        let mut live = self.live.borrow_mut();
        // Whoever logs holds the turn in this instance: `/start`, or the alarm that took it up.
        let live = live.get_or_insert_with(Live::default);
        live.progress.apply(&event);
        self.write_event(&json, event.seq, &live.progress);
        let last = event.body.is_terminal();
        for ws in self.state.get_websockets() {
            let _ = ws.send_with_str(&json);
            if last {
                let _ = ws.close(Some(1000), Some("turn finished"));
            }
        }
        // A viewer that went away has dropped its receiver: its sender is forgotten here.
        live.streams.retain(|stream| stream.send(sse_frame(event.seq, &json)));
        if last {
            // Dropping the senders ends the response bodies: the stream ends with the turn.
            live.streams.clear();
        }
        live.log.push(event);
    }

    /// Everything logged so far with `seq > after`: storage merged with what this instance holds
    /// in memory (writes in flight are not listed yet), without duplicates.
    async fn logged_after(&self, after: u64) -> std::result::Result<Vec<Event>, ApiError> {
        let mut stored = self.stored_events(after).await.map_err(|err| internal(&err))?;
        if let Some(live) = self.live.borrow().as_ref() {
            let last = stored.last().map_or(after, |e| e.seq);
            stored.extend(live.log.iter().filter(|e| e.seq > last).cloned());
        }
        Ok(stored)
    }

    /// While the turn runs, sends every event-stream viewer a comment now and then: proxies close a
    /// silent stream (Cloudflare's after 100 s), and a viewer that left is only noticed when
    /// something is sent to it — then its place under [`MAX_VIEWERS`] is free again.
    pub(super) async fn keep_streams_alive(&self) {
        loop {
            worker::Delay::from(SSE_KEEPALIVE).await;
            let mut live = self.live.borrow_mut();
            let Some(live) = live.as_mut() else { return };
            live.streams.retain(|stream| stream.send(b": keepalive\n\n".to_vec()));
        }
    }

    /// Refuses a new viewer when the turn already has as many as it serves.
    fn check_viewers(&self) -> std::result::Result<(), ApiError> {
        let streams = self.live.borrow().as_ref().map_or(0, |live| live.streams.iter().filter(|s| s.is_open()).count());
        if self.state.get_websockets().len() + streams >= MAX_VIEWERS {
            let message = format!("the turn has {MAX_VIEWERS} viewers, the most it serves at once");
            return Err(ApiError::new(ErrorCode::TooManyRequests, message));
        }
        Ok(())
    }

    pub(super) async fn events(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        self.owned(req).await?;
        self.check_viewers()?;
        let header = |name: &str| req.headers().get(name).ok().flatten().unwrap_or_default();
        if header("Accept").contains("text/event-stream") {
            return self.event_source(req).await;
        }
        if !header("Upgrade").eq_ignore_ascii_case("websocket") {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the event stream is a WebSocket (send `Upgrade: websocket`) or Server-Sent Events \
                 (send `Accept: text/event-stream`)",
            ));
        }
        let events = self.logged_after(after_param(req)?).await?;
        // From here to the return nothing awaits: the replay and joining the fan-out happen in one
        // step, so no event is sent twice or missed in between.
        let pair = WebSocketPair::new().map_err(|err| internal(&err))?;
        let finished = events.last().is_some_and(|e| e.body.is_terminal());
        if !finished {
            self.state.accept_web_socket(&pair.server);
        } else {
            pair.server.accept().map_err(|err| internal(&err))?;
        }
        for event in &events {
            if let Ok(json) = serde_json::to_string(event) {
                let _ = pair.server.send_with_str(json);
            }
        }
        if finished {
            let _ = pair.server.close(Some(1000), Some("turn finished"));
        }
        let response = Response::from_websocket(pair.client).map_err(|err| internal(&err))?;
        // A browser that offered a subprotocol drops a handshake that does not pick one.
        if crate::auth::offers_ws_protocol(&header("Sec-WebSocket-Protocol")) {
            let headers = worker::Headers::new();
            headers.set("Sec-WebSocket-Protocol", crate::auth::WS_PROTOCOL).map_err(|err| internal(&err))?;
            return Ok(response.with_headers(headers));
        }
        Ok(response)
    }

    /// The event stream as Server-Sent Events: the replay, then live events, ending after
    /// `turn.finished`. `Last-Event-ID` (an `EventSource` reconnecting) counts like `after`.
    async fn event_source(&self, req: &Request) -> std::result::Result<Response, ApiError> {
        let events = self.logged_after(after_param(req)?.max(last_event_id(req)?)).await?;
        // As for WebSockets, nothing awaits between reading the log and joining the fan-out.
        let (viewer, body) = SseViewer::new();
        for event in &events {
            if let Ok(json) = serde_json::to_string(event) {
                viewer.replay(sse_frame(event.seq, &json));
            }
        }
        let finished = events.last().is_some_and(|e| e.body.is_terminal());
        if !finished {
            // This instance holds the turn from `/start` until it ends. A turn unfinished and not
            // held here was lost with its process: the alarm closes its log, and the viewer gets
            // what there is now.
            if let Some(live) = self.live.borrow_mut().as_mut() {
                live.streams.push(viewer);
            }
        }
        let headers = worker::Headers::new();
        let set = |name: &str, value: &str| headers.set(name, value).map_err(|err| internal(&err));
        set("Content-Type", "text/event-stream")?;
        set("Cache-Control", "no-cache")?;
        Response::from_stream(body).map(|r| r.with_headers(headers)).map_err(|err| internal(&err))
    }
}

fn after_param(req: &Request) -> std::result::Result<u64, ApiError> {
    let url = req.url().map_err(|err| internal(&err))?;
    match url.query_pairs().find(|(name, _)| name == "after") {
        None => Ok(0),
        Some((_, value)) => value
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "`after` must be a whole number (an event's seq)")),
    }
}

/// `Last-Event-ID`, 0 when absent.
fn last_event_id(req: &Request) -> std::result::Result<u64, ApiError> {
    match req.headers().get("Last-Event-ID").ok().flatten() {
        None => Ok(0),
        Some(value) => value.trim().parse().map_err(|_| {
            ApiError::new(ErrorCode::InvalidRequest, "`Last-Event-ID` must be a whole number (an event's seq)")
        }),
    }
}

/// One event as a Server-Sent Events frame: its seq as the id, its JSON as the data.
fn sse_frame(seq: u64, json: &str) -> Vec<u8> {
    format!("id: {seq}\ndata: {json}\n\n").into_bytes()
}
