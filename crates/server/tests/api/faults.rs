//! The fault rules extension (`/api/emrest/faults`) in both flavours: the XML body is read in
//! the documented order and the rule answered as the schema says; wrong members are named.

use crate::common::*;
use crate::fidelity::validate;
use axum::http::StatusCode;
use emrest_core::Role;

const SPEC_XML: &str = r#"<FaultRuleSpec xmlns="http://www.veeam.com/ent/v1.0">
  <Operation>Request</Operation>
  <Method>GET</Method>
  <Route>/api/Tasks/{id}</Route>
  <Fire>Every</Fire>
  <Count>3</Count>
  <Effect>Status</Effect>
  <StatusCode>503</StatusCode>
</FaultRuleSpec>"#;

async fn post_rule(w: &World, content_type: &str, body: &str) -> Resp {
    w.send(
        Req::post("/api/emrest/faults")
            .content_type(content_type)
            .body(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_is_added_read_and_removed_in_xml_and_json() {
    let w = World::new(ONE_MIB).await;
    // Off until the server allows faults.
    let r = post_rule(&w, XML, SPEC_XML).await;
    assert!(r
        .xml_error(StatusCode::FORBIDDEN)
        .contains("--allow-faults"));
    w.core.faults().allow();

    let r = post_rule(&w, XML, SPEC_XML).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    validate(&r.body).unwrap_or_else(|e| panic!("{e}\n{}", r.text()));
    let rule = r.xml();
    assert_eq!(
        rule.text_of("Route"),
        "/tasks/{ID}",
        "spelled as its template"
    );
    assert_eq!(
        rule.text_of("Message"),
        "Injected fault: 503 Service Unavailable"
    );
    assert_eq!(rule.text_of("CreatedBy"), "tester");
    let id = rule.text_of("Id").to_string();

    let x = w.get_xml("/api/emrest/faults").await;
    validate(&x.body).unwrap_or_else(|e| panic!("{e}\n{}", x.text()));
    let j = w.get_json(&format!("/api/emrest/faults/{id}")).await;
    assert_eq!(j.status, StatusCode::OK);
    assert_eq!(
        j.json()["Description"],
        "Request GET /tasks/{ID}: Status 503, every 3rd time"
    );

    // Members out of order, unknown routes and members that do not apply are named.
    let swapped = SPEC_XML.replace(
        "<Fire>Every</Fire>\n  <Count>3</Count>",
        "<Count>3</Count>\n  <Fire>Every</Fire>",
    );
    let bad: [(&str, &str, &str); 5] = [
        (XML, swapped.as_str(), "Fire"),
        (
            JSON,
            r#"{"Operation":"Request","Route":"/nowhere","Effect":"Drop"}"#,
            "Route",
        ),
        (JSON, r#"{"Operation":"Restore","Effect":"Drop"}"#, "Effect"),
        (
            JSON,
            r#"{"Operation":"Logon","Effect":"Delay","DelayMs":5,"StatusCode":503}"#,
            "StatusCode",
        ),
        (
            JSON,
            r#"{"Operation":"Backup","Effect":"Fail","Fire":"Chance","Probability":"often"}"#,
            "Probability",
        ),
    ];
    for (ct, body, member) in bad {
        let r = post_rule(&w, ct, body).await;
        let message = r.error(StatusCode::BAD_REQUEST);
        assert!(message.contains(member), "{body}: {message}");
    }

    // Not for a restore operator.
    let operator = w.logon_new_account("operator", Role::RestoreOperator).await;
    let r = w
        .send(Req::get("/api/emrest/faults").token(&operator))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = w
        .send(Req::delete(&format!("/api/emrest/faults/{id}")))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = w
        .send(Req::delete(&format!("/api/emrest/faults/{id}")))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        w.get_json("/api/emrest/faults").await.json()["FaultRules"],
        serde_json::json!([])
    );
}
