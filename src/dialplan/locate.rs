//! Finding where in a dialplan file an error is, so that every error names
//! file:line:key, and reporting every bad record of a file serde refused.

use super::DialplanError;
use super::schema::{AgentFile, CalendarFile, LineFile, QueueFile, TransferFile, TrunkFile};

/// The line where `key = "value"` appears, for error messages.
pub(super) fn find_key_line(text: &str, key: &str, value: &str) -> usize {
    let needle = format!("\"{value}\"");
    text.lines()
        .position(|l| l.trim_start().starts_with(key) && l.contains(&needle))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// Every record-level error of a file that did not deserialize as a whole.
pub(super) fn diagnose(file: &str, text: &str) -> Vec<DialplanError> {
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(_) => return Vec::new(), // a syntax error: the caller reports it
    };
    fn each<T: serde::de::DeserializeOwned>(
        file: &str,
        text: &str,
        name: &str,
        value: &toml::Value,
        out: &mut Vec<DialplanError>,
    ) {
        let Some(items) = value.as_array() else {
            out.push(DialplanError {
                file: file.into(),
                line: 0,
                key: name.into(),
                message: format!("use [[{name}]] tables"),
            });
            return;
        };
        for (i, item) in items.iter().enumerate() {
            if let Err(e) = T::deserialize(item.clone()) {
                let mut key = key_of_error(e.message());
                let mut line = record_line(text, name, i, &key);
                // "unknown variant `x`" names the value: find the key written with it.
                if e.message().starts_with("unknown variant") {
                    let needle = format!("\"{key}\"");
                    if let Some((n, k)) = record_lines(text, name, i)
                        .find(|(_, l)| l.contains(&needle))
                        .and_then(|(n, l)| {
                            l.split_once('=').map(|(k, _)| (n, k.trim().to_string()))
                        })
                    {
                        line = n;
                        key = k;
                    }
                }
                out.push(DialplanError {
                    file: file.into(),
                    line,
                    key: format!("{name}[{i}].{key}"),
                    message: e.message().trim().to_string(),
                });
            }
        }
    }
    let mut out = Vec::new();
    for (name, value) in &table {
        match name.as_str() {
            "line" => each::<LineFile>(file, text, name, value, &mut out),
            "queue" => each::<QueueFile>(file, text, name, value, &mut out),
            "agent" => each::<AgentFile>(file, text, name, value, &mut out),
            "transfer" => each::<TransferFile>(file, text, name, value, &mut out),
            "trunk" => each::<TrunkFile>(file, text, name, value, &mut out),
            "calendar" => each::<CalendarFile>(file, text, name, value, &mut out),
            "utc_offset" => {}
            other => out.push(DialplanError {
                file: file.into(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with(other) || l.contains(&format!("[{other}]")))
                    .map_or(0, |n| n + 1),
                key: other.into(),
                message: format!(
                    "unknown table or key `{other}` (expected line, queue, agent, transfer, trunk, calendar, utc_offset)"
                ),
            }),
        }
    }
    out
}

/// The lines (1-based number, text) of the `i`-th `[[table]]` of a file, header first.
pub(super) fn record_lines<'a>(
    text: &'a str,
    table: &str,
    i: usize,
) -> impl Iterator<Item = (usize, &'a str)> {
    let header = format!("[[{table}]]");
    let start = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == header)
        .nth(i)
        .map(|(n, _)| n);
    text.lines()
        .enumerate()
        .skip(start.unwrap_or(usize::MAX))
        .take_while(move |(n, l)| Some(*n) == start || !l.trim_start().starts_with("[["))
        .map(|(n, l)| (n + 1, l))
}

/// The line of `key` inside the `i`-th `[[table]]` of a file (or of the table
/// header when the key is not written there).
pub(super) fn record_line(text: &str, table: &str, i: usize, key: &str) -> usize {
    let mut lines = record_lines(text, table, i);
    let Some((header, _)) = lines.next() else {
        return 0;
    };
    lines
        .find(|(_, l)| l.trim_start().starts_with(key))
        .map_or(header, |(n, _)| n)
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where a number is defined, for error messages about it.
pub(super) fn find_line(text: &str, number: &str) -> usize {
    let needle = format!("\"{number}\"");
    text.lines()
        .position(|l| l.contains("number") && l.contains(&needle))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// Pulls the key out of serde messages like "unknown field `tagret`, expected …".
pub(super) fn key_of_error(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "-".into())
}
