//! `scraper_service::transform::transform` on generated company pages whose record is known:
//! fields laid out the ways the module documentation names (definition lists, table rows with
//! `th` or `td` labels, label/value span pairs, labels nested in their cell, `<b>Label:</b>
//! value`, `Label: value` leaves), labels in Romanian, Russian or English with the spellings
//! real pages use (case, trailing `:` or `*`, non-breaking spaces, cedilla or comma-below,
//! decomposed diacritics), values as text, lines or lists, with headings, scripts and
//! "not found" texts around them.
//!
//! Invariant: the transform yields exactly the record the page shows — scalar fields from
//! their first occurrence (the IDNO from its first occurrence showing 13 digits), list items
//! from every differently labelled occurrence without duplicates, the name from the first
//! heading when no label gave one, dates as `YYYY-MM-DD` — or refuses the page for another
//! company's IDNO, or finds no data (and "not found" when the page says so).
//!
//! Values are made of words that start with `v`, which no label, marker or date does, so a
//! value is never read as anything else.

#![no_main]

use api::scrape::Idno;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use scraper_service::transform::{transform, ParsedCompany, TransformError};

const REQUESTED: &str = "1008600038413";
/// Another valid IDNO (check digit 7).
const OTHER: &str = "1000000000007";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Arbitrary)]
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
    /// Spellings seen on real pages; each normalises to a label of the transform's list.
    fn labels(self) -> &'static [&'static str] {
        match self {
            Field::Name => &[
                "Denumirea",
                "Denumirea completă",
                "Название",
                "Company name",
            ],
            Field::Idno => &["IDNO", "IDNO/Cod fiscal", "Фискальный код", "Cod fiscal"],
            Field::LegalForm => &[
                "Forma organizatorico-juridică",
                "Legal form",
                "Правовая форма",
            ],
            Field::Address => &["Adresa juridică", "Адрес", "Address", "Sediul"],
            Field::RegistrationDate => &[
                "Data înregistrării",
                "Дата регистрации",
                "Registration date",
            ],
            Field::Status => &["Statut", "Starea", "Статус", "Status"],
            Field::Directors => &["Conducători", "Administrator", "Руководитель", "Directors"],
            Field::Activities => &[
                "Genuri de activitate",
                "Activități",
                "Виды деятельности",
                "Activities",
            ],
        }
    }

    fn is_list(self) -> bool {
        matches!(self, Field::Directors | Field::Activities)
    }
}

/// How a label is written.
#[derive(Clone, Copy, Debug, Arbitrary)]
enum Spelling {
    AsIs,
    Colon,
    SpaceColon,
    Star,
    Upper,
    NonBreakingSpaces,
    Cedilla,
    Decomposed,
}

#[derive(Clone, Debug, Arbitrary)]
struct Label {
    field: Field,
    which: u8,
    spelling: Spelling,
}

impl Label {
    fn base(&self) -> &'static str {
        let labels = self.field.labels();
        labels[usize::from(self.which) % labels.len()]
    }

    /// The label's text in the page.
    fn render(&self) -> String {
        let base = self.base();
        match self.spelling {
            Spelling::AsIs => base.to_owned(),
            Spelling::Colon => format!("{base}:"),
            Spelling::SpaceColon => format!("{base} :"),
            Spelling::Star => format!("{base}*"),
            Spelling::Upper => base.to_uppercase(),
            Spelling::NonBreakingSpaces => base.replace(' ', "\u{a0}"),
            Spelling::Cedilla => base.replace('ș', "ş").replace('ț', "ţ"),
            Spelling::Decomposed => base
                .replace('ă', "a\u{306}")
                .replace('î', "i\u{302}")
                .replace('ț', "t\u{326}"),
        }
    }
}

/// A word of a value: `v` and a few lower-case letters.
#[derive(Clone, Debug)]
struct Word(String);

impl<'a> Arbitrary<'a> for Word {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=5)?;
        let mut word = String::from("v");
        for _ in 0..len {
            word.push(char::from(b'a' + u.int_in_range(0..=25)?));
        }
        Ok(Word(word))
    }
}

/// One to four words (so that a `Label: value` leaf stays short enough to be read).
#[derive(Clone, Debug, Arbitrary)]
struct Item {
    first: Word,
    more: Vec<Word>,
}

impl Item {
    fn text(&self) -> String {
        std::iter::once(&self.first)
            .chain(self.more.iter().take(3))
            .map(|w| w.0.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone, Debug, Arbitrary)]
enum Value {
    /// Items separated by `; ` in one text.
    Semicolons(Item, Vec<Item>),
    /// Items on lines (`<br>`), inside an element.
    Lines(Item, Vec<Item>),
    /// Items of a `<ul>`, inside an element.
    List(Item, Vec<Item>),
    /// `DD.MM.YYYY`.
    Date { day: u8, month: u8, year: u8 },
    /// The requested IDNO, or another company's.
    Idno { other: bool, prefix: Option<Item> },
}

impl Value {
    fn items(&self) -> Vec<String> {
        match self {
            Value::Semicolons(first, more)
            | Value::Lines(first, more)
            | Value::List(first, more) => {
                // At most four items, for the same reason.
                std::iter::once(first)
                    .chain(more.iter().take(3))
                    .map(Item::text)
                    .collect()
            }
            Value::Date { .. } | Value::Idno { .. } => vec![self.plain()],
        }
    }

    fn date(day: u8, month: u8, year: u8) -> (u32, u32, u32) {
        (
            u32::from(day % 28) + 1,
            u32::from(month % 12) + 1,
            1990 + u32::from(year % 35),
        )
    }

    /// The value as one text (what inline layouts show).
    fn plain(&self) -> String {
        match self {
            Value::Semicolons(..) | Value::Lines(..) | Value::List(..) => self.items().join("; "),
            Value::Date { day, month, year } => {
                let (d, m, y) = Value::date(*day, *month, *year);
                format!("{d:02}.{m:02}.{y}")
            }
            Value::Idno { other, prefix } => {
                let idno = if *other { OTHER } else { REQUESTED };
                match prefix {
                    Some(p) => format!("{} {idno}", p.text()),
                    None => idno.to_owned(),
                }
            }
        }
    }

    /// The value as the content of an element.
    fn html(&self) -> String {
        match self {
            Value::Lines(..) => self.items().join("<br>"),
            Value::List(..) => {
                let items: String = self
                    .items()
                    .iter()
                    .map(|i| format!("<li>{i}</li>"))
                    .collect();
                format!("<ul>{items}</ul>")
            }
            _ => self.plain(),
        }
    }

    /// The text scalar `field` gets from this value, shown in an element or inline.
    fn expected_text(&self, field: Field, in_element: bool) -> String {
        match self {
            Value::Lines(..) | Value::List(..) if in_element => self.items().join(", "),
            Value::Date { day, month, year } if field == Field::RegistrationDate => {
                let (d, m, y) = Value::date(*day, *month, *year);
                format!("{y}-{m:02}-{d:02}")
            }
            _ => self.plain(),
        }
    }

    fn idno(&self) -> Option<&'static str> {
        match self {
            Value::Idno { other: true, .. } => Some(OTHER),
            Value::Idno { other: false, .. } => Some(REQUESTED),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Arbitrary)]
enum Block {
    /// `<dl><dt>label</dt><dd>value</dd>…</dl>`
    DefinitionList(Vec<(Label, Value)>),
    /// `<table><tr><th>label</th><td>value</td></tr>…</table>`, `td` labels when not `th`,
    /// the label wrapped in `<span><b>…</b></span>` when nested.
    Table {
        rows: Vec<(Label, Value)>,
        th: bool,
        nested: bool,
    },
    /// `<div><span>label</span><span>value</span></div>`
    Spans(Label, Value),
    /// `<p><b>Label:</b> value</p>` (values as text).
    Bold(Label, Value),
    /// `<ul><li>Label: value</li>…</ul>` (values as text).
    Leaves(Vec<(Label, Value)>),
    /// `<h1>words</h1>`
    Heading(Item),
    /// A script that mentions labels and values: never page text.
    Script(Label, Value),
    /// A "company not found" text.
    NotFound,
}

#[derive(Debug, Arbitrary)]
struct Page {
    blocks: Vec<Block>,
}

/// One field occurrence, in document order.
struct Occurrence {
    field: Field,
    /// The label as written in the transform's list: list fields take items from each
    /// differently labelled occurrence.
    key: &'static str,
    value: Value,
    in_element: bool,
}

impl Page {
    fn render(&self) -> (String, Vec<Occurrence>, Option<String>, bool) {
        let mut html =
            String::from("<!doctype html><html><head><title>vtitle</title></head><body>\n");
        let mut found = Vec::new();
        let mut heading = None;
        let mut not_found = false;
        let mut occur = |label: &Label, value: &Value, in_element: bool| {
            found.push(Occurrence {
                field: label.field,
                key: label.base(),
                value: value.clone(),
                in_element,
            });
            label.render()
        };
        for block in &self.blocks {
            match block {
                Block::DefinitionList(pairs) => {
                    html.push_str("<dl>\n");
                    for (label, value) in pairs {
                        let text = occur(label, value, true);
                        html.push_str(&format!("<dt>{text}</dt>\n<dd>{}</dd>\n", value.html()));
                    }
                    html.push_str("</dl>\n");
                }
                Block::Table { rows, th, nested } => {
                    html.push_str("<table>\n");
                    for (label, value) in rows {
                        let text = occur(label, value, true);
                        let text = if *nested {
                            format!("<span><b>{text}</b></span>")
                        } else {
                            text
                        };
                        let cell = if *th { "th" } else { "td" };
                        html.push_str(&format!(
                            "<tr><{cell}>{text}</{cell}> <td>{}</td></tr>\n",
                            value.html()
                        ));
                    }
                    html.push_str("</table>\n");
                }
                Block::Spans(label, value) => {
                    let text = occur(label, value, true);
                    html.push_str(&format!(
                        "<div class=\"row\"><span>{text}</span>\n<span>{}</span></div>\n",
                        value.html()
                    ));
                }
                Block::Bold(label, value) => {
                    let text = occur(label, value, false);
                    let colon = if text.ends_with(':') { "" } else { ":" };
                    html.push_str(&format!("<p><b>{text}{colon}</b> {}</p>\n", value.plain()));
                }
                Block::Leaves(pairs) => {
                    html.push_str("<ul>\n");
                    for (label, value) in pairs {
                        let text = occur(label, value, false);
                        // `Label: value` is split at the first colon.
                        let text = text.trim_end_matches([':', ' ']);
                        html.push_str(&format!("<li>{text}: {}</li>\n", value.plain()));
                    }
                    html.push_str("</ul>\n");
                }
                Block::Heading(item) => {
                    heading.get_or_insert_with(|| item.text());
                    html.push_str(&format!("<h1>{}</h1>\n", item.text()));
                }
                Block::Script(label, value) => {
                    html.push_str(&format!(
                        "<script>var m = '<dt>{}</dt><dd>{}</dd>';</script>\n",
                        label.base(),
                        value.plain()
                    ));
                }
                Block::NotFound => {
                    not_found = true;
                    html.push_str("<div class=\"message\">Compania nu a fost găsită</div>\n");
                }
            }
        }
        html.push_str("</body></html>\n");
        (html, found, heading, not_found)
    }
}

/// The record the page shows, written again from the module's rules.
fn expected(
    found: &[Occurrence],
    heading: Option<String>,
    not_found: bool,
) -> Result<ParsedCompany, TransformError> {
    let mut c = ParsedCompany::default();
    let mut list_keys: Vec<(Field, &str)> = Vec::new();
    for o in found {
        if o.field.is_list() {
            if list_keys.contains(&(o.field, o.key)) {
                continue;
            }
            list_keys.push((o.field, o.key));
            let list = match o.field {
                Field::Directors => &mut c.directors,
                _ => &mut c.activities,
            };
            for item in o.value.items() {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
            continue;
        }
        let text = o.value.expected_text(o.field, o.in_element);
        let slot = match o.field {
            Field::Name => &mut c.company_name,
            Field::Idno => {
                if c.idno.is_none() {
                    c.idno = o.value.idno().map(str::to_owned);
                }
                continue;
            }
            Field::LegalForm => &mut c.legal_form,
            Field::Address => &mut c.address,
            Field::RegistrationDate => &mut c.registration_date,
            Field::Status => &mut c.status,
            Field::Directors | Field::Activities => unreachable!(),
        };
        slot.get_or_insert(text);
    }
    if c == ParsedCompany::default() {
        return Err(if not_found {
            TransformError::NotFound
        } else {
            TransformError::NoData
        });
    }
    if c.company_name.is_none() {
        c.company_name = heading;
    }
    match c.idno.as_deref() {
        Some(OTHER) => Err(TransformError::IdnoMismatch {
            page: OTHER.to_owned(),
            requested: Idno::parse(REQUESTED).expect("valid"),
        }),
        _ => Ok(c),
    }
}

fuzz_target!(|page: Page| {
    let (html, found, heading, not_found) = page.render();
    let requested = Idno::parse(REQUESTED).expect("a valid IDNO");
    assert_eq!(
        transform(&html, &requested),
        expected(&found, heading, not_found),
        "\n{html}"
    );
});
