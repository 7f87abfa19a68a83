//! Synthetic stored pages shaped like the source's, for the re-transform tests and the corpus
//! generator (`examples/seed_pages.rs`): the fixture templates of `tests/fixtures/` filled
//! with varied companies, wrapped in site chrome (navigation, inline script and style, a
//! related-companies table) up to a chosen size — the real company page is about 194 KiB,
//! almost all of it chrome.
//!
//! Deterministic: page `n` is always the same bytes.

use std::fmt::Write as _;

use api::scrape::Idno;
use test_support::SplitMix;

/// The size of a real company page of the source, in bytes (194 KiB).
pub const REAL_PAGE_BYTES: usize = 194 * 1024;

/// A stored page to be: company, address fetched, body.
pub struct CorpusPage {
    pub idno: Idno,
    pub url: String,
    pub html: String,
}

/// Page `n` of a corpus of `companies` companies (so companies have several pages each once
/// `n` exceeds it), padded to about `target_bytes` (never less than the template itself).
pub fn page(n: u64, companies: u64, target_bytes: usize) -> CorpusPage {
    let mut rng = SplitMix(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
    let company = Company::new(n % companies.max(1));
    let body = match rng.next_u64() % 100 {
        0..=69 => company.rendered_ro(),
        70..=81 => company.cedilla_messy(),
        82..=93 => company.russian(),
        94..=97 => NOT_FOUND.replace("1002600000009", company.idno.as_str()),
        _ => SHELL.replace("1008600038413", company.idno.as_str()),
    };
    let html = pad(&body, n, target_bytes, &mut rng);
    CorpusPage {
        url: format!("https://openmoney.md/companies/{}", company.idno),
        idno: company.idno,
        html,
    }
}

const RENDERED_RO: &str = include_str!("../fixtures/rendered_ro.html");
const CEDILLA_MESSY: &str = include_str!("../fixtures/cedilla_messy.html");
const RUSSIAN: &str = include_str!("../fixtures/russian.html");
const NOT_FOUND: &str = include_str!("../fixtures/not_found.html");
const SHELL: &str = include_str!("../fixtures/shell.html");

const FIRST: &[&str] = &[
    "Ion",
    "Maria",
    "Elena",
    "Vasile",
    "Ana",
    "Gheorghe",
    "Natalia",
    "Sergiu",
    "Ţurcan",
    "Olga",
    "Mihai",
    "Irina",
    "Андрей",
    "Светлана",
];
const LAST: &[&str] = &[
    "Popescu",
    "Rusu",
    "Ciobanu",
    "Şova",
    "Munteanu",
    "Țurcanu",
    "Lungu",
    "Rotari",
    "Botnari",
    "Cebotari",
    "Иванов",
    "Петрова",
];
const WORDS: &[&str] = &[
    "Exemplu",
    "Comerț",
    "Agro",
    "Vin",
    "Ştiinţa",
    "Construct",
    "Lux",
    "Nord",
    "Sud",
    "Prim",
    "Plus",
    "Tehno",
    "Moldova",
    "Bălţi",
    "Service",
    "Trans",
    "Pâine",
    "Lapte",
];
const FORMS: &[&str] = &[
    "Societate cu Răspundere Limitată",
    "Întreprindere Individuală",
    "Societate pe Acţiuni",
    "Cooperativă de producţie",
];
const TOWNS: &[&str] = &[
    "mun. Chişinău",
    "mun. Bălţi",
    "or. Cahul",
    "or. Orhei",
    "s. Cricova",
];
const STREETS: &[&str] = &[
    "str. Ştefan cel Mare şi Sfînt",
    "bd. Dacia",
    "str. Independenţei",
    "str. Mihai Eminescu",
    "str. Pușkin",
];
const STATES: &[&str] = &["Activă", "Inactivă", "Lichidată", "În proces de lichidare"];
const ACTIVITIES: &[&str] = &[
    "47.11 Comerț cu amănuntul",
    "62.01 Activități de realizare a soft-ului",
    "01.11 Cultivarea cerealelor",
    "46.21 Comerț cu ridicata al cerealelor",
    "41.20 Lucrări de construcţii",
    "49.41 Transporturi rutiere de mărfuri",
    "56.10 Restaurante",
];

/// A company of the corpus, made from its number.
struct Company {
    idno: Idno,
    name: String,
    legal_form: &'static str,
    address: String,
    day: u64,
    month: u64,
    year: u64,
    status: &'static str,
    directors: Vec<String>,
    activities: Vec<&'static str>,
}

impl Company {
    fn new(k: u64) -> Company {
        let mut rng = SplitMix(k ^ 0xc0ffee);
        let idno = Idno::from_stem(&format!("{:012}", 100_360_000_000 + k));
        let name = format!("{} {} {} SRL", rng.pick(WORDS), rng.pick(WORDS), k);
        let address = format!(
            "{}, {} {}, of. {}",
            rng.pick(TOWNS),
            rng.pick(STREETS),
            1 + rng.next_u64() % 200,
            1 + rng.next_u64() % 40
        );
        let directors = (0..1 + rng.next_u64() % 3)
            .map(|_| format!("{} {}", rng.pick(LAST), rng.pick(FIRST)))
            .collect();
        let activities = (0..1 + rng.next_u64() % 4)
            .map(|_| rng.pick(ACTIVITIES))
            .collect();
        Company {
            idno,
            name,
            legal_form: rng.pick(FORMS),
            address,
            day: 1 + rng.next_u64() % 28,
            month: 1 + rng.next_u64() % 12,
            year: 1992 + rng.next_u64() % 33,
            status: rng.pick(STATES),
            directors,
            activities,
        }
    }

    /// The fixture site's table of Romanian labels.
    fn rendered_ro(&self) -> String {
        let items =
            |list: &[String]| -> String { list.iter().map(|i| format!("<li>{i}</li>")).collect() };
        let activities: Vec<String> = self.activities.iter().map(|a| a.to_string()).collect();
        RENDERED_RO
            .replace("Exemplu Comerț SRL", &self.name)
            .replace("1008600038413", self.idno.as_str())
            .replace("Societate cu Răspundere Limitată", self.legal_form)
            .replace(
                "mun. Chişinău, str. Ştefan cel Mare şi Sfînt 1, of. 2",
                &self.address,
            )
            .replace(
                "12.03.2003",
                &format!("{:02}.{:02}.{}", self.day, self.month, self.year),
            )
            .replace("<td>Activă</td>", &format!("<td>{}</td>", self.status))
            .replace(
                "<li>Ion Popescu</li><li>Maria Rusu</li>",
                &items(&self.directors),
            )
            .replace(
                "<li>47.11 Comerț cu amănuntul</li><li>62.01 Activități de realizare a soft-ului</li>",
                &items(&activities),
            )
    }

    /// A definition list with cedilla labels, messy whitespace and a missing value.
    fn cedilla_messy(&self) -> String {
        CEDILLA_MESSY
            .replace("&#8220;Ştiinţa   Veche&#8221;", &self.name)
            .replace("1003600000006", self.idno.as_str())
            .replace(
                "05.11.1999",
                &format!("{:02}.{:02}.{}", self.day, self.month, self.year),
            )
            .replace("Ţurcan Ion<br>Şova Elena", &self.directors.join("<br>"))
            .replace(
                "01.11 Cultivarea cerealelor; 46.21 Comerț cu ridicata al cerealelor",
                &self.activities.join("; "),
            )
    }

    /// Russian labels in label/value span pairs.
    fn russian(&self) -> String {
        RUSSIAN
            .replace("ООО «Пример Плюс»", &format!("ООО «{}»", self.name))
            .replace("1008600038413", self.idno.as_str())
            .replace("мун. Кишинэу, ул. Пушкина 10", &self.address)
            .replace(
                "2010-07-01",
                &format!("{}-{:02}-{:02}", self.year, self.month, self.day),
            )
            .replace("Иванов Иван Иванович", &self.directors[0])
    }
}

/// `body` with site chrome added until it is about `target` bytes: a style and a script in
/// the head, a navigation menu first in the body and a related-companies table last. `n`
/// makes every page's bytes unique (as two fetches of a real page differ).
fn pad(body: &str, n: u64, target: usize, rng: &mut SplitMix) -> String {
    let budget = target.saturating_sub(body.len());
    let mut style = String::new();
    let mut script = format!("window.__page = {n};\n");
    let mut nav = String::new();
    let mut related = String::new();
    let mut i = 0u64;
    while style.len() < budget / 10 {
        let _ = writeln!(
            style,
            ".c{i}{{margin:{}px;padding:2px}}",
            rng.next_u64() % 40
        );
        i += 1;
    }
    while script.len() < budget * 45 / 100 {
        let _ = writeln!(
            script,
            "function f{i}(a,b){{return a*{}+b-\"Denumirea\".length;}}",
            rng.next_u64() % 1000
        );
        i += 1;
    }
    while nav.len() < budget * 15 / 100 {
        let _ = writeln!(
            nav,
            "<li class=\"nav-item\"><a class=\"nav-link\" href=\"/categorii/{i}\">Categoria {} – Activități economice</a></li>",
            rng.next_u64() % 500
        );
        i += 1;
    }
    while related.len() < budget * 30 / 100 {
        let k = rng.next_u64() % 1_000_000;
        let _ = writeln!(
            related,
            "<tr><td><a href=\"/companies/10086{k:08}\">Firma Înrudită Nr. {k} SRL</a></td><td>mun. Chişinău, str. Ştefan cel Mare {}</td><td>Activă</td></tr>",
            k % 300
        );
    }
    let head = format!("<style>{style}</style><script>{script}</script></head>");
    let top =
        format!("<body><header class=\"site\"><nav><ul class=\"nav\">{nav}</ul></nav></header>");
    let bottom = format!(
        "<section class=\"related\"><h2>Companii înrudite</h2><table class=\"related\"><thead><tr>\
         <th>Companie</th><th>Localitate</th><th>Situație</th></tr></thead><tbody>{related}</tbody></table></section></body>"
    );
    body.replacen("</head>", &head, 1)
        .replacen("<body>", &top, 1)
        .replacen("</body>", &bottom, 1)
}
