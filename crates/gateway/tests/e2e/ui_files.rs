//! `GET /ui` and its files: served from the binary without a key, with their content types and cache headers.

use crate::common::*;

const ROUTES: &str = "[routes.main]\ntargets = [{ provider = \"oa\", model = \"gpt-4o\" }]\n";

const FILES: [(&str, &str); 4] = [
    ("/ui", "text/html; charset=utf-8"),
    ("/ui/", "text/html; charset=utf-8"),
    ("/ui/app.css", "text/css; charset=utf-8"),
    ("/ui/app.js", "text/javascript; charset=utf-8"),
];

#[tokio::test]
async fn the_dashboard_files_need_no_key_and_say_what_they_are() {
    let h = start(ROUTES).await;
    for (path, content_type) in FILES {
        let r = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("cache-control"), "no-cache", "{path}: revalidated, so an upgrade is never stale");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert!(header("content-security-policy").contains("connect-src 'self'"), "{path}");
        assert!(header("etag").starts_with('"'), "{path}");
    }
    let page = h.http.get(h.url("/ui")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("/ui/app.js") && !page.contains("http://") && !page.contains("https://"), "{page}");
}

#[tokio::test]
async fn an_unchanged_file_is_a_304_and_an_unknown_one_a_404() {
    let h = start(ROUTES).await;
    let first = h.http.get(h.url("/ui/app.js")).send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let again = h.http.get(h.url("/ui/app.js")).header("if-none-match", etag.clone()).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = h.http.get(h.url("/ui/app.css")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(other.status(), 200, "another file's tag does not match");
    assert_eq!(h.http.get(h.url("/ui/nope.js")).send().await.unwrap().status(), 404);
    assert_eq!(
        h.http.get(h.url("/ui/..%2Fadmin%2Froutes")).send().await.unwrap().status(),
        404,
        "names only, no paths"
    );
}
