//! HTTP connections: one accept loop for HTTP and HTTPS. It caps the connections
//! open at once, in total and per source address (a connection over a cap is
//! closed as soon as it is accepted), gives each connection a deadline for its
//! TLS handshake and for every request's headers (which is also how long a
//! kept-alive connection may stay idle), and keeps the counters `/metrics` shows.
//! Without it an idle or silent client would hold a file descriptor for ever.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// `[http] max_connections`, `max_per_source`, `header_timeout_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_source: usize,
    /// For the TLS handshake, and for each request's headers.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: crate::transport::fds::HTTP_FDS as usize,
            max_per_source: 32,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// What `/metrics` shows of the connections.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Open now (TLS handshakes included).
    pub open: AtomicU64,
    /// Closed at once for a cap.
    pub refused: AtomicU64,
    /// Closed because headers (or the handshake) did not come in time.
    pub timed_out: AtomicU64,
}

/// The connections open, in total and by source address.
#[derive(Debug, Default)]
struct Table {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// One place in the [`Table`], given back on drop.
#[derive(Debug)]
struct Slot {
    table: Arc<Mutex<Table>>,
    stats: Arc<ConnStats>,
    ip: IpAddr,
}

impl Slot {
    /// A place for a connection from `ip`, or `None` over a cap.
    fn take(
        table: &Arc<Mutex<Table>>,
        stats: &Arc<ConnStats>,
        limits: &Limits,
        ip: IpAddr,
    ) -> Option<Slot> {
        let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
        let from_ip = t.by_source.get(&ip).copied().unwrap_or(0);
        if t.total >= limits.max_connections || from_ip >= limits.max_per_source {
            return None;
        }
        t.total += 1;
        t.by_source.insert(ip, from_ip + 1);
        stats.open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            table: table.clone(),
            stats: stats.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.total = t.total.saturating_sub(1);
        if let Some(n) = t.by_source.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.by_source.remove(&self.ip);
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts on `tcp` for ever, serving `app` on each connection (over TLS when
/// `tls` is given).
pub async fn accept_loop(
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    stats: Arc<ConnStats>,
) {
    let table = Arc::new(Mutex::new(Table::default()));
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::debug!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&table, &stats, &limits, peer.ip()) else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "HTTP connection over the cap closed");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_one(stream, app, &limits, &stats, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => serve_one(tls, app, &limits, &stats, peer).await,
                        // A plain-HTTP client, a scanner: nothing to serve.
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            stats.timed_out.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
}

/// HTTP/1.1 on one connection until either side closes it or headers are late.
async fn serve_one<S>(io: S, app: Router, limits: &Limits, stats: &ConnStats, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = conn.await {
        if e.is_timeout() {
            stats.timed_out.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_in_total_and_per_source_and_free_on_drop() {
        let table = Arc::new(Mutex::new(Table::default()));
        let stats = Arc::new(ConnStats::default());
        let limits = Limits {
            max_connections: 5,
            max_per_source: 2,
            header_timeout: Duration::from_secs(1),
        };
        let ip = |n: u8| IpAddr::from([127, 0, 0, n]);
        let a1 = Slot::take(&table, &stats, &limits, ip(2)).unwrap();
        let _a2 = Slot::take(&table, &stats, &limits, ip(2)).unwrap();
        assert!(
            Slot::take(&table, &stats, &limits, ip(2)).is_none(),
            "per source"
        );
        let mut others: Vec<Slot> = (3..6)
            .map(|n| Slot::take(&table, &stats, &limits, ip(n)).unwrap())
            .collect();
        assert!(
            Slot::take(&table, &stats, &limits, ip(9)).is_none(),
            "in total"
        );
        assert_eq!(stats.open.load(Ordering::Relaxed), 5);
        drop(a1);
        let again = Slot::take(&table, &stats, &limits, ip(2)).expect("a place freed");
        drop(again);
        others.clear();
        assert_eq!(stats.open.load(Ordering::Relaxed), 1);
        let t = table.lock().unwrap();
        assert_eq!(
            (t.total, t.by_source.len()),
            (1, 1),
            "empty sources forgotten"
        );
    }
}
