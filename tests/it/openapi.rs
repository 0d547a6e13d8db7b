//! `docs/openapi.yaml` against the router: the documented (method, path) pairs are
//! exactly the `.route(…)` calls of `src/http/mod.rs`, and every documented route
//! answers on a running gateway.
//!
//! There is no YAML crate: the spec is read line by line, relying on the simple
//! layout its header comment promises (`paths:` at column 0, `  /path:` keys at two
//! spaces, `    get:` operations at four).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::*;

/// The methods an OpenAPI path item may have, in lower case.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Four-space keys of a path item that are not operations.
const PATH_ITEM_KEYS: [&str; 5] = ["parameters", "summary", "description", "servers", "$ref"];

pub(crate) type Route = (String, String);

pub(crate) fn read(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Leading spaces; a tab in the indentation is a layout error.
fn indent(line: &str, n: usize) -> usize {
    let rest = line.trim_start_matches(' ');
    assert!(
        !rest.starts_with('\t'),
        "docs/openapi.yaml:{n}: tab in indentation"
    );
    line.len() - rest.len()
}

/// The key of a `key:` or `key: value` line (already unindented), if it is one.
fn key_of(text: &str) -> Option<&str> {
    let (k, rest) = text.split_once(':')?;
    (rest.is_empty() || rest.starts_with(' ')).then_some(k)
}

/// The lines of a top-level block (`paths:`, `components:`), with their 1-based
/// numbers, blank and comment lines left out.
fn block<'a>(yaml: &'a str, name: &str) -> Vec<(usize, &'a str)> {
    let head = format!("{name}:");
    let mut out = Vec::new();
    let mut inside = false;
    let mut seen = false;
    for (i, line) in yaml.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            inside = line.trim_end() == head;
            assert!(
                !(inside && seen),
                "docs/openapi.yaml:{}: `{head}` twice",
                i + 1
            );
            seen |= inside;
            continue;
        }
        if inside {
            out.push((i + 1, line));
        }
    }
    assert!(seen, "docs/openapi.yaml has no top-level `{head}`");
    out
}

/// The (METHOD, path) pairs of the spec's `paths:`.
pub(crate) fn spec_routes(yaml: &str) -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    let mut path: Option<String> = None;
    for (n, line) in block(yaml, "paths") {
        let text = line.trim();
        match indent(line, n) {
            2 => {
                let k = key_of(text).unwrap_or_else(|| {
                    panic!("docs/openapi.yaml:{n}: expected `  /path:`, got {text:?}")
                });
                assert!(
                    k.starts_with('/') && !k.contains(['\'', '"', ' ']),
                    "docs/openapi.yaml:{n}: a path key must be an unquoted `/…` \
                     (keep the simple layout), got {k:?}"
                );
                assert!(
                    text.len() == k.len() + 1,
                    "docs/openapi.yaml:{n}: nothing may follow `{k}:` on its line"
                );
                path = Some(k.to_string());
            }
            4 => {
                let Some(k) = key_of(text) else {
                    // A list item of a path-level `parameters:`.
                    assert!(
                        text.starts_with("- "),
                        "docs/openapi.yaml:{n}: unexpected {text:?}"
                    );
                    continue;
                };
                let p = path
                    .as_ref()
                    .unwrap_or_else(|| panic!("docs/openapi.yaml:{n}: `{k}` before any path"));
                if METHODS.contains(&k) {
                    assert!(
                        text.len() == k.len() + 1,
                        "docs/openapi.yaml:{n}: write the `{k}` operation in block style"
                    );
                    let new = routes.insert((k.to_uppercase(), p.clone()));
                    assert!(new, "docs/openapi.yaml:{n}: {k} {p} twice");
                } else {
                    assert!(
                        PATH_ITEM_KEYS.contains(&k) || k.starts_with("x-"),
                        "docs/openapi.yaml:{n}: `{k}` is neither an HTTP method nor a \
                         path-item key (mistyped method or wrong indentation?)"
                    );
                }
            }
            i if i > 4 => {
                assert!(path.is_some(), "docs/openapi.yaml:{n}: indented too deep")
            }
            i => panic!("docs/openapi.yaml:{n}: indentation {i} in `paths:` (use 2 or 4)"),
        }
    }
    routes
}

/// Every `$ref: '#/components/KIND/NAME'` names a defined component.
fn dangling_refs(yaml: &str) -> Vec<String> {
    let mut defined = BTreeSet::new();
    let mut kind = String::new();
    for (n, line) in block(yaml, "components") {
        let Some(k) = key_of(line.trim()) else {
            continue;
        };
        match indent(line, n) {
            2 => kind = k.to_string(),
            4 => {
                defined.insert(format!("#/components/{kind}/{}", k.trim_matches('"')));
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for (i, line) in yaml.lines().enumerate() {
        let t = line.trim_start();
        let Some(r) = t
            .strip_prefix("$ref:")
            .or_else(|| t.strip_prefix("- $ref:"))
        else {
            continue;
        };
        let r = r.trim().trim_matches(['\'', '"']);
        if !defined.contains(r) {
            missing.push(format!("docs/openapi.yaml:{}: {r}", i + 1));
        }
    }
    missing
}

/// Rust source with comments blanked out (string and char literals kept), so a
/// `.route(` in a comment is not taken for a route.
fn strip_comments(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == '"' {
            out.push(c);
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(b[i]);
                    i += 1;
                }
                if i < b.len() {
                    out.push(b[i]);
                    i += 1;
                }
            }
            if i < b.len() {
                out.push('"');
                i += 1;
            }
        } else if c == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // A char literal (`'"'`, `'\n'`); a lone `'` is a lifetime.
            out.push(c);
            i += 1;
            while i < b.len() && b[i] != '\'' {
                if b[i] == '\\' {
                    out.push(b[i]);
                    i += 1;
                }
                if i < b.len() {
                    out.push(b[i]);
                    i += 1;
                }
            }
            if i < b.len() {
                out.push('\'');
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The (METHOD, path) pairs of the `.route("PATH", get(…).post(…))` calls, however
/// rustfmt split them over lines.
fn router_routes(src: &str) -> BTreeSet<Route> {
    let text = strip_comments(src);
    for unsupported in [".nest(", ".merge(", ".nest_service(", ".route_service("] {
        assert!(
            !text.contains(unsupported),
            "src/http/mod.rs uses `{unsupported}…)`: tests/it/openapi.rs only reads \
             `.route(\"PATH\", get(…).post(…))`; extend router_routes"
        );
    }
    let mut routes = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(".route(") {
        let start = from + at + ".route(".len();
        from = start;
        let rest = &text[start..];
        let rest_trim = rest.trim_start();
        let Some(lit) = rest_trim.strip_prefix('"') else {
            panic!(
                "src/http/mod.rs: `.route(` not followed by a string literal: {:?}",
                &rest_trim[..rest_trim.len().min(60)]
            );
        };
        let end = lit.find('"').expect("unterminated route path");
        let path = lit[..end].to_string();
        let after = lit[end + 1..].trim_start();
        let after = after
            .strip_prefix(',')
            .unwrap_or_else(|| panic!("src/http/mod.rs: no `,` after route {path:?}"));
        // Walk the method router up to the `)` closing `.route(`; the calls at
        // depth 0 are `get`, `post`, … (possibly `axum::routing::get`).
        let mut depth = 0usize;
        let mut ident = String::new();
        let mut methods = Vec::new();
        let (mut in_str, mut escaped) = (false, false);
        for c in after.chars() {
            if in_str {
                (in_str, escaped) = match (escaped, c) {
                    (true, _) => (true, false),
                    (false, '\\') => (true, true),
                    (false, '"') => (false, false),
                    _ => (true, false),
                };
                continue;
            }
            match c {
                '"' => {
                    in_str = true;
                    ident.clear();
                }
                '(' => {
                    if depth == 0 {
                        let name = ident.rsplit("::").next().unwrap_or_default().to_string();
                        if METHODS.contains(&name.as_str()) {
                            methods.push(name.to_uppercase());
                        } else {
                            assert!(
                                ["layer", "route_layer", "with_state", "fallback"]
                                    .contains(&name.as_str()),
                                "src/http/mod.rs: route {path:?} uses `{name}(…)`, which \
                                 tests/it/openapi.rs does not understand; extend router_routes"
                            );
                        }
                    }
                    depth += 1;
                    ident.clear();
                }
                ')' if depth == 0 => break,
                ')' => {
                    depth -= 1;
                    ident.clear();
                }
                c if depth == 0 && (c.is_alphanumeric() || c == '_' || c == ':') => ident.push(c),
                _ => ident.clear(),
            }
        }
        assert!(
            !methods.is_empty(),
            "src/http/mod.rs: no method for route {path:?}"
        );
        for m in methods {
            let new = routes.insert((m.clone(), path.clone()));
            assert!(new, "src/http/mod.rs: {m} {path} twice");
        }
    }
    routes
}

fn show(set: &BTreeSet<Route>) -> String {
    set.iter()
        .map(|(m, p)| format!("\n    {m} {p}"))
        .collect::<String>()
}

#[test]
fn the_route_readers_understand_rustfmt_layouts() {
    let src = r#"
        // .route("/commented", get(nothing))
        Router::new()
            .route("/", get(reports::wallboard))
            .route(
                "/api/v1/x/{id}",
                axum::routing::get(x).post(y),
            )
            .route(
                "/api/v1/y",
                get(handler_with_a_very_long_name)
                    .post(other::handler),
            )
            .route("/z", post(|| async { "a ) ( \" paren" }))
            .with_state(state)
    "#;
    let got = router_routes(src);
    let want: BTreeSet<Route> = [
        ("GET", "/"),
        ("GET", "/api/v1/x/{id}"),
        ("POST", "/api/v1/x/{id}"),
        ("GET", "/api/v1/y"),
        ("POST", "/api/v1/y"),
        ("POST", "/z"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(got, want);

    let yaml = [
        "openapi: 3.0.3",
        "# a comment",
        "paths:",
        "  /a/{id}:",
        "    parameters:",
        "      - name: id",
        "    get:",
        "      summary: x",
        "",
        "    post:",
        "      responses: {}",
        "  # a comment",
        "  /b:",
        "    get:",
        "components:",
        "  schemas:",
        "    get:",
    ]
    .join("\n");
    let got = spec_routes(&yaml);
    let want: BTreeSet<Route> = [("GET", "/a/{id}"), ("POST", "/a/{id}"), ("GET", "/b")]
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_spec_documents_exactly_the_routes_of_the_router() {
    let yaml = read("docs/openapi.yaml");
    let spec = spec_routes(&yaml);
    let code = router_routes(&read("src/http/mod.rs"));
    assert!(spec.len() >= 10, "too few operations read: {}", show(&spec));
    assert!(code.len() >= 10, "too few routes read: {}", show(&code));

    let missing = dangling_refs(&yaml);
    assert!(
        missing.is_empty(),
        "$ref to undefined components:\n{}",
        missing.join("\n")
    );

    let undocumented: BTreeSet<_> = code.difference(&spec).cloned().collect();
    let unrouted: BTreeSet<_> = spec.difference(&code).cloned().collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "docs/openapi.yaml and src/http/mod.rs disagree\n  \
         routed but not in the spec:{}\n  in the spec but not routed:{}",
        show(&undocumented),
        show(&unrouted)
    );
}

/// Whether a body is a JSON object with a string `error`.
fn has_error_code(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .is_some_and(|v| v["error"].is_string())
}

fn error_code(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["error"].as_str().map(str::to_string)
}

#[test]
fn every_documented_route_answers_on_a_running_gateway() {
    let spec = spec_routes(&read("docs/openapi.yaml"));
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    // `{id}` (any `{param}`) becomes `nope`: an id that exists nowhere.
    let concrete = |p: &str| {
        let mut out = String::new();
        let mut rest = p;
        while let Some(open) = rest.find('{') {
            let close = open + rest[open..].find('}').expect("unclosed `{` in a path");
            out += &rest[..open];
            out += "nope";
            rest = &rest[close + 1..];
        }
        out + rest
    };

    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    for (method, path) in &spec {
        let url = concrete(path);
        let answer = match method.as_str() {
            "GET" => http_get(gw.http, &url),
            // POSTs with a path parameter are safe to try on an unknown id; the
            // others (dialplan reload) are left alone.
            "POST" if path.contains('{') => http_post(gw.http, &url, "{}"),
            _ => continue,
        };
        let Some((code, body)) = answer else {
            failures.push(format!("{method} {url}: no HTTP answer"));
            continue;
        };
        seen.insert(format!("{method} {url}"), code);
        if code == 405 {
            failures.push(format!("{method} {url}: 405, the method is not routed"));
        } else if code == 404 && error_code(&body).as_deref() == Some("not_found") {
            failures.push(format!(
                "{method} {url}: 404 not_found, the path is not routed"
            ));
        } else if code == 404 && !has_error_code(&body) {
            failures.push(format!(
                "{method} {url}: 404 without a JSON `error` code: {body:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "documented routes that do not answer:\n  {}\n(all answers: {seen:?})\nlog:\n{}",
        failures.join("\n  "),
        gw.log()
    );
}

/// What a client gets wrong gets the documented error body: an unknown path, a
/// method a path does not take, and a filter value that is not one of its names.
#[test]
fn mistakes_get_an_error_body_with_a_stable_code() {
    let gw = Gateway::start(GwOpts::to("sip:127.0.0.1:9"));
    let cases = [
        ("/api/v1/agents/1001", 404, "not_found"),
        ("/api/v1/calls?outcome=answerd", 400, "bad_outcome"),
        ("/api/v1/calls?mode=hotlnie", 400, "bad_mode"),
        ("/api/v1/tickets?state=opn", 400, "bad_state"),
    ];
    for (path, want, code) in cases {
        let (status, body) = http_get(gw.http, path).expect("an HTTP answer");
        assert_eq!(
            (status, error_code(&body).as_deref()),
            (want, Some(code)),
            "{path}: {body}"
        );
    }
    let (status, body) = http_get(gw.http, "/api/v1/calls?outcome=answered&mode=hotline").unwrap();
    assert_eq!(status, 200, "{body}");

    // A method the path does not take: 405, its Allow header and the error body.
    let mut s = std::net::TcpStream::connect(gw.http).unwrap();
    use std::io::{Read, Write};
    write!(
        s,
        "PUT /api/v1/agents/1001/state HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        gw.http
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let lower = answer.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 405"), "{answer}");
    assert!(lower.contains("\r\nallow: post"), "{answer}");
    assert!(
        answer.contains("\"error\":\"method_not_allowed\""),
        "{answer}"
    );
}
