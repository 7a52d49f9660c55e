//! Server-Sent Events, read from a byte stream that arrives in chunks of any size: each event's
//! `data` is handed on once its blank line arrives. Comments (the API's keep-alive every 15 s),
//! `id:` and `event:` lines carry nothing the client needs: the event's JSON has its own `seq`.

/// A chunk-safe decoder of one `text/event-stream`.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of a line not yet ended (it may end inside a character).
    line: Vec<u8>,
    /// The `data` lines of the event being read.
    data: Vec<String>,
    /// Whether the last byte was a `\r`, so that a `\n` right after it ends no second line.
    after_cr: bool,
}

impl Decoder {
    /// Feeds `chunk`; answers the data of every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line = std::mem::take(&mut self.line);
                    if let Some(data) = self.line_ended(&String::from_utf8_lossy(&line)) {
                        events.push(data);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    fn line_ended(&mut self, line: &str) -> Option<String> {
        if line.is_empty() {
            if self.data.is_empty() {
                return None;
            }
            return Some(std::mem::take(&mut self.data).join("\n"));
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            self.data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const STREAM: &str =
        ": keep-alive\n\nid: 1\ndata: {\"seq\":1}\n\nid: 2\r\ndata: {\"seq\":2,\r\ndata: \"x\":\"é\"}\r\n\r\n";

    #[test]
    fn events_are_read_whole_whatever_the_chunks() {
        let whole = Decoder::default().feed(STREAM.as_bytes());
        assert_eq!(whole, ["{\"seq\":1}", "{\"seq\":2,\n\"x\":\"é\"}"]);
        for size in 1..=7 {
            let mut decoder = Decoder::default();
            let got: Vec<String> = STREAM.as_bytes().chunks(size).flat_map(|c| decoder.feed(c)).collect();
            assert_eq!(got, whole, "chunks of {size} bytes");
        }
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_handed_on() {
        let mut decoder = Decoder::default();
        assert!(decoder.feed(b"data: {\"seq\":1}\n").is_empty());
        assert_eq!(decoder.feed(b"\n"), ["{\"seq\":1}"]);
        assert!(decoder.feed(b"event: x\nid: 3\n\n").is_empty(), "an event without data is nothing");
    }
}
