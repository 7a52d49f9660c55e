//! A code editor that stays a `<textarea>` (so it is accessible, searchable and pastes like one)
//! with what code needs on top: a line-number gutter, Tab and Shift-Tab indenting, Enter keeping
//! the indent, and Ctrl/Cmd-Enter to run. Esc then Tab leaves the editor, so the keyboard is
//! never trapped.

use leptos::html::{Pre, Textarea};
use leptos::prelude::*;

const INDENT: &str = "    ";

#[component]
pub(crate) fn Editor(
    /// The code, two-way.
    code: RwSignal<String>,
    /// Called on Ctrl/Cmd-Enter.
    on_run: Callback<()>,
    #[prop(into)] label: String,
) -> impl IntoView {
    let area = NodeRef::<Textarea>::new();
    let gutter = NodeRef::<Pre>::new();
    // After Esc, the next Tab moves focus instead of indenting.
    let released = StoredValue::new(false);
    let numbers = move || {
        let lines = code.with(|c| c.split('\n').count());
        (1..=lines).map(|n| n.to_string()).collect::<Vec<_>>().join("\n")
    };
    let sync_scroll = move |_| {
        if let (Some(area), Some(gutter)) = (area.get_untracked(), gutter.get_untracked()) {
            gutter.set_scroll_top(area.scroll_top());
        }
    };
    let on_keydown = move |ev: web_sys::KeyboardEvent| {
        let Some(area) = area.get_untracked() else { return };
        if ev.key() == "Escape" {
            released.set_value(true);
            return;
        }
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            on_run.run(());
            return;
        }
        let was_released = released.get_value();
        released.set_value(false);
        let edit = match ev.key().as_str() {
            "Tab" if was_released => None,
            "Tab" if ev.shift_key() => Some(dedent as fn(&str, usize, usize) -> Edit),
            "Tab" => Some(indent as fn(&str, usize, usize) -> Edit),
            "Enter" if !ev.shift_key() && !ev.alt_key() => {
                Some(newline_keeping_indent as fn(&str, usize, usize) -> Edit)
            }
            _ => None,
        };
        let Some(edit) = edit else { return };
        ev.prevent_default();
        let value = area.value();
        // The DOM counts UTF-16 units; the edit works on a String's byte offsets.
        let start = utf16_to_byte(&value, area.selection_start().ok().flatten().unwrap_or(0) as usize);
        let end = utf16_to_byte(&value, area.selection_end().ok().flatten().unwrap_or(0) as usize);
        let result = edit(&value, start.min(end), start.max(end));
        area.set_value(&result.text);
        let (s, e) = (byte_to_utf16(&result.text, result.start) as u32, byte_to_utf16(&result.text, result.end) as u32);
        let _ = area.set_selection_range(s, e);
        code.set(result.text);
    };
    view! {
        <div class="editor">
            <pre class="gutter" aria-hidden="true" node_ref=gutter>{numbers}</pre>
            <textarea
                node_ref=area
                aria-label=label
                data-testid="editor"
                spellcheck="false"
                autocapitalize="off"
                autocomplete="off"
                wrap="off"
                prop:value=move || code.get()
                on:input=move |ev| code.set(event_target_value(&ev))
                on:scroll=sync_scroll
                on:keydown=on_keydown
            ></textarea>
        </div>
        <p class="hint">"Tab indents · Esc then Tab leaves the editor · Ctrl/⌘-Enter runs"</p>
    }
}

/// The editor's text after a key, with the new selection (byte offsets).
#[derive(Debug, PartialEq, Eq)]
struct Edit {
    text: String,
    start: usize,
    end: usize,
}

/// The start of the line holding byte `at`.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// Tab: with no selection, insert an indent; with one, indent every line it touches.
fn indent(text: &str, start: usize, end: usize) -> Edit {
    if start == end {
        let new = format!("{}{INDENT}{}", &text[..start], &text[end..]);
        return Edit { text: new, start: start + INDENT.len(), end: start + INDENT.len() };
    }
    let first = line_start(text, start);
    let block = &text[first..end];
    let lines = block.split('\n').count();
    let indented = block.split('\n').map(|line| format!("{INDENT}{line}")).collect::<Vec<_>>().join("\n");
    let new = format!("{}{indented}{}", &text[..first], &text[end..]);
    Edit { text: new, start: start + INDENT.len(), end: end + INDENT.len() * lines }
}

/// Shift-Tab: take up to one indent off every line the selection touches.
fn dedent(text: &str, start: usize, end: usize) -> Edit {
    let first = line_start(text, start);
    let block = &text[first..end];
    let mut removed_first = 0;
    let mut removed = 0;
    let lines: Vec<String> = block
        .split('\n')
        .enumerate()
        .map(|(i, line)| {
            let cut = line.len() - line.trim_start_matches(' ').len();
            let cut = cut.min(INDENT.len());
            if i == 0 {
                removed_first = cut;
            }
            removed += cut;
            line[cut..].to_owned()
        })
        .collect();
    let new = format!("{}{}{}", &text[..first], lines.join("\n"), &text[end..]);
    let start = start.saturating_sub(removed_first).max(first);
    Edit { text: new, start, end: end.saturating_sub(removed).max(start) }
}

/// Enter: a new line indented like the current one, one level more after a `:`/`{` (Python,
/// JavaScript, shell functions).
fn newline_keeping_indent(text: &str, start: usize, end: usize) -> Edit {
    let line = &text[line_start(text, start)..start];
    let mut indent: String = line.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    if line.trim_end().ends_with(':') || line.trim_end().ends_with('{') {
        indent.push_str(INDENT);
    }
    let new = format!("{}\n{indent}{}", &text[..start], &text[end..]);
    let at = start + 1 + indent.len();
    Edit { text: new, start: at, end: at }
}

fn utf16_to_byte(text: &str, units: usize) -> usize {
    let mut seen = 0;
    for (byte, c) in text.char_indices() {
        if seen >= units {
            return byte;
        }
        seen += c.len_utf16();
    }
    text.len()
}

fn byte_to_utf16(text: &str, byte: usize) -> usize {
    text[..byte].chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_inserts_an_indent_at_the_cursor() {
        assert_eq!(indent("ab", 1, 1), Edit { text: "a    b".into(), start: 5, end: 5 });
    }

    #[test]
    fn tab_and_shift_tab_move_whole_lines_of_a_selection() {
        let text = "x = 1\nif x:\n    y\nz";
        let (start, end) = (7, 13); // from inside `if x:` to inside `    y`
        let indented = indent(text, start, end);
        assert_eq!(indented.text, "x = 1\n    if x:\n        y\nz");
        assert_eq!((indented.start, indented.end), (11, 21));
        let back = dedent(&indented.text, indented.start, indented.end);
        assert_eq!(back.text, text);
        assert_eq!((back.start, back.end), (start, end));
    }

    #[test]
    fn shift_tab_never_eats_code() {
        assert_eq!(dedent("  a\nb", 0, 5).text, "a\nb");
    }

    #[test]
    fn enter_keeps_the_indent_and_opens_a_block() {
        let text = "def f():\n    return 1";
        assert_eq!(newline_keeping_indent(text, 8, 8).text, "def f():\n    \n    return 1");
        let end = text.len();
        assert_eq!(
            newline_keeping_indent(text, end, end),
            Edit { text: format!("{text}\n    "), start: end + 5, end: end + 5 }
        );
    }

    #[test]
    fn selections_count_in_utf16_like_the_dom() {
        let text = "é🌍x";
        assert_eq!(utf16_to_byte(text, 3), "é🌍".len());
        assert_eq!(byte_to_utf16(text, "é🌍".len()), 3);
        assert_eq!(utf16_to_byte(text, 99), text.len());
    }
}
