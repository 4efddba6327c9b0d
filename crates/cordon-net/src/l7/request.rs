//! One request at the door's layer 7: request rules, the exfiltration check, placeholders
//! swapped for real values where the secret allows; and responses scrubbed on the way back.

use super::b64;
use super::body::{filtered, L7Body, Trip};
use super::rules::ambiguous_path;
use super::scrub::{replace_all, Action, Pattern, Stream};
use super::L7;
use crate::event::Event;
use crate::event::Kind;
use bytes::Bytes;
use hyper::body::Body;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use std::sync::Arc;
use zeroize::Zeroizing;

/// A refused request: what the person reads (the response body) and what the audit says.
#[derive(Debug)]
pub struct Denied {
    /// The status to answer with.
    pub status: StatusCode,
    /// The rule that refused (`request rules`, `secrets: exfiltration`, ...).
    pub rule: String,
    /// Why.
    pub reason: String,
    /// What would allow it.
    pub fix: String,
}

impl Denied {
    fn new(status: StatusCode, rule: &str, reason: String, fix: String) -> Denied {
        Denied {
            status,
            rule: rule.into(),
            reason,
            fix,
        }
    }

    /// The audit record.
    pub fn event(&self, via: &'static str, host: &str, port: u16) -> Event {
        let mut e = Event::new(Kind::Deny, via, host.to_string(), port);
        e.rule = self.rule.clone();
        e.reason = self.reason.clone();
        e.fix = self.fix.clone();
        e
    }

    /// The plain-text response the sandbox gets.
    pub fn response(&self) -> Response<L7Body> {
        let fix = if self.fix.is_empty() {
            "none"
        } else {
            &self.fix
        };
        text(
            self.status,
            format!(
                "cordon: request refused\nrule: {}\nreason: {}\nto allow it: {fix}\n",
                self.rule, self.reason
            ),
        )
    }
}

/// A plain-text response.
pub fn text(status: StatusCode, msg: String) -> Response<L7Body> {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(Bytes::from(msg))
        .map_err(|n: std::convert::Infallible| match n {})
        .boxed();
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The refusal for a request that carried secret `k`'s placeholder where it may not go.
pub(crate) fn exfil(l7: &L7, k: usize, host: &str, tls: bool) -> Denied {
    let Some(s) = l7.secrets.get(k) else {
        return Denied::new(
            StatusCode::FORBIDDEN,
            "secrets: exfiltration",
            "a secret's placeholder".into(),
            String::new(),
        );
    };
    let c = &s.conf;
    let listed = c
        .hosts
        .iter()
        .any(|p| super::host_matches(p, &host.to_ascii_lowercase()));
    let (reason, fix) = if listed && !tls {
        (
            format!("exfiltration attempt: the placeholder of secret {} in a plain-HTTP request to {host}; it is only sent over TLS", c.name),
            format!("use https, or set allow_plaintext = true in [secrets.{}]", c.name),
        )
    } else {
        (
            format!(
                "exfiltration attempt: the placeholder of secret {} in a request to {host}, which is not among its hosts ({})",
                c.name,
                c.hosts.join(", ")
            ),
            format!(
                "if {host} should get it, add it to hosts in [secrets.{}] (user policy)",
                c.name
            ),
        )
    };
    Denied::new(StatusCode::FORBIDDEN, "secrets: exfiltration", reason, fix)
}

fn rules_denial(host: &str, method: &str, path: &str, why: String, origin: &str) -> Denied {
    Denied::new(
        StatusCode::FORBIDDEN,
        &format!("request rules [requests.\"{host}\"] ({origin})"),
        format!("{method} {path} on {host}: {why}"),
        format!("add \"{method} {path}\" (or a glob covering it) to allow in [requests.\"{host}\"] ({origin})"),
    )
}

/// Checks the request rules of `host`.
pub(crate) fn check_rules(l7: &L7, host: &str, method: &str, path: &str) -> Result<(), Denied> {
    let Some(rules) = l7.rules_for(host) else {
        return Ok(());
    };
    if let Some(why) = ambiguous_path(path) {
        let origin = rules
            .tables
            .first()
            .map(|t| t.origin.as_str())
            .unwrap_or("");
        return Err(rules_denial(
            host,
            method,
            path,
            format!("{why} is refused on hosts with request rules"),
            origin,
        ));
    }
    rules.check(method, path).map_err(|origin| {
        rules_denial(
            host,
            method,
            path,
            "no entry of the table allows it".into(),
            &origin,
        )
    })
}

/// Headers that many frameworks read as the real method (a `POST` that acts as a `DELETE`).
const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// On a host with rules the method judged must be the method acted on: overrides are refused.
fn check_override(
    l7: &L7,
    host: &str,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), Denied> {
    let Some(rules) = l7.rules_for(host) else {
        return Ok(());
    };
    let Some(name) = METHOD_OVERRIDES.iter().find(|h| headers.contains_key(**h)) else {
        return Ok(());
    };
    let origin = rules
        .tables
        .first()
        .map(|t| t.origin.as_str())
        .unwrap_or("");
    Err(Denied::new(
        StatusCode::FORBIDDEN,
        &format!("request rules [requests.\"{host}\"] ({origin})"),
        format!("{method} {path} on {host}: a method override header ({name}) is refused on hosts with request rules"),
        format!("send the method itself (e.g. \"DELETE {path}\") and allow it in [requests.\"{host}\"]"),
    ))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The decoded credentials of an `Authorization: Basic` (or `Proxy-Authorization`) value.
fn basic(v: &[u8]) -> Option<Vec<u8>> {
    let s = std::str::from_utf8(v).ok()?;
    let (scheme, rest) = s.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    b64::decode(rest.trim())
}

/// Replaces in one header value, looking inside Basic credentials too.
pub fn rewrite_header(pats: &[Pattern], v: &[u8]) -> Option<Vec<u8>> {
    if let Some(creds) = basic(v) {
        let creds = Zeroizing::new(creds);
        let swapped = Zeroizing::new(replace_all(pats, &creds).ok()?);
        if *swapped != *creds {
            let mut out = b"Basic ".to_vec();
            out.extend_from_slice(b64::encode(&swapped).as_bytes());
            return Some(out);
        }
    }
    replace_all(pats, v).ok()
}

/// Which secret's placeholder (index) appears in the request head, if any.
fn placeholders_in_head(l7: &L7, uri: &Uri, headers: &HeaderMap) -> Vec<usize> {
    let target = uri.to_string();
    let mut found = Vec::new();
    for (k, s) in l7.secrets.iter().enumerate() {
        let p = s.conf.placeholder.as_bytes();
        let in_headers = headers.iter().any(|(_, v)| {
            contains(v.as_bytes(), p) || basic(v.as_bytes()).is_some_and(|c| contains(&c, p))
        });
        if in_headers || contains(target.as_bytes(), p) {
            found.push(k);
        }
    }
    found
}

/// Refuses ambiguous message framing (request smuggling) before anything is forwarded.
pub fn framing_ok(h: &HeaderMap) -> Result<(), String> {
    let cl = h.get_all(header::CONTENT_LENGTH).iter().count();
    let te: Vec<&HeaderValue> = h.get_all(header::TRANSFER_ENCODING).iter().collect();
    if !te.is_empty() && cl > 0 {
        return Err("both Transfer-Encoding and Content-Length".into());
    }
    if cl > 1 || te.len() > 1 {
        return Err("repeated Content-Length or Transfer-Encoding".into());
    }
    if te
        .first()
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Err("unsupported Transfer-Encoding".into());
    }
    Ok(())
}

/// Hop-by-hop headers are not forwarded.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        if n != header::TRANSFER_ENCODING && n != header::CONTENT_LENGTH && n != header::HOST {
            h.remove(n);
        }
    }
    for n in [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    ] {
        h.remove(n);
    }
}

/// A request made ready to forward to `host`: rules checked, placeholders of secrets meant
/// for `host` swapped for the real values, placeholders of any other secret refused. The
/// returned [`Trip`] says whether the body carried one (the body is cut off there).
pub(crate) async fn prepare<B>(
    l7: &L7,
    host: &str,
    tls: bool,
    req: Request<B>,
) -> Result<(Request<L7Body>, Arc<Trip>), Denied>
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<super::body::BoxError>,
{
    let (mut parts, body) = req.into_parts();
    check_rules(l7, host, parts.method.as_str(), parts.uri.path())?;
    check_override(
        l7,
        host,
        parts.method.as_str(),
        parts.uri.path(),
        &parts.headers,
    )?;
    framing_ok(&parts.headers).map_err(|why| {
        Denied::new(
            StatusCode::BAD_REQUEST,
            "built-in: malformed request",
            why,
            String::new(),
        )
    })?;
    let found = placeholders_in_head(l7, &parts.uri, &parts.headers);
    if let Some(&k) = found.iter().find(|&&k| !l7.secrets[k].allowed(host, tls)) {
        return Err(exfil(l7, k, host, tls));
    }
    let mut head_pats = Vec::new();
    let mut query_pats = Vec::new();
    let mut body_pats = Vec::new();
    for (k, s) in l7.secrets.iter().enumerate() {
        let p = s.conf.placeholder.as_bytes().to_vec();
        if !s.allowed(host, tls) {
            body_pats.push(Pattern {
                from: p,
                action: Action::Forbid(k),
            });
            continue;
        }
        if !found.contains(&k) && !s.conf.in_body {
            continue;
        }
        let value = s.value().await.map_err(|e| {
            Denied::new(
                StatusCode::BAD_GATEWAY,
                "secrets: source",
                e,
                "check the secret's from_command".into(),
            )
        })?;
        let pat = Pattern {
            from: p,
            action: Action::Replace(value.as_bytes().to_vec()),
        };
        if found.contains(&k) {
            head_pats.push(pat.clone());
            if s.conf.in_query {
                query_pats.push(pat.clone());
            }
        }
        if s.conf.in_body {
            body_pats.push(pat);
        }
    }
    if !head_pats.is_empty() {
        let bad = |what: &str| {
            Denied::new(
                StatusCode::BAD_GATEWAY,
                "secrets: substitution",
                format!("the real value does not fit in {what}"),
                String::new(),
            )
        };
        let mut out = HeaderMap::with_capacity(parts.headers.len());
        for (name, v) in parts.headers.iter() {
            let nv = match rewrite_header(&head_pats, v.as_bytes()) {
                Some(b) if b != v.as_bytes() => {
                    let mut hv = HeaderValue::from_bytes(&b).map_err(|_| bad("a header"))?;
                    hv.set_sensitive(true);
                    hv
                }
                _ => v.clone(),
            };
            out.append(name.clone(), nv);
        }
        parts.headers = out;
        if let (false, Some(pq)) = (query_pats.is_empty(), parts.uri.path_and_query()) {
            let swapped =
                replace_all(&query_pats, pq.as_str().as_bytes()).map_err(|_| bad("the URL"))?;
            let mut b = Uri::builder().path_and_query(swapped);
            if let Some(s) = parts.uri.scheme() {
                b = b.scheme(s.clone());
            }
            if let Some(a) = parts.uri.authority() {
                b = b.authority(a.clone());
            }
            parts.uri = b.build().map_err(|_| bad("the URL"))?;
        }
    }
    strip_hop_by_hop(&mut parts.headers);
    let swaps_body = body_pats
        .iter()
        .any(|p| matches!(p.action, Action::Replace(_)));
    if !head_pats.is_empty() || swaps_body {
        // A response echoing the real value can only be scrubbed if it is not compressed.
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    let stream = Stream::new(body_pats);
    if stream.changes_length() {
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    let trip = Arc::new(Trip::default());
    let body = filtered(body, stream, trip.clone());
    Ok((Request::from_parts(parts, body), trip))
}

/// Shorter base64 runs are left alone: they would match unrelated base64 (file contents in
/// an API's JSON) too often, and a value that short leaves little to recover.
const MIN_B64_SCRUB: usize = 16;

/// The patterns that turn `real` back into `ph` in a response.
fn scrub_patterns(pats: &mut Vec<Pattern>, real: &[u8], ph: &[u8]) {
    pats.push(Pattern {
        from: real.to_vec(),
        action: Action::Replace(ph.to_vec()),
    });
    // cordon itself base64-encodes the value into Basic credentials; a server that
    // reflects them must not hand the sandbox the value in that form either.
    for (real, fake) in b64::aligned(real)
        .into_iter()
        .zip(b64::aligned(ph))
        .filter(|(r, _)| r.len() >= MIN_B64_SCRUB)
    {
        pats.push(Pattern {
            from: real.into_bytes(),
            action: Action::Replace(fake.into_bytes()),
        });
    }
}

/// A response with every real value replaced by its placeholder (headers and body).
pub(crate) fn scrub_response<B>(l7: &L7, resp: Response<B>) -> Response<L7Body>
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<super::body::BoxError>,
{
    let (mut parts, body) = resp.into_parts();
    let mut pats: Vec<Pattern> = Vec::new();
    for s in &l7.secrets {
        for v in s.peek().iter().filter(|v| !v.is_empty()) {
            scrub_patterns(&mut pats, v.as_bytes(), s.conf.placeholder.as_bytes());
        }
    }

    strip_hop_by_hop(&mut parts.headers);
    // A non-standard reason phrase would be passed on as the server wrote it (a server that
    // reflects a header there would hand back the real value): the standard one is sent.
    parts.extensions.remove::<hyper::ext::ReasonPhrase>();
    if !pats.is_empty() {
        let mut out = HeaderMap::with_capacity(parts.headers.len());
        for (name, v) in parts.headers.iter() {
            let nv = match replace_all(&pats, v.as_bytes()) {
                Ok(b) if b != v.as_bytes() => {
                    HeaderValue::from_bytes(&b).unwrap_or_else(|_| HeaderValue::from_static(""))
                }
                _ => v.clone(),
            };
            out.append(name.clone(), nv);
        }
        parts.headers = out;
    }
    let stream = Stream::new(pats);
    if stream.changes_length() {
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    let body = filtered(body, stream, Arc::new(Trip::default()));
    Response::from_parts(parts, body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_rewritten_inside_base64() {
        let pats = vec![Pattern {
            from: b"ghp_PLACEHOLDER".to_vec(),
            action: Action::Replace(b"ghp_REALTOKEN42".to_vec()),
        }];
        let v = format!("Basic {}", b64::encode(b"x:ghp_PLACEHOLDER"));
        let out = rewrite_header(&pats, v.as_bytes()).unwrap();
        let s = String::from_utf8(out).unwrap();
        let creds = b64::decode(s.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(creds, b"x:ghp_REALTOKEN42");
        let out = rewrite_header(&pats, b"Bearer ghp_PLACEHOLDER").unwrap();
        assert_eq!(out, b"Bearer ghp_REALTOKEN42");
        let out = rewrite_header(&pats, b"basic bm90aGluZw==").unwrap();
        assert_eq!(out, b"basic bm90aGluZw==");
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let mut h = HeaderMap::new();
        assert!(framing_ok(&h).is_ok());
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        assert!(framing_ok(&h).is_ok());
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert!(framing_ok(&h).is_err());
        h.remove(header::CONTENT_LENGTH);
        assert!(framing_ok(&h).is_ok());
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("gzip, chunked"),
        );
        assert!(framing_ok(&h).is_err());
    }
}
