//! Transform: a stored page → a company record.
//!
//! Fields are found by their labels, never by position: an element whose whole text is a known
//! label (Romanian, Russian or English, compared after normalisation) names the field, and the
//! value is what follows it — the next sibling element (`dt`→`dd`, `th`→`td`, `td`→`td`, label
//! span → value span) or the text right after it (`<b>IDNO:</b> 100…`). A leaf element reading
//! `Label: value` works too. Missing fields stay `None`; a page with no field at all is either
//! a "not found" page (by its markers) or a page without company data.
//!
//! Pure and synchronous: callers run it on a blocking thread.

use std::sync::LazyLock;

use api::scrape::Idno;
use ego_tree::iter::Edge;
use ego_tree::NodeRef;
use scraper::{CaseSensitivity, ElementRef, Html, Node};

/// The version of these parsing rules, stored with every record so that records made by an
/// older parser can be found and re-transformed.
pub const PARSER_VERSION: &str = "1.0.0";

/// What a page yielded. `idno` is what the page itself shows, when it shows one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedCompany {
    pub idno: Option<String>,
    pub company_name: Option<String>,
    pub legal_form: Option<String>,
    pub address: Option<String>,
    /// `YYYY-MM-DD` when the date could be read, else the text as shown.
    pub registration_date: Option<String>,
    pub status: Option<String>,
    pub directors: Vec<String>,
    pub activities: Vec<String>,
}

/// Why a page yielded no record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The source says there is no such company (permanent).
    #[error("company not found")]
    NotFound,
    /// Neither company data nor a "not found" message: e.g. the JavaScript never rendered.
    #[error("no company data in the page")]
    NoData,
    /// The page shows another company's IDNO.
    #[error("the page shows IDNO {page}, not {requested}")]
    IdnoMismatch { page: String, requested: Idno },
    /// The page nests elements deeper than any real page (and than parsing stays fast for).
    #[error("the page nests elements more than {} deep", crate::nesting::MAX_DEPTH)]
    TooDeep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Idno,
    LegalForm,
    Address,
    RegistrationDate,
    Status,
    Directors,
    Activities,
}

impl Field {
    fn is_list(self) -> bool {
        matches!(self, Field::Directors | Field::Activities)
    }
}

/// Known labels, already normalised (see [`normalize_label`]).
const LABELS: &[(Field, &[&str])] = &[
    (
        Field::Name,
        &[
            "denumirea",
            "denumire",
            "denumirea completa",
            "denumire completa",
            "denumirea companiei",
            "denumirea intreprinderii",
            "denumirea intreprinderii/organizatiei",
            "название",
            "наименование",
            "полное наименование",
            "полное название",
            "name",
            "company name",
            "full name",
            "legal name",
        ],
    ),
    (
        Field::Idno,
        &[
            "idno",
            "idno/cod fiscal",
            "idno / cod fiscal",
            "idno (cod fiscal)",
            "cod fiscal",
            "codul fiscal",
            "фискальный код",
            "idno/фискальный код",
            "код",
            "fiscal code",
            "tax id",
        ],
    ),
    (
        Field::LegalForm,
        &[
            "forma organizatorico-juridica",
            "forma organizatorico juridica",
            "forma juridica",
            "forma juridica de organizare",
            "forma de organizare",
            "организационно-правовая форма",
            "правовая форма",
            "legal form",
            "form of organization",
        ],
    ),
    (
        Field::Address,
        &[
            "adresa",
            "adresa juridica",
            "adresa sediului",
            "sediul",
            "sediu",
            "адрес",
            "юридический адрес",
            "address",
            "legal address",
            "registered address",
        ],
    ),
    (
        Field::RegistrationDate,
        &[
            "data inregistrarii",
            "data inregistrare",
            "data de inregistrare",
            "data inregistrarii de stat",
            "дата регистрации",
            "registration date",
            "date of registration",
            "registered on",
        ],
    ),
    (
        Field::Status,
        &[
            "statut",
            "statutul",
            "starea",
            "stare",
            "status",
            "статус",
            "состояние",
        ],
    ),
    (
        Field::Directors,
        &[
            "conducatori",
            "conducator",
            "conducatorul",
            "conducatorii",
            "administrator",
            "administratori",
            "administratorul",
            "director",
            "directori",
            "руководитель",
            "руководители",
            "директор",
            "directors",
            "managers",
            "manager",
            "administrators",
        ],
    ),
    (
        Field::Activities,
        &[
            "genuri de activitate",
            "genurile de activitate",
            "genuri de activitate nelicentiate",
            "genuri de activitate licentiate",
            "activitati",
            "activitatile",
            "activitate",
            "domenii de activitate",
            "виды деятельности",
            "вид деятельности",
            "лицензируемые виды деятельности",
            "нелицензируемые виды деятельности",
            "activities",
            "activity",
            "business activities",
        ],
    ),
];

/// Texts (normalised) that mean "no such company".
const NOT_FOUND_MARKERS: &[&str] = &[
    "compania nu a fost gasita",
    "compania nu exista",
    "nu a fost gasita",
    "nu a fost gasit",
    "не найдена",
    "не найден",
    "company not found",
    "not found",
];

/// Elements whose content is never page text.
const SKIPPED: &[&str] = &[
    "script", "style", "template", "noscript", "head", "svg", "iframe",
];
/// Elements that start a new line (and so separate list items) in a value.
const BLOCKS: &[&str] = &[
    "br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "dd", "dt", "dl", "table", "section",
    "article", "h1", "h2", "h3", "h4", "h5", "h6", "address",
];
/// Elements that carry no value and are passed over when looking for one (an `<i>` only when
/// empty: an icon).
const VOID: &[&str] = &["br", "hr", "wbr", "img"];

/// A label is short; longer texts are not compared with the label list.
const MAX_LABEL_CHARS: usize = 80;
/// The longest `Label: value` leaf considered.
const MAX_INLINE_CHARS: usize = 600;

/// Parses `html`, the page of company `idno`.
pub fn transform(html: &str, idno: &Idno) -> Result<ParsedCompany, TransformError> {
    if crate::nesting::exceeds(html, crate::nesting::MAX_DEPTH) {
        return Err(TransformError::TooDeep);
    }
    let doc = Html::parse_document(html);
    let mut found = Found::default();
    let mut skip: Option<ego_tree::NodeId> = None;
    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) if skip.is_none() => {
                if let Some(el) = ElementRef::wrap(node) {
                    if SKIPPED.contains(&el.value().name()) {
                        skip = Some(node.id());
                    } else {
                        found.consider(el);
                    }
                }
            }
            Edge::Close(node) if skip == Some(node.id()) => skip = None,
            _ => {}
        }
    }

    let mut company = found.company;
    if company == ParsedCompany::default() {
        return Err(if says_not_found(&doc) {
            TransformError::NotFound
        } else {
            TransformError::NoData
        });
    }
    if company.company_name.is_none() {
        company.company_name = fallback_name(&doc);
    }
    if let Some(page) = &company.idno {
        if page != idno.as_str() {
            return Err(TransformError::IdnoMismatch {
                page: page.clone(),
                requested: idno.clone(),
            });
        }
    }
    Ok(company)
}

/// Whether a page without company data says the company does not exist: an element marked
/// as a "not found" message, or a marker in its visible text. A second walk, because only
/// pages without data need it.
fn says_not_found(doc: &Html) -> bool {
    let mut visible = String::new();
    let mut not_found_element = false;
    let mut skip: Option<ego_tree::NodeId> = None;
    for edge in doc.tree.root().traverse() {
        match edge {
            Edge::Open(node) if skip.is_none() => match node.value() {
                Node::Element(e) => {
                    if SKIPPED.contains(&e.name()) {
                        skip = Some(node.id());
                    } else if e.attr("data-not-found").is_some()
                        || e.has_class("not-found", CaseSensitivity::AsciiCaseInsensitive)
                    {
                        not_found_element = true;
                    }
                }
                Node::Text(t) => {
                    visible.push_str(t);
                    visible.push(' ');
                }
                _ => {}
            },
            Edge::Close(node) if skip == Some(node.id()) => skip = None,
            _ => {}
        }
    }
    let text = normalize_label(&visible);
    not_found_element || NOT_FOUND_MARKERS.iter().any(|m| text.contains(m))
}

/// The fields found so far, with the label that gave each list field (so that nested
/// elements repeating the same label do not add the same items twice), and buffers reused
/// from element to element (most elements are not labels: looking at one should not
/// allocate).
#[derive(Default)]
struct Found {
    company: ParsedCompany,
    list_labels: Vec<(usize, String)>,
    text: String,
    key: String,
}

impl Found {
    fn consider(&mut self, el: ElementRef<'_>) {
        // Only a leaf can be a `Label: value` line; any other element is at most a label,
        // so reading more of its text than a label can have is wasted.
        let leaf = !el.children().any(|c| c.value().is_element());
        let max = if leaf {
            MAX_INLINE_CHARS
        } else {
            MAX_LABEL_CHARS
        };
        let mut text = std::mem::take(&mut self.text);
        if let Some(chars) = short_text_into(el, max, &mut text) {
            self.consider_text(el, &text, chars, leaf);
        }
        self.text = text;
    }

    /// [`Found::consider`] of `el` whose text (of `chars` characters) is `text`.
    fn consider_text(&mut self, el: ElementRef<'_>, text: &str, chars: usize, leaf: bool) {
        let mut key = std::mem::take(&mut self.key);
        if chars <= MAX_LABEL_CHARS {
            if let Some(field) = label_field(text, &mut key) {
                if self.wants(field, &key) {
                    if let Some(value) = value_after(el, &key) {
                        self.set(field, &key, value);
                    }
                }
                self.key = key;
                return;
            }
        }
        // `Label: value` inside one leaf element.
        if leaf {
            if let Some((label, rest)) = text.split_once(':') {
                if let Some(field) = label_field(label, &mut key) {
                    let value = Value::from_text(rest);
                    if !value.is_empty() && self.wants(field, &key) {
                        self.set(field, &key, value);
                    }
                }
            }
        }
        self.key = key;
    }

    fn wants(&self, field: Field, key: &str) -> bool {
        let c = &self.company;
        match field {
            Field::Name => c.company_name.is_none(),
            Field::Idno => c.idno.is_none(),
            Field::LegalForm => c.legal_form.is_none(),
            Field::Address => c.address.is_none(),
            Field::RegistrationDate => c.registration_date.is_none(),
            Field::Status => c.status.is_none(),
            Field::Directors | Field::Activities => !self
                .list_labels
                .iter()
                .any(|(f, k)| *f == field as usize && k == key),
        }
    }

    fn set(&mut self, field: Field, key: &str, value: Value) {
        if field.is_list() {
            self.list_labels.push((field as usize, key.to_owned()));
        }
        let c = &mut self.company;
        match field {
            Field::Name => c.company_name = Some(value.text),
            Field::Idno => c.idno = find_idno(&value.text),
            Field::LegalForm => c.legal_form = Some(value.text),
            Field::Address => c.address = Some(value.text),
            Field::RegistrationDate => c.registration_date = Some(normalize_date(&value.text)),
            Field::Status => c.status = Some(value.text),
            Field::Directors => extend_unique(&mut c.directors, value.items),
            Field::Activities => extend_unique(&mut c.activities, value.items),
        }
    }
}

fn field_for(key: &str) -> Option<Field> {
    LABELS
        .iter()
        .find(|(_, labels)| labels.contains(&key))
        .map(|(f, _)| *f)
}

/// The field `raw` is the label of, if any; `key` is left holding `raw` normalised (see
/// [`normalize_label`]). Gives up as soon as the text is longer than any label.
fn label_field(raw: &str, key: &mut String) -> Option<Field> {
    if !normalize_into(raw, key, true) {
        return None;
    }
    field_for(key)
}

/// The length in bytes of the longest known label.
const LONGEST_LABEL_BYTES: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < LABELS.len() {
        let mut j = 0;
        while j < LABELS[i].1.len() {
            if LABELS[i].1[j].len() > longest {
                longest = LABELS[i].1[j].len();
            }
            j += 1;
        }
        i += 1;
    }
    longest
};

/// The most nodes (elements, texts, comments) [`short_text`] reads: a label or a `Label:
/// value` leaf has a handful. Counting characters alone, deeply nested markup with little
/// text made every ancestor read its whole subtree again: quadratic time (found while
/// fuzzing, docs/fuzzing.md: 32 000 nested `<b>`s, a 96 kB page, took 40 s).
const MAX_SHORT_NODES: usize = 256;

/// The text of `el` (script and style excluded), or `None` when it is longer than `max`
/// characters; stops reading as soon as it is, so big containers cost little.
fn short_text(el: ElementRef<'_>, max: usize) -> Option<String> {
    let mut out = String::new();
    short_text_into(el, max, &mut out).map(|_| out)
}

/// [`short_text`] into `out` (cleared first); `Some(number of characters)`. `None` too for an
/// element of more than [`MAX_SHORT_NODES`] nodes, whatever its text.
fn short_text_into(el: ElementRef<'_>, max: usize, out: &mut String) -> Option<usize> {
    out.clear();
    let mut chars = 0usize;
    let mut nodes = 0usize;
    let mut skip: Option<ego_tree::NodeId> = None;
    for edge in el.traverse() {
        if matches!(edge, Edge::Open(_)) {
            nodes += 1;
            if nodes > MAX_SHORT_NODES {
                return None;
            }
        }
        match edge {
            Edge::Open(node) if skip.is_none() => match node.value() {
                Node::Element(e) if SKIPPED.contains(&e.name()) => skip = Some(node.id()),
                Node::Text(t) => {
                    chars += t.chars().count();
                    if chars > max {
                        return None;
                    }
                    out.push_str(t);
                }
                _ => {}
            },
            Edge::Close(node) if skip == Some(node.id()) => skip = None,
            _ => {}
        }
    }
    Some(chars)
}

/// The value that follows the label element `el`: its next sibling with content, climbing to
/// the parent while the parent holds nothing but the same label (`<th><span>Label</span></th>`).
fn value_after(el: ElementRef<'_>, key: &str) -> Option<Value> {
    let mut cur: NodeRef<'_, Node> = *el;
    loop {
        for sib in cur.next_siblings() {
            match sib.value() {
                Node::Text(t) => {
                    let text = clean_text(t);
                    let text = text.trim_start_matches([':', '-', '–']).trim();
                    if !text.is_empty() {
                        return Some(Value::from_text(text));
                    }
                }
                Node::Element(e) if VOID.contains(&e.name()) || SKIPPED.contains(&e.name()) => {}
                Node::Element(e)
                    if e.name() == "i"
                        && ElementRef::wrap(sib)
                            .is_some_and(|i| i.text().all(|t| t.trim().is_empty())) => {}
                Node::Element(_) => {
                    // The first element after the label is the value; empty means "missing".
                    let value = ElementRef::wrap(sib).map(Value::from_element)?;
                    return (!value.is_empty()).then_some(value);
                }
                _ => {}
            }
        }
        let parent = cur.parent().and_then(ElementRef::wrap)?;
        let text = short_text(parent, MAX_LABEL_CHARS)?;
        if normalize_label(&text) != key {
            return None;
        }
        cur = *parent;
    }
}

/// A field's value: its text on one line, and its items (for list fields: one per list
/// element, line or `;`-separated part).
#[derive(Debug)]
struct Value {
    text: String,
    items: Vec<String>,
}

impl Value {
    fn from_text(raw: &str) -> Value {
        let text = clean_text(raw);
        let mut items = Vec::new();
        extend_unique(
            &mut items,
            raw.split([';', '\n'])
                .map(clean_text)
                .filter(|s| !s.is_empty())
                .collect(),
        );
        Value { text, items }
    }

    fn from_element(el: ElementRef<'_>) -> Value {
        let mut lines = vec![String::new()];
        let mut skip: Option<ego_tree::NodeId> = None;
        for edge in el.traverse() {
            match edge {
                Edge::Open(node) if skip.is_none() => match node.value() {
                    Node::Element(e) if SKIPPED.contains(&e.name()) => skip = Some(node.id()),
                    Node::Element(e) if BLOCKS.contains(&e.name()) => lines.push(String::new()),
                    Node::Text(t) => {
                        if let Some(line) = lines.last_mut() {
                            line.push_str(t);
                        }
                    }
                    _ => {}
                },
                Edge::Close(node) => {
                    if skip == Some(node.id()) {
                        skip = None;
                    } else if skip.is_none()
                        && node
                            .value()
                            .as_element()
                            .is_some_and(|e| BLOCKS.contains(&e.name()))
                    {
                        lines.push(String::new());
                    }
                }
                _ => {}
            }
        }
        let lines: Vec<String> = lines
            .iter()
            .map(|l| clean_text(l))
            .filter(|l| !l.is_empty())
            .collect();
        let mut items = Vec::new();
        extend_unique(
            &mut items,
            lines
                .iter()
                .flat_map(|l| l.split(';'))
                .map(clean_text)
                .filter(|s| !s.is_empty())
                .collect(),
        );
        Value {
            text: lines.join(", "),
            items,
        }
    }

    fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

fn extend_unique(list: &mut Vec<String>, items: Vec<String>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// Collapses every run of whitespace (non-breaking spaces included) to one space, drops
/// zero-width characters, and trims.
pub fn clean_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.chars() {
        if matches!(
            c,
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}'
        ) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// A label as compared: whitespace cleaned, lower case, Romanian diacritics removed in both
/// their comma-below (ș ț) and cedilla (ş ţ) forms, precomposed or combining, `ё` read as `е`,
/// and a trailing `:` or `*` dropped.
pub fn normalize_label(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    normalize_into(raw, &mut out, false);
    out
}

/// Whether `c` (folded) may appear in a normalised label: the letters, separators and
/// trailing marks of [`LABELS`] (a test checks that it covers them all). Any other character
/// survives normalisation, so a text holding one is no label.
fn in_labels(c: char) -> bool {
    c.is_ascii_lowercase()
        || matches!(
            c,
            ' ' | '/' | '(' | ')' | '-' | ':' | '*' | '：' | 'а'..='я'
        )
}

/// [`normalize_label`] of `raw` into `out`, in one pass. With `label_only`, gives up
/// (`false`, `out` unfinished) as soon as the result cannot be a known label: it holds a
/// character no label has, or it is longer than the longest one. Whitespace is handled as
/// [`clean_text`] does on the raw characters, then each is lower-cased and folded.
fn normalize_into(raw: &str, out: &mut String, label_only: bool) -> bool {
    let max = if label_only {
        LONGEST_LABEL_BYTES
    } else {
        usize::MAX
    };
    out.clear();
    let mut pending_space = false;
    let mut started = false;
    // Bytes of characters no trimming can remove (neither whitespace nor a trailing mark):
    // a lower bound of the result's length.
    let mut solid = 0usize;
    for c in raw.chars() {
        if matches!(
            c,
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}'
        ) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space && started {
            out.push(' ');
        }
        pending_space = false;
        started = true;
        if c.is_ascii() {
            let lower = c.to_ascii_lowercase();
            if label_only && !in_labels(lower) {
                return false;
            }
            out.push(lower);
            solid += usize::from(!matches!(lower, ':' | '*'));
        } else {
            for lower in c.to_lowercase() {
                let folded = match lower {
                    // `ǎ` (caron) is a frequent stand-in for `ă` (breve).
                    'ă' | 'ǎ' | 'â' | 'á' | 'à' | 'ä' => 'a',
                    'î' | 'í' | 'ì' | 'ï' => 'i',
                    'ș' | 'ş' => 's',
                    'ț' | 'ţ' => 't',
                    'é' | 'è' | 'ê' | 'ë' => 'e',
                    'ё' => 'е',
                    // Combining marks: the decomposed forms of the letters above.
                    '\u{0300}'..='\u{036f}' => continue,
                    other => other,
                };
                if label_only && !in_labels(folded) {
                    return false;
                }
                out.push(folded);
                if folded != '：' && !folded.is_whitespace() {
                    solid += folded.len_utf8();
                }
            }
        }
        if solid > max {
            return false;
        }
    }
    let end = out
        .trim_end_matches(|c: char| matches!(c, ':' | '：' | '*') || c.is_whitespace())
        .len();
    out.truncate(end);
    let start = out.len() - out.trim_start().len();
    out.drain(..start);
    true
}

/// The first run of exactly 13 digits in `text`.
fn find_idno(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == api::scrape::IDNO_LEN)
        .map(str::to_owned)
}

/// `12.03.2003`, `12/03/2003`, `12-03-2003` or `2003-03-12` (optionally followed by more
/// text) → `2003-03-12`; anything else is kept as shown.
pub fn normalize_date(text: &str) -> String {
    let first = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches([',', ';']);
    for format in ["%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%Y-%m-%d", "%Y.%m.%d"] {
        if let Ok(date) = chrono::NaiveDate::parse_from_str(first, format) {
            return date.format("%Y-%m-%d").to_string();
        }
    }
    text.to_owned()
}

/// The company name when no label named it: an element marked `data-company-name`, else the
/// first `h1`.
fn fallback_name(doc: &Html) -> Option<String> {
    static SELECTORS: LazyLock<[scraper::Selector; 2]> = LazyLock::new(|| {
        ["[data-company-name]", "h1"]
            .map(|css| scraper::Selector::parse(css).expect("a valid constant selector"))
    });
    for selector in SELECTORS.iter() {
        if let Some(el) = doc.select(selector).next() {
            let text = short_text(el, MAX_INLINE_CHARS)
                .map(|t| clean_text(&t))
                .unwrap_or_default();
            if !text.is_empty() {
                return Some(text);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDNO: &str = "1008600038413";

    /// [`super::transform`] for an IDNO written as text.
    fn transform(html: &str, idno: &str) -> Result<ParsedCompany, TransformError> {
        super::transform(html, &Idno::parse(idno).expect("a valid IDNO"))
    }

    fn page(body: &str) -> String {
        format!("<!doctype html><html><head><title>t</title></head><body>{body}</body></html>")
    }

    #[test]
    fn definition_list_with_romanian_labels() {
        let html = page(
            "<dl><dt>Denumirea:</dt><dd>Exemplu SRL</dd><dt>IDNO</dt><dd>1008600038413</dd>\
             <dt>Forma organizatorico-juridică</dt><dd>Societate cu Răspundere Limitată</dd>\
             <dt>Adresa juridică</dt><dd>mun. Chișinău, str. Ștefan cel Mare 1</dd>\
             <dt>Data înregistrării</dt><dd>12.03.2003</dd><dt>Statut</dt><dd>Activă</dd></dl>",
        );
        let c = transform(&html, IDNO).unwrap();
        assert_eq!(c.company_name.as_deref(), Some("Exemplu SRL"));
        assert_eq!(c.idno.as_deref(), Some(IDNO));
        assert_eq!(
            c.legal_form.as_deref(),
            Some("Societate cu Răspundere Limitată")
        );
        assert_eq!(
            c.address.as_deref(),
            Some("mun. Chișinău, str. Ștefan cel Mare 1")
        );
        assert_eq!(c.registration_date.as_deref(), Some("2003-03-12"));
        assert_eq!(c.status.as_deref(), Some("Activă"));
    }

    #[test]
    fn labels_match_with_cedilla_comma_below_and_combining_forms() {
        for label in [
            "Data înregistrării",
            "Data i\u{0302}nregistra\u{0306}rii",
            "DATA ÎNREGISTRĂRII:",
            "Data inregistrarii",
        ] {
            let html = page(&format!(
                "<table><tr><th>{label}</th><td>01.02.2010</td></tr></table>"
            ));
            let c = transform(&html, IDNO).unwrap();
            assert_eq!(
                c.registration_date.as_deref(),
                Some("2010-02-01"),
                "{label}"
            );
        }
        // ș/ț with comma below (U+0219/U+021B) and with cedilla (U+015F/U+0163).
        for label in [
            "Activități",
            "Activităţi",
            "Activita\u{0163}i",
            "Activita\u{021b}i",
        ] {
            let html = page(&format!(
                "<div><span>{label}</span><span>47.11 Comerț</span></div>"
            ));
            assert_eq!(
                transform(&html, IDNO).unwrap().activities,
                ["47.11 Comerț"],
                "{label}"
            );
        }
    }

    #[test]
    fn russian_labels() {
        let html = page(
            "<table><tr><td>Название</td><td>ООО «Пример»</td></tr>\
             <tr><td>Организационно-правовая форма</td><td>Общество с ограниченной ответственностью</td></tr>\
             <tr><td>Адрес</td><td>г. Кишинёв</td></tr><tr><td>Дата регистрации</td><td>2001-05-06</td></tr>\
             <tr><td>Статус</td><td>Действующее</td></tr><tr><td>Руководитель</td><td>Иванов Иван</td></tr>\
             <tr><td>Виды деятельности</td><td><ul><li>62.01 Разработка ПО</li><li>62.02 Консультирование</li></ul></td></tr></table>",
        );
        let c = transform(&html, IDNO).unwrap();
        assert_eq!(c.company_name.as_deref(), Some("ООО «Пример»"));
        assert_eq!(
            c.legal_form.as_deref(),
            Some("Общество с ограниченной ответственностью")
        );
        assert_eq!(c.registration_date.as_deref(), Some("2001-05-06"));
        assert_eq!(c.directors, ["Иванов Иван"]);
        assert_eq!(
            c.activities,
            ["62.01 Разработка ПО", "62.02 Консультирование"]
        );
    }

    #[test]
    fn messy_whitespace_is_collapsed() {
        let html = page(
            "<div class=\"row\">\n   <span class=\"label\">\n  Denumirea\u{a0}completă :\n</span>\n\
             <span class=\"value\">  Exemplu\u{a0}\u{a0}  Comerț\n\t SRL </span></div>\
             <p><b>IDNO:</b>\n 1008600038413 <br></p>",
        );
        let c = transform(&html, IDNO).unwrap();
        assert_eq!(c.company_name.as_deref(), Some("Exemplu Comerț SRL"));
        assert_eq!(c.idno.as_deref(), Some(IDNO));
    }

    #[test]
    fn missing_fields_are_none_and_empty_values_do_not_steal_the_next_label() {
        let html = page("<dl><dt>Denumirea</dt><dd>X SRL</dd><dt>Adresa</dt><dd> </dd><dt>Statut</dt><dd>Activă</dd></dl>");
        let c = transform(&html, IDNO).unwrap();
        assert_eq!(c.company_name.as_deref(), Some("X SRL"));
        assert_eq!(c.address, None);
        assert_eq!(c.status.as_deref(), Some("Activă"));
        assert_eq!(c.legal_form, None);
        assert!(c.directors.is_empty());
    }

    #[test]
    fn inline_label_value_leaf() {
        let html =
            page("<ul><li>Statut: Activă</li><li>Administrator: Ion Popescu; Maria Rusu</li></ul>");
        let c = transform(&html, IDNO).unwrap();
        assert_eq!(c.status.as_deref(), Some("Activă"));
        assert_eq!(c.directors, ["Ion Popescu", "Maria Rusu"]);
    }

    #[test]
    fn nested_label_climbs_to_its_cell() {
        let html = page("<table><tr><th><span><b>Conducători</b></span></th><td>Ion Popescu<br>Maria Rusu</td></tr></table>");
        assert_eq!(
            transform(&html, IDNO).unwrap().directors,
            ["Ion Popescu", "Maria Rusu"]
        );
    }

    #[test]
    fn not_found_pages() {
        for body in [
            "<div class=\"message\">Compania nu a fost găsită</div>",
            "<div>Compania nu a fost gǎsitǎ</div>",
            "<p>Компания не найдена</p>",
            "<h2>Company not found</h2>",
            "<div data-not-found></div>",
        ] {
            assert_eq!(
                transform(&page(body), IDNO),
                Err(TransformError::NotFound),
                "{body}"
            );
        }
    }

    #[test]
    fn an_unrendered_shell_has_no_data() {
        let html = page(
            "<div id=\"app\">Se încarcă…</div><script>const m = 'Compania nu a fost găsită';\
             document.getElementById('app').innerHTML = '<dt>Denumirea</dt>';</script>",
        );
        assert_eq!(transform(&html, IDNO), Err(TransformError::NoData));
    }

    #[test]
    fn another_companys_page_is_refused() {
        let html = page("<dl><dt>IDNO</dt><dd>1000000000007</dd><dt>Denumirea</dt><dd>Y</dd></dl>");
        assert!(matches!(
            transform(&html, IDNO),
            Err(TransformError::IdnoMismatch { .. })
        ));
    }

    #[test]
    fn name_falls_back_to_the_heading() {
        let html = page("<h1> Exemplu SRL </h1><dl><dt>Statut</dt><dd>Activă</dd></dl>");
        assert_eq!(
            transform(&html, IDNO).unwrap().company_name.as_deref(),
            Some("Exemplu SRL")
        );
    }

    #[test]
    fn dates_are_normalised_when_readable() {
        assert_eq!(normalize_date("12.03.2003"), "2003-03-12");
        assert_eq!(normalize_date("12/03/2003 (acum 20 ani)"), "2003-03-12");
        assert_eq!(normalize_date("martie 2003"), "martie 2003");
    }

    /// The stored samples in `tests/fixtures/`.
    mod samples {
        use super::super::*;
        use super::transform;

        #[test]
        fn rendered_page_of_the_fixture_site() {
            let c = transform(
                include_str!("../tests/fixtures/rendered_ro.html"),
                "1008600038413",
            )
            .unwrap();
            assert_eq!(c.company_name.as_deref(), Some("Exemplu Comerț SRL"));
            assert_eq!(c.idno.as_deref(), Some("1008600038413"));
            assert_eq!(
                c.address.as_deref(),
                Some("mun. Chişinău, str. Ştefan cel Mare şi Sfînt 1, of. 2")
            );
            assert_eq!(c.registration_date.as_deref(), Some("2003-03-12"));
            assert_eq!(c.directors, ["Ion Popescu", "Maria Rusu"]);
            assert_eq!(c.activities.len(), 2);
        }

        #[test]
        fn cedilla_labels_messy_whitespace_and_missing_fields() {
            let c = transform(
                include_str!("../tests/fixtures/cedilla_messy.html"),
                "1003600000006",
            )
            .unwrap();
            assert_eq!(c.company_name.as_deref(), Some("“Ştiinţa Veche” S.R.L."));
            assert_eq!(c.idno.as_deref(), Some("1003600000006"));
            assert_eq!(
                c.legal_form, None,
                "an empty value is missing, not the next label"
            );
            assert_eq!(c.registration_date.as_deref(), Some("1999-11-05"));
            assert_eq!(c.status.as_deref(), Some("Activă"));
            assert_eq!(
                c.address.as_deref(),
                Some("or. Bălţi, str. Independenţei 5")
            );
            assert_eq!(c.directors, ["Ţurcan Ion", "Şova Elena"]);
            assert_eq!(
                c.activities,
                [
                    "01.11 Cultivarea cerealelor",
                    "46.21 Comerț cu ridicata al cerealelor"
                ]
            );
        }

        #[test]
        fn russian_labels_in_label_span_pairs() {
            let c = transform(
                include_str!("../tests/fixtures/russian.html"),
                "1008600038413",
            )
            .unwrap();
            assert_eq!(c.company_name.as_deref(), Some("ООО «Пример Плюс»"));
            assert_eq!(c.idno.as_deref(), Some("1008600038413"));
            assert_eq!(
                c.legal_form.as_deref(),
                Some("Общество с ограниченной ответственностью")
            );
            assert_eq!(c.address.as_deref(), Some("мун. Кишинэу, ул. Пушкина 10"));
            assert_eq!(c.registration_date.as_deref(), Some("2010-07-01"));
            assert_eq!(c.status.as_deref(), Some("Действующее"));
            assert_eq!(c.directors, ["Иванов Иван Иванович"]);
            assert_eq!(
                c.activities,
                [
                    "62.01 Разработка программного обеспечения",
                    "63.11 Обработка данных"
                ]
            );
        }

        #[test]
        fn not_found_page_and_unrendered_shell() {
            let nf = include_str!("../tests/fixtures/not_found.html");
            assert_eq!(
                transform(nf, "1002600000009"),
                Err(TransformError::NotFound)
            );
            let shell = include_str!("../tests/fixtures/shell.html");
            assert_eq!(
                transform(shell, "1008600038413"),
                Err(TransformError::NoData)
            );
        }
    }

    #[test]
    fn the_label_alphabet_covers_every_label() {
        for (_, labels) in LABELS {
            for label in *labels {
                assert!(label.chars().all(in_labels), "{label}");
                assert!(label.len() <= LONGEST_LABEL_BYTES, "{label}");
                assert_eq!(
                    normalize_label(label),
                    *label,
                    "labels are stored normalised"
                );
                assert!(field_for(label).is_some());
                let mut key = String::new();
                assert!(
                    label_field(&label.to_uppercase(), &mut key).is_some(),
                    "{label}"
                );
            }
        }
        let mut key = String::new();
        assert_eq!(label_field("Categoria 12 – Activități", &mut key), None);
        assert_eq!(
            label_field("  Data înregistrării * : ", &mut key),
            Some(Field::RegistrationDate)
        );
    }

    /// Found while fuzzing (docs/fuzzing.md, finding 1): each of thousands of nested
    /// elements read its whole subtree, so the page took quadratic time.
    #[test]
    fn deeply_nested_markup_is_read_in_bounded_steps() {
        let nested = |depth: usize| {
            page(&format!(
                "{}<dl><dt>Statut</dt><dd>Activă</dd></dl>{}",
                "<div>".repeat(depth),
                "</div>".repeat(depth)
            ))
        };
        let deepest = crate::nesting::MAX_DEPTH - 8;
        assert_eq!(
            transform(&nested(deepest), IDNO).unwrap().status.as_deref(),
            Some("Activă")
        );
        // Deeper than any real page: refused before the parser sees it.
        let too_deep = nested(crate::nesting::MAX_DEPTH * 100);
        assert!(matches!(
            transform(&too_deep, IDNO),
            Err(TransformError::TooDeep)
        ));
        // A container of more nodes than any label has is not read to its end.
        let doc = Html::parse_fragment(&format!(
            "<div>{}x</div>",
            "<i></i>".repeat(MAX_SHORT_NODES)
        ));
        let div = doc
            .select(&scraper::Selector::parse("div").unwrap())
            .next()
            .unwrap();
        assert_eq!(short_text(div, MAX_INLINE_CHARS), None);
        let small = Html::parse_fragment("<div><i></i><b>Statut</b></div>");
        let div = small
            .select(&scraper::Selector::parse("div").unwrap())
            .next()
            .unwrap();
        assert_eq!(short_text(div, MAX_LABEL_CHARS).as_deref(), Some("Statut"));
    }

    #[test]
    fn label_normalisation() {
        assert_eq!(
            normalize_label("  Forma organizatorico-juridică : "),
            "forma organizatorico-juridica"
        );
        assert_eq!(
            normalize_label("GENURI DE ACTIVITATE*"),
            "genuri de activitate"
        );
        assert_eq!(normalize_label("Ş ş Ţ ţ Ș ș Ț ț"), "s s t t s s t t");
    }
}
