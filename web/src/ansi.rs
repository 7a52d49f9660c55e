//! Output with terminal colours: SGR escape sequences become styled segments, every other escape
//! sequence is dropped, so a coloured log reads like it would in a terminal and nothing of the
//! escape syntax leaks into the page. Parsing is `vte`'s (the terminal parser), fed chunk by
//! chunk, so a sequence split across two output events is still understood.

use vte::{Params, Parser, Perform};

/// A colour as a terminal knows it: one of the 16 named ones, or an exact one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Color {
    /// 0–7 normal, 8–15 bright.
    Palette(u8),
    Rgb(u8, u8, u8),
}

/// How a run of text is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Style {
    pub(crate) fg: Option<Color>,
    pub(crate) bg: Option<Color>,
    pub(crate) bold: bool,
    pub(crate) dim: bool,
    pub(crate) italic: bool,
    pub(crate) underline: bool,
}

impl Style {
    /// CSS classes for the named colours and attributes (`ansi-fg-1 ansi-bold`).
    pub(crate) fn classes(&self) -> String {
        let mut classes = Vec::new();
        if let Some(Color::Palette(n)) = self.fg {
            classes.push(format!("ansi-fg-{n}"));
        }
        if let Some(Color::Palette(n)) = self.bg {
            classes.push(format!("ansi-bg-{n}"));
        }
        for (on, name) in
            [(self.bold, "ansi-bold"), (self.dim, "ansi-dim"), (self.italic, "ansi-italic"), (self.underline, "ansi-u")]
        {
            if on {
                classes.push(name.to_owned());
            }
        }
        classes.join(" ")
    }

    /// An inline style for exact (24-bit or 256-palette) colours, which no class can name.
    /// The colours classes cannot hold (24-bit ones), as CSS declarations. They are set through
    /// the element's style object, which the page's Content-Security-Policy allows, never as a
    /// `style` attribute, which it does not.
    pub(crate) fn declarations(&self) -> Vec<(&'static str, String)> {
        let mut declarations = Vec::new();
        if let Some(Color::Rgb(r, g, b)) = self.fg {
            declarations.push(("color", format!("rgb({r},{g},{b})")));
        }
        if let Some(Color::Rgb(r, g, b)) = self.bg {
            declarations.push(("background", format!("rgb({r},{g},{b})")));
        }
        declarations
    }

    fn apply_sgr(&mut self, params: &Params) {
        let mut codes = params.iter().flat_map(|p| p.iter().copied());
        let mut any = false;
        while let Some(code) = codes.next() {
            any = true;
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some(Color::Palette((code - 30) as u8)),
                90..=97 => self.fg = Some(Color::Palette((code - 90 + 8) as u8)),
                39 => self.fg = None,
                40..=47 => self.bg = Some(Color::Palette((code - 40) as u8)),
                100..=107 => self.bg = Some(Color::Palette((code - 100 + 8) as u8)),
                49 => self.bg = None,
                38 | 48 => {
                    let color = extended_color(&mut codes);
                    if code == 38 {
                        self.fg = color;
                    } else {
                        self.bg = color;
                    }
                }
                _ => {}
            }
        }
        // `ESC[m` is a reset, like `ESC[0m`.
        if !any {
            *self = Style::default();
        }
    }
}

/// `5;n` (the 256-colour palette) or `2;r;g;b` after a 38/48.
fn extended_color(codes: &mut impl Iterator<Item = u16>) -> Option<Color> {
    let byte = |v: Option<u16>| v.map(|v| v.min(255) as u8);
    match codes.next()? {
        5 => {
            let n = byte(codes.next())?;
            Some(palette_256(n))
        }
        2 => Some(Color::Rgb(byte(codes.next())?, byte(codes.next())?, byte(codes.next())?)),
        _ => None,
    }
}

/// xterm's 256-colour palette: the 16 named colours, a 6×6×6 cube, then 24 greys.
fn palette_256(n: u8) -> Color {
    match n {
        0..=15 => Color::Palette(n),
        16..=231 => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            let i = n - 16;
            Color::Rgb(level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        _ => {
            let grey = 8 + (n - 232) * 10;
            Color::Rgb(grey, grey, grey)
        }
    }
}

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) text: String,
    pub(crate) style: Style,
}

/// One output stream's decoder; keeps the style and any half-read sequence between chunks.
#[derive(Default)]
pub(crate) struct AnsiDecoder {
    parser: Parser,
    collector: Collector,
}

impl AnsiDecoder {
    /// The segments `chunk` adds to the stream.
    pub(crate) fn feed(&mut self, chunk: &str) -> Vec<Segment> {
        self.parser.advance(&mut self.collector, chunk.as_bytes());
        self.collector.flush();
        std::mem::take(&mut self.collector.segments)
    }
}

#[derive(Default)]
struct Collector {
    style: Style,
    text: String,
    segments: Vec<Segment>,
}

impl Collector {
    fn flush(&mut self) {
        if !self.text.is_empty() {
            self.segments.push(Segment { text: std::mem::take(&mut self.text), style: self.style });
        }
    }
}

impl Perform for Collector {
    fn print(&mut self, c: char) {
        self.text.push(c);
    }

    fn execute(&mut self, byte: u8) {
        // Line feeds and tabs are text; a carriage return, bell or backspace has no place in a log.
        if byte == b'\n' || byte == b'\t' {
            self.text.push(byte as char);
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        if action == 'm' && intermediates.is_empty() && !ignore {
            self.flush();
            self.style.apply_sgr(params);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(segments: &[Segment]) -> String {
        segments.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn colours_become_styles_and_escapes_vanish() {
        let mut decoder = AnsiDecoder::default();
        let segments = decoder.feed("plain \x1b[1;31mred bold\x1b[0m back\n");
        assert_eq!(texts(&segments), "plain red bold back\n");
        assert_eq!(segments[1].style, Style { fg: Some(Color::Palette(1)), bold: true, ..Style::default() });
        assert_eq!(segments[1].style.classes(), "ansi-fg-1 ansi-bold");
        assert_eq!(segments[2].style, Style::default());
    }

    #[test]
    fn a_sequence_split_across_chunks_is_still_understood() {
        let mut decoder = AnsiDecoder::default();
        let first = decoder.feed("a\x1b[3");
        let second = decoder.feed("2mgreen\x1b[");
        let third = decoder.feed("mplain");
        assert_eq!(texts(&first), "a");
        assert_eq!(
            second,
            vec![Segment { text: "green".into(), style: Style { fg: Some(Color::Palette(2)), ..Style::default() } }]
        );
        assert_eq!(third, vec![Segment { text: "plain".into(), style: Style::default() }]);
    }

    #[test]
    fn other_sequences_and_control_bytes_are_dropped() {
        let mut decoder = AnsiDecoder::default();
        let segments = decoder.feed("\x1b[2J\x1b[Hclear\r\n\x07\x1b]0;title\x07done\tok");
        assert_eq!(texts(&segments), "clear\ndone\tok");
    }

    #[test]
    fn exact_colours_are_inline_styles() {
        let mut decoder = AnsiDecoder::default();
        let segments = decoder.feed("\x1b[38;2;10;20;30mrgb\x1b[48;5;196mcube\x1b[38;5;9mbright");
        assert_eq!(segments[0].style.declarations(), [("color", "rgb(10,20,30)".to_owned())]);
        assert_eq!(segments[1].style.bg, Some(Color::Rgb(255, 0, 0)));
        assert_eq!(segments[2].style.fg, Some(Color::Palette(9)));
        assert_eq!(segments[2].style.classes(), "ansi-fg-9");
    }

    #[test]
    fn unicode_passes_through_whole() {
        let mut decoder = AnsiDecoder::default();
        assert_eq!(texts(&decoder.feed("héllo → 🌍 \u{200d}")), "héllo → 🌍 \u{200d}");
    }
}
