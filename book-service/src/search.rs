//! Text as the catalogue indexes and searches it, so that case and diacritics never matter:
//! "Émile Zola", "EMILE zola" and "emile zola" are one text. The same normalisation feeds the
//! stored search columns and the query words, on both database backends.

use api::library::Isbn;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Most words of a query that are used (the rest are ignored).
pub const MAX_WORDS: usize = 8;
/// Longest word of a query that is used, in characters (longer ones are cut).
pub const MAX_WORD_CHARS: usize = 64;

/// `text` lowercased, with diacritics removed (compatibility decomposition, combining marks
/// dropped, a few letters that do not decompose folded: ß, æ, œ, ø, đ, ł, þ, ı), every run of
/// anything but letters and digits turned into one space, trimmed.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkd().filter(|c| !is_combining_mark(*c)) {
        for lower in c.to_lowercase() {
            let folded = match lower {
                'ß' => "ss",
                'æ' => "ae",
                'œ' => "oe",
                'ø' => "o",
                'đ' | 'ð' => "d",
                'ł' => "l",
                'þ' => "th",
                'ı' => "i",
                _ => "",
            };
            if !folded.is_empty() {
                push_word(&mut out, &mut space, folded);
            } else if lower.is_alphanumeric() {
                let mut buf = [0u8; 4];
                push_word(&mut out, &mut space, lower.encode_utf8(&mut buf));
            } else {
                space = !out.is_empty();
            }
        }
    }
    out
}

fn push_word(out: &mut String, space: &mut bool, s: &str) {
    if *space {
        out.push(' ');
        *space = false;
    }
    out.push_str(s);
}

/// What `q` is matched against: title, author, ISBN-13 and ISBN-10, normalised.
pub fn search_text(title: &str, author: &str, isbn: &Isbn) -> String {
    let mut text = format!(
        "{} {} {}",
        normalise(title),
        normalise(author),
        isbn.as_str()
    );
    if let Some(isbn10) = isbn.isbn10() {
        text.push(' ');
        text.push_str(&isbn10.to_lowercase());
    }
    text
}

/// Fewest characters of a term (and of a query word looked up among the terms): shorter
/// words match too much to narrow a search, and trigram indexes cannot serve them.
pub const MIN_TERM_CHARS: usize = 3;

/// Whether a normalised word is a *term*: a word of the catalogue's vocabulary, each listed
/// with the titles holding it in title order (`store::terms`). Terms are the words of at least
/// [`MIN_TERM_CHARS`] characters holding something besides digits and `x` — so ISBNs, which
/// are unique to one title each, stay out of the vocabulary.
///
/// A query word that is a term itself can only occur inside words that are terms too, so the
/// titles listed under the terms containing it are all the titles whose text contains it.
pub fn is_term(word: &str) -> bool {
    word.chars().count() >= MIN_TERM_CHARS
        && word.chars().any(|c| !(c.is_ascii_digit() || c == 'x'))
}

/// The distinct terms of a search text (see [`is_term`]), sorted: the order in which their
/// rows are written, so that concurrent writers lock them in one order.
pub fn terms(search_text: &str) -> Vec<String> {
    let mut terms: Vec<String> = search_text
        .split(' ')
        .filter(|w| is_term(w))
        .map(str::to_owned)
        .collect();
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// The distinct normalised words of a query, at most [`MAX_WORDS`], each at most
/// [`MAX_WORD_CHARS`] characters.
pub fn words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in normalise(query).split(' ').filter(|w| !w.is_empty()) {
        let word: String = word.chars().take(MAX_WORD_CHARS).collect();
        if !words.contains(&word) {
            words.push(word);
        }
        if words.len() == MAX_WORDS {
            break;
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_diacritics_do_not_matter() {
        assert_eq!(normalise("Émile Zola"), "emile zola");
        assert_eq!(normalise("ÉMILE   ZOLA!"), "emile zola");
        assert_eq!(
            normalise("Mihai Eminescu — Luceafărul"),
            "mihai eminescu luceafarul"
        );
        assert_eq!(normalise("Ștefan cel Mare, Țară"), "stefan cel mare tara");
        assert_eq!(
            normalise("Straße Ærø Łódź Œuvre"),
            "strasse aero lodz oeuvre"
        );
        assert_eq!(
            normalise("Dostoïevski: Преступление"),
            "dostoievski преступление"
        );
        assert_eq!(normalise("ﬁn"), "fin", "ligatures decompose");
        assert_eq!(normalise("  ...  "), "");
    }

    #[test]
    fn search_text_holds_both_isbn_forms() {
        let isbn = Isbn::parse("0-8044-2957-X").unwrap();
        assert_eq!(
            search_text("L'Assommoir", "Émile Zola", &isbn),
            "l assommoir emile zola 9780804429573 080442957x"
        );
    }

    #[test]
    fn terms_are_the_words_that_can_narrow_a_search() {
        let isbn = Isbn::parse("0-8044-2957-X").unwrap();
        let text = search_text("Le Rêve, le rêve 1984", "Émile Zola", &isbn);
        assert_eq!(terms(&text), ["emile", "reve", "zola"]);
        assert_eq!(terms(&search_text("R2D2 x", "Ab", &isbn)), ["r2d2"]);
        assert!(is_term("r2d") && is_term("zol"));
        assert!(!is_term("zo") && !is_term("978207") && !is_term("57x"));
    }

    #[test]
    fn query_words_are_distinct_and_bounded() {
        assert_eq!(words("Zola zola ZOLA émile"), ["zola", "emile"]);
        assert_eq!(words(" , "), Vec::<String>::new());
        assert_eq!(words("a b c d e f g h i j").len(), MAX_WORDS);
        assert_eq!(words(&"x".repeat(500))[0].len(), MAX_WORD_CHARS);
    }
}
