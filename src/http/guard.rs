//! The HTTP guard, as two middlewares. [`authenticate`] wraps the whole router:
//! every request but `GET /healthz` must name an allowed Host (`421`), and every
//! one but the wallboard page (`GET /`) must carry a configured bearer token
//! (`401`). [`require`] sits on each API route: the token's role must reach the
//! route's (`403`), and a POST must carry a JSON body (`415`), which a form or
//! a bodiless request from another site cannot.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::{Hosts, Role, Tokens, bearer};
use super::error;

/// What the guard checks against, from `[http]`.
#[derive(Debug, Clone)]
pub struct Access {
    pub tokens: Tokens,
    pub hosts: Hosts,
}

/// Who is calling: put in a request's extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name (never its value).
    pub name: String,
    pub role: Role,
}

/// The outer layer: Host, then token.
pub async fn authenticate(
    State(access): State<Arc<Access>>,
    mut req: Request,
    next: Next,
) -> Response {
    let get = matches!(*req.method(), Method::GET | Method::HEAD);
    let path = req.uri().path();
    // Load balancers probe by address, with whatever Host they like; the answer
    // holds counters only.
    if get && path == "/healthz" {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if !host.as_deref().is_some_and(|h| access.hosts.allows(h)) {
        tracing::debug!(host = ?host, "HTTP request refused: Host not allowed");
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            format!(
                "Host {:?} is not in [http] allowed_hosts (a name that points here \
                 must be listed there)",
                host.unwrap_or_default()
            ),
        );
    }
    // The wallboard and report pages themselves hold no data; they ask for a token.
    if get && (path == "/" || path == "/reports") {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    let Some(token) = presented.and_then(|t| access.tokens.check(t)) else {
        tracing::debug!(
            presented = presented.is_some(),
            "HTTP request refused: no known token"
        );
        return unauthorized(presented.is_some());
    };
    req.extensions_mut().insert(Caller {
        name: token.name.clone(),
        role: token.role,
    });
    next.run(req).await
}

/// `401` with the challenge RFC 6750 describes.
fn unauthorized(presented: bool) -> Response {
    let (challenge, message) = if presented {
        (
            r#"Bearer realm="hotline-gw", error="invalid_token""#,
            "the bearer token is not one of [[http.token]]",
        )
    } else {
        (
            r#"Bearer realm="hotline-gw""#,
            "send Authorization: Bearer <token> (`hotline-gw token` creates one)",
        )
    };
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", message.into());
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

/// The route layer: the least role a route needs, and a JSON body on a POST.
pub async fn require(State(need): State<Role>, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>() else {
        // Only when a route is mounted outside `authenticate`: refuse, never open.
        return unauthorized(false);
    };
    if caller.role < need {
        let message = format!(
            "{} {} needs the {} role; token {:?} is {}",
            req.method(),
            req.uri().path(),
            need.as_str(),
            caller.name,
            caller.role.as_str()
        );
        return error(StatusCode::FORBIDDEN, "forbidden", message);
    }
    if req.method() == Method::POST && !json_body(&req) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a POST needs a JSON body with Content-Type: application/json \
             (`{}` when there is nothing more to say)"
                .into(),
        );
    }
    next.run(req).await
}

/// Whether a request says it carries a JSON body.
fn json_body(req: &Request) -> bool {
    let h = req.headers();
    let json = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim().to_ascii_lowercase();
            t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
        });
    let has_body = match h.get(header::CONTENT_LENGTH) {
        Some(n) => n.to_str().ok().and_then(|n| n.parse::<u64>().ok()) != Some(0),
        None => h.contains_key(header::TRANSFER_ENCODING),
    };
    json && has_body
}
