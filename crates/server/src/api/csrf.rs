//! Cross-site request refusal. A browser sends the session cookie with any request to this
//! server, whichever page made it; a state-changing request authenticated by that cookie alone
//! is served only when the browser says it comes from this server's own origin. Requests that
//! carry the `X-RestSvcSessionId` header, which no other site can set, and requests without
//! any browser's origin signals (scripts keeping the cookie in a jar, JSON.md C5) are served
//! as before: every current browser sends `Origin` on a cross-site POST, PUT or DELETE.

use super::Ctx;
use axum::http::Method;

/// The Error message of a refused request.
pub(super) const REFUSAL: &str = "Cross-site request refused: a request that changes state and \
    is authenticated by the session cookie alone must come from this server's own pages; send \
    the X-RestSvcSessionId header instead";

/// Whether an authenticated request must be refused as cross-site: it changes state, carries
/// no `X-RestSvcSessionId` header (so the cookie authenticated it) and a browser says another
/// origin made it.
pub(super) fn cross_site(ctx: &Ctx, method: &Method) -> bool {
    let h = &ctx.headers;
    if method == Method::GET || method == Method::HEAD || h.contains_key("x-restsvcsessionid") {
        return false;
    }
    let own = ctx.base.strip_suffix("/api").unwrap_or(&ctx.base);
    let text = |name: &str| {
        h.get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
    };
    if let Some(site) = text("sec-fetch-site") {
        if !site.eq_ignore_ascii_case("same-origin") && !site.eq_ignore_ascii_case("none") {
            return true;
        }
    }
    if let Some(origin) = text("origin") {
        return !origin.eq_ignore_ascii_case(own);
    }
    if let Some(referer) = text("referer") {
        return !same_origin_url(&referer, own);
    }
    false
}

/// Whether `url` is `own` or a path under it.
fn same_origin_url(url: &str, own: &str) -> bool {
    let Some(head) = url.get(..own.len()) else {
        return false;
    };
    head.eq_ignore_ascii_case(own)
        && matches!(
            url.as_bytes().get(own.len()),
            None | Some(b'/' | b'?' | b'#')
        )
}

#[cfg(test)]
mod tests {
    use super::same_origin_url;

    #[test]
    fn a_referer_matches_only_its_own_origin() {
        let own = "https://em.lab:9398";
        assert!(same_origin_url("https://em.lab:9398/", own));
        assert!(same_origin_url("https://EM.lab:9398/portal?x", own));
        assert!(same_origin_url(own, own));
        assert!(!same_origin_url("https://em.lab:93980/", own));
        assert!(!same_origin_url("https://em.lab:9398.evil.example/", own));
        assert!(!same_origin_url("http://em.lab:9398/", own));
        assert!(!same_origin_url("https://evil.example/", own));
    }
}
