//! The Connect protocol's envelope: one flags byte, a big-endian `u32` length, then the payload.
//!
//! Streaming Connect calls (E2B's `process.Process/Start`) frame every message this way, and the
//! last frame of a response carries flag `0x02` (end of stream) with `{}` or `{"error": …}`. The
//! decoder here is sans-IO: feed it whatever chunks the transport hands over, in any split, and
//! take whole frames out. It refuses compressed frames (we never ask for compression, so one is
//! a protocol error) and lengths above a cap (so a hostile peer cannot make us buffer without
//! bound).

use bytes::{Buf, Bytes, BytesMut};

/// Flag bit 0: the payload is compressed.
pub const FLAG_COMPRESSED: u8 = 0x01;
/// Flag bit 1: the end-of-stream frame, always the last one of a response.
pub const FLAG_END_STREAM: u8 = 0x02;
/// The envelope's prefix: flags byte plus the `u32` length.
pub const PREFIX_LEN: usize = 5;
/// The default payload cap; envd's largest message is a 32 KiB chunk in base64 plus its JSON.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// One decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub flags: u8,
    pub payload: Bytes,
}

impl Frame {
    /// Whether this is the end-of-stream frame.
    pub fn is_end_stream(&self) -> bool {
        self.flags & FLAG_END_STREAM != 0
    }
}

/// Why a byte stream is not a valid sequence of envelopes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("compressed frame received, but compression was never negotiated")]
    Compressed,
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("unknown frame flags {0:#04x}")]
    UnknownFlags(u8),
    #[error("stream ended inside a frame ({0} bytes left over)")]
    Truncated(usize),
}

/// Frames one message; `flags` is `0` for a message and [`FLAG_END_STREAM`] for the trailer.
pub fn encode(flags: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(PREFIX_LEN + payload.len());
    out.extend_from_slice(&[flags]);
    // A payload above 4 GiB cannot be framed; our messages are tiny, so saturating is a cap, not a hole.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.freeze()
}

/// Frames a JSON message (flags `0`).
pub fn encode_json<T: serde::Serialize>(msg: &T) -> Bytes {
    // Serialising our own wire types to a Vec cannot fail (string keys, no non-finite floats).
    encode(0, &serde_json::to_vec(msg).unwrap_or_default())
}

/// A chunk-safe streaming decoder.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder {
    /// A decoder refusing payloads above `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder { buf: BytesMut::new(), max }
    }

    /// Appends bytes as they arrived from the transport.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ConnectError> {
        if self.buf.len() < PREFIX_LEN {
            return Ok(None);
        }
        let flags = self.buf[0];
        if flags & FLAG_COMPRESSED != 0 {
            return Err(ConnectError::Compressed);
        }
        if flags & !(FLAG_COMPRESSED | FLAG_END_STREAM) != 0 {
            return Err(ConnectError::UnknownFlags(flags));
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > self.max {
            return Err(ConnectError::TooLarge { len, max: self.max });
        }
        if self.buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        self.buf.advance(PREFIX_LEN);
        let payload = self.buf.split_to(len).freeze();
        Ok(Some(Frame { flags, payload }))
    }

    /// Call at end of input: an error if a partial frame is still buffered.
    pub fn finish(&self) -> Result<(), ConnectError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ConnectError::Truncated(self.buf.len()))
        }
    }

    /// Bytes buffered but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Golden frames shared by the codec's tests and the E2B client's.
#[cfg(test)]
pub(crate) mod golden {
    /// The response of the worked example in `docs/protocols/e2b.md` §2.6, frame by frame:
    /// (flags, payload).
    pub(crate) const WORKED_EXAMPLE_RESPONSE: [(u8, &str); 6] = [
        (0, r#"{"event":{"start":{"pid":412}}}"#),
        (0, r#"{"event":{"data":{"stdout":"aGVsbG8K"}}}"#),
        (0, r#"{"event":{"data":{"stderr":"d2FybjogeAo="}}}"#),
        (0, r#"{"event":{"keepalive":{}}}"#),
        (0, r#"{"event":{"end":{"exitCode":3,"exited":true,"status":"exit status 3","error":"exit status 3"}}}"#),
        (2, "{}"),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::golden::WORKED_EXAMPLE_RESPONSE as RESPONSE;

    // The request of the worked example in `docs/protocols/e2b.md` §2.6, byte for byte.
    const START_REQ: &str = r#"{"process":{"cmd":"/bin/bash","args":["-l","-c","python3 /tmp/agent.py"],"envs":{"TURN_ID":"t1"},"cwd":"/tmp"},"stdin":false}"#;

    fn response_bytes() -> Vec<u8> {
        RESPONSE.iter().flat_map(|(f, p)| encode(*f, p.as_bytes()).to_vec()).collect()
    }

    #[test]
    fn golden_request_prefix() {
        let framed = encode(0, START_REQ.as_bytes());
        assert_eq!(&framed[..5], &[0x00, 0x00, 0x00, 0x00, 0x7d]);
        assert_eq!(&framed[5..], START_REQ.as_bytes());
    }

    #[test]
    fn golden_response_prefixes() {
        let prefixes: Vec<[u8; 5]> = RESPONSE
            .iter()
            .map(|(f, p)| {
                let b = encode(*f, p.as_bytes());
                [b[0], b[1], b[2], b[3], b[4]]
            })
            .collect();
        assert_eq!(
            prefixes,
            vec![
                [0, 0, 0, 0, 0x1f],
                [0, 0, 0, 0, 0x28],
                [0, 0, 0, 0, 0x2c],
                [0, 0, 0, 0, 0x1a],
                [0, 0, 0, 0, 0x5f],
                [2, 0, 0, 0, 2]
            ]
        );
        let success = r#"{"event":{"end":{"exited":true,"status":"exit status 0"}}}"#;
        assert_eq!(encode(0, success.as_bytes())[4], 58);
        let deadline = r#"{"error":{"code":"deadline_exceeded","message":"context deadline exceeded"}}"#;
        assert_eq!(&encode(FLAG_END_STREAM, deadline.as_bytes())[..5], &[2, 0, 0, 0, 0x4c]);
    }

    fn decode_all(chunks: &[&[u8]]) -> Result<Vec<Frame>, ConnectError> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(f) = d.next_frame()? {
                out.push(f);
            }
        }
        d.finish()?;
        Ok(out)
    }

    fn expected_frames() -> Vec<Frame> {
        RESPONSE.iter().map(|(f, p)| Frame { flags: *f, payload: Bytes::from_static(p.as_bytes()) }).collect()
    }

    #[test]
    fn decodes_in_one_chunk() {
        let frames = decode_all(&[&response_bytes()]).unwrap();
        assert_eq!(frames, expected_frames());
        assert!(frames.last().unwrap().is_end_stream());
        assert!(!frames[0].is_end_stream());
    }

    #[test]
    fn split_at_every_byte() {
        let bytes = response_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(decode_all(&[a, b]).unwrap(), expected_frames(), "split at {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_all(&singles).unwrap(), expected_frames());
    }

    #[test]
    fn rejects_compressed_frames() {
        let mut d = Decoder::default();
        d.push(&encode(FLAG_COMPRESSED, b"xx"));
        assert_eq!(d.next_frame(), Err(ConnectError::Compressed));
    }

    #[test]
    fn rejects_unknown_flags() {
        let mut d = Decoder::default();
        d.push(&encode(0x80, b"{}"));
        assert_eq!(d.next_frame(), Err(ConnectError::UnknownFlags(0x80)));
    }

    #[test]
    fn rejects_oversize_before_buffering_the_payload() {
        let mut d = Decoder::new(10);
        d.push(&[0, 0, 0, 0, 11]);
        assert_eq!(d.next_frame(), Err(ConnectError::TooLarge { len: 11, max: 10 }));
        let mut d = Decoder::new(10);
        d.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(ConnectError::TooLarge { .. })));
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let bytes = encode(0, b"{\"a\":1}");
        for cut in 1..bytes.len() {
            let mut d = Decoder::default();
            d.push(&bytes[..cut]);
            assert_eq!(d.next_frame(), Ok(None));
            assert_eq!(d.finish(), Err(ConnectError::Truncated(cut)));
        }
    }

    #[test]
    fn empty_payload_frame() {
        let mut d = Decoder::default();
        d.push(&encode(FLAG_END_STREAM, b""));
        let f = d.next_frame().unwrap().unwrap();
        assert!(f.is_end_stream());
        assert!(f.payload.is_empty());
        assert_eq!(d.buffered(), 0);
    }
}
