//! Attacker tests: the HTTP API (DESIGN.md §7, "an HTTP client"). Every route of
//! docs/openapi.yaml (which tests/it/openapi.rs holds equal to the router) is
//! called without a token, with a wrong one, with each role below its
//! `x-required-role`, with a foreign Host and with a non-JSON POST; the shipped
//! config is started on a public address. HTTPS: `https.rs`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::openapi::{read, spec_routes};
use crate::support::*;

/// The roles, lowest first, with the test token of each.
const ROLES: [(&str, &str); 3] = [
    ("viewer", VIEWER_TOKEN),
    ("supervisor", SUPERVISOR_TOKEN),
    ("admin", ADMIN_TOKEN),
];

/// (METHOD, path) → the `x-required-role` of its operation, for every
/// documented route but the open ones (`/`, `/healthz`).
fn api_routes() -> BTreeMap<(String, String), String> {
    let yaml = read("docs/openapi.yaml");
    let mut roles = BTreeMap::new();
    let (mut path, mut method) = (String::new(), String::new());
    for line in yaml.lines() {
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = format!("/{p}");
        } else if let Some(m) = line.strip_prefix("    ").and_then(|m| m.strip_suffix(':')) {
            method = m.to_uppercase();
        } else if let Some(r) = line.strip_prefix("      x-required-role: ") {
            roles.insert((method.clone(), path.clone()), r.trim().to_string());
        }
    }
    let mut out = BTreeMap::new();
    for route in spec_routes(&yaml) {
        if ["/", "/healthz", "/reports"].contains(&route.1.as_str()) {
            continue;
        }
        let role = roles
            .get(&route)
            .unwrap_or_else(|| panic!("docs/openapi.yaml: {route:?} has no x-required-role"));
        assert!(
            ROLES.iter().any(|(r, _)| r == role),
            "{route:?}: unknown role {role:?}"
        );
        out.insert(route, role.clone());
    }
    assert!(out.len() >= 12, "too few API routes read: {out:?}");
    out
}

/// `{id}` → `nope`.
fn concrete(path: &str) -> String {
    path.replace("{id}", "nope")
}

/// One request to a route: a JSON `{}` body on a POST; `headers` whole lines.
fn call(gw: &Gateway, method: &str, path: &str, headers: &[String]) -> HttpAnswer {
    let mut h = headers.to_vec();
    let body = (method == "POST").then(|| {
        h.push("Content-Type: application/json".into());
        "{}"
    });
    http_request(gw.http, method, &concrete(path), &h, body)
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer"))
}

fn bearer(token: &str) -> Vec<String> {
    vec![format!("Authorization: Bearer {token}")]
}

#[test]
fn every_api_route_needs_a_known_token() {
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    let mut wrong = Vec::new();
    for (method, path) in api_routes().keys() {
        for (what, headers) in [
            ("no token", vec![]),
            ("an unknown token", bearer("test-admin-token-x")),
            ("a token's hash", bearer(&hex_sha256(ADMIN_TOKEN))),
            (
                "another scheme",
                vec![format!("Authorization: Basic {ADMIN_TOKEN}")],
            ),
        ] {
            let a = call(&gw, method, path, &headers);
            let challenge = a.header("www-authenticate").unwrap_or_default();
            if a.code != 401
                || a.error_code().as_deref() != Some("unauthorized")
                || !challenge.starts_with("Bearer")
            {
                wrong.push(format!("{method} {path} with {what}: {a:?}"));
            }
        }
    }
    // An unknown path says nothing either.
    let a = call(&gw, "GET", "/api/v1/secret", &[]);
    if a.code != 401 {
        wrong.push(format!("GET /api/v1/secret: {a:?}"));
    }
    assert!(
        wrong.is_empty(),
        "answered without a valid token:\n{}",
        wrong.join("\n")
    );
    // The open ones stay open: load balancers and the wallboard page.
    assert_eq!(call(&gw, "GET", "/healthz", &[]).code, 200);
    let page = call(&gw, "GET", "/", &[]);
    assert_eq!(page.code, 200);
    assert!(
        page.body.contains("token-form"),
        "the page asks for a token"
    );
    let page = call(&gw, "GET", "/reports", &[]);
    assert_eq!(page.code, 200);
    assert!(
        page.body.contains("token-form"),
        "the report page asks for a token"
    );
}

#[test]
fn a_role_below_the_route_is_forbidden_and_the_route_role_is_let_in() {
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    let rank = |r: &str| ROLES.iter().position(|(n, _)| *n == r).unwrap();
    let mut wrong = Vec::new();
    let mut needed = std::collections::BTreeSet::new();
    for ((method, path), need) in api_routes() {
        needed.insert(need.clone());
        for (role, token) in ROLES {
            let a = call(&gw, &method, &path, &bearer(token));
            if rank(role) < rank(&need) {
                if a.code != 403 || a.error_code().as_deref() != Some("forbidden") {
                    wrong.push(format!("{method} {path} as {role} (needs {need}): {a:?}"));
                }
            } else if [401, 403, 415, 421].contains(&a.code) {
                wrong.push(format!("{method} {path} as {role}: refused: {a:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        needed.len(),
        3,
        "routes of every role were checked: {needed:?}"
    );
}

#[test]
fn a_foreign_host_is_refused_even_with_a_valid_token() {
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    let port = gw.http.port();
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("127.0.0.2:{port}"),
    ] {
        for (method, path) in [
            ("GET", "/api/v1/sla"),
            ("GET", "/"),
            ("POST", "/api/v1/dialplan/reload"),
        ] {
            let mut h = bearer(ADMIN_TOKEN);
            h.push(format!("Host: {host}"));
            let a = call(&gw, method, path, &h);
            assert_eq!(
                (a.code, a.error_code().as_deref()),
                (421, Some("host_not_allowed")),
                "{method} {path} with Host {host}: {a:?}"
            );
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".into(),
    ] {
        let mut h = bearer(VIEWER_TOKEN);
        h.push(format!("Host: {host}"));
        assert_eq!(call(&gw, "GET", "/api/v1/sla", &h).code, 200, "Host {host}");
    }
    // A name the operator lists is answered; the defaults then no longer apply.
    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.http_keys = "allowed_hosts = [\"hotline.test\"]\n".into();
    let named = Gateway::spawn(opts);
    let ask = |host: &str| {
        let mut h = bearer(VIEWER_TOKEN);
        h.push(format!("Host: {host}"));
        http_request(named.http, "GET", "/api/v1/sla", &h, None).map(|a| a.code)
    };
    wait_until("the named gateway answers", || {
        ask("hotline.test") == Some(200)
    });
    assert_eq!(
        ask(&format!("hotline.test:{}", named.http.port())),
        Some(200)
    );
    assert_eq!(ask(&named.http.to_string()), Some(421));
}

#[test]
fn a_post_without_a_json_body_is_refused() {
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    let posts: Vec<String> = api_routes()
        .into_keys()
        .filter(|(m, _)| m == "POST")
        .map(|(_, p)| concrete(&p))
        .collect();
    assert!(posts.len() >= 4, "{posts:?}");
    let form = "Content-Type: application/x-www-form-urlencoded".to_string();
    let text = "Content-Type: text/plain".to_string();
    let json = "Content-Type: application/json".to_string();
    for path in &posts {
        for (what, extra, body) in [
            ("a form", Some(&form), Some("state=logged_out")),
            ("text/plain JSON", Some(&text), Some("{}")),
            ("no body", None, None),
            ("an empty JSON body", Some(&json), Some("")),
        ] {
            let mut h = bearer(ADMIN_TOKEN);
            h.extend(extra.cloned());
            let a = http_request(gw.http, "POST", path, &h, body).expect("an answer");
            assert_eq!(
                (a.code, a.error_code().as_deref()),
                (415, Some("unsupported_media_type")),
                "POST {path} with {what}: {a:?}"
            );
        }
    }
    // `{}` is the body of the POSTs that take no parameters.
    let (code, body) = http_post(gw.http, "/api/v1/dialplan/reload", "{}").unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body) = http_post(gw.http, "/api/v1/dialplan/reload", r#"{"x":1}"#).unwrap();
    assert_eq!(code, 400, "unknown fields are refused: {body}");
}

#[test]
fn the_shipped_config_refuses_to_start_on_a_public_address() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = root.join("config/gateway.toml");
    let args = |sip: &str, http: &str| {
        vec![
            "--config".into(),
            config.display().to_string(),
            "--sip-listen".into(),
            format!("{sip}:{}", free_port()),
            "--http-listen".into(),
            format!("{http}:{}", free_port()),
            "--database".into(),
            "none".into(),
        ]
    };
    let (code, err) = run_until_exit(&args("0.0.0.0", "127.0.0.1"));
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {err}");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let admin_line = line("de72d648e29b247c1875138a7140256dbe5df3e6c9f37d592b07d9de509d2878");
    for want in [
        format!("gateway.toml:{admin_line}: http.token[2] (name = \"dev-admin\")"),
        "[sip] listen = \"0.0.0.0:".to_string(),
        "hotline-gw token --role admin".to_string(),
        "dialplans/default/agents.toml:".to_string(),
        "agent \"1001\" has a shipped default password".to_string(),
        "refusing to start".to_string(),
    ] {
        assert!(err.contains(&want), "no {want:?} in:\n{err}");
    }
    // The HTTP side alone is enough.
    let (code, err) = run_until_exit(&args("127.0.0.1", "0.0.0.0"));
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {err}");
    assert!(err.contains("[http] listen = \"0.0.0.0:"), "{err}");
    assert!(err.contains("dev-viewer"), "{err}");
}

#[test]
fn a_public_api_without_tokens_refuses_to_start() {
    let dir = TempDir::new("exposed");
    std::fs::create_dir_all(dir.0.join("d")).unwrap();
    std::fs::write(
        dir.0.join("d/lines.toml"),
        "[[line]]\nnumber = \"12345\"\nname = \"x\"\ntarget = \"sip:127.0.0.1:9\"\n",
    )
    .unwrap();
    let file = dir.0.join("gw.toml");
    std::fs::write(
        &file,
        format!(
            "[sip]\nlisten = \"127.0.0.1:{}\"\n[calls]\nmax_concurrent = 10\nretry_after_s = 5\n\
             ring_timeout_s = 60\nmax_duration_s = 3600\n[http]\nlisten = \"0.0.0.0:{}\"\n\
             [dialplan]\ndir = \"d\"\n[store]\ndatabase = \"none\"\n[media]\nenabled = false\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let (code, err) = run_until_exit(&["--config".into(), file.display().to_string()]);
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {err}");
    for want in [
        format!("{}: [http] listen = \"0.0.0.0:", file.display()),
        "no [[http.token]] is configured".into(),
        "hotline-gw token --role admin".into(),
    ] {
        assert!(err.contains(&want), "no {want:?} in:\n{err}");
    }
}

fn hex_sha256(s: &str) -> String {
    hotline_gateway::http::auth::hex(&hotline_gateway::http::auth::token_sha256(s))
}

/// Polls a condition every 50 ms for up to 20 s.
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_token_from_the_token_command_lets_its_holder_in() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_hotline-gw"))
            .arg("token")
            .args(args)
            .output()
            .expect("run hotline-gw token")
    };
    let out = run(&["--role", "supervisor", "--name", "alice"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("token for alice (supervisor): "))
        .unwrap_or_else(|| panic!("no token in:\n{text}"))
        .to_string();
    assert!(token.len() >= 64, "a long random token: {token}");
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "[[http.token]]")
        .take(4)
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        !lines.join("\n").contains(&token),
        "only the hash is pasted"
    );
    // Two runs never give the same token.
    let again = String::from_utf8(run(&["--role", "admin", "--name", "bob"]).stdout).unwrap();
    assert!(!again.contains(&token));

    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.http_keys = lines.join("\n") + "\n";
    let gw = Gateway::start(opts);
    let (code, body) = http_get_as(gw.http, "/api/v1/calls", Some(&token)).unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body) =
        http_post_as(gw.http, "/api/v1/dialplan/reload", "{}", Some(&token)).unwrap();
    assert_eq!(code, 403, "a supervisor cannot reload: {body}");

    for bad in [
        &["--role", "root", "--name", "x"][..],
        &["--role", "admin", "--name", "a\"b"],
        &["--role", "admin", "--name", ""],
    ] {
        let out = run(bad);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(out.stdout.is_empty(), "{bad:?}: no token printed");
    }
}

#[test]
fn a_reload_on_an_exposed_gateway_refuses_a_shipped_password() {
    // `[::ffff:127.0.0.1]` is reached from loopback only, but the check reads the
    // address as written: not loopback, so the gateway counts as exposed.
    let mut opts = GwOpts::to("sip:127.0.0.1:9");
    opts.http_listen_host = Some("[::ffff:127.0.0.1]".into());
    let gw = Gateway::start(opts);
    let agent = |password: &str| {
        std::fs::write(
            gw.dir.0.join("dialplans/seats.toml"),
            format!("[[agent]]\nid = \"2001\"\nname = \"Agent 2001\"\npassword = \"{password}\"\n"),
        )
        .unwrap()
    };
    let has_2001 = || {
        let (code, body) = http_get(gw.http, "/api/v1/agents").unwrap();
        assert_eq!(code, 200, "{body}");
        body.contains("\"2001\"")
    };

    agent("change-me-2001");
    let a = call(&gw, "POST", "/api/v1/dialplan/reload", &bearer(ADMIN_TOKEN));
    assert_eq!(
        (a.code, a.error_code().as_deref()),
        (422, Some("dialplan_refused")),
        "{a:?}"
    );
    for want in [
        "seats.toml:4: agent \\\"2001\\\" has a shipped default password",
        "[http] listen = \\\"[::ffff:127.0.0.1]:",
        "the running plan stays",
    ] {
        assert!(a.body.contains(want), "no {want:?} in {}", a.body);
    }
    assert!(!has_2001(), "the running plan stays");

    // SIGHUP reads the same plan and logs the same refusal.
    gw.signal("HUP");
    let start = Instant::now();
    loop {
        let log = gw.log();
        if log.contains("SIGHUP: dialplan refused")
            && log.contains("agent \"2001\" has a shipped default password")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no SIGHUP refusal in the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!has_2001(), "the running plan stays after SIGHUP");

    // A password of the operator's own is loaded.
    agent("own-secret-2001");
    let a = call(&gw, "POST", "/api/v1/dialplan/reload", &bearer(ADMIN_TOKEN));
    assert_eq!(a.code, 200, "{a:?}");
    assert!(has_2001());
}
