//! `GET /api/openapi.json` (an emrest extension, outside Enterprise Manager's routes): the
//! OpenAPI 3.1 document of the JSON flavour, kept in the repository as docs/openapi.json and
//! compiled in, so the served document is always the one in the tree. No session is needed:
//! it describes the API, it reveals nothing of the estate.

use crate::reply::{Payload, Reply};
use axum::http::StatusCode;
use emrest_wire::Format;

/// The document, as committed.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");

/// Always JSON, whatever `Accept` says: the document has no XML form.
pub(super) fn get_openapi() -> Reply {
    Reply {
        status: StatusCode::OK,
        format: Format::Json,
        body: Payload::Bytes(axum::body::Bytes::from_static(OPENAPI_JSON.as_bytes())),
        headers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::OPENAPI_JSON;
    use crate::endpoint::Endpoint;
    use std::collections::BTreeSet;

    /// The variant names of `Endpoint`, read from its source: a variant added there without a
    /// documented path fails `every_route_is_documented`.
    fn endpoint_variants() -> BTreeSet<String> {
        let src = include_str!("../endpoint.rs");
        let start = src.find("pub enum Endpoint {").expect("enum Endpoint");
        let body = &src[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
        body.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .map(|l| l.split(['(', ',']).next().unwrap().trim().to_string())
            .collect()
    }

    fn variant_name(e: &Endpoint) -> String {
        let d = format!("{e:?}");
        d.split('(').next().unwrap().to_string()
    }

    fn document() -> serde_json::Value {
        serde_json::from_str(OPENAPI_JSON).expect("docs/openapi.json is valid JSON")
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc = document();
        let v = doc["openapi"].as_str().expect("openapi version");
        assert!(v.starts_with("3.1."), "{v}");
        assert!(doc["info"]["title"].is_string());
        assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    }

    #[test]
    fn every_documented_path_is_served_and_every_route_is_documented() {
        let doc = document();
        let mut covered = BTreeSet::new();
        for path in doc["paths"].as_object().unwrap().keys() {
            let concrete = path
                .replace("{ID}", "7c8d9eaf-0b12-43d4-a5f6-6a7b8c9d0e08")
                .replace("{RoleID}", "7c8d9eaf-0b12-43d4-a5f6-6a7b8c9d0e09")
                .replace("{ScopeID}", "7c8d9eaf-0b12-43d4-a5f6-6a7b8c9d0e0a");
            let e = Endpoint::parse(&format!("/api{concrete}"))
                .unwrap_or_else(|| panic!("documented path {path} is not served"));
            covered.insert(variant_name(&e));
        }
        let variants = endpoint_variants();
        assert!(variants.len() > 40, "{variants:?}");
        let missing: Vec<&String> = variants.difference(&covered).collect();
        assert!(
            missing.is_empty(),
            "routes without a path in docs/openapi.json: {missing:?}"
        );
    }

    #[test]
    fn every_route_serves_exactly_its_documented_methods() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let concrete = path
                .replace("{ID}", "7c8d9eaf-0b12-43d4-a5f6-6a7b8c9d0e08")
                .replace("{RoleID}", "7c8d9eaf-0b12-43d4-a5f6-6a7b8c9d0e09")
                .replace("{ScopeID}", "7c8d9eaf-0b12-43d4-a5f6-6a7b8c9d0e0a");
            let e = Endpoint::parse(&format!("/api{concrete}")).expect("served");
            let served: BTreeSet<String> = e.methods().iter().map(|m| m.to_string()).collect();
            let documented: BTreeSet<String> = item
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            assert_eq!(served, documented, "{path}");
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut stack = vec![&doc];
        let mut refs = 0;
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                        let name = r
                            .strip_prefix("#/components/schemas/")
                            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
                        assert!(schemas.contains_key(name), "dangling $ref {r}");
                        refs += 1;
                    }
                    stack.extend(m.values());
                }
                serde_json::Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
        assert!(refs > 50);
    }
}
