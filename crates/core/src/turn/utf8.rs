//! Incremental UTF-8 decoding of a byte stream whose chunk boundaries fall anywhere.
//!
//! A process's output arrives in chunks cut by the network, not by characters. A character split
//! across two chunks must come out whole, so the decoder holds back an incomplete tail until the
//! next chunk; bytes that can never be UTF-8 become U+FFFD, as `String::from_utf8_lossy` does.

/// Decodes one stream (stdout or stderr); use one decoder per stream.
#[derive(Debug, Clone, Default)]
pub struct Utf8StreamDecoder {
    /// The start of a character whose remaining bytes have not arrived yet (at most 3 bytes).
    pending: Vec<u8>,
}

impl Utf8StreamDecoder {
    /// Decodes as much of `pending + chunk` as is complete.
    pub fn push(&mut self, chunk: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(chunk);
        let mut text = String::with_capacity(bytes.len());
        let mut rest = &bytes[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    // Safe to unwrap: `valid_up_to` marks a prefix that is valid UTF-8.
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            // An incomplete character at the end: wait for the next chunk.
                            self.pending = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        text
    }

    /// Ends the stream: an incomplete character left over becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn decode_in_chunks(bytes: &[u8], cuts: &[usize]) -> String {
        let mut decoder = Utf8StreamDecoder::default();
        let mut out = String::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            out.push_str(&decoder.push(&bytes[start..cut]));
            start = cut;
        }
        out.push_str(&decoder.finish());
        out
    }

    #[test]
    fn every_split_point_gives_the_same_text_as_decoding_at_once() {
        let inputs: [&[u8]; 5] = [
            "héllo wörld €uro 🦀 crab".as_bytes(),
            b"ok \xff\xfe bad",
            b"cut at the end \xe2\x82",
            b"\xf0\x9f\xa6",
            b"surrogate \xed\xa0\x80 no",
        ];
        for input in inputs {
            let want = String::from_utf8_lossy(input).into_owned();
            for a in 0..=input.len() {
                assert_eq!(decode_in_chunks(input, &[a]), want, "{input:?} cut at {a}");
                for b in a..=input.len() {
                    assert_eq!(decode_in_chunks(input, &[a, b]), want, "{input:?} cut at {a} and {b}");
                }
            }
            let every_byte: Vec<usize> = (1..input.len()).collect();
            assert_eq!(decode_in_chunks(input, &every_byte), want, "{input:?} byte by byte");
        }
    }

    #[test]
    fn a_split_character_comes_out_whole_in_the_later_chunk() {
        let mut decoder = Utf8StreamDecoder::default();
        assert_eq!(decoder.push(b"h\xc3"), "h");
        assert_eq!(decoder.push(b"\xa9!"), "é!");
        assert_eq!(decoder.finish(), "");
    }
}
