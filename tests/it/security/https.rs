//! HTTPS (DESIGN.md §7, "an HTTP client"; issue 14 item 10): the API served with
//! a self-signed certificate that the test client trusts, and plain HTTP to the
//! TLS port refused; ticket stubs delivered to an `https://` ticket system whose
//! certificate a private CA (`[http.client] ca_file`) vouches for, and not
//! delivered when nothing vouches for it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::*;

/// ring, as the gateway uses.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert.pem, key.pem).
fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let openssl = tool("openssl", "openssl")?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new(openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A server certificate, not a CA (webpki refuses a CA as the end entity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((cert, key))
}

fn roots_of(cert: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

/// One HTTPS GET with rustls, trusting `roots`.
fn https_get(
    addr: SocketAddr,
    roots: &rustls::RootCertStore,
    path: &str,
    token: &str,
) -> Result<HttpAnswer, String> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n",
        addr.port()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A server may close without close_notify once the answer is whole.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    parse_answer(&raw).ok_or_else(|| format!("not HTTP: {:?}", String::from_utf8_lossy(&raw)))
}

#[test]
fn https_with_a_self_signed_certificate() {
    let dir = TempDir::new("tls");
    let Some((cert, key)) = self_signed(&dir.0) else {
        return;
    };
    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.http_keys = "header_timeout_s = 2\nmax_per_source = 4\n".into();
    opts.extra_config = format!(
        "[http.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let gw = Gateway::spawn(opts);
    let roots = roots_of(&cert);
    let start = Instant::now();
    let health = loop {
        match https_get(gw.http, &roots, "/healthz", VIEWER_TOKEN) {
            Ok(a) => break a,
            Err(e) if start.elapsed() > Duration::from_secs(20) => {
                panic!("no HTTPS answer: {e}\nlog:\n{}", gw.log())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert_eq!(health.code, 200, "{health:?}");
    let sla = https_get(gw.http, &roots, "/api/v1/sla", VIEWER_TOKEN).unwrap();
    assert_eq!(sla.code, 200, "{sla:?}");
    let calls = https_get(gw.http, &roots, "/api/v1/calls", VIEWER_TOKEN).unwrap();
    assert_eq!(calls.code, 403, "roles apply over HTTPS too: {calls:?}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = http_request(gw.http, "GET", "/healthz", &[], None);
    assert!(
        plain.is_none(),
        "plain HTTP was answered on the HTTPS port: {plain:?}"
    );
    // A client that does not trust the certificate does not get through.
    let strangers = rustls::RootCertStore::empty();
    let refused = https_get(gw.http, &strangers, "/healthz", VIEWER_TOKEN);
    assert!(
        refused.is_err(),
        "an untrusted certificate was accepted: {refused:?}"
    );

    // The HTTP caps and deadline hold over TLS too (one accept loop): clients
    // that never start their handshake are closed (after `header_timeout_s`, the
    // fifth, over `max_per_source`, at once), and HTTPS is answered afterwards.
    let silent: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(gw.http).unwrap())
        .collect();
    let start = Instant::now();
    let mut closed = vec![false; silent.len()];
    while closed.iter().any(|c| !c) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "silent connections still open on the HTTPS port after 20 s: {closed:?}"
        );
        for (s, c) in silent.iter().zip(closed.iter_mut()) {
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 16];
            *c |= match (&*s).read(&mut b) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(silent);
    let start = Instant::now();
    while https_get(gw.http, &roots, "/healthz", VIEWER_TOKEN).map(|a| a.code) != Ok(200) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "HTTPS not answered after the silent ones"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A ticket system on HTTPS: answers 200 and keeps each body.
struct TlsSink {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl TlsSink {
    fn start(cert: &Path, key: &Path) -> TlsSink {
        let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://localhost:{}/tickets",
            listener.local_addr().unwrap().port()
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let keep = bodies.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(tls) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut s = rustls::StreamOwned::new(tls, conn);
                // One request per connection: the gateway opens another.
                if let Some(body) = read_request_body(&mut s) {
                    keep.lock().unwrap().push(body);
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    s.conn.send_close_notify();
                    let _ = s.flush();
                }
            }
        });
        TlsSink { url, bodies }
    }

    fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

/// A gateway whose line 12345 queues for a sipp seat and delivers stubs to `url`.
fn ticket_gateway(seat_port: u16, url: &str, ca_file: Option<&Path>) -> Gateway {
    let mut opts = GwOpts::to("queue:seats");
    opts.extra_dialplan = format!(
        "[[queue]]\nname = \"seats\"\nstrategy = \"longest_idle\"\nring_timeout_s = 15\n\
         wrap_up_s = 0\nmax_wait_s = 120\noverflow = \"callback\"\n\
         static_members = [\"sip:127.0.0.1:{seat_port}\"]\nstatic_seats = 10\n"
    );
    opts.extra_config = format!(
        "[tickets]\nurl = \"{url}\"\ntimeout_ms = 2000\nbackoff_first_ms = 100\n\
         backoff_max_ms = 500\nmax_attempts = 1000\n"
    );
    if let Some(ca) = ca_file {
        opts.extra_config += &format!("[http.client]\nca_file = \"{}\"\n", ca.display());
    }
    Gateway::start(opts)
}

#[test]
fn tickets_go_to_an_https_ticket_system_that_a_private_ca_vouches_for() {
    let Some(sipp) = sipp() else { return };
    let dir = TempDir::new("tls-sink");
    let Some((cert, key)) = self_signed(&dir.0) else {
        return;
    };
    let seat_port = free_port();
    let _seat = Sipp::start(
        &sipp,
        "uas.xml",
        &["-p".into(), seat_port.to_string()],
        Duration::from_secs(120),
    );
    let sink = TlsSink::start(&cert, &key);
    let gw = ticket_gateway(seat_port, &sink.url, Some(&cert));
    let r = Sipp::start(
        &sipp,
        "uac.xml",
        &uac_args(&gw, "12345", 3, &["-r", "10", "-timeout", "60s"]),
        Duration::from_secs(60),
    )
    .finish();
    assert_eq!((r.successful, r.failed), (3, 0), "{r:?}");
    gw.wait_json(
        "/api/v1/tickets?delivery=delivered",
        "three stubs delivered over HTTPS",
        Duration::from_secs(20),
        |v| v["count"] == 3,
    );
    let stubs: Vec<serde_json::Value> = sink
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_str(b).expect("a JSON stub"))
        .collect();
    assert!(
        stubs.len() >= 6
            && stubs
                .iter()
                .all(|s| s["schema"] == "hotline.ticket-stub/v1"),
        "two revisions of each of three stubs: {stubs:?}"
    );

    drop(gw);

    // Without the CA the same ticket system is not trusted: nothing is sent.
    let stranger = TlsSink::start(&cert, &key);
    let gw = ticket_gateway(seat_port, &stranger.url, None);
    let r = Sipp::start(
        &sipp,
        "uac.xml",
        &uac_args(&gw, "12345", 1, &["-timeout", "60s"]),
        Duration::from_secs(60),
    )
    .finish();
    assert_eq!(
        (r.successful, r.failed),
        (1, 0),
        "{r:?}\nlog:\n{}",
        gw.log()
    );
    // Revision 1 is retried first (stubs go in order), and logged at each doubling.
    let start = Instant::now();
    while !gw.log().contains("invalid peer certificate") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no certificate refusal logged:\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pending = gw.get_json("/api/v1/tickets?delivery=delivered");
    assert_eq!(pending["count"], 0, "{pending}");
    assert_eq!(stranger.count(), 0, "a stub reached an untrusted server");
}
