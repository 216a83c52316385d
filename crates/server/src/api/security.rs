//! `/security`: accounts, roles and restore scopes (accounts_and_roles_intro.md). Every route
//! needs the Portal Administrator role (checked once before dispatch, and again by core).

use super::restore::request_format;
use super::{collection, single, Ctx, Res};
use crate::ids::{AccountId, RoleId, ScopeId};
use crate::reply::Reply;
use axum::http::{header, StatusCode};
use emrest_core::security::{
    AccountRecord, AccountSpec, AccountType, EnterpriseRole, FlrSettings, ScopeItem, ScopeRecord,
    SqlSettings,
};
use emrest_core::{Caller, CoreError};
use emrest_wire as wire;
use emrest_wire::{EntityRef, Link};
use uuid::Uuid;

fn invalid_body(what: &str, e: wire::DecodeError) -> CoreError {
    CoreError::Invalid {
        element: e.element.clone(),
        message: format!("Invalid {what}: {e}"),
    }
}

/// A role UID from a body: `urn:veeam:EnterpriseRole:<uuid>` or the bare UUID.
fn role_uid(uid: &str) -> Result<Uuid, CoreError> {
    wire::parse_id(uid, "EnterpriseRole").ok_or_else(|| {
        CoreError::invalid(
            "EnterpriseRoleUid",
            format!(
                "EnterpriseRoleUid '{uid}' is not a role UID like urn:veeam:EnterpriseRole:<uuid>"
            ),
        )
    })
}

fn account_path(id: Uuid) -> String {
    format!("/security/accounts/{id}")
}

// ---- /security ----

/// `GET /security`.
pub(super) fn get_security(ctx: &Ctx) -> Reply {
    let down = |path: &str, t: &'static str| Link::fixed("Down", ctx.url(path), None, Some(t));
    Reply::ok(
        ctx.format,
        &wire::EnterpriseSecuritySettings {
            href: ctx.url("/security"),
            links: vec![
                down("/security/accounts", "EnterpriseAccountReferenceList"),
                down("/security/roles", "EnterpriseRoleReferenceList"),
                Link::fixed("Create", ctx.url("/security/accounts"), None, None),
            ],
        },
    )
}

// ---- accounts ----

fn account_res(a: &AccountRecord) -> Res<'_> {
    Res {
        kind: "EnterpriseAccount",
        collection: "security/accounts",
        id: a.id,
        name: &a.name,
    }
}

fn account_ref(ctx: &Ctx, a: &AccountRecord) -> EntityRef {
    account_res(a).reference(ctx, Vec::new())
}

fn account_entity(ctx: &Ctx, a: &AccountRecord) -> wire::EnterpriseAccount {
    let r = account_res(a);
    let path = account_path(a.id);
    let url = |p: &str| ctx.href(format_args!("{path}{p}"));
    let links = vec![
        r.alternate(ctx),
        Link::fixed(
            "Down",
            url("/roles"),
            None,
            Some("EnterpriseAccountInRoleList"),
        ),
        Link::fixed(
            "Create",
            url("/roles"),
            None,
            Some("EnterpriseAccountInRole"),
        ),
        Link::fixed(
            "Down",
            url("/scopes"),
            None,
            Some("EnterpriseAccountHierarchyScopeList"),
        ),
        Link::fixed(
            "Create",
            url("/scopes"),
            None,
            Some("EnterpriseAccountHierarchyScope"),
        ),
        Link::fixed("Delete", url(""), None, None),
        Link::fixed("ToggleRestoreScopesEnabled", url(""), None, None),
    ];
    wire::EnterpriseAccount {
        href: r.entity_href(ctx),
        name: a.name.clone(),
        uid: r.uid(),
        links,
        account_type: a.account_type.as_str().into(),
        allow_restore_all_vms: a.allow_restore_all_vms,
        flr_settings: a.flr.as_ref().map(|f| wire::FileRestoreSettings {
            flr_inplace_only: f.inplace_only,
            flr_extention_restrictions: f.extensions.clone(),
        }),
        sql_settings: a.sql.as_ref().map(|s| wire::SqlRestoreSettings {
            deny_in_place_restore: s.deny_in_place_restore,
        }),
    }
}

/// `GET /security/accounts`.
pub(super) fn list_accounts(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.accounts().list(caller)?;
    Ok(collection(ctx, &v, account_ref, account_entity))
}

/// `GET /security/accounts/{ID}`.
pub(super) fn get_account(ctx: &Ctx, caller: &Caller, id: AccountId) -> Result<Reply, CoreError> {
    let a = ctx.core.accounts().get(caller, id.0)?;
    Ok(single(ctx, &a, account_ref, account_entity))
}

/// post_security_accounts.md: 201 Created, no body.
pub(super) fn create_account(ctx: &Ctx, caller: &Caller, body: &[u8]) -> Result<Reply, CoreError> {
    let format = request_format(&ctx.headers, body)?;
    let spec = wire::decode_account_create_spec(body, format, ctx.order)
        .map_err(|e| invalid_body("EnterpriseAccountCreateSpec", e))?;
    let account_type = AccountType::parse(&spec.account_type).ok_or_else(|| {
        CoreError::invalid(
            "AccountType",
            format!(
                "AccountType '{}' is not one of User, Group, ExternalUser, ExternalGroup",
                spec.account_type
            ),
        )
    })?;
    let mut roles = Vec::new();
    for uid in &spec.role_uids {
        let id = role_uid(uid)?;
        roles.push(EnterpriseRole::by_id(id).ok_or_else(|| {
            CoreError::invalid(
                "EnterpriseRoleUid",
                format!(
                    "EnterpriseRoleUid '{uid}' names no role; GET /api/security/roles lists them"
                ),
            )
        })?);
    }
    let account = AccountSpec {
        name: spec.account_name,
        account_type,
        roles,
        allow_restore_all_vms: spec.allow_restore_all_vms,
        scopes: spec
            .hierarchy_scope_objects
            .into_iter()
            .map(scope_item)
            .collect(),
        flr: spec.flr_settings.map(|f| FlrSettings {
            inplace_only: f.flr_inplace_only,
            extensions: f.flr_extention_restrictions,
        }),
        sql: spec.sql_settings.map(|s| SqlSettings {
            deny_in_place_restore: s.deny_in_place_restore,
        }),
        password_hash: None,
    };
    let id = ctx.core.accounts().create(caller, &account)?;
    Ok(Reply::empty(StatusCode::CREATED, ctx.format)
        .with_header(header::LOCATION, ctx.url(&account_path(id))))
}

fn scope_item(i: wire::HierarchyScopeItem) -> ScopeItem {
    ScopeItem {
        obj_ref: i.hierarchy_obj_ref,
        name: i.object_name,
    }
}

/// JSON.md D2: veeam_em expects 204.
pub(super) fn toggle_restore_scopes(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
) -> Result<Reply, CoreError> {
    ctx.core.accounts().toggle_restore_scopes(caller, id.0)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}

/// `DELETE /security/accounts/{ID}`: 204.
pub(super) fn delete_account(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
) -> Result<Reply, CoreError> {
    ctx.core.accounts().delete(caller, id.0)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}

// ---- roles ----

fn role_res(r: &EnterpriseRole) -> Res<'static> {
    Res {
        kind: "EnterpriseRole",
        collection: "security/roles",
        id: r.id(),
        name: r.name(),
    }
}

fn role_ref(ctx: &Ctx, r: &EnterpriseRole) -> EntityRef {
    role_res(r).reference(ctx, Vec::new())
}

fn role_entity(ctx: &Ctx, r: &EnterpriseRole) -> wire::EnterpriseRole {
    let res = role_res(r);
    wire::EnterpriseRole {
        href: res.entity_href(ctx),
        name: r.name().into(),
        uid: res.uid(),
        links: vec![res.alternate(ctx)],
    }
}

/// `GET /security/roles`.
pub(super) fn list_roles(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.accounts().roles(caller)?;
    Ok(collection(ctx, &v, role_ref, role_entity))
}

/// `GET /security/roles/{ID}`.
pub(super) fn get_role(ctx: &Ctx, caller: &Caller, id: RoleId) -> Result<Reply, CoreError> {
    let r = ctx.core.accounts().role(caller, id.0)?;
    Ok(single(ctx, &r, role_ref, role_entity))
}

fn account_role_rep(ctx: &Ctx, account: Uuid, r: &EnterpriseRole) -> wire::EnterpriseAccountInRole {
    let href = ctx.href(format_args!("{}/roles/{}", account_path(account), r.id()));
    wire::EnterpriseAccountInRole {
        links: vec![
            Link::fixed("Delete", href.clone(), None, None),
            Link::fixed(
                "Related",
                ctx.href(format_args!("/security/roles/{}", r.id())),
                Some(r.name()),
                Some("EnterpriseRoleReference"),
            ),
        ],
        href,
        role_name: r.name().into(),
    }
}

/// `GET /security/accounts/{ID}/roles`.
pub(super) fn list_account_roles(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
) -> Result<Reply, CoreError> {
    let id = id.0;
    let v = ctx.core.accounts().account_roles(caller, id)?;
    let items = v.iter().map(|r| account_role_rep(ctx, id, r)).collect();
    Ok(Reply::ok(ctx.format, &wire::EntityList(items)))
}

/// `GET /security/accounts/{ID}/roles/{RoleID}`.
pub(super) fn get_account_role(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
    role: RoleId,
) -> Result<Reply, CoreError> {
    let id = id.0;
    let r = ctx.core.accounts().account_role(caller, id, role.0)?;
    Ok(Reply::ok(ctx.format, &account_role_rep(ctx, id, &r)))
}

/// post_security_accounts_id_roles.md: 201 Created, no body.
pub(super) fn add_account_role(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
    body: &[u8],
) -> Result<Reply, CoreError> {
    let id = id.0;
    let format = request_format(&ctx.headers, body)?;
    let uid = wire::decode_role_create_spec(body, format, ctx.order)
        .map_err(|e| invalid_body("EnterpriseAccountInRoleCreateSpec", e))?;
    let role = role_uid(&uid)?;
    ctx.core.accounts().add_account_role(caller, id, role)?;
    Ok(Reply::empty(StatusCode::CREATED, ctx.format))
}

/// `PUT /emrest/accounts/{ID}/password` (emrest extension): an administrator sets an account's
/// password, e.g. for an account just created with `POST /security/accounts`. 204.
pub(super) fn set_account_password(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
    body: &[u8],
) -> Result<Reply, CoreError> {
    let format = request_format(&ctx.headers, body)?;
    let password = wire::decode_password_spec(body, format, ctx.order)
        .map_err(|e| invalid_body("AccountPasswordSpec", e))?;
    ctx.core
        .accounts()
        .set_password_of(caller, id.0, &password)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}

/// `DELETE /security/accounts/{ID}/roles/{RoleID}`: 204.
pub(super) fn remove_account_role(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
    role: RoleId,
) -> Result<Reply, CoreError> {
    ctx.core
        .accounts()
        .remove_account_role(caller, id.0, role.0)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}

// ---- restore scopes ----

fn scope_rep(ctx: &Ctx, s: &ScopeRecord) -> wire::EnterpriseAccountHierarchyScope {
    let href = ctx.href(format_args!(
        "{}/scopes/{}",
        account_path(s.account_id),
        s.id
    ));
    wire::EnterpriseAccountHierarchyScope {
        links: vec![Link::fixed(
            "Delete",
            href.clone(),
            None,
            Some("EnterpriseAccountHierarchyScope"),
        )],
        href,
        name: s.name.clone(),
        hierarchy_root_name: s.root_name.clone(),
        platform: s.obj_ref.kind.wire_platform().into(),
        hierarchy_object_type: s.obj_ref.type_.clone(),
        // scenario_restore_scope.md shows `Unprocessed` while Enterprise Manager resolves the
        // object's VMs in the background; emrest resolves containment on every request.
        state: "Processed".into(),
    }
}

/// `GET /security/accounts/{ID}/scopes`.
pub(super) fn list_account_scopes(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
) -> Result<Reply, CoreError> {
    let v = ctx.core.accounts().account_scopes(caller, id.0)?;
    let items = v.iter().map(|s| scope_rep(ctx, s)).collect();
    Ok(Reply::ok(ctx.format, &wire::EntityList(items)))
}

/// `GET /security/accounts/{ID}/scopes/{ScopeID}`.
pub(super) fn get_account_scope(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
    scope: ScopeId,
) -> Result<Reply, CoreError> {
    let s = ctx.core.accounts().account_scope(caller, id.0, scope.0)?;
    Ok(Reply::ok(ctx.format, &scope_rep(ctx, &s)))
}

/// post_security_accounts_id_scopes.md: the table says 202 Accepted, the example 201
/// Created; emrest applies the scope at once and answers 201.
pub(super) fn add_account_scopes(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
    body: &[u8],
) -> Result<Reply, CoreError> {
    let id = id.0;
    let format = request_format(&ctx.headers, body)?;
    let items = wire::decode_scope_create_spec(body, format, ctx.order)
        .map_err(|e| invalid_body("HierarchyScopeCreateSpec", e))?;
    let items: Vec<ScopeItem> = items.into_iter().map(scope_item).collect();
    ctx.core.accounts().add_account_scopes(caller, id, &items)?;
    Ok(Reply::empty(StatusCode::CREATED, ctx.format))
}

/// `DELETE /security/accounts/{ID}/scopes/{ScopeID}`: 204.
pub(super) fn remove_account_scope(
    ctx: &Ctx,
    caller: &Caller,
    id: AccountId,
    scope: ScopeId,
) -> Result<Reply, CoreError> {
    ctx.core
        .accounts()
        .remove_account_scope(caller, id.0, scope.0)?;
    Ok(Reply::empty(StatusCode::NO_CONTENT, ctx.format))
}
