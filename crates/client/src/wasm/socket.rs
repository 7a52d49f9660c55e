//! A turn's event stream over the platform's `WebSocket`, held so that no callback of it can run
//! after it is dropped: dropping it unsets the socket's handlers before their closures go, then
//! closes it. (A socket dropped after `turn.finished` still gets its close event from the
//! runtime; a handler left behind would call a freed closure, which Node.js reports as an
//! uncaught error.)

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::error::{ClientError, Result};

/// What the socket's handlers report, in the order the runtime delivers it.
enum Signal {
    Open,
    Text(String),
    /// An error or a close: the stream ends after it.
    End,
}

pub(super) struct Socket {
    ws: WebSocket,
    signals: mpsc::UnboundedReceiver<Signal>,
    ended: bool,
    _handlers: Handlers,
}

/// The closures the socket's handlers point at; they live exactly as long as the [`Socket`].
struct Handlers {
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _error: Closure<dyn FnMut(Event)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Opens a socket to `url` offering `protocols` and waits for its handshake: `Ok` once open,
    /// an error when it was refused or failed.
    pub(super) async fn open(url: &str, protocols: &[String]) -> Result<Socket> {
        let offered = js_sys::Array::new();
        for protocol in protocols {
            offered.push(&protocol.into());
        }
        let ws = WebSocket::new_with_str_sequence(url, &offered)
            .map_err(|err| ClientError::Transport(format!("cannot open the event stream: {err:?}")))?;
        let (sender, signals) = mpsc::unbounded();
        let send = move |signal| {
            let _ = sender.unbounded_send(signal);
        };
        let handlers = Handlers {
            _open: Closure::new({
                let send = send.clone();
                move |_: Event| send(Signal::Open)
            }),
            _message: Closure::new({
                let send = send.clone();
                move |event: MessageEvent| {
                    // Text frames only: the API sends one event as JSON per text message.
                    if let Some(text) = event.data().as_string() {
                        send(Signal::Text(text));
                    }
                }
            }),
            _error: Closure::new({
                let send = send.clone();
                move |_: Event| send(Signal::End)
            }),
            _close: Closure::new(move |_: CloseEvent| send(Signal::End)),
        };
        ws.set_onopen(Some(handlers._open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(handlers._message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(handlers._error.as_ref().unchecked_ref()));
        ws.set_onclose(Some(handlers._close.as_ref().unchecked_ref()));
        let mut socket = Socket { ws, signals, ended: false, _handlers: handlers };
        match socket.signals.next().await {
            Some(Signal::Open) => Ok(socket),
            // A refused handshake does not say why; the resume asks the API after a few.
            _ => Err(ClientError::Transport("the event stream was refused".to_owned())),
        }
    }
}

impl Stream for Socket {
    type Item = Result<String>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<String>>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            match self.signals.poll_next_unpin(cx) {
                Poll::Ready(Some(Signal::Text(text))) => return Poll::Ready(Some(Ok(text))),
                Poll::Ready(Some(Signal::Open)) => continue,
                // An error or a close ends the stream: the resume reopens it.
                Poll::Ready(Some(Signal::End) | None) => self.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
