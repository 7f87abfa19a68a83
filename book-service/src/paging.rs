//! Opaque page cursors: where the previous page ended, base64url-encoded so clients do not
//! build them (the `cursor` of a `Link: <…>; rel="next"`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The cursor after a title with sort key `sort_key` and id `id`.
pub fn title_cursor(sort_key: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{id}:{sort_key}"))
}

/// The (sort key, id) a title cursor names.
pub fn parse_title_cursor(cursor: &str) -> Option<(String, i64)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (id, sort_key) = raw.split_once(':')?;
    Some((sort_key.to_owned(), id.parse().ok()?))
}

/// The cursor after the row with id `id` (loans, holds).
pub fn id_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The id an id cursor names.
pub fn parse_id_cursor(cursor: &str) -> Option<i64> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?)
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = title_cursor("germinal: vol 2", 42);
        assert_eq!(parse_title_cursor(&c), Some(("germinal: vol 2".into(), 42)));
        assert_eq!(parse_id_cursor(&id_cursor(7)), Some(7));
        assert_eq!(parse_title_cursor("!!"), None);
        assert_eq!(parse_id_cursor(&title_cursor("x", 1)), None);
    }
}
