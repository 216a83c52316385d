//! The restore portal: a page at `/` and its script and style, compiled into the binary
//! (`include_str!` of `crates/server/portal/`), served on every listener beside `/api`. The page
//! is a client of the REST API: it logs on with `POST /api/sessionMngr` (the same lockout and
//! audit as any client), keeps the API's session cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//! over HTTPS), and reads and restores only through the API, which scopes and authorizes every
//! request. Nothing here sees a session or the catalog.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One file of the portal.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file the portal serves, by path.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../portal/index.html"),
    },
    Asset {
        path: "/portal/portal.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../portal/portal.js"),
    },
    Asset {
        path: "/portal/portal.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../portal/portal.css"),
    },
    Asset {
        path: "/portal/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../portal/favicon.svg"),
    },
];

/// What the page may load and where it may connect: only this origin, no inline script or
/// style (so injected markup cannot run), never framed (clickjacking).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The portal's routes; everything else falls through to the API's router.
pub fn router() -> Router {
    ASSETS.iter().fold(Router::new(), |r, a| {
        r.route(a.path, get(move || async move { answer(a) }))
    })
}

/// The header the portal's script sends with every API request.
const PORTAL_HEADER: &str = "x-emrest-client";

/// A browser answers a 401 with `WWW-Authenticate: Basic` (http_authentication.md: every 401
/// carries it) by opening its own password dialog over the page, even for a script's request;
/// the portal shows its logon page instead. So the challenge is left out of the answers to the
/// portal's requests, and only those: every other client gets the API's 401 unchanged.
pub async fn without_browser_challenge(req: Request, next: Next) -> Response {
    let from_portal = req.headers().contains_key(PORTAL_HEADER);
    let mut response = next.run(req).await;
    if from_portal {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    response
}

fn answer(asset: &Asset) -> Response {
    let mut response = (StatusCode::OK, asset.body).into_response();
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, asset.content_type),
        // The files change only with the binary; a reload after an upgrade must not keep the
        // old script, and the answers are small.
        (header::CACHE_CONTROL, "no-cache"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    #[test]
    fn the_page_loads_only_assets_the_portal_serves() {
        let page = ASSETS[0].body;
        for needle in ["src=\"", "href=\""] {
            for part in page.split(needle).skip(1) {
                let target = part.split('"').next().unwrap_or_default();
                if target.starts_with('#') {
                    continue;
                }
                assert!(
                    ASSETS.iter().any(|a| a.path == target),
                    "index.html refers to {target}, which the portal does not serve"
                );
            }
        }
    }
}
