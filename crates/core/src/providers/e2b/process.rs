//! Running a process: `process.Process/Start` (`docs/protocols/e2b.md` §2.5), sent once, its
//! streamed Connect frames turned into [`ProcessEvent`]s, and a stream that breaks off told apart
//! from a sandbox that is gone.

use std::collections::VecDeque;

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;

use super::error::{rpc_error, E2bError, E2bErrorKind};
use super::{protocol, E2bClient, PROVIDER};
use crate::providers::http::{HttpBody, HttpClient, Method, StatusCode};
use crate::providers::provider_http::header_name;
use crate::providers::{Clock, ProcessEvent, ProcessEvents, ProcessRequest, ProviderError, SandboxHandle};
use crate::wire::connect::{self, Decoder};
use crate::wire::e2b::{self, DataEvent, EndStream, ProcessConfig, StartRequest, StreamMessage};

impl<H: HttpClient, C: Clock> E2bClient<H, C> {
    pub(super) async fn start_process<'a>(
        &'a self,
        sandbox: &'a SandboxHandle,
        process: ProcessRequest,
    ) -> Result<ProcessEvents<'a>, ProviderError> {
        let start = StartRequest {
            process: ProcessConfig {
                cmd: "/bin/bash".into(),
                // A login shell, as the SDKs run commands: the template's profile sets PATH.
                args: vec!["-l".into(), "-c".into(), process.command],
                envs: process.env.into_iter().collect(),
                cwd: (!process.cwd.is_empty()).then_some(process.cwd),
            },
            tag: None,
            // Batch code must not hang reading a stdin nobody writes.
            stdin: Some(false),
        };
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.config.user));
        let mut request = self
            .envd(Method::POST, sandbox, "process.Process/Start")?
            .with_header(header_name("content-type"), "application/connect+json".parse().expect("static"))
            .with_header(header_name("connect-protocol-version"), "1".parse().expect("static"))
            .with_header(header_name("keepalive-ping-interval"), self.config.keepalive_interval_s.into())
            .with_header(header_name("authorization"), self.http.header("Authorization", &format!("Basic {basic}"))?)
            .with_body(connect::encode_json(&start));
        // `0` would be an already-expired deadline; no header means envd sets none.
        if process.timeout_ms > 0 {
            request = request.with_header(header_name("connect-timeout-ms"), process.timeout_ms.into());
        }
        // Sent once: a retried Start could run the agent's code twice.
        let response =
            self.http.send_once(request).await.map_err(|source| ProviderError::Http { provider: PROVIDER, source })?;
        if !response.status.is_success() {
            return Err(self.http.error_of(response).await);
        }
        if let Some(content_type) = response.headers.get("content-type") {
            let content_type = content_type.to_str().unwrap_or("");
            if !content_type.starts_with("application/connect+json") {
                return Err(protocol(format!("process stream has content type {content_type:?}")));
            }
        }
        let stream = StartStream {
            client: self,
            sandbox,
            body: response.body,
            decoder: Decoder::default(),
            queue: VecDeque::new(),
            started: false,
            exit_code: None,
            finished: false,
        };
        Ok(futures::stream::unfold(stream, |mut stream| async move {
            let event = stream.next_event().await?;
            Some((event, stream))
        })
        .boxed_local())
    }

    /// What a process stream that broke off without its end-stream frame means: `GET /health` on
    /// envd tells a sandbox that is gone (502 through the proxy) from a cut connection.
    async fn truncated(&self, sandbox: &SandboxHandle) -> ProviderError {
        let Ok(probe) = self.envd(Method::GET, sandbox, "health") else {
            return ProviderError::StreamTruncated;
        };
        match self.http.send_once(probe).await {
            Ok(response) if response.status == StatusCode::BAD_GATEWAY => ProviderError::from(E2bError {
                kind: E2bErrorKind::SandboxGone,
                status: 502,
                message: "the sandbox was killed or expired while the process ran".into(),
            }),
            _ => ProviderError::StreamTruncated,
        }
    }
}

/// Turns `process.Process/Start`'s streamed body into [`ProcessEvent`]s.
struct StartStream<'a, H, C> {
    client: &'a E2bClient<H, C>,
    sandbox: &'a SandboxHandle,
    body: HttpBody,
    decoder: Decoder,
    /// Events decoded from the chunks read so far, not yet handed out.
    queue: VecDeque<Result<ProcessEvent, ProviderError>>,
    started: bool,
    exit_code: Option<i32>,
    /// Set after the end-stream frame or the first error: nothing more is read.
    finished: bool,
}

impl<H: HttpClient, C: Clock> StartStream<'_, H, C> {
    async fn next_event(&mut self) -> Option<Result<ProcessEvent, ProviderError>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.finished {
                return None;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.decoder.push(&chunk);
                    self.drain_frames();
                }
                // The body broke off or ended without the end-stream frame: never a success.
                Some(Err(_)) | None => {
                    self.finished = true;
                    let error = self.client.truncated(self.sandbox).await;
                    self.queue.push_back(Err(error));
                }
            }
        }
    }

    fn fail(&mut self, error: ProviderError) {
        self.queue.push_back(Err(error));
        self.finished = true;
    }

    fn drain_frames(&mut self) {
        while !self.finished {
            match self.decoder.next_frame() {
                Ok(None) => return,
                Err(error) => self.fail(protocol(error.to_string())),
                Ok(Some(frame)) if frame.is_end_stream() => self.end_stream(&frame.payload),
                Ok(Some(frame)) => {
                    if let Err(error) = self.message(&frame.payload) {
                        self.fail(error);
                    }
                }
            }
        }
    }

    fn end_stream(&mut self, payload: &[u8]) {
        self.finished = true;
        let end: EndStream = match serde_json::from_slice(payload) {
            Ok(end) => end,
            Err(error) => return self.fail(protocol(format!("end-stream frame: {error}"))),
        };
        match (end.error, self.exit_code) {
            (Some(error), _) => self.fail(rpc_error(&error)),
            (None, Some(exit_code)) => self.queue.push_back(Ok(ProcessEvent::Exited { exit_code })),
            (None, None) => self.fail(protocol("the process stream ended without an end event")),
        }
    }

    fn message(&mut self, payload: &[u8]) -> Result<(), ProviderError> {
        let message: StreamMessage =
            serde_json::from_slice(payload).map_err(|error| protocol(format!("process event: {error}")))?;
        let event = message.event;
        if !self.started && !matches!(event, e2b::ProcessEvent::Start(_)) {
            return Err(protocol("the process stream did not begin with a start event"));
        }
        if self.exit_code.is_some() {
            return Err(protocol("the process stream went on after its end event"));
        }
        match event {
            e2b::ProcessEvent::Start(_) if self.started => return Err(protocol("a second start event")),
            e2b::ProcessEvent::Start(start) => {
                self.started = true;
                self.queue.push_back(Ok(ProcessEvent::Started { pid: start.pid }));
            }
            e2b::ProcessEvent::Data(DataEvent::Stdout(data)) => {
                self.queue.push_back(Ok(ProcessEvent::Stdout(Bytes::from(data.0))));
            }
            e2b::ProcessEvent::Data(DataEvent::Stderr(data)) => {
                self.queue.push_back(Ok(ProcessEvent::Stderr(Bytes::from(data.0))));
            }
            // mayfly never asks for a terminal, and keepalives only keep intermediaries from
            // closing an idle connection.
            e2b::ProcessEvent::Data(DataEvent::Pty(_)) | e2b::ProcessEvent::Keepalive(_) => {}
            // `exitCode` is omitted when 0 (protojson); the wire type defaults it.
            e2b::ProcessEvent::End(end) => self.exit_code = Some(end.exit_code),
        }
        Ok(())
    }
}
