//! Reads a report's calls from the store, page by page in order of first offer,
//! into the engine: memory stays at one page whatever the range.

use super::{CallFact, Engine, Report, ReportSpec};
use crate::store::{Store, StoreError};

/// The longest range one report covers (bounds the work one request can ask).
pub const MAX_RANGE_DAYS: i64 = 400;

/// Records per store query.
const PAGE: i64 = 5000;

/// Records counted between two yields to the runtime (about 10 ms of work).
const YIELD_EVERY: usize = 1000;

/// Computes a report from the stored call records.
pub async fn run(store: &Store, spec: ReportSpec) -> Result<Report, StoreError> {
    run_paged(store, spec, PAGE).await
}

/// [`run`], reading `page_size` records per query.
pub(crate) async fn run_paged(
    store: &Store,
    spec: ReportSpec,
    page_size: i64,
) -> Result<Report, StoreError> {
    let sla = spec.sla.clone();
    let to = spec.to_ms;
    let mut engine = Engine::new(spec);
    let mut after: Option<(i64, String)> = None;
    let from = engine.feed_from_ms();
    loop {
        let page = store
            .calls_offered(from, to, after.as_ref(), page_size)
            .await?;
        for chunk in page.chunks(YIELD_EVERY) {
            for r in chunk {
                if let Some(f) = CallFact::of(r, &sla) {
                    engine.add(&f);
                }
            }
            // The store writer and the alert ticker share this runtime: a long
            // report never holds it for more than a chunk.
            tokio::task::yield_now().await;
        }
        if (page.len() as i64) < page_size {
            break;
        }
        after = page
            .last()
            .map(|r| (r.offered_at_ms.unwrap_or_default(), r.id.clone()));
    }
    Ok(engine.finish())
}
