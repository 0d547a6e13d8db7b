//! Where a key is written in a TOML text, so that config and dialplan errors
//! name file:line:key exactly: the key a serde error's span falls in, and the
//! line a checked key (`media.queued`, `line[2].hours`) is written on.
//!
//! Why not the serde message: "invalid value: integer `-5`" names the value,
//! not the key, and a key's name alone does not say which record it is in.

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Every key of a TOML text with the spans of its name and value, by dotted
/// path; records of an array of tables are `name[i]`.
#[derive(Debug, Default)]
pub struct KeyLines {
    /// (path, key span, value span), in document order of the tree.
    keys: Vec<(String, Range<usize>, Range<usize>)>,
    /// Path → index in `keys`: every record's checks look their keys up.
    by_path: HashMap<String, usize>,
    /// Where the top-level tables written as `[header]` or `[[header]]` start.
    headers: Vec<usize>,
    /// Byte offsets where each line starts.
    starts: Vec<usize>,
}

impl KeyLines {
    /// Reads `text`; a text that is not TOML gives a map with no keys.
    pub fn new(text: &str) -> KeyLines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut map = KeyLines {
            starts,
            ..KeyLines::default()
        };
        if let Ok(doc) = DeTable::parse(text) {
            map.table(text, "", doc.get_ref());
        }
        map.by_path = (map.keys.iter().enumerate())
            .map(|(i, (p, _, _))| (p.clone(), i))
            .collect();
        map.headers.sort_unstable();
        map.headers.dedup();
        map
    }

    fn table(&mut self, text: &str, prefix: &str, t: &DeTable<'_>) {
        for (k, v) in t.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            self.keys.push((path.clone(), k.span(), v.span()));
            self.value(text, &path, v);
        }
    }

    fn value(&mut self, text: &str, path: &str, v: &toml::Spanned<DeValue<'_>>) {
        match v.get_ref() {
            DeValue::Table(t) => {
                // A top-level table written under a header (not inline `{…}`):
                // its span is the header itself.
                if !path.contains('.') && text.get(v.span()).is_some_and(|h| h.starts_with('[')) {
                    self.headers.push(v.span().start);
                }
                self.table(text, path, t)
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    self.keys.push((at.clone(), item.span(), item.span()));
                    self.value(text, &at, item);
                }
            }
            _ => {}
        }
    }

    /// The 1-based line of byte `offset`.
    pub fn line_at(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// The line `path` is written on (a record: its `[[header]]`).
    pub fn line(&self, path: &str) -> Option<usize> {
        let (_, key, _) = &self.keys[*self.by_path.get(path)?];
        Some(self.line_at(key.start))
    }

    /// The line of `path`, else of the nearest enclosing key that is written
    /// (a table's header, a record's `[[header]]`), else 0.
    pub fn line_or_enclosing(&self, path: &str) -> usize {
        let mut p = path;
        loop {
            if let Some(n) = self.line(p) {
                return n;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return 0,
            }
        }
    }

    /// The innermost key whose name or value holds byte `offset`.
    pub fn key_at(&self, offset: usize) -> Option<&str> {
        let holds = |r: &Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
        self.keys
            .iter()
            .filter(|(_, k, v)| holds(k) || holds(v))
            .min_by_key(|(p, k, v)| {
                let span = if holds(k) { k.len() } else { v.len() };
                (span, usize::MAX - p.len())
            })
            .map(|(p, _, _)| p.as_str())
    }

    /// Where a serde error of this text is: its line, and the key it is about.
    /// A missing field is named inside the table it is missing from.
    pub fn locate(&self, err: &toml::de::Error) -> (usize, String) {
        match err.span() {
            // An empty span is the document's root (a whole section missing).
            Some(span) if span.is_empty() => self.locate_root(err.message()),
            Some(span) => self.locate_at(span.start, err.message()),
            None => self.locate_root(err.message()),
        }
    }

    fn locate_root(&self, message: &str) -> (usize, String) {
        (0, missing_field(message).unwrap_or("-").to_string())
    }

    /// [`locate`](Self::locate) for an error at byte `offset` of this text.
    pub fn locate_at(&self, offset: usize, message: &str) -> (usize, String) {
        let line = self.line_at(offset);
        let key = match (self.key_at(offset), missing_field(message)) {
            (Some(table), Some(field)) => format!("{table}.{field}"),
            (Some(key), None) => key.to_string(),
            (None, field) => field.unwrap_or("-").to_string(),
        };
        (line, key)
    }

    /// Where each top-level `[table]` and `[[record]]` header starts, in text
    /// order: the text from one to the next is that table or record alone.
    pub fn headers(&self) -> &[usize] {
        &self.headers
    }
}

/// The field serde says is missing (`missing field `name``).
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
}

/// The start of an error message about a file: `file:line: key: `, leaving out
/// a line of 0 (the whole file) and a key of `-` (no key applies).
pub fn place(file: &str, line: usize, key: &str) -> String {
    let mut out = file.to_string();
    if line > 0 {
        out += &format!(":{line}");
    }
    out += ": ";
    if key != "-" && !key.is_empty() {
        out += key;
        out += ": ";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "top = 1\n\
[media]\n\
queued = \"anwser\"\n\
ports = [1,\n  2]\n\
[[line]]\n\
number = \"12345\"\n\
hours = { days = \"workdays\", from = \"08:30\" }\n\
[[line]]\n\
number = \"12346\"\n";

    #[test]
    fn a_place_leaves_out_what_does_not_apply() {
        assert_eq!(place("a.toml", 3, "sla.target"), "a.toml:3: sla.target: ");
        assert_eq!(place("a.toml", 0, "-"), "a.toml: ");
        assert_eq!(place("a.toml", 0, "calendar"), "a.toml: calendar: ");
    }

    #[test]
    fn keys_and_records_have_their_lines() {
        let k = KeyLines::new(TEXT);
        assert_eq!(k.line("top"), Some(1));
        assert_eq!(k.line("media"), Some(2));
        assert_eq!(k.line("media.queued"), Some(3));
        assert_eq!(k.line("line[0]"), Some(6));
        assert_eq!(k.line("line[1].number"), Some(10));
        assert_eq!(k.line("line[0].hours.from"), Some(8));
        assert_eq!(k.line("line[1].hours"), None);
        assert_eq!(k.line_or_enclosing("line[1].hours.from"), 9);
        assert_eq!(k.line_or_enclosing("sla.target"), 0);
    }

    #[test]
    fn an_offset_names_the_innermost_key() {
        let k = KeyLines::new(TEXT);
        let at = |needle: &str| TEXT.find(needle).unwrap();
        assert_eq!(k.key_at(at("\"anwser\"")), Some("media.queued"));
        assert_eq!(k.key_at(at("queued")), Some("media.queued"));
        assert_eq!(k.key_at(at("2]")), Some("media.ports[1]"));
        assert_eq!(k.key_at(at("\"08:30\"")), Some("line[0].hours.from"));
        assert_eq!(k.key_at(at("\"12346\"")), Some("line[1].number"));
    }

    #[test]
    fn headers_cut_the_text_into_tables_and_records() {
        let k = KeyLines::new(TEXT);
        let starts: Vec<usize> = [
            "[media]",
            "[[line]]\nnumber = \"12345",
            "[[line]]\nnumber = \"12346",
        ]
        .iter()
        .map(|h| TEXT.find(h).unwrap())
        .collect();
        assert_eq!(k.headers(), starts);
        // An array of arrays written over lines is no header.
        let text = "x = [\n  [1],\n  [2],\n]\n[t]\na = 1\n";
        assert_eq!(
            KeyLines::new(text).headers(),
            vec![text.find("[t]").unwrap()]
        );
    }

    #[test]
    fn a_missing_section_is_named_without_a_line() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Doc {
            sip: toml::Table,
            http: toml::Table,
        }
        let text = "[sip]\nlisten = 1\n";
        let e = toml::from_str::<Doc>(text).unwrap_err();
        assert_eq!(KeyLines::new(text).locate(&e), (0, "http".to_string()));
    }

    #[test]
    fn serde_errors_are_located_at_their_key() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Rec {
            number: String,
            days: Option<u32>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Doc {
            line: Vec<Rec>,
        }
        let cases = [
            (
                "[[line]]\nnumber = \"1\"\n[[line]]\nnumber = \"2\"\ndays = -7\n",
                5,
                "line[1].days",
            ),
            (
                "[[line]]\nnumber = \"1\"\n[[line]]\ndays = 7\n",
                3,
                "line[1].number",
            ),
            ("[[line]]\nnumber = \"1\"\ndayz = 7\n", 3, "line[0].dayz"),
        ];
        for (text, line, key) in cases {
            let e = toml::from_str::<Doc>(text).unwrap_err();
            assert_eq!(
                KeyLines::new(text).locate(&e),
                (line, key.to_string()),
                "{text}"
            );
        }
    }
}
