//! Stand-ins for what is outside the product: a fresh PostgreSQL database, a
//! webhook receiver, and a TCP forwarder that can cut the database away.

use super::*;

/// A fresh PostgreSQL database on 127.0.0.1:5432, as a URL; `None` (loudly) when
/// the server does not answer, a failure under `CI=true`.
pub fn fresh_postgres(name: &str) -> Option<String> {
    let db = format!("hgw_it_{name}_{}", std::process::id());
    let made = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use sqlx::Connection;
            let mut admin =
                sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/test").await?;
            // Databases left by earlier runs (a test killed mid-way); one still in
            // use by a concurrent run refuses to go, which is fine.
            let stale: Vec<(String,)> =
                sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'hgw\\_it\\_%'")
                    .fetch_all(&mut admin)
                    .await?;
            // Only those of test processes that have exited: never this
            // process's (its other tests run at the same time), nor another
            // suite's still running beside it (its pid ends the name).
            let alive = |n: &str| {
                n.rsplit('_')
                    .next()
                    .and_then(|pid| pid.parse::<u32>().ok())
                    .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            };
            for (name,) in stale.into_iter().filter(|(n,)| !alive(n)) {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut admin)
                    .await;
            }
            sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(&mut admin)
                .await?;
            Ok::<_, sqlx::Error>(())
        });
    match made {
        Ok(()) => Some(format!("postgres://postgres@127.0.0.1:5432/{db}")),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL is required under CI=true: {e}")
        }
        Err(e) => {
            eprintln!(
                "\n========================================================\n\
                 SKIPPED (PostgreSQL half): {e}\n\
                 Start PostgreSQL on 127.0.0.1:5432 (user postgres, trust).\n\
                 ========================================================\n"
            );
            None
        }
    }
}

/// An HTTP receiver standing in for a webhook: answers 200 and keeps each body.
pub struct WebhookSink {
    pub url: String,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl WebhookSink {
    pub fn start() -> WebhookSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = bodies.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                if let Some(body) = read_request_body(&mut conn) {
                    keep.lock().unwrap().push(body);
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                }
            }
        });
        WebhookSink { url, bodies }
    }

    /// The JSON bodies received so far.
    pub fn received(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect()
    }
}

/// Reads one HTTP/1.1 request and returns its body (Content-Length framing).
pub fn read_request_body(conn: &mut impl Read) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Some(body[..len].to_string());
            }
        }
    }
}

/// A TCP forwarder from a free loopback port to `target`, started on demand: the
/// port refuses connections until [`Forwarder::open`], and [`Forwarder::close`]
/// cuts every connection and refuses again (a database that goes away and comes
/// back).
pub struct Forwarder {
    pub port: u16,
    target: SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Forwarder {
    pub fn new(target: &str) -> Forwarder {
        Forwarder {
            port: free_port(),
            target: target.parse().unwrap(),
            open: Default::default(),
            conns: Default::default(),
        }
    }

    /// Starts accepting and forwarding.
    pub fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        let target = self.target;
        self.open.store(true, Ordering::SeqCst);
        let (open, conns) = (self.open.clone(), self.conns.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if !open.load(Ordering::SeqCst) {
                    return; // drops the listener: the port refuses again
                }
                let Ok(a) = conn else { continue };
                let Ok(b) = TcpStream::connect(target) else {
                    continue;
                };
                {
                    let mut c = conns.lock().unwrap();
                    c.push(a.try_clone().unwrap());
                    c.push(b.try_clone().unwrap());
                }
                for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
    }

    /// Cuts every forwarded connection and stops listening.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
