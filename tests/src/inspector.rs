//! The worker's own memory, read from its V8 isolate over `wrangler dev`'s inspector (the Chrome
//! DevTools protocol): its JavaScript heap and its wasm instances' linear memory. workerd's
//! resident memory is the runtime's and the worker's together; these are the worker's alone,
//! which is what the soak judges the worker by.

use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tungstenite::{Message, WebSocket};

/// One DevTools session with the worker's isolate, kept open between samples.
#[derive(Debug)]
pub struct Inspector {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// The worker's execution context, as `Runtime.enable` announces it.
    context_id: Option<i64>,
}

/// The isolate's heap, as V8 counts it.
#[derive(Debug, Clone, Copy)]
pub struct HeapUsage {
    /// Bytes of live and not yet collected objects on the JavaScript heap.
    pub used: u64,
    /// Bytes the heap has reserved.
    pub total: u64,
}

#[derive(Deserialize)]
struct Target {
    #[serde(rename = "webSocketDebuggerUrl")]
    web_socket_debugger_url: String,
}

impl Inspector {
    /// Connects to the first (with one worker, the only) target of the inspector on `port`.
    pub fn connect(port: u16) -> anyhow::Result<Inspector> {
        let targets: Vec<Target> = ureq::get(&format!("http://127.0.0.1:{port}/json"))
            .timeout(Duration::from_secs(5))
            .call()
            .context("the inspector lists its targets")?
            .into_json()?;
        let target = targets.into_iter().next().context("the inspector lists no target")?;
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        // A runtime that stops answering ends the sample instead of hanging the soak.
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let (socket, _) = tungstenite::client(target.web_socket_debugger_url.as_str(), stream)
            .map_err(|err| anyhow::anyhow!("the inspector's WebSocket: {err}"))?;
        let mut inspector = Inspector { socket, next_id: 1, context_id: None };
        // Without it the session knows no execution context to evaluate in.
        inspector.call("Runtime.enable", serde_json::json!({}))?;
        Ok(inspector)
    }

    /// `Runtime.getHeapUsage`: what the heap holds now, garbage included unless a collection has
    /// just run (as [`Inspector::wasm_memory`] makes one).
    pub fn heap_usage(&mut self) -> anyhow::Result<HeapUsage> {
        #[derive(Deserialize)]
        struct Usage {
            #[serde(rename = "usedSize")]
            used: f64,
            #[serde(rename = "totalSize")]
            total: f64,
        }
        let result = self.call("Runtime.getHeapUsage", serde_json::json!({}))?;
        let usage: Usage = serde_json::from_value(result)?;
        Ok(HeapUsage { used: usage.used as u64, total: usage.total as u64 })
    }

    /// Bytes of linear memory of every WebAssembly instance alive in the isolate: the Rust side of
    /// the worker, which the JavaScript heap does not count.
    pub fn wasm_memory(&mut self) -> anyhow::Result<u64> {
        // Every object the session names stays alive until its group is released, so that is
        // done whatever happens in between.
        const GROUP: &str = "mayfly-memory-sample";
        let result = self.wasm_memory_in(GROUP);
        let released = self.call("Runtime.releaseObjectGroup", serde_json::json!({ "objectGroup": GROUP }));
        let bytes = result?;
        released?;
        Ok(bytes)
    }

    fn wasm_memory_in(&mut self, group: &str) -> anyhow::Result<u64> {
        let object_id = |answer: &serde_json::Value, path: &str| -> anyhow::Result<String> {
            answer
                .pointer(path)
                .and_then(|id| id.as_str())
                .map(str::to_owned)
                .with_context(|| format!("no {path} in {answer}"))
        };
        let prototype = self.call(
            "Runtime.evaluate",
            serde_json::json!({
                "expression": "WebAssembly.Memory.prototype",
                "objectGroup": group,
                "contextId": self.context_id.context("no execution context was announced")?,
            }),
        )?;
        // `queryObjects` walks the heap (after a collection) for every object with the prototype.
        let memories = self.call(
            "Runtime.queryObjects",
            serde_json::json!({ "prototypeObjectId": object_id(&prototype, "/result/objectId")?, "objectGroup": group }),
        )?;
        let total = self.call(
            "Runtime.callFunctionOn",
            serde_json::json!({
                "objectId": object_id(&memories, "/objects/objectId")?,
                "functionDeclaration": "function () { return this.reduce((sum, memory) => sum + memory.buffer.byteLength, 0); }",
                "returnByValue": true,
                "objectGroup": group,
            }),
        )?;
        total.pointer("/result/value").and_then(|v| v.as_f64()).map(|bytes| bytes as u64).context("no sum of memories")
    }

    fn call(&mut self, method: &str, params: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let id = self.next_id;
        self.next_id += 1;
        let request = serde_json::json!({ "id": id, "method": method, "params": params });
        self.socket.send(Message::text(request.to_string()))?;
        loop {
            let text = match self.socket.read()? {
                Message::Text(text) => text,
                Message::Close(_) => bail!("the inspector closed the session"),
                _ => continue,
            };
            // Notifications (no id) and answers to other calls are skipped, but for the context.
            let mut answer: serde_json::Value = serde_json::from_str(text.as_str())?;
            if answer.get("method").and_then(|m| m.as_str()) == Some("Runtime.executionContextCreated") {
                self.context_id = answer.pointer("/params/context/id").and_then(|id| id.as_i64()).or(self.context_id);
            }
            if answer.get("id").and_then(|v| v.as_u64()) != Some(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                bail!("{method}: {error}");
            }
            return Ok(answer["result"].take());
        }
    }
}
