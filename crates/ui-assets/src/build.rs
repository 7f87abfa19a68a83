//! The build-time half: a build script calls [`area`] to embed a web directory. It walks the
//! directory, computes the content hash, writes the pages with their `__UI_BASE__` replaced,
//! and generates `$OUT_DIR/ui_area_<name>.rs`: the [`crate::Area`] expression that
//! [`crate::area!`] includes, with one `include_bytes!` per file (so the bytes are the
//! compiler's to embed, not copied through generated source).
//!
//! The rules, checked here so that a mistake fails the build rather than a browser:
//! - file names are made of `A-Z a-z 0-9 . _ -` (URLs need no escaping), and a name or
//!   directory starting with `.` is skipped (editor and system files);
//! - every file has a known type ([`content_type`]); anything else fails the build;
//! - the manifest's `entry` is `index.js` when the area has one, its `styles` every `.css`
//!   file at the top of the directory, its `modules` every other `.js` file, by name.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What can be wrong with an area's directory.
#[derive(Debug)]
pub enum BuildError {
    Io(PathBuf, std::io::Error),
    /// A name with a character outside `A-Z a-z 0-9 . _ -`.
    Name(PathBuf),
    /// A file of no known type.
    Type(PathBuf),
    /// An area name outside `a-z 0-9 -`.
    AreaName(String),
    /// No file at all.
    Empty(PathBuf),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            BuildError::Name(path) => write!(
                f,
                "{}: a UI file name may use only A-Z a-z 0-9 . _ -",
                path.display()
            ),
            BuildError::Type(path) => write!(
                f,
                "{}: no content type is known for this file (see ui_assets::build::content_type)",
                path.display()
            ),
            BuildError::AreaName(name) => {
                write!(f, "{name:?}: an area name may use only a-z 0-9 -")
            }
            BuildError::Empty(dir) => write!(f, "{}: no file to embed", dir.display()),
        }
    }
}

impl std::error::Error for BuildError {}

/// For a build script: embeds `dir` (relative to the crate's manifest directory) as the area
/// `name`, and tells Cargo to run the script again when anything in it changes. Panics with
/// the reason when the directory breaks a rule (a build script reports errors by failing).
pub fn area(name: &str, dir: impl AsRef<Path>) {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by Cargo");
    let out_dir = std::env::var_os("OUT_DIR").expect("run by Cargo");
    let dir = Path::new(&manifest_dir).join(dir);
    println!("cargo:rerun-if-changed={}", dir.display());
    let generated = match generate(name, &dir, Path::new(&out_dir)) {
        Ok(generated) => generated,
        Err(e) => panic!("ui-assets: {e}"),
    };
    for file in &generated.sources {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let target = Path::new(&out_dir).join(format!("ui_area_{name}.rs"));
    if let Err(e) = std::fs::write(&target, &generated.code) {
        panic!("ui-assets: {}: {e}", target.display());
    }
}

/// What [`generate`] made.
#[derive(Debug)]
pub struct Generated {
    /// The Rust expression of the [`crate::Area`].
    pub code: String,
    /// The area's content hash.
    pub hash: String,
    /// The manifest (JSON).
    pub manifest: String,
    /// Every embedded source file.
    pub sources: Vec<PathBuf>,
}

/// Reads the area `name` from `dir`, writes its pages (with `__UI_BASE__` replaced) under
/// `out_dir/ui_area_<name>/`, and returns the generated code.
pub fn generate(name: &str, dir: &Path, out_dir: &Path) -> Result<Generated, BuildError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(BuildError::AreaName(name.to_owned()));
    }
    let mut files = Vec::new();
    collect(dir, "", &mut files)?;
    if files.is_empty() {
        return Err(BuildError::Empty(dir.to_owned()));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));

    let hash = content_hash(&files);
    let base = format!("/ui/{name}/{hash}/");
    let manifest = manifest(name, &hash, &base, &files);

    let pages_dir = out_dir.join(format!("ui_area_{name}"));
    let mut code = String::new();
    let _ = writeln!(code, "::ui_assets::Area {{");
    let _ = writeln!(code, "    name: {name:?},");
    let _ = writeln!(code, "    hash: {hash:?},");
    let _ = writeln!(code, "    etag: {:?},", format!("\"{hash}\""));
    let _ = writeln!(code, "    manifest: {manifest:?},");
    let _ = writeln!(code, "    files: &[");
    for file in &files {
        // Pages name their hashed files: the token is replaced, and the page embedded from
        // the rewritten copy.
        let (embedded, bytes) = if file.path.ends_with(".html") {
            let text = String::from_utf8_lossy(&file.bytes).replace(crate::BASE_TOKEN, &base);
            let target = pages_dir.join(&file.path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| BuildError::Io(parent.into(), e))?;
            }
            std::fs::write(&target, &text).map_err(|e| BuildError::Io(target.clone(), e))?;
            (target, text.into_bytes())
        } else {
            (file.source.clone(), file.bytes.clone())
        };
        let etag = format!("\"{}\"", short_hex(&Sha256::digest(&bytes)));
        let _ = writeln!(code, "        ::ui_assets::File {{");
        let _ = writeln!(code, "            path: {:?},", file.path);
        let _ = writeln!(code, "            content_type: {:?},", file.content_type);
        let _ = writeln!(code, "            etag: {etag:?},");
        let _ = writeln!(
            code,
            "            bytes: include_bytes!({:?}),",
            embedded.display().to_string()
        );
        let _ = writeln!(code, "        }},");
    }
    let _ = writeln!(code, "    ],");
    let _ = writeln!(code, "}}");
    Ok(Generated {
        code,
        hash,
        manifest,
        sources: files.into_iter().map(|f| f.source).collect(),
    })
}

/// The content type of a file, by its extension; `None` for a type the UI does not serve.
pub fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

struct Source {
    /// `/`-separated, relative to the area's directory.
    path: String,
    source: PathBuf,
    content_type: &'static str,
    bytes: Vec<u8>,
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<Source>) -> Result<(), BuildError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BuildError::Io(dir.into(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BuildError::Io(dir.into(), e))?;
        let source = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(BuildError::Name(source));
        };
        if name.starts_with('.') {
            continue;
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(BuildError::Name(source));
        }
        let path = format!("{prefix}{name}");
        let kind = entry
            .file_type()
            .map_err(|e| BuildError::Io(source.clone(), e))?;
        if kind.is_dir() {
            collect(&source, &format!("{path}/"), out)?;
            continue;
        }
        let Some(content_type) = content_type(&path) else {
            return Err(BuildError::Type(source));
        };
        let bytes = std::fs::read(&source).map_err(|e| BuildError::Io(source.clone(), e))?;
        out.push(Source {
            path,
            source,
            content_type,
            bytes,
        });
    }
    Ok(())
}

/// SHA-256 over every file's path, length and bytes (so that moving bytes from one file to
/// another changes it too), as 16 hex digits.
fn content_hash(files: &[Source]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.path.as_bytes());
        hasher.update([0]);
        hasher.update((file.bytes.len() as u64).to_le_bytes());
        hasher.update(&file.bytes);
    }
    short_hex(&hasher.finalize())
}

fn short_hex(digest: &[u8]) -> String {
    digest[..8].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `{"area":…,"hash":…,"entry":…|null,"styles":[…],"modules":[…]}`: `modules` are the other
/// scripts, which a loader may fetch in parallel with the entry (`modulepreload`) instead of
/// discovering them import by import. Names are checked ASCII without quotes or backslashes,
/// so they need no JSON escaping.
fn manifest(name: &str, hash: &str, base: &str, files: &[Source]) -> String {
    let url = |f: &Source| format!("\"{base}{}\"", f.path);
    let entry = files
        .iter()
        .find(|f| f.path == "index.js")
        .map_or_else(|| "null".to_owned(), url);
    let styles: Vec<String> = files
        .iter()
        .filter(|f| f.path.ends_with(".css") && !f.path.contains('/'))
        .map(url)
        .collect();
    let modules: Vec<String> = files
        .iter()
        .filter(|f| f.path.ends_with(".js") && f.path != "index.js")
        .map(url)
        .collect();
    format!(
        "{{\"area\":\"{name}\",\"hash\":\"{hash}\",\"entry\":{entry},\"styles\":[{}],\"modules\":[{}]}}",
        styles.join(","),
        modules.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, bytes: &str) {
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }

    fn area_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "index.js", "export function mount() {}");
        write(dir.path(), "b.css", "b{}");
        write(dir.path(), "a.css", "a{}");
        write(dir.path(), "screens/list.js", "export {}");
        write(dir.path(), "screens/list.css", "x{}");
        write(
            dir.path(),
            "page.html",
            "<script src=\"__UI_BASE__index.js\"></script>",
        );
        write(dir.path(), ".hidden.swp", "editor junk");
        dir
    }

    #[test]
    fn the_manifest_names_the_hashed_entry_and_top_level_styles() {
        let dir = area_dir();
        let out = tempfile::tempdir().unwrap();
        let g = generate("demo", dir.path(), out.path()).unwrap();
        assert_eq!(g.hash.len(), 16);
        let base = format!("/ui/demo/{}/", g.hash);
        assert_eq!(
            g.manifest,
            format!(
                "{{\"area\":\"demo\",\"hash\":\"{h}\",\"entry\":\"{base}index.js\",\"styles\":[\"{base}a.css\",\"{base}b.css\"],\"modules\":[\"{base}screens/list.js\"]}}",
                h = g.hash
            )
        );
        // Hidden files are left out; the rest is embedded from its source, sorted.
        let names: Vec<_> = g
            .sources
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "a.css",
                "b.css",
                "index.js",
                "page.html",
                "screens/list.css",
                "screens/list.js"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn pages_name_their_hashed_files() {
        let dir = area_dir();
        let out = tempfile::tempdir().unwrap();
        let g = generate("demo", dir.path(), out.path()).unwrap();
        let page = std::fs::read_to_string(out.path().join("ui_area_demo/page.html")).unwrap();
        assert_eq!(
            page,
            format!("<script src=\"/ui/demo/{}/index.js\"></script>", g.hash)
        );
        assert!(g.code.contains("ui_area_demo/page.html"), "{}", g.code);
        assert!(g.code.contains("text/javascript; charset=utf-8"));
    }

    #[test]
    fn the_hash_follows_every_byte_and_name() {
        let dir = area_dir();
        let out = tempfile::tempdir().unwrap();
        let first = generate("demo", dir.path(), out.path()).unwrap().hash;
        assert_eq!(
            generate("demo", dir.path(), out.path()).unwrap().hash,
            first,
            "stable"
        );
        write(dir.path(), "screens/list.js", "export {};");
        let edited = generate("demo", dir.path(), out.path()).unwrap().hash;
        assert_ne!(edited, first);
        std::fs::rename(dir.path().join("b.css"), dir.path().join("c.css")).unwrap();
        assert_ne!(
            generate("demo", dir.path(), out.path()).unwrap().hash,
            edited
        );
    }

    #[test]
    fn broken_rules_fail_the_build() {
        let out = tempfile::tempdir().unwrap();
        let dir = area_dir();
        assert!(matches!(
            generate("Demo", dir.path(), out.path()),
            Err(BuildError::AreaName(_))
        ));
        write(dir.path(), "notes.md", "# no");
        assert!(matches!(
            generate("demo", dir.path(), out.path()),
            Err(BuildError::Type(_))
        ));
        let dir = area_dir();
        write(dir.path(), "my file.js", "");
        assert!(matches!(
            generate("demo", dir.path(), out.path()),
            Err(BuildError::Name(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        let err = generate("demo", empty.path(), out.path()).unwrap_err();
        assert!(matches!(err, BuildError::Empty(_)));
        assert!(err.to_string().contains("no file to embed"));
    }

    #[test]
    fn an_area_without_index_js_has_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "shell.js", "");
        let out = tempfile::tempdir().unwrap();
        let g = generate("shell", dir.path(), out.path()).unwrap();
        assert!(g.manifest.contains("\"entry\":null"), "{}", g.manifest);
        assert!(g.manifest.contains("\"styles\":[]"), "{}", g.manifest);
        assert!(
            g.manifest.ends_with(&format!(
                "\"modules\":[\"/ui/shell/{}/shell.js\"]}}",
                g.hash
            )),
            "{}",
            g.manifest
        );
    }

    #[test]
    fn known_content_types() {
        assert_eq!(
            content_type("a/b.js"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(content_type("x.svg"), Some("image/svg+xml"));
        assert_eq!(content_type("Makefile"), None);
        assert_eq!(content_type("x.exe"), None);
    }
}
