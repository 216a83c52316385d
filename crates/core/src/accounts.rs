//! Account management (`/security/*`, `emrest user …`) and the caller-aware reads of the
//! backup catalog: what a caller sees is filtered by its restore scope here, once.
//!
//! Accounts created through the API are Windows-style names (`DOMAIN\name`, `name@suffix`)
//! without a password: the real Enterprise Manager authenticates them against Windows; emrest
//! asks the configured directory (directory.rs), and without one such an account can log on
//! only after the operator sets a password with `emrest user passwd`.

use crate::audit;
use crate::audit::{Action, Actor, LOCAL};
use crate::auth;
use crate::catalog::AccountRow;
use crate::error::{CoreError, CoreResult};
use crate::model::*;
use crate::security::{
    self, AccountRecord, AccountSpec, AccountType, EnterpriseRole, Permission, ScopeItem,
    ScopeRecord, Store,
};
use crate::Core;
use crate::Owner;
use uuid::Uuid;

/// Accounts, their roles and restore scopes, managed by an administering caller.
pub struct Accounts<'a>(pub(crate) &'a Core);

crate::service!(Accounts, Core);

impl Core {
    pub(crate) fn account_named(&self, name: &str) -> CoreResult<AccountRecord> {
        let row = self
            .catalog()
            .account_by_name(name)?
            .ok_or_else(|| CoreError::not_found("Account", name))?;
        self.account_record(row.id)
    }

    fn store(&self) -> Store<'_> {
        Store(self.catalog())
    }

    fn admin(&self, caller: &Caller) -> CoreResult<()> {
        security::authorize(caller, Permission::ManageAccounts)
    }

    // ---- accounts ----

    fn account_record(&self, id: Uuid) -> CoreResult<AccountRecord> {
        self.store()
            .account(id)?
            .ok_or_else(|| CoreError::not_found("Account", id))
    }

    /// Create an account as the local operator or on behalf of `actor` (no role check).
    pub(crate) fn create_account_as(
        &self,
        actor: Actor<'_>,
        spec: &AccountSpec,
    ) -> CoreResult<Uuid> {
        let r = self.create_account_unaudited(spec);
        self.audit_result(actor, Action::AccountCreate, Some(&spec.name), &r);
        r
    }

    fn create_account_unaudited(&self, spec: &AccountSpec) -> CoreResult<Uuid> {
        let name = spec.name.trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "AccountName",
                "AccountName must be a non-empty name without control characters",
            ));
        }
        if spec.roles.is_empty() {
            return Err(CoreError::invalid(
                "Roles",
                "Roles must name at least one role (GET /api/security/roles lists them)",
            ));
        }
        let items: Vec<ScopeItem> = spec
            .scopes
            .iter()
            .filter(|i| i.obj_ref.is_some() || i.name.is_some())
            .cloned()
            .collect();
        // post_security_accounts.md: with AllowRestoreAllVms false, the client must provide
        // the restore scope.
        if !spec.allow_restore_all_vms
            && items.is_empty()
            && !spec.roles.contains(&EnterpriseRole::PortalAdministrator)
        {
            return Err(CoreError::invalid(
                "HierarchyScopeObjects",
                "AllowRestoreAllVms is false: HierarchyScopeObjects must name at least one object of the restore scope",
            ));
        }
        let scopes = security::parse_scope_items(&items, &self.known_roots()?)?;
        if self.catalog().account_by_name(name)?.is_some() {
            return Err(CoreError::Conflict(format!(
                "account '{name}' already exists"
            )));
        }
        let id = Uuid::new_v4();
        let mut roles = spec.roles.clone();
        roles.sort();
        roles.dedup();
        let store = self.store();
        store.insert_account(
            &AccountRow {
                id,
                name: name.to_string(),
                password_hash: spec.password_hash.clone().unwrap_or_default(),
            },
            &roles,
        )?;
        let record = AccountRecord {
            id,
            name: name.to_string(),
            account_type: spec.account_type,
            roles: roles.clone(),
            allow_restore_all_vms: spec.allow_restore_all_vms,
            flr: spec.flr.clone(),
            sql: spec.sql.clone(),
            has_password: spec.password_hash.is_some(),
        };
        store.save_settings(&record)?;
        store.add_scopes(id, &scopes)?;
        Ok(id)
    }

    fn known_roots(&self) -> CoreResult<Vec<(Uuid, emrest_platform::PlatformKind)>> {
        Ok(self
            .inventory()
            .roots()?
            .into_iter()
            .map(|r| (r.id, r.kind))
            .collect())
    }

    /// Accounts holding the Portal Administrator role.
    fn administrators(&self) -> CoreResult<Vec<Uuid>> {
        Ok(self
            .store()
            .accounts()?
            .into_iter()
            .filter(|a| a.roles.contains(&EnterpriseRole::PortalAdministrator))
            .map(|a| a.id)
            .collect())
    }

    fn refuse_last_admin(&self, id: Uuid, what: &str) -> CoreResult<()> {
        if self.administrators()? == [id] {
            return Err(CoreError::Conflict(format!(
                "{what} would leave no Portal Administrator; give another account the role first"
            )));
        }
        Ok(())
    }

    fn delete_account_unaudited(&self, id: Uuid) -> CoreResult<String> {
        let a = self.account_record(id)?;
        if a.roles.contains(&EnterpriseRole::PortalAdministrator) {
            self.refuse_last_admin(id, "Deleting this account")?;
        }
        self.store().delete_account(id)?;
        self.sessions.end_all_of(id)?;
        Ok(a.name)
    }

    fn set_allow_all(&self, id: Uuid, value: Option<bool>) -> CoreResult<bool> {
        let mut a = self.account_record(id)?;
        a.allow_restore_all_vms = value.unwrap_or(!a.allow_restore_all_vms);
        self.store().save_settings(&a)?;
        Ok(a.allow_restore_all_vms)
    }

    // ---- roles ----

    fn change_roles(&self, id: Uuid, role: EnterpriseRole, add: bool) -> CoreResult<()> {
        let a = self.account_record(id)?;
        let mut roles = a.roles.clone();
        if add {
            roles.push(role);
            roles.sort();
            roles.dedup();
        } else {
            if !roles.contains(&role) {
                return Err(CoreError::not_found("Role of the account", role.id()));
            }
            roles.retain(|r| *r != role);
            if roles.is_empty() {
                return Err(CoreError::Conflict(
                    "The last role of an account cannot be removed; delete the account instead"
                        .into(),
                ));
            }
            if role == EnterpriseRole::PortalAdministrator {
                self.refuse_last_admin(id, "Removing this role")?;
            }
        }
        self.store().save_roles(id, &roles)
    }

    // ---- restore scopes ----

    fn scopes_with_roots(&self, id: Uuid) -> CoreResult<Vec<ScopeRecord>> {
        let roots = self.inventory().roots()?;
        let mut v = self.store().scopes(id)?;
        for s in &mut v {
            if let Some(r) = roots.iter().find(|r| r.id == s.obj_ref.root) {
                s.root_name = r.name.clone();
            }
        }
        Ok(v)
    }

    fn add_scopes(&self, id: Uuid, items: &[ScopeItem]) -> CoreResult<()> {
        self.account_record(id)?;
        if items.is_empty() {
            return Err(CoreError::invalid(
                "HierarchyScopeItem",
                "the request names no HierarchyScopeItem",
            ));
        }
        let parsed = security::parse_scope_items(items, &self.known_roots()?)?;
        self.store().add_scopes(id, &parsed)
    }

    fn remove_scope(&self, id: Uuid, scope: Uuid) -> CoreResult<()> {
        self.account_record(id)?;
        if self.store().delete_scope(id, scope)? {
            Ok(())
        } else {
            Err(CoreError::not_found("Restore scope", scope))
        }
    }

    // ---- the backup catalog as a caller sees it ----
}

/// post_security_accounts.md: User and Group names are `Domain\Name`, ExternalUser names
/// `Username@Suffix`, ExternalGroup names free-form.
fn check_account_name(name: &str, t: AccountType) -> CoreResult<()> {
    let ok = match t {
        AccountType::User | AccountType::Group => name
            .split_once('\\')
            .is_some_and(|(d, n)| !d.trim().is_empty() && !n.trim().is_empty()),
        AccountType::ExternalUser => name
            .split_once('@')
            .is_some_and(|(u, s)| !u.trim().is_empty() && !s.trim().is_empty()),
        AccountType::ExternalGroup => true,
    };
    if ok {
        Ok(())
    } else {
        let form = match t {
            AccountType::ExternalUser => "Username@Suffix (e.g. william.fox@tech.com)",
            _ => "Domain\\Name (e.g. TECH\\william.fox)",
        };
        Err(CoreError::invalid(
            "AccountName",
            format!(
                "AccountName '{name}' of a {} account must be in the form {form}",
                t.as_str()
            ),
        ))
    }
}

impl Accounts<'_> {
    /// emrest extension: an administrator sets the password of an account by its ID.
    pub fn set_password_of(&self, caller: &Caller, id: Uuid, password: &str) -> CoreResult<()> {
        let r = security::authorize(caller, security::Permission::ManageAccounts)
            .and_then(|_| self.get(caller, id))
            .and_then(|a| self.store_password(&a.name, password).map(|_| a.name));
        let object = match &r {
            Ok(name) => name.clone(),
            Err(_) => id.to_string(),
        };
        self.audit_result(caller.into(), audit::Action::PasswordSet, Some(&object), &r);
        r.map(|_| ())
    }
}

impl Owner {
    /// Create an account with a password and one of the CLI's roles, allowed to restore every
    /// VM (CLI and tests; the API's `POST /security/accounts` is [`Accounts::create`]).
    pub fn add_account(&self, name: &str, password: &str, role: Role) -> CoreResult<()> {
        if password.is_empty() {
            return Err(CoreError::invalid(
                "password",
                "account name and password must not be empty",
            ));
        }
        let spec = security::AccountSpec {
            name: name.to_string(),
            account_type: security::AccountType::User,
            roles: vec![security::EnterpriseRole::from_role(role)],
            allow_restore_all_vms: true,
            scopes: Vec::new(),
            flr: None,
            sql: None,
            password_hash: Some(auth::hash_password(password)?),
        };
        self.create_account_as(audit::LOCAL, &spec).map(|_| ())
    }

    /// Change an account's password (the CLI, on the data folder's owner's authority).
    pub fn set_password(&self, name: &str, password: &str) -> CoreResult<()> {
        let r = self.store_password(name, password);
        self.audit_result(audit::LOCAL, audit::Action::PasswordSet, Some(name), &r);
        r
    }
}

impl Owner {
    /// Every account, for the local CLI.
    pub fn accounts_local(&self) -> CoreResult<Vec<AccountRecord>> {
        self.store().accounts()
    }

    /// An account by name (CLI).
    pub fn account_named(&self, name: &str) -> CoreResult<AccountRecord> {
        self.0.account_named(name)
    }

    /// Create an account with a password, roles and either every VM (`scopes` empty) or the
    /// VMs of `scopes` (CLI).
    pub fn add_local_account(
        &self,
        name: &str,
        password: &str,
        roles: Vec<EnterpriseRole>,
        scopes: Vec<ScopeItem>,
    ) -> CoreResult<Uuid> {
        if password.is_empty() {
            return Err(CoreError::invalid(
                "password",
                "the password must not be empty",
            ));
        }
        let spec = AccountSpec {
            name: name.to_string(),
            account_type: AccountType::User,
            roles,
            allow_restore_all_vms: scopes.is_empty(),
            scopes,
            flr: None,
            sql: None,
            password_hash: Some(crate::auth::hash_password(password)?),
        };
        self.create_account_as(LOCAL, &spec)
    }

    /// Delete an account by name (CLI).
    pub fn delete_account_local(&self, name: &str) -> CoreResult<()> {
        let r = self
            .account_named(name)
            .and_then(|a| self.delete_account_unaudited(a.id));
        self.audit_result(LOCAL, Action::AccountDelete, Some(name), &r);
        r.map(|_| ())
    }

    /// Set whether an account may restore every VM (CLI).
    pub fn set_allow_all_local(&self, name: &str, allow: bool) -> CoreResult<()> {
        let r = self
            .account_named(name)
            .and_then(|a| self.set_allow_all(a.id, Some(allow)));
        self.audit_result(LOCAL, Action::ScopeToggle, Some(name), &r);
        r.map(|_| ())
    }

    /// Give or take a role by account name (CLI).
    pub fn change_role_local(&self, name: &str, role: EnterpriseRole, add: bool) -> CoreResult<()> {
        let r = self
            .account_named(name)
            .and_then(|a| self.change_roles(a.id, role, add));
        let action = if add {
            Action::RoleAdd
        } else {
            Action::RoleRemove
        };
        self.audit_result(LOCAL, action, Some(name), &r);
        r
    }

    /// Scopes of an account by name (CLI).
    pub fn account_scopes_local(&self, name: &str) -> CoreResult<Vec<ScopeRecord>> {
        let a = self.account_named(name)?;
        self.scopes_with_roots(a.id)
    }

    /// Add scope objects by account name (CLI).
    pub fn add_scopes_local(&self, name: &str, items: &[ScopeItem]) -> CoreResult<()> {
        let r = self
            .account_named(name)
            .and_then(|a| self.add_scopes(a.id, items));
        self.audit_result(LOCAL, Action::ScopeAdd, Some(name), &r);
        r
    }

    /// Remove a scope object by account name and scope ID (CLI).
    pub fn remove_scope_local(&self, name: &str, scope: Uuid) -> CoreResult<()> {
        let r = self
            .account_named(name)
            .and_then(|a| self.remove_scope(a.id, scope));
        self.audit_result(LOCAL, Action::ScopeRemove, Some(name), &r);
        r
    }
}

impl Accounts<'_> {
    /// Every account (administrators only).
    pub fn list(&self, caller: &Caller) -> CoreResult<Vec<AccountRecord>> {
        self.admin(caller)?;
        self.store().accounts()
    }

    /// One account (administrators only).
    pub fn get(&self, caller: &Caller, id: Uuid) -> CoreResult<AccountRecord> {
        self.admin(caller)?;
        self.account_record(id)
    }

    /// `POST /security/accounts`: create an account from the documented spec.
    pub fn create(&self, caller: &Caller, spec: &AccountSpec) -> CoreResult<Uuid> {
        let r = self.admin(caller).and_then(|_| {
            check_account_name(&spec.name, spec.account_type)?;
            self.create_account_unaudited(spec)
        });
        self.audit_result(caller.into(), Action::AccountCreate, Some(&spec.name), &r);
        r
    }

    /// `DELETE /security/accounts/{ID}`; its logon sessions end at once.
    pub fn delete(&self, caller: &Caller, id: Uuid) -> CoreResult<()> {
        let r = self
            .admin(caller)
            .and_then(|_| self.delete_account_unaudited(id));
        self.audit_result(
            caller.into(),
            Action::AccountDelete,
            Some(&id.to_string()),
            &r,
        );
        r.map(|_| ())
    }

    /// `POST /security/accounts/{ID}` (the ToggleRestoreScopesEnabled link): switch between
    /// "restore every VM" and "restore the VMs of the scope".
    pub fn toggle_restore_scopes(&self, caller: &Caller, id: Uuid) -> CoreResult<bool> {
        let r = self
            .admin(caller)
            .and_then(|_| self.set_allow_all(id, None));
        self.audit_result(
            caller.into(),
            Action::ScopeToggle,
            Some(&id.to_string()),
            &r,
        );
        r
    }

    /// `GET /security/roles`: every role (administrators only).
    pub fn roles(&self, caller: &Caller) -> CoreResult<Vec<EnterpriseRole>> {
        self.admin(caller)?;
        Ok(EnterpriseRole::ALL.to_vec())
    }

    /// One role.
    pub fn role(&self, caller: &Caller, id: Uuid) -> CoreResult<EnterpriseRole> {
        self.admin(caller)?;
        EnterpriseRole::by_id(id).ok_or_else(|| CoreError::not_found("Role", id))
    }

    /// `GET /security/accounts/{ID}/roles`.
    pub fn account_roles(&self, caller: &Caller, id: Uuid) -> CoreResult<Vec<EnterpriseRole>> {
        Ok(self.get(caller, id)?.roles)
    }

    /// One role of an account (404 when the account does not hold it).
    pub fn account_role(
        &self,
        caller: &Caller,
        id: Uuid,
        role: Uuid,
    ) -> CoreResult<EnterpriseRole> {
        self.account_roles(caller, id)?
            .into_iter()
            .find(|r| r.id() == role)
            .ok_or_else(|| CoreError::not_found("Role of the account", role))
    }

    /// `POST /security/accounts/{ID}/roles`; holding it already is not an error.
    pub fn add_account_role(&self, caller: &Caller, id: Uuid, role: Uuid) -> CoreResult<()> {
        let r = self.admin(caller).and_then(|_| {
            let role = EnterpriseRole::by_id(role).ok_or_else(|| {
                CoreError::invalid(
                    "EnterpriseRoleUid",
                    format!("EnterpriseRoleUid {role} names no role; GET /api/security/roles lists them"),
                )
            })?;
            self.change_roles(id, role, true)
        });
        self.audit_result(caller.into(), Action::RoleAdd, Some(&id.to_string()), &r);
        r
    }

    /// `DELETE /security/accounts/{ID}/roles/{ID}`; the last role cannot be removed
    /// (delete_security_accounts_id_roles_id.md).
    pub fn remove_account_role(&self, caller: &Caller, id: Uuid, role: Uuid) -> CoreResult<()> {
        let r = self.admin(caller).and_then(|_| {
            let role =
                EnterpriseRole::by_id(role).ok_or_else(|| CoreError::not_found("Role", role))?;
            self.change_roles(id, role, false)
        });
        self.audit_result(caller.into(), Action::RoleRemove, Some(&id.to_string()), &r);
        r
    }

    /// `GET /security/accounts/{ID}/scopes`.
    pub fn account_scopes(&self, caller: &Caller, id: Uuid) -> CoreResult<Vec<ScopeRecord>> {
        self.get(caller, id)?;
        self.scopes_with_roots(id)
    }

    /// One scope object of an account.
    pub fn account_scope(&self, caller: &Caller, id: Uuid, scope: Uuid) -> CoreResult<ScopeRecord> {
        self.account_scopes(caller, id)?
            .into_iter()
            .find(|s| s.id == scope)
            .ok_or_else(|| CoreError::not_found("Restore scope", scope))
    }

    /// `POST /security/accounts/{ID}/scopes`.
    pub fn add_account_scopes(
        &self,
        caller: &Caller,
        id: Uuid,
        items: &[ScopeItem],
    ) -> CoreResult<()> {
        let r = self.admin(caller).and_then(|_| self.add_scopes(id, items));
        self.audit_result(caller.into(), Action::ScopeAdd, Some(&id.to_string()), &r);
        r
    }

    /// `DELETE /security/accounts/{ID}/scopes/{ID}`.
    pub fn remove_account_scope(&self, caller: &Caller, id: Uuid, scope: Uuid) -> CoreResult<()> {
        let r = self
            .admin(caller)
            .and_then(|_| self.remove_scope(id, scope));
        self.audit_result(
            caller.into(),
            Action::ScopeRemove,
            Some(&id.to_string()),
            &r,
        );
        r
    }
}
