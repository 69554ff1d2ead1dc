//! Who is calling and what they may do: an API token (`Authorization: Bearer …`) with the
//! scopes it was made with, or a signed-in wizard session (the session cookie, plus the
//! session's CSRF token on anything that changes state), which may read and write but never
//! receives passwords.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::auth::{self, Session};
use crate::model::{Scope, Scopes};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "mdm_mail_session";
/// The header JavaScript sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field HTML forms send the CSRF token in.
pub const CSRF_FIELD: &str = "csrf_token";

/// Who made an authenticated request, as the audit log names them.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

/// What the caller of an authenticated request may do.
#[derive(Debug, Clone, Copy)]
pub struct Granted(pub Scopes);

/// What a route needs of its caller, as the route declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The scope the route needs.
    pub scope: Scope,
    /// A boolean query parameter that, when `true`, takes every password out of the answer,
    /// so that the request needs only `read`.
    pub redacted_by: Option<&'static str>,
}

impl Needs {
    /// The scope a request to `uri` needs.
    pub fn scope_for(&self, uri: &Uri) -> Scope {
        let redacted = self.redacted_by.is_some_and(|name| {
            axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(uri)
                .is_ok_and(|query| query.get(name).is_some_and(|v| v == "true"))
        });
        if redacted { Scope::Read } else { self.scope }
    }
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME && !value.is_empty()).then_some(value)
        })
}

/// The live session of the request's cookie.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, ApiError> {
    match session_cookie(headers) {
        Some(token) => Ok(auth::session(&state.store, token).await?),
        None => Ok(None),
    }
}

/// The client a request came from: its TCP `peer`, unless the peer is one of the `trusted`
/// reverse proxies, in which case the nearest address in `X-Forwarded-For` that is not a
/// trusted proxy. Entries are read from the right, where each proxy appends the address it
/// was reached from: those further left were written by the client and prove nothing. An
/// entry that is not an address ends the search at the proxy that passed it on.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let trusted_hop = |ip: &IpAddr| trusted.contains(&ip.to_canonical());
    if !trusted_hop(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted_hop(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => break,
        }
    }
    client
}

/// Compares secrets in time independent of where they first differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether a request of `method` changes state, and so needs the CSRF token.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Actor, Granted), ApiError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        let found = auth::token(&state.store, token)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        return Ok((
            Actor(format!("token:{}", found.name)),
            Granted(found.scopes),
        ));
    }
    let session = current_session(state, headers)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if changes_state(method) {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same_secret(sent, &session.csrf_token) {
            return Err(ApiError::csrf());
        }
    }
    Ok((
        Actor(format!("admin:{}", session.admin)),
        Granted(Scopes::DEFAULT),
    ))
}

/// Middleware of every `/api` route: answers 401 unless the request carries a valid token
/// or session, and hands the [`Actor`] and what it was [`Granted`] on.
pub async fn require_api_auth(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticate(&state, request.method(), request.headers()).await {
        Ok((actor, granted)) => {
            request.extensions_mut().insert(actor);
            request.extensions_mut().insert(granted);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// Middleware of each `/api` route, inside [`require_api_auth`]: answers 403
/// `insufficient_scope` unless the caller was granted what the route [`Needs`].
pub async fn require_scope(State(needs): State<Needs>, request: Request, next: Next) -> Response {
    let scope = needs.scope_for(request.uri());
    let granted = request.extensions().get::<Granted>();
    if granted.is_some_and(|Granted(scopes)| scopes.allows(scope)) {
        return next.run(request).await;
    }
    let mut response = ApiError::insufficient_scope(scope).into_response();
    // RFC 6750 §3: the challenge names the scope that was missing.
    if let Ok(challenge) = HeaderValue::from_str(&format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
    )) {
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; mdm_mail_session=abc; b=2".parse().unwrap());
        assert_eq!(session_cookie(&headers), Some("abc"));
        headers.insert(COOKIE, "mdm_mail_session=".parse().unwrap());
        assert_eq!(session_cookie(&headers), None);
    }

    #[test]
    fn a_redacted_request_needs_only_read() {
        let needs = Needs {
            scope: Scope::Secrets,
            redacted_by: Some("redact"),
        };
        let scope = |uri: &str| needs.scope_for(&uri.parse().unwrap());
        assert_eq!(scope("/p?platform=ios&redact=true"), Scope::Read);
        assert_eq!(scope("/p?platform=ios"), Scope::Secrets);
        assert_eq!(scope("/p?redact=false"), Scope::Secrets);
        assert_eq!(scope("/p?redact=yes"), Scope::Secrets);
    }

    #[test]
    fn the_client_behind_a_trusted_proxy_is_the_nearest_untrusted_forwarded_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2")];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.9, 203.0.113.7, 10.0.0.2".parse().unwrap(),
        );
        let client = |peer: &str, headers: &HeaderMap| client_address(ip(peer), headers, &proxies);
        assert_eq!(client("10.0.0.1", &headers), ip("203.0.113.7"));
        assert_eq!(
            client("192.0.2.5", &headers),
            ip("192.0.2.5"),
            "untrusted peer"
        );
        assert_eq!(client("10.0.0.1", &HeaderMap::new()), ip("10.0.0.1"));
        headers.insert("x-forwarded-for", "203.0.113.7, junk".parse().unwrap());
        assert_eq!(client("10.0.0.1", &headers), ip("10.0.0.1"));
        assert_eq!(
            client_address(ip("10.0.0.1"), &headers, &[]),
            ip("10.0.0.1"),
            "no trusted proxies: the header is ignored"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
