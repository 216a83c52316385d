//! A collection too long to hold is streamed (mod.rs `stream_collection`): the same bytes as the
//! answer encoded whole, in the same order, through the same restore scope.

use crate::common::*;
use crate::query::insert_synthetic_points;
use axum::http::StatusCode;
use emrest_server::{router_with_cache, ApiOptions};
use std::sync::Arc;

/// Enough points beside the demo's that the listing takes several of the batches it is read
/// in (1,000 each), some of them sharing a creation time.
const POINTS: usize = 2_500;

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_listing_is_the_listing_encoded_whole() {
    let w = World::new(ONE_MIB).await;
    w.blocking(|c| insert_synthetic_points(c, POINTS)).await;
    let (streaming, _) = router_with_cache(
        Arc::clone(&**w.core),
        ApiOptions {
            stream_collections_above: Some(0),
            ..Default::default()
        },
    );
    for uri in ["/api/vmRestorePoints", "/api/vmRestorePoints?format=Entity"] {
        for accept in [XML, JSON] {
            let whole = w.send(Req::get(uri).accept(accept)).await;
            assert_eq!(whole.status, StatusCode::OK, "{}", whole.text());
            assert!(whole.header("content-length").is_some());
            let streamed = w.send_via(&streaming, Req::get(uri).accept(accept)).await;
            assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text());
            // Sent as it is made: no length is known in advance.
            assert_eq!(streamed.header("content-length"), None, "{uri} {accept}");
            assert_eq!(streamed.header("content-type"), Some(accept));
            assert!(
                streamed.body == whole.body,
                "{uri} {accept}: the streamed answer differs ({} bytes against {})",
                streamed.body.len(),
                whole.body.len()
            );
        }
    }
    // Every point is there once.
    let r = w
        .send_via(&streaming, Req::get("/api/vmRestorePoints").accept(JSON))
        .await;
    let refs = r.json()["Refs"].as_array().unwrap().len();
    let all = w
        .blocking(|c| c.view().vm_restore_points(None).unwrap().len())
        .await;
    assert_eq!(refs, all);
    assert!(all > POINTS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_listing_keeps_to_the_callers_scope() {
    let w = World::new(ONE_MIB).await;
    w.blocking(|c| insert_synthetic_points(c, POINTS)).await;
    let db01 = w.vm("db01").await.unwrap();
    let token =
        crate::security::scoped_operator(&w, "LAB\\db.operator", &db01.hierarchy_obj_ref()).await;
    let (streaming, _) = router_with_cache(
        Arc::clone(&**w.core),
        ApiOptions {
            stream_collections_above: Some(0),
            ..Default::default()
        },
    );
    let req = || {
        Req::get("/api/vmRestorePoints?format=Entity")
            .token(&token)
            .accept(JSON)
    };
    let streamed = w.send_via(&streaming, req()).await;
    let whole = w.send(req()).await;
    assert_eq!(streamed.status, StatusCode::OK, "{}", streamed.text());
    assert!(streamed.body == whole.body);
    let points = streamed.json()["VmRestorePoints"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!points.is_empty());
    assert!(points.iter().all(|p| p["VmName"] == "db01"), "{points:?}");
}
