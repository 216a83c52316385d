//! Request bodies of the security API, decoded strictly like the restore request (schema
//! table, XML order enforced unless lenient, unknown and duplicate members refused, no DTD):
//! `EnterpriseAccountCreateSpec` (post_security_accounts.md),
//! `EnterpriseAccountInRoleCreateSpec` (post_security_accounts_id_roles.md) and
//! `HierarchyScopeCreateSpec` (post_security_accounts_id_scopes.md).
//!
//! Lists: in XML `<Roles><EnterpriseRole>…</EnterpriseRole>…</Roles>` and repeated
//! `<HierarchyScopeItem>`; in JSON `"Roles": {"EnterpriseRoles": [{…}]}` and
//! `"HierarchyScopeItems": [{…}]` as the veeam_em client sends them (JSON.md D2), or the
//! page's own form `"HierarchyScopeItem": {…}`.

use crate::error::DecodeError;
use crate::restore_spec::schema::{Field, Fields, Group, Kind};
use crate::restore_spec::{json, xml, OrderPolicy, MAX_BODY};
use crate::Format;

const fn field(name: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        alias: None,
        kind,
        required,
    }
}

static HIERARCHY_SCOPE_ITEM: Group = Group {
    name: "HierarchyScopeItem",
    fields: &[
        field("HierarchyObjRef", Kind::Str, false),
        field("ObjectName", Kind::Str, false),
    ],
};

/// The repeated item of a scope list, `HierarchyScopeItems` in veeam_em's JSON.
const SCOPE_ITEMS: Field = Field {
    name: "HierarchyScopeItem",
    alias: Some("HierarchyScopeItems"),
    kind: Kind::Repeated(&HIERARCHY_SCOPE_ITEM),
    required: false,
};

static HIERARCHY_SCOPE_OBJECTS: Group = Group {
    name: "HierarchyScopeObjects",
    fields: &[SCOPE_ITEMS],
};

static ENTERPRISE_ROLE: Group = Group {
    name: "EnterpriseRole",
    fields: &[field("EnterpriseRoleUid", Kind::Str, true)],
};

static ROLES: Group = Group {
    name: "Roles",
    fields: &[Field {
        name: "EnterpriseRole",
        alias: Some("EnterpriseRoles"),
        kind: Kind::Repeated(&ENTERPRISE_ROLE),
        required: false,
    }],
};

static FLR_SETTINGS: Group = Group {
    name: "FlrSettings",
    fields: &[
        field("FlrInplaceOnly", Kind::LaxBool, true),
        field("FlrExtentionRestrictions", Kind::Str, false),
    ],
};

static SQL_SETTINGS: Group = Group {
    name: "SqlSettings",
    fields: &[field("DenyInPlaceRestore", Kind::LaxBool, true)],
};

/// post_security_accounts.md, in the table's order (the XSD sequence).
static ACCOUNT_CREATE_SPEC: Group = Group {
    name: "EnterpriseAccountCreateSpec",
    fields: &[
        field("AccountType", Kind::Str, true),
        field("AccountName", Kind::Str, true),
        field("Roles", Kind::Group(&ROLES), true),
        field("AllowRestoreAllVms", Kind::Bool, true),
        field(
            "HierarchyScopeObjects",
            Kind::Group(&HIERARCHY_SCOPE_OBJECTS),
            false,
        ),
        field("FlrSettings", Kind::Group(&FLR_SETTINGS), false),
        field("SqlSettings", Kind::Group(&SQL_SETTINGS), false),
    ],
};

static ROLE_CREATE_SPEC: Group = Group {
    name: "EnterpriseAccountInRoleCreateSpec",
    fields: &[field("EnterpriseRoleUid", Kind::Str, true)],
};

static SCOPE_CREATE_SPEC: Group = Group {
    name: "HierarchyScopeCreateSpec",
    fields: &[SCOPE_ITEMS],
};

/// emrest extension (`PUT /api/emrest/accounts/{ID}/password`): the password an administrator
/// sets for an account.
static PASSWORD_SPEC: Group = Group {
    name: "AccountPasswordSpec",
    fields: &[field("Password", Kind::Str, true)],
};

/// One object of a restore scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HierarchyScopeItem {
    /// `urn:<Platform>:<Type>:<root>.<ref>`.
    pub hierarchy_obj_ref: Option<String>,
    /// Display name of the object.
    pub object_name: Option<String>,
}

/// `<FlrSettings>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlrSettingsSpec {
    /// Restore only files with the listed extensions.
    pub flr_inplace_only: bool,
    /// Comma-separated extensions, e.g. `doc,pptx`.
    pub flr_extention_restrictions: Option<String>,
}

/// `<SqlSettings>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlSettingsSpec {
    /// Forbid overwriting production databases.
    pub deny_in_place_restore: bool,
}

/// `POST /security/accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseAccountCreateSpec {
    /// `User`, `Group`, `ExternalUser` or `ExternalGroup` (checked by the caller).
    pub account_type: String,
    /// `DOMAIN\name`, `name@suffix` or free-form.
    pub account_name: String,
    /// Role UIDs (`urn:veeam:EnterpriseRole:<uuid>`).
    pub role_uids: Vec<String>,
    /// Whether the account may restore every VM.
    pub allow_restore_all_vms: bool,
    /// The restore scope when it may not.
    pub hierarchy_scope_objects: Vec<HierarchyScopeItem>,
    /// File-level restore restrictions.
    pub flr_settings: Option<FlrSettingsSpec>,
    /// SQL restore restrictions.
    pub sql_settings: Option<SqlSettingsSpec>,
}

fn text(body: &[u8]) -> Result<Option<&str>, DecodeError> {
    if body.len() > MAX_BODY {
        return Err(DecodeError::body(format!(
            "request body is too large: the limit is {MAX_BODY} bytes"
        )));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| DecodeError::body(format!("request body is not valid UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    Ok((!text.trim().is_empty()).then_some(text))
}

fn decode(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
    root: &'static Group,
) -> Result<Fields, DecodeError> {
    let Some(text) = text(body)? else {
        return Err(DecodeError::body(format!(
            "the request needs a {} body",
            root.name
        )));
    };
    match format {
        Format::Xml => xml::decode_root(text, root, order),
        Format::Json => json::decode_root(text, root),
    }
}

fn scope_items(list: Vec<Fields>) -> Vec<HierarchyScopeItem> {
    list.into_iter()
        .map(|mut f| HierarchyScopeItem {
            hierarchy_obj_ref: f.take_str("HierarchyObjRef"),
            object_name: f.take_str("ObjectName"),
        })
        .collect()
}

/// Decodes an `EnterpriseAccountCreateSpec`.
pub fn decode_account_create_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<EnterpriseAccountCreateSpec, DecodeError> {
    let mut f = decode(body, format, order, &ACCOUNT_CREATE_SPEC)?;
    let role_uids = f
        .take_group("Roles")
        .map(|mut r| {
            r.take_list("EnterpriseRole")
                .into_iter()
                .filter_map(|mut e| e.take_str("EnterpriseRoleUid"))
                .collect()
        })
        .unwrap_or_default();
    Ok(EnterpriseAccountCreateSpec {
        account_type: f.take_str("AccountType").unwrap_or_default(),
        account_name: f.take_str("AccountName").unwrap_or_default(),
        role_uids,
        allow_restore_all_vms: f.take_bool("AllowRestoreAllVms").unwrap_or(false),
        hierarchy_scope_objects: f
            .take_group("HierarchyScopeObjects")
            .map(|mut g| scope_items(g.take_list("HierarchyScopeItem")))
            .unwrap_or_default(),
        flr_settings: f.take_group("FlrSettings").map(|mut g| FlrSettingsSpec {
            flr_inplace_only: g.take_bool("FlrInplaceOnly").unwrap_or(false),
            flr_extention_restrictions: g.take_str("FlrExtentionRestrictions"),
        }),
        sql_settings: f.take_group("SqlSettings").map(|mut g| SqlSettingsSpec {
            deny_in_place_restore: g.take_bool("DenyInPlaceRestore").unwrap_or(false),
        }),
    })
}

/// Decodes an `EnterpriseAccountInRoleCreateSpec` into the role UID it names.
pub fn decode_role_create_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<String, DecodeError> {
    let mut f = decode(body, format, order, &ROLE_CREATE_SPEC)?;
    Ok(f.take_str("EnterpriseRoleUid").unwrap_or_default())
}

/// Decodes a `HierarchyScopeCreateSpec` into its items.
pub fn decode_scope_create_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<Vec<HierarchyScopeItem>, DecodeError> {
    let mut f = decode(body, format, order, &SCOPE_CREATE_SPEC)?;
    Ok(scope_items(f.take_list("HierarchyScopeItem")))
}

/// Decodes an `AccountPasswordSpec` (emrest extension) into the password it holds.
pub fn decode_password_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<String, DecodeError> {
    let mut f = decode(body, format, order, &PASSWORD_SPEC)?;
    Ok(f.take_str("Password").unwrap_or_default())
}
