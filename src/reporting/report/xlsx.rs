//! Reports as an Excel workbook (`.xlsx`), what the provincial offices
//! exchange: one sheet per report (its dimension), one line per period and
//! key, then one total line per key, the same columns as the CSV; counts and
//! seconds as numbers, rates as percentages. A first sheet says what the
//! workbook covers and how the figures are defined.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::Report;
use super::csv::{FIGURES, values};

/// The workbook's MIME type.
pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A workbook with one sheet per report, after a cover sheet.
pub fn workbook(reports: &[Report]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let pct = Format::new().set_num_format("0.0%");
    let cover = wb.add_worksheet().set_name("说明 About")?;
    let lines = cover_lines(reports);
    for (i, (k, v)) in lines.iter().enumerate() {
        cover.write_string_with_format(i as u32, 0, k, &bold)?;
        cover.write_string(i as u32, 1, v)?;
    }
    cover.set_column_width(0, 28)?;
    cover.set_column_width(1, 90)?;
    for r in reports {
        let ws = wb.add_worksheet().set_name(sheet_name(r))?;
        let head = ["key", "period", "start", "end"];
        for (c, h) in head.iter().chain(FIGURES.iter()).enumerate() {
            ws.write_string_with_format(0, c as u16, *h, &bold)?;
        }
        let mut row = 1u32;
        let mut put =
            |key: &str, period: &str, start: &str, end: &str, v: &[String], peak: &str| {
                for (c, s) in [key, period, start, end].iter().enumerate() {
                    ws.write_string(row, c as u16, *s)?;
                }
                for (i, s) in v.iter().map(String::as_str).chain([peak]).enumerate() {
                    let col = (head.len() + i) as u16;
                    if s.is_empty() {
                        continue;
                    }
                    match s.parse::<f64>() {
                        Ok(x) if is_rate(FIGURES[i]) => {
                            ws.write_number_with_format(row, col, x, &pct)?;
                        }
                        Ok(x) => {
                            ws.write_number(row, col, x)?;
                        }
                        Err(_) => {
                            ws.write_string(row, col, s)?;
                        }
                    }
                }
                row += 1;
                Ok::<(), XlsxError>(())
            };
        for x in &r.rows {
            put(&x.key, &x.period, &x.start, &x.end, &values(&x.figures), "")?;
        }
        for t in &r.totals {
            let peak = t.peak_hour.map(|h| h.to_string()).unwrap_or_default();
            put(&t.key, "total", &r.from, &r.to, &values(&t.figures), &peak)?;
        }
        ws.set_freeze_panes(1, 2)?;
    }
    wb.save_to_buffer()
}

/// Rates and shares (fractions) are shown as percentages.
fn is_rate(figure: &str) -> bool {
    figure.ends_with("_rate") || figure.ends_with("_share") || figure.contains("_per_")
}

/// A sheet's name: the report's dimension (unique per workbook by dimension,
/// then by period).
fn sheet_name(r: &Report) -> String {
    format!("{} {}", r.dimension, r.period)
}

fn cover_lines(reports: &[Report]) -> Vec<(String, String)> {
    let mut v = vec![(
        "hotline-gateway report".to_string(),
        "12345 接通率 and 15秒接通率 reports: docs/reports-api.md defines every column".to_string(),
    )];
    if let Some(r) = reports.first() {
        v.push(("from 起".into(), r.from.clone()));
        v.push(("to 止 (exclusive)".into(), r.to.clone()));
        v.push(("UTC offset 时区".into(), r.utc_offset.clone()));
        v.push((
            "answer rate 接通率".into(),
            "(answered + transferred out) / (offered − short abandoned)".into(),
        ));
        v.push((
            "15秒接通率".into(),
            format!(
                "answered within {} s / counted calls (answered_within_per_counted), and / answered calls (answered_within_per_answered)",
                r.answer_within_s
            ),
        ));
        v.push((
            "short abandon 短时放弃".into(),
            format!(
                "hung up within {} s of the offer: left out of the rates",
                r.short_abandon_s
            ),
        ));
        v.push(("target 目标".into(), format!("{:.0}%", r.target * 100.0)));
    }
    for r in reports {
        v.push((
            format!("sheet {}", sheet_name(r)),
            format!("{} rows, {} keys", r.rows.len(), r.totals.len()),
        ));
    }
    for note in reports.iter().flat_map(|r| r.notes.iter()) {
        v.push(("note".into(), (*note).to_string()));
    }
    v
}

#[cfg(test)]
mod tests {
    use calamine::{Data, Reader, Xlsx};

    use super::super::tests::{records, row, spec};
    use super::super::{Dimension, PeriodKind, build};
    use super::*;

    #[test]
    fn the_workbook_reads_back_with_the_reports_figures() {
        let day = build(&records(), spec(PeriodKind::Day, Dimension::Overall));
        let lines = build(&records(), spec(PeriodKind::Day, Dimension::Line));
        let bytes = workbook(&[day.clone(), lines]).unwrap();
        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let names = book.sheet_names();
        assert_eq!(names, ["说明 About", "overall day", "line day"]);
        let sheet = book.worksheet_range("overall day").unwrap();
        let header: Vec<String> = sheet
            .rows()
            .next()
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let f = row(&day, "all", "2026-11-02");
        let line = sheet
            .rows()
            .find(|r| r[0] == "all" && r[1] == "2026-11-02")
            .expect("the day's row");
        assert_eq!(line[col("offered")], Data::Float(f.offered as f64));
        assert_eq!(line[col("answered")], Data::Float(f.answered as f64));
        let rate = match &line[col("answer_rate")] {
            Data::Float(x) => *x,
            other => panic!("answer_rate {other:?}"),
        };
        assert!((rate - f.answer_rate.unwrap()).abs() < 1e-4);
        assert!(
            sheet.rows().any(|r| r[1] == "total"),
            "a total line per key"
        );
    }
}
