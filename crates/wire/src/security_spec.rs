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
use crate::restore_spec::{decode_body, OrderPolicy};
use crate::Format;

static HIERARCHY_SCOPE_ITEM: Group = Group {
    name: "HierarchyScopeItem",
    fields: &[
        Field::optional("HierarchyObjRef", Kind::Str),
        Field::optional("ObjectName", Kind::Str),
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
    fields: &[Field::required("EnterpriseRoleUid", Kind::Str)],
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
        Field::required("FlrInplaceOnly", Kind::LaxBool),
        Field::optional("FlrExtentionRestrictions", Kind::Str),
    ],
};

static SQL_SETTINGS: Group = Group {
    name: "SqlSettings",
    fields: &[Field::required("DenyInPlaceRestore", Kind::LaxBool)],
};

/// post_security_accounts.md, in the table's order (the XSD sequence).
static ACCOUNT_CREATE_SPEC: Group = Group {
    name: "EnterpriseAccountCreateSpec",
    fields: &[
        Field::required("AccountType", Kind::Str),
        Field::required("AccountName", Kind::Str),
        Field::required("Roles", Kind::Group(&ROLES)),
        Field::required("AllowRestoreAllVms", Kind::Bool),
        Field::optional(
            "HierarchyScopeObjects",
            Kind::Group(&HIERARCHY_SCOPE_OBJECTS),
        ),
        Field::optional("FlrSettings", Kind::Group(&FLR_SETTINGS)),
        Field::optional("SqlSettings", Kind::Group(&SQL_SETTINGS)),
    ],
};

static ROLE_CREATE_SPEC: Group = Group {
    name: "EnterpriseAccountInRoleCreateSpec",
    fields: &[Field::required("EnterpriseRoleUid", Kind::Str)],
};

static SCOPE_CREATE_SPEC: Group = Group {
    name: "HierarchyScopeCreateSpec",
    fields: &[SCOPE_ITEMS],
};

/// emrest extension (`PUT /api/emrest/accounts/{ID}/password`): the password an administrator
/// sets for an account.
static PASSWORD_SPEC: Group = Group {
    name: "AccountPasswordSpec",
    fields: &[Field::required("Password", Kind::Str)],
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
    let mut f = decode_body(body, format, order, &ACCOUNT_CREATE_SPEC, false)?;
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
    let mut f = decode_body(body, format, order, &ROLE_CREATE_SPEC, false)?;
    Ok(f.take_str("EnterpriseRoleUid").unwrap_or_default())
}

/// Decodes a `HierarchyScopeCreateSpec` into its items.
pub fn decode_scope_create_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<Vec<HierarchyScopeItem>, DecodeError> {
    let mut f = decode_body(body, format, order, &SCOPE_CREATE_SPEC, false)?;
    Ok(scope_items(f.take_list("HierarchyScopeItem")))
}

/// Decodes an `AccountPasswordSpec` (emrest extension) into the password it holds.
pub fn decode_password_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<String, DecodeError> {
    let mut f = decode_body(body, format, order, &PASSWORD_SPEC, false)?;
    Ok(f.take_str("Password").unwrap_or_default())
}
