//! `hotline-gw report --month 2026-11 --out report.xlsx`: a month's reports as
//! an Excel workbook, read straight from the store (no running gateway): one
//! sheet per dimension (overall, line, mode, queue, department, seats), a line
//! per day and key and a total per key, as `GET /api/v1/reports` counts them.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hotline_gateway::dialplan::time::Date;
use hotline_gateway::reporting::report::{self, Dimension, PeriodKind, ReportSpec, Zone};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The month (`YYYY-MM`, local time).
    #[arg(long)]
    month: String,
    /// Where to write the workbook (`.xlsx`).
    #[arg(long)]
    out: PathBuf,
    /// Config file (default: config/gateway.toml, else the embedded defaults):
    /// its store, answer-rate settings and the dialplan's time zone.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Database, overriding the config.
    #[arg(long)]
    pub database: Option<String>,
    /// The repeat-caller window for 一次接通率, 1 to 168 hours.
    #[arg(long, default_value_t = 24)]
    repeat_hours: u32,
}

/// The month `YYYY-MM` as its first day and the next month's first day.
fn month_bounds(month: &str) -> Result<(Date, Date)> {
    let bad = || anyhow::anyhow!("--month {month:?}: use YYYY-MM, e.g. 2026-11");
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if y.to_string().len() != 4 || month.len() != 7 {
        return Err(bad());
    }
    let first = Date::new(y, m, 1).map_err(|_| bad())?;
    let next = if m == 12 {
        Date::new(y + 1, 1, 1)
    } else {
        Date::new(y, m + 1, 1)
    }
    .map_err(|_| bad())?;
    Ok((first, next))
}

/// Writes the workbook of `args.month` from the calls stored at `url`.
pub fn run(
    args: ReportArgs,
    sla: &hotline_gateway::sla::SlaConfig,
    url: &str,
    utc_offset_minutes: i32,
) -> Result<()> {
    let (first, next) = month_bounds(&args.month)?;
    if !(1..=168).contains(&args.repeat_hours) {
        bail!("--repeat-hours {}: use 1 to 168", args.repeat_hours);
    }
    let zone = Zone {
        offset_minutes: utc_offset_minutes,
    };
    let spec = |dimension| ReportSpec {
        period: PeriodKind::Day,
        dimension,
        from_ms: zone.midnight(first),
        to_ms: zone.midnight(next),
        zone,
        repeat_window_ms: i64::from(args.repeat_hours) * 3_600_000,
        sla: sla.clone(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let reports = runtime.block_on(async {
        let store = hotline_gateway::store::Store::open(url).await?;
        let mut out = Vec::new();
        for d in Dimension::ALL {
            out.push(report::run(&store, spec(d)).await?);
        }
        Ok::<_, anyhow::Error>(out)
    })?;
    let bytes = report::workbook(&reports).context("building the workbook")?;
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    let calls: u64 = reports[0].totals.iter().map(|t| t.figures.offered).sum();
    println!(
        "{}: {} sheets, {calls} calls offered in {} ({} to {})",
        args.out.display(),
        reports.len() + 1,
        args.month,
        first,
        next
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::month_bounds;

    #[test]
    fn months_are_read_whole_and_typos_refused() {
        let (a, b) = month_bounds("2026-12").unwrap();
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("2026-12-01".into(), "2027-01-01".into())
        );
        for bad in ["2026-13", "26-11", "2026/11", "2026-1", "november"] {
            assert!(month_bounds(bad).is_err(), "{bad}");
        }
    }
}
