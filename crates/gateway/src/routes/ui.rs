//! `GET /ui`: the dashboard, plain HTML, CSS and JavaScript compiled into the binary (SPEC-2 section 11).
//! No key is needed for these files; the page asks for the admin key and sends it to the admin API itself.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, StatusCode};

/// One file of the dashboard.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// One file of `crates/gateway/ui/`, compiled in.
macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset { name: $name, content_type: $content_type, body: include_str!(concat!("../../ui/", $name)) }
    };
}

/// Every file, by the name it is served under (`/ui/NAME`); the page itself is `index.html`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("usage.js", "text/javascript; charset=utf-8"),
    asset!("window.js", "text/javascript; charset=utf-8"),
    asset!("overview.js", "text/javascript; charset=utf-8"),
    asset!("routes.js", "text/javascript; charset=utf-8"),
    asset!("requests.js", "text/javascript; charset=utf-8"),
    asset!("live.js", "text/javascript; charset=utf-8"),
];

/// Only this origin may be contacted or framed: the page makes no external request, even by mistake.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /ui` and `GET /ui/`: the page.
pub async fn page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{file}`: one asset, or 404.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, [(CONTENT_TYPE, "text/plain; charset=utf-8")], "no such dashboard file\n")
            .into_response();
    };
    // The files change only with the binary: the browser revalidates each load (no-cache) and gets a 304
    // while the binary is the same, so an upgrade is never served stale.
    let etag = format!("\"{:016x}\"", fnv1a(asset.body.as_bytes()));
    let common = [
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (http::header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (http::header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (http::header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, common, [(ETAG, etag_value)]).into_response();
    }
    (common, [(ETAG, etag_value), (CONTENT_TYPE, HeaderValue::from_static(asset.content_type))], asset.body)
        .into_response()
}

/// A stable 64-bit hash of a file, for its ETag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}
