//! The security API's request bodies: documented XML and veeam_em's JSON decode; anything
//! out of order, unknown, duplicated or unsafe is refused with the element named.

use emrest_wire::*;

const ROLE: &str = "urn:veeam:EnterpriseRole:f84a8b62-49b8-4d0c-b25b-92321b52bab6";
const VM_REF: &str = "urn:VMware:Vm:a2b0c55d-829a-4efe-bd95-125ee77ba9dd.vm-7870";

fn account_xml(inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><EnterpriseAccountCreateSpec xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{inner}</EnterpriseAccountCreateSpec>"#
    )
}

fn full_xml() -> String {
    account_xml(&format!(
        "<AccountType>User</AccountType><AccountName>TECH\\mary.smith</AccountName>\
         <Roles><EnterpriseRole><EnterpriseRoleUid>{ROLE}</EnterpriseRoleUid></EnterpriseRole>\
         <EnterpriseRole><EnterpriseRoleUid>urn:veeam:EnterpriseRole:c11c0c38-ba8b-49c7-bf70-fc2058fff1e2</EnterpriseRoleUid></EnterpriseRole></Roles>\
         <AllowRestoreAllVms>false</AllowRestoreAllVms>\
         <HierarchyScopeObjects><HierarchyScopeItem><HierarchyObjRef>{VM_REF}</HierarchyObjRef><ObjectName>VM01</ObjectName></HierarchyScopeItem>\
         <HierarchyScopeItem><HierarchyObjRef>urn:VMware:Datastore:a2b0c55d-829a-4efe-bd95-125ee77ba9dd.datastore-1</HierarchyObjRef></HierarchyScopeItem></HierarchyScopeObjects>\
         <FlrSettings><FlrInplaceOnly>true</FlrInplaceOnly><FlrExtentionRestrictions>doc,pptx</FlrExtentionRestrictions></FlrSettings>\
         <SqlSettings><DenyInPlaceRestore>True</DenyInPlaceRestore></SqlSettings>"
    ))
}

fn xml(body: &str) -> Result<EnterpriseAccountCreateSpec, DecodeError> {
    decode_account_create_spec(body.as_bytes(), Format::Xml, OrderPolicy::Strict)
}

#[test]
fn documented_xml_decodes_with_every_member() {
    let s = xml(&full_xml()).unwrap();
    assert_eq!(s.account_type, "User");
    assert_eq!(s.account_name, "TECH\\mary.smith");
    assert_eq!(s.role_uids.len(), 2);
    assert_eq!(s.role_uids[0], ROLE);
    assert!(!s.allow_restore_all_vms);
    assert_eq!(s.hierarchy_scope_objects.len(), 2);
    assert_eq!(
        s.hierarchy_scope_objects[0].object_name.as_deref(),
        Some("VM01")
    );
    assert_eq!(s.hierarchy_scope_objects[1].object_name, None);
    assert_eq!(
        s.flr_settings,
        Some(FlrSettingsSpec {
            flr_inplace_only: true,
            flr_extention_restrictions: Some("doc,pptx".into())
        })
    );
    // post_security_accounts.md writes `True`.
    assert_eq!(
        s.sql_settings,
        Some(SqlSettingsSpec {
            deny_in_place_restore: true
        })
    );
}

#[test]
fn veeam_em_json_decodes() {
    // JSON.md D2: the keys veeam_em sends, in its order.
    let body = format!(
        r#"{{"AllowRestoreAllVms":false,"AccountName":"TECH\\william.fox","AccountType":"User",
        "Roles":{{"EnterpriseRoles":[{{"EnterpriseRoleUid":"{ROLE}"}}]}},
        "FlrSettings":{{"FlrInplaceOnly":"true","FlrExtentionRestrictions":"doc"}},
        "SqlSettings":{{"DenyInPlaceRestore":"True"}},
        "HierarchyScopeObjects":{{"HierarchyScopeItems":[{{"HierarchyObjRef":"{VM_REF}","ObjectName":"VM01"}}]}}}}"#
    );
    let s = decode_account_create_spec(body.as_bytes(), Format::Json, OrderPolicy::Strict).unwrap();
    assert_eq!(s.account_name, "TECH\\william.fox");
    assert_eq!(s.role_uids, [ROLE]);
    assert_eq!(
        s.hierarchy_scope_objects[0].hierarchy_obj_ref.as_deref(),
        Some(VM_REF)
    );
    assert!(s.sql_settings.unwrap().deny_in_place_restore);
    // The page's own form: one "HierarchyScopeItem" object.
    let body = format!(
        r#"{{"AccountType":"User","AccountName":"A\\b","Roles":{{"EnterpriseRoles":[{{"EnterpriseRoleUid":"{ROLE}"}}]}},"AllowRestoreAllVms":false,"HierarchyScopeObjects":{{"HierarchyScopeItem":{{"HierarchyObjRef":"{VM_REF}","ObjectName":"VM01"}}}}}}"#
    );
    let s = decode_account_create_spec(body.as_bytes(), Format::Json, OrderPolicy::Strict).unwrap();
    assert_eq!(s.hierarchy_scope_objects.len(), 1);
}

#[test]
fn out_of_order_unknown_duplicate_and_missing_members_are_named() {
    let e = xml(&account_xml(&format!(
        "<AccountName>A\\b</AccountName><AccountType>User</AccountType><Roles><EnterpriseRole><EnterpriseRoleUid>{ROLE}</EnterpriseRoleUid></EnterpriseRole></Roles><AllowRestoreAllVms>true</AllowRestoreAllVms>"
    )))
    .unwrap_err();
    assert_eq!(e.element.as_deref(), Some("AccountType"));
    assert!(e.message.contains("out of order"), "{}", e.message);
    // Lenient order accepts the same body.
    let body = account_xml(&format!(
        "<AccountName>A\\b</AccountName><AccountType>User</AccountType><Roles><EnterpriseRole><EnterpriseRoleUid>{ROLE}</EnterpriseRoleUid></EnterpriseRole></Roles><AllowRestoreAllVms>true</AllowRestoreAllVms>"
    ));
    assert!(decode_account_create_spec(body.as_bytes(), Format::Xml, OrderPolicy::Lenient).is_ok());

    let e = xml(&account_xml(
        "<AccountType>User</AccountType><Password>x</Password>",
    ))
    .unwrap_err();
    assert_eq!(e.element.as_deref(), Some("Password"));
    let e = xml(&account_xml(
        "<AccountType>User</AccountType><AccountType>Group</AccountType>",
    ))
    .unwrap_err();
    assert!(e.message.contains("more than once"), "{}", e.message);
    let e = xml(&account_xml("<AccountType>User</AccountType><AccountName>A\\b</AccountName><AllowRestoreAllVms>true</AllowRestoreAllVms>")).unwrap_err();
    assert_eq!(e.element.as_deref(), Some("Roles"));
    // Repeated items must be consecutive.
    let e = xml(&account_xml(&format!(
        "<AccountType>User</AccountType><AccountName>A\\b</AccountName><Roles><EnterpriseRole><EnterpriseRoleUid>{ROLE}</EnterpriseRoleUid></EnterpriseRole></Roles><AllowRestoreAllVms>false</AllowRestoreAllVms><HierarchyScopeObjects><HierarchyScopeItem><HierarchyObjRef>{VM_REF}</HierarchyObjRef></HierarchyScopeItem><Bogus/></HierarchyScopeObjects>"
    )))
    .unwrap_err();
    assert_eq!(e.element.as_deref(), Some("Bogus"));
    let e = xml(
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><EnterpriseAccountCreateSpec/>",
    )
    .unwrap_err();
    assert!(e.message.contains("DOCTYPE"), "{}", e.message);
    let e = xml("<RestoreSpec/>").unwrap_err();
    assert!(
        e.message.contains("EnterpriseAccountCreateSpec"),
        "{}",
        e.message
    );
    let e = decode_account_create_spec(b"", Format::Json, OrderPolicy::Strict).unwrap_err();
    assert!(
        e.message.contains("EnterpriseAccountCreateSpec"),
        "{}",
        e.message
    );
}

#[test]
fn role_and_scope_specs_decode_in_both_formats() {
    let uid = decode_role_create_spec(
        format!(r#"<EnterpriseAccountInRoleCreateSpec xmlns="http://www.veeam.com/ent/v1.0"><EnterpriseRoleUid>{ROLE}</EnterpriseRoleUid></EnterpriseAccountInRoleCreateSpec>"#).as_bytes(),
        Format::Xml,
        OrderPolicy::Strict,
    )
    .unwrap();
    assert_eq!(uid, ROLE);
    let uid = decode_role_create_spec(
        format!(r#"{{"EnterpriseRoleUid":"{ROLE}"}}"#).as_bytes(),
        Format::Json,
        OrderPolicy::Strict,
    )
    .unwrap();
    assert_eq!(uid, ROLE);
    let items = decode_scope_create_spec(
        format!(r#"<HierarchyScopeCreateSpec xmlns="http://www.veeam.com/ent/v1.0"><HierarchyScopeItem><HierarchyObjRef>{VM_REF}</HierarchyObjRef><ObjectName>SQLSRV</ObjectName></HierarchyScopeItem><HierarchyScopeItem><HierarchyObjRef>{VM_REF}</HierarchyObjRef></HierarchyScopeItem></HierarchyScopeCreateSpec>"#).as_bytes(),
        Format::Xml,
        OrderPolicy::Strict,
    )
    .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].object_name.as_deref(), Some("SQLSRV"));
    let items = decode_scope_create_spec(
        format!(
            r#"{{"HierarchyScopeItems":[{{"HierarchyObjRef":"{VM_REF}","ObjectName":"VM01"}}]}}"#
        )
        .as_bytes(),
        Format::Json,
        OrderPolicy::Strict,
    )
    .unwrap();
    assert_eq!(items[0].hierarchy_obj_ref.as_deref(), Some(VM_REF));
    let e = decode_scope_create_spec(
        br#"{"HierarchyScopeItems":[{"Ref":"x"}]}"#,
        Format::Json,
        OrderPolicy::Strict,
    )
    .unwrap_err();
    assert_eq!(e.element.as_deref(), Some("Ref"));
    let e = decode_role_create_spec(b"{}", Format::Json, OrderPolicy::Strict).unwrap_err();
    assert_eq!(e.element.as_deref(), Some("EnterpriseRoleUid"));
}
