//! Finding where in a dialplan file an error is, so that every error names
//! file:line:key, and reporting every bad record of a file serde refused.

use super::DialplanError;
use super::schema::DialplanFile;
use crate::util::toml_where::KeyLines;

/// Every serde error of a file that did not deserialize as a whole. Serde stops
/// at the first one, so each table and record is read again on its own (the
/// text from its header to the next), and its errors are placed in the file.
pub(super) fn diagnose(file: &str, text: &str, keys: &KeyLines) -> Vec<DialplanError> {
    let mut cuts = keys.headers().to_vec();
    if cuts.is_empty() {
        return Vec::new(); // not TOML, or one table: the whole-file error says it
    }
    cuts.insert(0, 0); // the top-level keys before the first header
    cuts.push(text.len());
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let (from, to) = (w[0], w[1]);
        if from == to {
            continue;
        }
        if let Err(e) = toml::from_str::<DialplanFile>(&text[from..to]) {
            let offset = from + e.span().map_or(0, |s| s.start);
            let (line, key) = keys.locate_at(offset, e.message());
            // A misspelt table name (`[[lines]]`) is one mistake, however many
            // records are written under it.
            let root = key.split(['.', '[']).next().unwrap_or("");
            let repeated = out.iter().any(|o: &DialplanError| {
                o.message == e.message().trim() && o.key.split(['.', '[']).next() == Some(root)
            });
            if repeated && e.message().starts_with("unknown field") {
                continue;
            }
            out.push(DialplanError {
                file: file.into(),
                line,
                key,
                message: e.message().trim().to_string(),
            });
        }
    }
    out
}

/// Where a record was written: its file, its index among the file's records of
/// its table, and the line of its identifying key (number, name, id).
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub file: String,
    /// Index of the file among the sources (for its [`KeyLines`]).
    pub source: usize,
    /// `line[3]`, `queue[0]`…
    pub record: String,
    pub line: usize,
}

impl Origin {
    /// The error about `key` of this record, at the line `key` is written on.
    pub fn error(&self, keys: &KeyLines, key: &str, message: String) -> DialplanError {
        let path = format!("{}.{key}", self.record);
        DialplanError {
            file: self.file.clone(),
            line: keys.line_or_enclosing(&path),
            key: path,
            message,
        }
    }

    /// `lines.toml:23`.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}
