//! A cheap bound on how deeply a page nests its elements, checked before the HTML parser
//! runs: the parser's tree construction walks the stack of open elements for many tags, so a
//! page of a few hundred kilobytes nesting `<div>`s tens of thousands deep takes it minutes
//! (found by the `transform` fuzz target). Real pages nest a few dozen levels; Chromium's
//! parser stops nesting at 512, the limit used here.
//!
//! The count is an upper bound of what the parser builds, close enough to refuse only
//! pathological pages: start tags add a level, end tags remove one, and tags that never hold
//! content (void elements, `<…/>`) or whose end is implied by the next sibling (`<p>`, `<li>`,
//! `<td>`, …) add none. Comments, doctypes and the raw text of `<script>`, `<style>`,
//! `<textarea>` and `<title>` are skipped.

/// The deepest nesting accepted (Chromium's `kMaximumHTMLParserDOMTreeDepth`).
pub const MAX_DEPTH: usize = 512;

/// Elements that never hold content.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];
/// Elements whose end tag the next sibling implies.
const IMPLIED_END: &[&str] = &[
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot",
    "colgroup", "caption", "rb", "rt", "rp", "rtc",
];
/// Elements whose content is raw text up to their end tag.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "plaintext"];

/// Whether `html` may nest elements deeper than `limit`.
pub fn exceeds(html: &str, limit: usize) -> bool {
    let bytes = html.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(offset) = memchr(b'<', &bytes[at..]) {
        let start = at + offset + 1;
        let rest = &bytes[start..];
        if rest.starts_with(b"!--") {
            at = find(bytes, start + 3, b"-->").map_or(bytes.len(), |end| end + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = start + usize::from(closing);
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
            at = start;
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let tag_end = memchr(b'>', &bytes[name_start..]).map_or(bytes.len(), |e| name_start + e);
        let self_closing = tag_end > 0 && bytes.get(tag_end - 1) == Some(&b'/');
        at = (tag_end + 1).min(bytes.len());
        let name = name.as_str();
        if closing {
            if !VOID.contains(&name) && !IMPLIED_END.contains(&name) {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        if RAW_TEXT.contains(&name) {
            let end_tag = format!("</{name}");
            at = find_ignoring_case(bytes, at, end_tag.as_bytes()).unwrap_or(bytes.len());
            continue;
        }
        if self_closing || VOID.contains(&name) || IMPLIED_END.contains(&name) {
            continue;
        }
        depth += 1;
        if depth > limit {
            return true;
        }
    }
    false
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

fn find_ignoring_case(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_caught_and_ordinary_pages_pass() {
        let deep = "<div>".repeat(MAX_DEPTH + 1);
        assert!(exceeds(&deep, MAX_DEPTH));
        let at_limit = format!(
            "{}x{}",
            "<div>".repeat(MAX_DEPTH),
            "</div>".repeat(MAX_DEPTH)
        );
        assert!(!exceeds(&at_limit, MAX_DEPTH));
        // Siblings, not nesting: closed, void, self-closing and implied-end elements.
        let wide = "<div><span>a</span><br><img src=x><x-icon/><p>b<li>c</div>".repeat(10_000);
        assert!(!exceeds(&wide, MAX_DEPTH));
    }

    #[test]
    fn comments_and_raw_text_do_not_count() {
        let hidden = format!(
            "<!--{}--><script>if (a<b) {{ s = '{}'; }}</script><STYLE>{}</style>",
            "<div>".repeat(1000),
            "<div>".repeat(1000),
            "<b>".repeat(1000)
        );
        assert!(!exceeds(&hidden, MAX_DEPTH));
        assert!(exceeds(
            &format!("{hidden}{}", "<b>".repeat(600)),
            MAX_DEPTH
        ));
    }
}
