//! Decoding the restore request (seed page em_rest/post_vmrestorepoints_id_actionrestore.md).

use emrest_wire::*;

const POINT_UID: &str = "urn:veeam:VmRestorePoint:9a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9";
const ROOT_UID: &str = "urn:veeam:HierarchyRoot:0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const DATASTORE: &str = "urn:vCloud:Datastore:0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0.urn:vcloud:datastore:11112222-3333-4444-8555-666677778888";
const PROFILE: &str = "urn:vCloud:OrgVdcStorageProfile:0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0.urn:vcloud:vdcstorageprofile:aaaabbbb-cccc-4ddd-8eee-ffff00001111";

const HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<RestoreSpec xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#;

fn xml_spec(inner: &str) -> String {
    format!("{HEAD}\n  <VmRestoreSpec>{inner}</VmRestoreSpec>\n</RestoreSpec>\n")
}

fn xml(body: &str) -> Result<RestoreSpec, DecodeError> {
    decode_restore_spec(body.as_bytes(), Format::Xml, OrderPolicy::Strict)
}

fn lenient(body: &str) -> Result<RestoreSpec, DecodeError> {
    decode_restore_spec(body.as_bytes(), Format::Xml, OrderPolicy::Lenient)
}

fn json(body: &str) -> Result<RestoreSpec, DecodeError> {
    decode_restore_spec(body.as_bytes(), Format::Json, OrderPolicy::Strict)
}

/// Decodes as a server started with `--lenient-restore-spec` does: members the reference marks
/// 1/1 may be left out. For the tests of syntax whose bodies carry only what they look at.
fn partial(body: &str, format: Format, order: OrderPolicy) -> Result<RestoreSpec, DecodeError> {
    let required = RequiredPolicy::Default;
    decode_restore_spec_with(
        body.as_bytes(),
        format,
        RestoreSpecPolicy { order, required },
    )
}

fn xml_partial(body: &str) -> Result<RestoreSpec, DecodeError> {
    partial(body, Format::Xml, OrderPolicy::Strict)
}

fn json_partial(body: &str) -> Result<RestoreSpec, DecodeError> {
    partial(body, Format::Json, OrderPolicy::Strict)
}

fn vm(spec: RestoreSpec) -> VmRestoreSpec {
    match spec {
        RestoreSpec::Vm(v) => v,
        other => panic!("expected VmRestoreSpec, got {other:?}"),
    }
}

fn err(r: Result<RestoreSpec, DecodeError>) -> DecodeError {
    r.expect_err("the body must be refused")
}

fn vcloud_params() -> VmRestoreParameters {
    VmRestoreParameters {
        vm_restore_point_uid: Some(POINT_UID.to_owned()),
        vm_new_name: Some("app-db-restored".to_owned()),
        datastore_ref: Some(DATASTORE.to_owned()),
        org_vdc_storage_profile_ref: Some(PROFILE.to_owned()),
        linked_clone_vm_template_ref: None,
    }
}

#[test]
fn seed_xml_keep_original_decodes() {
    let body = xml_spec(
        "\n    <PowerOnAfterRestore>false</PowerOnAfterRestore>\n    <QuickRollback>false</QuickRollback>\n    <KeepOriginalVM>true</KeepOriginalVM>\n  ",
    );
    assert_eq!(
        vm(xml(&body).unwrap()),
        VmRestoreSpec {
            power_on_after_restore: Some(false),
            quick_rollback: Some(false),
            keep_original_vm: Some(true),
            ..Default::default()
        }
    );
}

#[test]
fn seed_xml_vcloud_parameters_decode_and_empty_ref_is_absent() {
    let body = xml_spec(&format!(
        "<PowerOnAfterRestore>true</PowerOnAfterRestore><HierarchyRootUid>{ROOT_UID}</HierarchyRootUid>\
         <QuickRollback>false</QuickRollback><VmRestoreParameters>\
         <VmRestorePointUid>{POINT_UID}</VmRestorePointUid><VmNewName>app-db-restored</VmNewName>\
         <DatastoreRef>{DATASTORE}</DatastoreRef><OrgVdcStorageProfileRef>{PROFILE}</OrgVdcStorageProfileRef>\
         <LinkedCloneVmTemplateRef/></VmRestoreParameters>"
    ));
    assert_eq!(
        vm(xml(&body).unwrap()),
        VmRestoreSpec {
            power_on_after_restore: Some(true),
            hierarchy_root_uid: Some(ROOT_UID.to_owned()),
            quick_rollback: Some(false),
            keep_original_vm: None,
            vm_restore_parameters: Some(vcloud_params()),
        }
    );
}

#[test]
fn seed_json_decodes_and_empty_string_is_absent() {
    let body = format!(
        r#"{{"VmRestoreSpec":{{"PowerOnAfterRestore":true,"HierarchyRootUid":"{ROOT_UID}","QuickRollback":false,
        "VmRestoreParameters":{{"VmRestorePointUid":"{POINT_UID}","VmNewName":"app-db-restored",
        "DatastoreRef":"{DATASTORE}","OrgVdcStorageProfileRef":"{PROFILE}","LinkedCloneVmTemplateRef":""}}}}}}"#
    );
    assert_eq!(
        vm(json(&body).unwrap()),
        VmRestoreSpec {
            power_on_after_restore: Some(true),
            hierarchy_root_uid: Some(ROOT_UID.to_owned()),
            quick_rollback: Some(false),
            keep_original_vm: None,
            vm_restore_parameters: Some(vcloud_params()),
        }
    );
}

#[test]
fn json_order_is_irrelevant_and_nulls_are_absent() {
    let body = r#"{"VmRestoreSpec":{"KeepOriginalVM":true,"QuickRollback":false,"PowerOnAfterRestore":null}}"#;
    assert_eq!(
        vm(json_partial(body).unwrap()),
        VmRestoreSpec {
            quick_rollback: Some(false),
            keep_original_vm: Some(true),
            ..Default::default()
        }
    );
}

#[test]
fn vcloud_form_decodes_in_xml_and_json() {
    let body = format!(
        "{HEAD}<vCloudVmRestoreSpec><PowerOnAfterRestore>1</PowerOnAfterRestore>\
         <HierarchyRootUid>{ROOT_UID}</HierarchyRootUid><vAppRef>urn:vCloud:vApp:x.y</vAppRef>\
         <VmRestoreParameters><VmRestorePointUid>{POINT_UID}</VmRestorePointUid></VmRestoreParameters>\
         </vCloudVmRestoreSpec></RestoreSpec>"
    );
    let expected = RestoreSpec::VCloud(VCloudVmRestoreSpec {
        power_on_after_restore: Some(true),
        hierarchy_root_uid: Some(ROOT_UID.to_owned()),
        v_app_ref: Some("urn:vCloud:vApp:x.y".to_owned()),
        vm_restore_parameters: Some(VmRestoreParameters {
            vm_restore_point_uid: Some(POINT_UID.to_owned()),
            ..Default::default()
        }),
    });
    assert_eq!(xml(&body).unwrap(), expected);
    let body = format!(
        r#"{{"vCloudVmRestoreSpec":{{"vAppRef":"urn:vCloud:vApp:x.y","PowerOnAfterRestore":true,
        "HierarchyRootUid":"{ROOT_UID}","VmRestoreParameters":{{"VmRestorePointUid":"{POINT_UID}"}}}}}}"#
    );
    assert_eq!(json(&body).unwrap(), expected);
}

#[test]
fn power_on_after_is_an_alias() {
    let body = xml_spec("<PowerOnAfter>true</PowerOnAfter><QuickRollback>false</QuickRollback>");
    assert_eq!(vm(xml(&body).unwrap()).power_on_after_restore, Some(true));
    let body = r#"{"VmRestoreSpec":{"PowerOnAfter":true}}"#;
    assert_eq!(
        vm(json_partial(body).unwrap()).power_on_after_restore,
        Some(true)
    );
}

#[test]
fn alias_and_name_together_are_a_duplicate() {
    let body = xml_spec(
        "<PowerOnAfterRestore>true</PowerOnAfterRestore><PowerOnAfter>true</PowerOnAfter>",
    );
    let e = err(xml(&body));
    assert_eq!(e.element.as_deref(), Some("PowerOnAfter"));
    assert_eq!(
        e.message,
        "element <PowerOnAfter> repeats <PowerOnAfterRestore> in <VmRestoreSpec>"
    );
}

#[test]
fn out_of_order_element_is_named_with_the_expected_order() {
    let body = xml_spec(
        "<PowerOnAfterRestore>false</PowerOnAfterRestore><KeepOriginalVM>true</KeepOriginalVM><QuickRollback>false</QuickRollback>",
    );
    let e = err(xml(&body));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
    assert_eq!(
        e.to_string(),
        "element <QuickRollback> is out of order in <VmRestoreSpec>: expected order is \
         PowerOnAfterRestore, HierarchyRootUid, QuickRollback, KeepOriginalVM, VmRestoreParameters"
    );
    assert_eq!(
        vm(lenient(&body).unwrap()),
        VmRestoreSpec {
            power_on_after_restore: Some(false),
            quick_rollback: Some(false),
            keep_original_vm: Some(true),
            ..Default::default()
        }
    );
}

#[test]
fn out_of_order_inside_parameters_is_refused() {
    let body = xml_spec(&format!(
        "<VmRestoreParameters><VmNewName>n</VmNewName><VmRestorePointUid>{POINT_UID}</VmRestorePointUid></VmRestoreParameters>"
    ));
    let e = err(xml(&body));
    assert_eq!(e.element.as_deref(), Some("VmRestorePointUid"));
    assert!(
        e.message.contains("out of order in <VmRestoreParameters>"),
        "{e}"
    );
    assert!(partial(&body, Format::Xml, OrderPolicy::Lenient).is_ok());
}

#[test]
fn unknown_element_is_refused_under_both_policies() {
    let body = xml_spec("<PowerOnAfterRestore>true</PowerOnAfterRestore><PowerOff>true</PowerOff>");
    for r in [xml(&body), lenient(&body)] {
        let e = err(r);
        assert_eq!(e.element.as_deref(), Some("PowerOff"));
        assert_eq!(
            e.message,
            "unknown element <PowerOff> in <VmRestoreSpec>: expected elements are \
             PowerOnAfterRestore, HierarchyRootUid, QuickRollback, KeepOriginalVM, VmRestoreParameters"
        );
    }
}

#[test]
fn duplicate_element_is_refused_under_both_policies() {
    let body = xml_spec("<QuickRollback>true</QuickRollback><QuickRollback>false</QuickRollback>");
    for r in [xml(&body), lenient(&body)] {
        let e = err(r);
        assert_eq!(e.element.as_deref(), Some("QuickRollback"));
        assert_eq!(
            e.message,
            "element <QuickRollback> appears more than once in <VmRestoreSpec>"
        );
    }
}

#[test]
fn element_names_are_case_sensitive_in_xml() {
    let e = err(xml(&xml_spec("<quickRollback>true</quickRollback>")));
    assert_eq!(e.element.as_deref(), Some("quickRollback"));
}

#[test]
fn invalid_boolean_names_element_and_value() {
    let e = err(xml(&xml_spec("<QuickRollback>yes</QuickRollback>")));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
    assert_eq!(
        e.message,
        "element <QuickRollback> has invalid boolean value \"yes\": expected true or false"
    );
    let e = err(xml(&xml_spec("<KeepOriginalVM/>")));
    assert_eq!(e.element.as_deref(), Some("KeepOriginalVM"));
    let e = err(json(r#"{"VmRestoreSpec":{"QuickRollback":1}}"#));
    assert_eq!(
        e.message,
        "property \"QuickRollback\" has invalid boolean value 1: expected true or false"
    );
    let e = err(json(r#"{"VmRestoreSpec":{"QuickRollback":"True"}}"#));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
}

#[test]
fn xml_schema_boolean_forms_are_accepted() {
    let body = xml_spec("<PowerOnAfterRestore> 1 </PowerOnAfterRestore><QuickRollback>0</QuickRollback><KeepOriginalVM>\n true\n</KeepOriginalVM>");
    let v = vm(xml(&body).unwrap());
    assert_eq!(
        (
            v.power_on_after_restore,
            v.quick_rollback,
            v.keep_original_vm
        ),
        (Some(true), Some(false), Some(true))
    );
}

#[test]
fn missing_restore_point_uid_in_parameters_is_named() {
    let e = err(xml(&xml_spec(
        "<VmRestoreParameters><VmNewName>x</VmNewName></VmRestoreParameters>",
    )));
    assert_eq!(e.element.as_deref(), Some("VmRestorePointUid"));
    assert_eq!(
        e.message,
        "element <VmRestorePointUid> is required in <VmRestoreParameters>"
    );
    let e = err(json(
        r#"{"VmRestoreSpec":{"VmRestoreParameters":{"VmRestorePointUid":""}}}"#,
    ));
    assert_eq!(e.element.as_deref(), Some("VmRestorePointUid"));
}

#[test]
fn empty_body_gives_defaults() {
    for body in ["", "  \r\n\t ", "\u{FEFF}"] {
        for f in [Format::Xml, Format::Json] {
            assert_eq!(
                decode_restore_spec(body.as_bytes(), f, OrderPolicy::Strict).unwrap(),
                RestoreSpec::Vm(VmRestoreSpec::default())
            );
        }
    }
}

#[test]
fn empty_spec_element_gives_defaults_only_when_lenient() {
    // Enterprise Manager defaults every member; emrest names the first 1/1 one left out.
    assert_eq!(
        err(xml(&xml_spec(""))).element.as_deref(),
        Some("PowerOnAfterRestore")
    );
    assert_eq!(
        err(json(r#"{"VmRestoreSpec":{}}"#)).element.as_deref(),
        Some("PowerOnAfterRestore")
    );
    assert_eq!(
        vm(xml_partial(&xml_spec("")).unwrap()),
        VmRestoreSpec::default()
    );
    assert_eq!(
        vm(json_partial(r#"{"VmRestoreSpec":{}}"#).unwrap()),
        VmRestoreSpec::default()
    );
}

#[test]
fn a_vsphere_spec_without_quick_rollback_is_refused_naming_it() {
    let e = err(xml(&xml_spec(
        "<PowerOnAfterRestore>true</PowerOnAfterRestore>",
    )));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
    assert!(
        e.message
            .starts_with("element <QuickRollback> (the VMware and Hyper-V form;")
            && e.message.contains("is required in <VmRestoreSpec>"),
        "{e}"
    );
    assert!(e.message.contains("--lenient-restore-spec"), "{e}");
    let e = err(json(
        r#"{"VmRestoreSpec":{"PowerOnAfter":false,"KeepOriginalVM":true}}"#,
    ));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
    assert!(
        e.message
            .starts_with("property \"QuickRollback\" (the VMware")
            && e.message.contains("is required in \"VmRestoreSpec\""),
        "{e}"
    );
    // The lenient server defaults it, as Enterprise Manager does.
    let v = vm(xml_partial(&xml_spec("<PowerOnAfterRestore>true</PowerOnAfterRestore>")).unwrap());
    assert_eq!(
        (v.power_on_after_restore, v.quick_rollback),
        (Some(true), None)
    );
}

#[test]
fn a_spec_without_power_on_is_refused_naming_both_spellings() {
    let e = err(xml(&xml_spec("<QuickRollback>true</QuickRollback>")));
    assert_eq!(e.element.as_deref(), Some("PowerOnAfterRestore"));
    assert!(
        e.message.starts_with(
            "element <PowerOnAfterRestore> (or <PowerOnAfter>) is required in <VmRestoreSpec>"
        ),
        "{e}"
    );
    let e = err(json(
        r#"{"VmRestoreSpec":{"QuickRollback":true,"PowerOnAfterRestore":null}}"#,
    ));
    assert_eq!(e.element.as_deref(), Some("PowerOnAfterRestore"));
}

#[test]
fn the_vcloud_forms_need_power_on_and_the_hierarchy_root_but_not_quick_rollback() {
    let params = format!(
        "<VmRestoreParameters><VmRestorePointUid>{POINT_UID}</VmRestorePointUid></VmRestoreParameters>"
    );
    // The newer form, told by its HierarchyRootUid, needs no QuickRollback.
    let ok = xml_spec(&format!(
        "<PowerOnAfterRestore>true</PowerOnAfterRestore><HierarchyRootUid>{ROOT_UID}</HierarchyRootUid>{params}"
    ));
    assert_eq!(vm(xml(&ok).unwrap()).quick_rollback, None);
    // Without it (empty is absent) it is the VMware form, which names what it lacks and
    // what the other form carries.
    let e = err(json(&format!(
        r#"{{"VmRestoreSpec":{{"PowerOnAfterRestore":true,"HierarchyRootUid":"",
        "VmRestoreParameters":{{"VmRestorePointUid":"{POINT_UID}"}}}}}}"#
    )));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
    assert!(e.message.contains("\"HierarchyRootUid\" instead"), "{e}");
    // The older vCloudVmRestoreSpec form.
    let body = format!(
        "{HEAD}<vCloudVmRestoreSpec><PowerOnAfterRestore>1</PowerOnAfterRestore>{params}\
         </vCloudVmRestoreSpec></RestoreSpec>"
    );
    let e = err(xml(&body));
    assert_eq!(e.element.as_deref(), Some("HierarchyRootUid"));
    assert!(e.message.contains("in <vCloudVmRestoreSpec>"), "{e}");
    assert!(xml_partial(&body).is_ok());
}

#[test]
fn restore_spec_must_hold_exactly_one_form() {
    let e = err(xml(&format!("{HEAD}</RestoreSpec>")));
    assert_eq!(e.element.as_deref(), Some("RestoreSpec"));
    let e = err(xml(&format!(
        "{HEAD}<VmRestoreSpec/><vCloudVmRestoreSpec/></RestoreSpec>"
    )));
    assert_eq!(e.element.as_deref(), Some("vCloudVmRestoreSpec"));
    let e = err(json(r#"{"VmRestoreSpec":{},"vCloudVmRestoreSpec":{}}"#));
    assert_eq!(e.element.as_deref(), Some("vCloudVmRestoreSpec"));
    let e = err(json("{}"));
    assert_eq!(e.element, None);
}

#[test]
fn wrong_root_element_is_refused() {
    let e = err(xml(
        "<VmRestoreSpec><QuickRollback>true</QuickRollback></VmRestoreSpec>",
    ));
    assert_eq!(
        e.message,
        "root element must be <RestoreSpec>, found <VmRestoreSpec>"
    );
}

#[test]
fn namespace_may_be_documented_prefixed_or_absent_but_not_foreign() {
    let plain = "<RestoreSpec><VmRestoreSpec><QuickRollback>true</QuickRollback></VmRestoreSpec></RestoreSpec>";
    assert_eq!(vm(xml_partial(plain).unwrap()).quick_rollback, Some(true));
    let prefixed = r#"<v:RestoreSpec xmlns:v="http://www.veeam.com/ent/v1.0"><v:VmRestoreSpec><v:QuickRollback>true</v:QuickRollback></v:VmRestoreSpec></v:RestoreSpec>"#;
    assert_eq!(
        vm(xml_partial(prefixed).unwrap()).quick_rollback,
        Some(true)
    );
    let foreign = r#"<RestoreSpec xmlns="urn:example:other"><VmRestoreSpec/></RestoreSpec>"#;
    assert_eq!(err(xml(foreign)).element.as_deref(), Some("RestoreSpec"));
    let undeclared = "<x:RestoreSpec><VmRestoreSpec/></x:RestoreSpec>";
    assert!(xml(undeclared).is_err());
}

#[test]
fn unexpected_attributes_are_refused_but_xsi_is_ignored() {
    let e = err(xml(&xml_spec(
        r#"<QuickRollback force="1">true</QuickRollback>"#,
    )));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
    let ok = r#"<RestoreSpec xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x y"><VmRestoreSpec/></RestoreSpec>"#;
    assert!(xml_partial(ok).is_ok());
}

#[test]
fn doctype_and_entity_declarations_are_refused() {
    let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE RestoreSpec [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<RestoreSpec><VmRestoreSpec><HierarchyRootUid>&xxe;</HierarchyRootUid></VmRestoreSpec></RestoreSpec>"#;
    let e = err(xml(xxe));
    assert!(e.message.contains("DOCTYPE"), "{e}");
    let bomb = r#"<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><RestoreSpec/>"#;
    assert!(err(xml(bomb)).message.contains("DOCTYPE"));
}

#[test]
fn undeclared_entity_references_are_refused() {
    let e = err(xml(&xml_spec("<HierarchyRootUid>&xxe;</HierarchyRootUid>")));
    assert!(e.message.starts_with("malformed XML"), "{e}");
}

#[test]
fn predefined_entities_and_character_references_are_decoded() {
    let body = xml_spec(&format!(
        "<VmRestoreParameters><VmRestorePointUid>{POINT_UID}</VmRestorePointUid><VmNewName>a&amp;b&lt;&#x41;&#66;</VmNewName></VmRestoreParameters>"
    ));
    let p = vm(xml_partial(&body).unwrap())
        .vm_restore_parameters
        .unwrap();
    assert_eq!(p.vm_new_name.as_deref(), Some("a&b<AB"));
}

#[test]
fn processing_instructions_are_refused() {
    let body = format!("{HEAD}<?evil data?><VmRestoreSpec/></RestoreSpec>");
    assert!(err(xml(&body)).message.contains("processing instructions"));
}

#[test]
fn comments_and_cdata_are_tolerated() {
    let body = xml_spec("<!-- note --><QuickRollback><![CDATA[true]]></QuickRollback>");
    assert_eq!(vm(xml_partial(&body).unwrap()).quick_rollback, Some(true));
}

#[test]
fn nesting_depth_is_limited() {
    let deep = format!(
        "<RestoreSpec>{}{}</RestoreSpec>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    let e = err(xml(&deep));
    assert!(e.message.contains("nested too deeply"), "{e}");
}

#[test]
fn oversized_text_and_body_are_refused() {
    let long = "x".repeat(9000);
    let e = err(xml(&xml_spec(&format!(
        "<HierarchyRootUid>{long}</HierarchyRootUid>"
    ))));
    assert_eq!(e.element.as_deref(), Some("HierarchyRootUid"));
    let huge = format!("{HEAD}<!--{}--></RestoreSpec>", "y".repeat(70_000));
    assert!(err(xml(&huge)).message.contains("too large"));
}

#[test]
fn invalid_utf8_is_refused() {
    let mut body = xml_spec("<HierarchyRootUid>x</HierarchyRootUid>").into_bytes();
    let at = body.iter().position(|b| *b == b'x').unwrap();
    body[at] = 0xFF;
    let e = decode_restore_spec(&body, Format::Xml, OrderPolicy::Strict).unwrap_err();
    assert!(e.message.contains("UTF-8"), "{e}");
    let e = decode_restore_spec(
        b"{\"VmRestoreSpec\":{\"HierarchyRootUid\":\"\xC3\x28\"}}",
        Format::Json,
        OrderPolicy::Strict,
    )
    .unwrap_err();
    assert!(e.message.contains("UTF-8"), "{e}");
}

#[test]
fn malformed_xml_is_refused() {
    for body in [
        "<RestoreSpec><VmRestoreSpec></RestoreSpec>",
        "<RestoreSpec><VmRestoreSpec/>",
        "<RestoreSpec/><RestoreSpec/>",
        "<RestoreSpec/>trailing",
        "not xml at all",
    ] {
        assert!(xml(body).is_err(), "{body}");
    }
}

#[test]
fn text_in_container_and_children_in_leaf_are_refused() {
    let e = err(xml(&xml_spec("stray<QuickRollback>true</QuickRollback>")));
    assert_eq!(e.element.as_deref(), Some("VmRestoreSpec"));
    let e = err(xml(&xml_spec("<QuickRollback><b>true</b></QuickRollback>")));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
}

#[test]
fn json_unknown_key_is_named() {
    let e = err(json(
        r#"{"VmRestoreSpec":{"QuickRollback":true,"Turbo":true}}"#,
    ));
    assert_eq!(e.element.as_deref(), Some("Turbo"));
    assert_eq!(
        e.message,
        "unknown property \"Turbo\" in \"VmRestoreSpec\": expected properties are \
         PowerOnAfterRestore, HierarchyRootUid, QuickRollback, KeepOriginalVM, VmRestoreParameters"
    );
    let e = err(json(r#"{"RestoreSpec":{"VmRestoreSpec":{}}}"#));
    assert_eq!(e.element.as_deref(), Some("RestoreSpec"));
}

#[test]
fn json_duplicate_key_is_refused() {
    let e = err(json(
        r#"{"VmRestoreSpec":{"QuickRollback":true,"QuickRollback":false}}"#,
    ));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
    assert!(e.message.contains("more than once"), "{e}");
    let e = err(json(
        r#"{"VmRestoreSpec":{"quickrollback":true,"QuickRollback":false}}"#,
    ));
    assert_eq!(e.element.as_deref(), Some("QuickRollback"));
}

#[test]
fn json_keys_match_case_insensitively() {
    let body = r#"{"vmRestoreSpec":{"quickRollback":true,"keepOriginalVM":false}}"#;
    let v = vm(json_partial(body).unwrap());
    assert_eq!(
        (v.quick_rollback, v.keep_original_vm),
        (Some(true), Some(false))
    );
}

#[test]
fn json_wrong_types_are_refused() {
    assert_eq!(
        err(json(r#"{"VmRestoreSpec":{"HierarchyRootUid":5}}"#)).message,
        "property \"HierarchyRootUid\" must be a string, found 5"
    );
    assert!(err(json(r#"{"VmRestoreSpec":[]}"#))
        .message
        .contains("must be an object"));
    assert!(err(json("[1]")).message.contains("JSON object"));
    assert!(err(json("{\"VmRestoreSpec\":"))
        .message
        .starts_with("malformed JSON"));
}

#[test]
fn decode_error_display_is_its_message() {
    let e = err(xml(&xml_spec("<QuickRollback>maybe</QuickRollback>")));
    assert_eq!(e.to_string(), e.message);
}
