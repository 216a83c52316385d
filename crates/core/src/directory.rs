//! Directory (LDAP) logon for `DOMAIN\name` and `name@domain` accounts.
//!
//! Enterprise Manager authenticates Windows and Active Directory accounts; emrest asks an LDAP
//! directory instead, with a simple bind over LDAPS or StartTLS (plain LDAP only when the
//! operator says so). The user's DN comes from a template (`uid={user},ou=people,...`) or from
//! a search (`(uid={user})` under a base, optionally bound as a service account); the user's
//! input is escaped for a DN (RFC 4514) or a filter (RFC 4515) before it is placed there.
//!
//! Who may log on: an account of the catalog named `DOMAIN\name` or `name@domain` for a
//! configured domain, or any directory user who is a member of a mapped group
//! (`--ldap-group-role`). Such a user without an account gets one on first logon, named
//! `DOMAIN\name` (the first configured domain), with no roles of its own: the roles of its
//! mapped groups are looked up at every logon and held by the session, so leaving a group
//! takes its roles away at the next logon. Explicit accounts get their groups' roles on top of
//! their own in the same way.
//!
//! Failures come in two kinds: the directory refused the credentials (a failed logon, counted
//! by the throttle like a wrong local password), or the directory could not be asked (down,
//! TLS refused, timed out, misconfigured): logged with the directory's URL and the error, and
//! not counted, so a directory outage never locks anyone out. The client sees the same 401
//! either way.

use crate::audit::{self, Action};
use crate::catalog::AccountRow;
use crate::error::{CoreError, CoreResult};
use crate::model::LogonSessionRecord;
use crate::security::{AccountRecord, AccountType, EnterpriseRole, Store};
use crate::Core;
use ldap3::{LdapConn, LdapConnSettings, LdapError, Scope, SearchEntry};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Where the directory is and how its users and groups map onto emrest.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// `ldaps://host:636` or `ldap://host:389`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// Allow `ldap://` without StartTLS (passwords in clear on the wire).
    pub insecure: bool,
    /// PEM file of the CA certificates the directory's certificate must chain to (default: the
    /// system's).
    pub ca_file: Option<PathBuf>,
    /// How a user name becomes a DN.
    pub locate: UserLocator,
    /// The domain names (`EXAMPLE`, `example.org`) the directory answers for, in
    /// `DOMAIN\name` and `name@domain`; the first names the accounts recorded on first logon.
    pub domains: Vec<String>,
    /// Groups whose members get a role.
    pub group_roles: Vec<GroupRole>,
    /// Limit for connecting (TCP and TLS) and for each directory operation.
    pub timeout: Duration,
}

/// How a user name becomes the DN to bind as.
#[derive(Clone, Debug)]
pub enum UserLocator {
    /// A DN with `{user}` in it, e.g. `uid={user},ou=people,dc=example,dc=org`.
    Template(String),
    /// A subtree search under `base` with `filter` (`{user}` in it), bound first as
    /// `bind_dn` with `bind_password` when given (anonymously otherwise).
    Search {
        base: String,
        filter: String,
        bind_dn: Option<String>,
        bind_password: Option<String>,
    },
}

/// A group whose members get a role: `--ldap-group-role 'cn=g,ou=groups,dc=x=Role'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRole {
    pub group_dn: String,
    pub role: EnterpriseRole,
}

impl GroupRole {
    /// Parse `GROUP_DN=Role` (split at the last `=`).
    pub fn parse(s: &str) -> Result<GroupRole, String> {
        let (dn, role) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("'{s}' is not GROUP_DN=Role"))?;
        let role = EnterpriseRole::parse(role.trim()).ok_or_else(|| {
            format!(
                "'{}' is not a role (one of: {})",
                role.trim(),
                EnterpriseRole::ALL.map(|r| r.key()).join(", ")
            )
        })?;
        let group_dn = dn.trim().to_string();
        if !group_dn.contains('=') {
            return Err(format!(
                "'{group_dn}' is not a group DN (like cn=g,ou=groups,dc=example,dc=org)"
            ));
        }
        Ok(GroupRole { group_dn, role })
    }
}

/// What the directory said about a logon.
#[derive(Debug)]
pub enum DirectoryError {
    /// The credentials were refused (wrong password, no such user): a failed logon.
    Refused(String),
    /// The directory could not be asked: down, TLS refused, timed out, misconfigured.
    Unavailable(String),
}

/// A user the directory authenticated, with the roles its mapped groups give.
#[derive(Debug)]
pub struct DirectoryUser {
    pub dn: String,
    pub roles: Vec<EnterpriseRole>,
}

/// A configured, checked directory.
pub struct Directory {
    config: DirectoryConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn bad(flag: &str, message: impl Into<String>) -> CoreError {
    CoreError::invalid(flag, message)
}

impl Directory {
    /// Check a configuration and load its CA file.
    pub fn new(config: DirectoryConfig) -> CoreResult<Directory> {
        let url = config.url.trim();
        let tls_url = if url.starts_with("ldaps://") {
            if config.starttls {
                return Err(bad(
                    "--ldap-starttls",
                    "--ldap-starttls upgrades an ldap:// URL; an ldaps:// URL is TLS already",
                ));
            }
            true
        } else if url.starts_with("ldap://") {
            if !config.starttls && !config.insecure {
                return Err(bad(
                    "--ldap-url",
                    format!("{url} sends passwords in clear: use ldaps://, add --ldap-starttls, or say --ldap-insecure"),
                ));
            }
            config.starttls
        } else {
            return Err(bad(
                "--ldap-url",
                format!("'{url}' is not an ldaps:// or ldap:// URL"),
            ));
        };
        let host = url.split_once("://").map_or("", |(_, rest)| rest);
        if host.is_empty() || host.starts_with('/') {
            return Err(bad("--ldap-url", format!("'{url}' names no host")));
        }
        match &config.locate {
            UserLocator::Template(t) => {
                if !t.contains("{user}") {
                    return Err(bad(
                        "--ldap-bind-template",
                        format!("'{t}' has no {{user}} in it"),
                    ));
                }
            }
            UserLocator::Search { filter, .. } => {
                if !filter.contains("{user}") {
                    return Err(bad(
                        "--ldap-user-filter",
                        format!("'{filter}' has no {{user}} in it"),
                    ));
                }
                if ldap3::parse_filter(filter.replace("{user}", "x")).is_err() {
                    return Err(bad(
                        "--ldap-user-filter",
                        format!("'{filter}' is not an LDAP filter like (uid={{user}})"),
                    ));
                }
            }
        }
        if config.domains.is_empty() {
            return Err(bad(
                "--ldap-domain",
                "name the domain the directory answers for (--ldap-domain EXAMPLE)",
            ));
        }
        for d in &config.domains {
            if d.trim().is_empty() || d.contains(['\\', '@']) || d.chars().any(char::is_control) {
                return Err(bad(
                    "--ldap-domain",
                    format!("'{d}' is not a domain name like EXAMPLE or example.org"),
                ));
            }
        }
        if config.timeout.is_zero() {
            return Err(bad("--ldap-timeout-secs", "the timeout must be above zero"));
        }
        let tls = match &config.ca_file {
            Some(path) if tls_url => Some(tls_config(path)?),
            Some(_) => {
                return Err(bad(
                    "--ldap-ca-file",
                    "a CA file needs TLS: use ldaps:// or --ldap-starttls",
                ))
            }
            None => None,
        };
        Ok(Directory { config, tls })
    }

    /// The directory's URL (for log lines).
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// The bare user name when `user` is `DOMAIN\name` or `name@domain` for a configured
    /// domain (compared without regard to case).
    pub fn claim<'a>(&self, user: &'a str) -> Option<&'a str> {
        let user = user.trim();
        let ours = |d: &str| {
            self.config
                .domains
                .iter()
                .any(|c| c.trim().eq_ignore_ascii_case(d.trim()))
        };
        let name = match user.split_once('\\') {
            Some((d, n)) if ours(d) => n,
            Some(_) => return None,
            None => match user.rsplit_once('@') {
                Some((n, d)) if ours(d) => n,
                _ => return None,
            },
        };
        let name = name.trim();
        (!name.is_empty() && !name.chars().any(char::is_control)).then_some(name)
    }

    /// The catalog names a directory user may have: `DOMAIN\name` and `name@domain` for each
    /// configured domain.
    fn account_names(&self, name: &str) -> Vec<String> {
        self.config
            .domains
            .iter()
            .flat_map(|d| [format!("{d}\\{name}"), format!("{name}@{d}")])
            .collect()
    }

    /// `DOMAIN\name` with the first configured domain: the name of an account recorded at a
    /// group member's first logon, and the name the logon throttle counts.
    pub fn canonical_name(&self, name: &str) -> String {
        let domain = self.config.domains.first().map_or("", |d| d.trim());
        format!("{domain}\\{name}")
    }

    fn connect(&self) -> Result<LdapConn, DirectoryError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_starttls(self.config.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        LdapConn::with_settings(settings, self.config.url.trim())
            .map_err(|e| DirectoryError::Unavailable(format!("cannot connect: {e}")))
    }

    /// Bind as the user `name` (bare, as [`Directory::claim`] gives it) with `password`, and
    /// look up the roles its groups give.
    pub fn authenticate(
        &self,
        name: &str,
        password: &str,
    ) -> Result<DirectoryUser, DirectoryError> {
        // RFC 4513 5.1.2: a simple bind with an empty password is an anonymous bind, which
        // succeeds: never send one for a user.
        if password.is_empty() {
            return Err(DirectoryError::Refused("empty password".into()));
        }
        let mut conn = self.connect()?;
        let r = self.authenticate_on(&mut conn, name, password);
        let _ = conn.unbind();
        r
    }

    fn authenticate_on(
        &self,
        conn: &mut LdapConn,
        name: &str,
        password: &str,
    ) -> Result<DirectoryUser, DirectoryError> {
        let t = self.config.timeout;
        let dn = match &self.config.locate {
            UserLocator::Template(template) => template.replace("{user}", &ldap3::dn_escape(name)),
            UserLocator::Search {
                base,
                filter,
                bind_dn,
                bind_password,
            } => {
                if let Some(bind_dn) = bind_dn {
                    conn.with_timeout(t)
                        .simple_bind(bind_dn, bind_password.as_deref().unwrap_or(""))
                        .and_then(|r| r.success())
                        // The service account is configuration, not the user's input.
                        .map_err(|e| {
                            DirectoryError::Unavailable(format!(
                                "service bind as {bind_dn} failed: {e}"
                            ))
                        })?;
                }
                let filter = filter.replace("{user}", &ldap3::ldap_escape(name));
                let (entries, _) = conn
                    .with_timeout(t)
                    .search(base, Scope::Subtree, &filter, vec!["1.1"])
                    .and_then(|r| r.success())
                    .map_err(|e| classify(e, &format!("search {filter} under {base}")))?;
                match entries.as_slice() {
                    [one] => SearchEntry::construct(one.clone()).dn,
                    [] => {
                        return Err(DirectoryError::Refused(format!(
                            "no entry matches {filter} under {base}"
                        )))
                    }
                    more => {
                        return Err(DirectoryError::Refused(format!(
                            "{} entries match {filter} under {base}; expected one",
                            more.len()
                        )))
                    }
                }
            }
        };
        conn.with_timeout(t)
            .simple_bind(&dn, password)
            .and_then(|r| r.success())
            .map_err(|e| classify(e, &format!("bind as {dn}")))?;
        let roles = self.group_roles(conn, &dn)?;
        Ok(DirectoryUser { dn, roles })
    }

    /// The roles of the mapped groups `dn` is a member of: by the user entry's `memberOf`
    /// (Active Directory, OpenLDAP's memberof overlay), else by the group's `member` or
    /// `uniqueMember` values.
    fn group_roles(
        &self,
        conn: &mut LdapConn,
        dn: &str,
    ) -> Result<Vec<EnterpriseRole>, DirectoryError> {
        if self.config.group_roles.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.config.timeout;
        let member_of: Vec<String> = match conn
            .with_timeout(t)
            .search(dn, Scope::Base, "(objectClass=*)", vec!["memberOf"])
            .and_then(|r| r.success())
        {
            Ok((entries, _)) => entries
                .into_iter()
                .flat_map(|e| {
                    SearchEntry::construct(e)
                        .attrs
                        .into_iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case("memberOf"))
                        .flat_map(|(_, v)| v)
                })
                .map(|v| normalize_dn(&v))
                .collect(),
            Err(e) => match classify(e, &format!("read {dn}")) {
                DirectoryError::Unavailable(m) => return Err(DirectoryError::Unavailable(m)),
                DirectoryError::Refused(_) => Vec::new(),
            },
        };
        let escaped = ldap3::ldap_escape(dn);
        let filter = format!("(|(member={escaped})(uniqueMember={escaped}))");
        let mut roles = Vec::new();
        for g in &self.config.group_roles {
            if roles.contains(&g.role) {
                continue;
            }
            let member = member_of.contains(&normalize_dn(&g.group_dn))
                || match conn
                    .with_timeout(t)
                    .search(&g.group_dn, Scope::Base, &filter, vec!["1.1"])
                    .and_then(|r| r.success())
                {
                    Ok((entries, _)) => !entries.is_empty(),
                    Err(LdapError::LdapResult { result }) => {
                        tracing::warn!(
                            "directory {}: cannot read group {} (result code {}: {}); its role is not given",
                            self.url(),
                            g.group_dn,
                            result.rc,
                            result.text
                        );
                        false
                    }
                    Err(e) => {
                        return Err(DirectoryError::Unavailable(format!(
                            "reading group {}: {e}",
                            g.group_dn
                        )))
                    }
                };
            if member {
                roles.push(g.role);
            }
        }
        roles.sort();
        Ok(roles)
    }
}

/// Result codes that mean the credentials or the name were wrong (RFC 4511 appendix A):
/// noSuchObject, invalidDNSyntax, inappropriateAuthentication, invalidCredentials.
const REFUSED_CODES: [u32; 4] = [32, 34, 48, 49];

fn classify(e: LdapError, what: &str) -> DirectoryError {
    match e {
        LdapError::LdapResult { result } if REFUSED_CODES.contains(&result.rc) => {
            DirectoryError::Refused(format!(
                "{what}: result code {}: {}",
                result.rc, result.text
            ))
        }
        other => DirectoryError::Unavailable(format!("{what}: {other}")),
    }
}

/// A DN for comparison: lower case, no spaces around `,` and `=`.
fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| {
            rdn.split('=')
                .map(|p| p.trim().to_lowercase())
                .collect::<Vec<_>>()
                .join("=")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A TLS client configuration trusting only the CA certificates of a PEM file.
fn tls_config(path: &std::path::Path) -> CoreResult<Arc<rustls::ClientConfig>> {
    let flag = "--ldap-ca-file";
    let pem = std::fs::read(path)
        .map_err(|e| bad(flag, format!("cannot read {}: {e}", path.display())))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            bad(
                flag,
                format!("{}: not PEM certificates: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(bad(
            flag,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .map_err(|e| bad(flag, format!("{}: {e}", path.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CoreError::Internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn invalid_logon() -> CoreError {
    CoreError::Unauthorized("Invalid user name or password.".into())
}

impl Core {
    /// Log `user` (a name the directory claims as `name`) on through the directory.
    pub(crate) fn directory_logon(
        &self,
        directory: &Directory,
        user: &str,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> CoreResult<LogonSessionRecord> {
        // Counted under one spelling: `DOMAIN\name` and `name@domain` share their limits.
        let attempt = self
            .sessions
            .reserve(&directory.canonical_name(name), address)?;
        let store = Store(self.catalog());
        let account = self.directory_account(directory, name)?;
        // The directory is asked whether or not an account exists, so the time an answer
        // takes does not tell which names have one.
        let found = match directory.authenticate(name, password) {
            Ok(u) => u,
            Err(DirectoryError::Refused(why)) => {
                attempt.failed();
                tracing::info!(
                    "directory {} refused the logon of {user}: {why}",
                    directory.url()
                );
                return Err(invalid_logon());
            }
            Err(DirectoryError::Unavailable(why)) => {
                // Dropped untold: a directory outage counts against no one.
                drop(attempt);
                tracing::error!(
                    "directory {} unavailable; logon of {user} refused: {why}",
                    directory.url()
                );
                return Err(invalid_logon());
            }
        };
        let own_roles = match &account {
            Some(a) => store.account(a.id)?.map(|r| r.roles).unwrap_or_default(),
            None => Vec::new(),
        };
        if own_roles.is_empty() && found.roles.is_empty() {
            attempt.failed();
            tracing::info!(
                "directory logon of {user} ({}) refused: no role of its own and no mapped group",
                found.dn
            );
            return Err(invalid_logon());
        }
        let account = match account {
            Some(a) => a,
            None => self.record_directory_account(directory, user, name, address)?,
        };
        attempt.succeeded();
        self.sessions.open(&account, found.roles)
    }

    /// The account of a directory user, under any of its spellings.
    fn directory_account(
        &self,
        directory: &Directory,
        name: &str,
    ) -> CoreResult<Option<AccountRow>> {
        for n in directory.account_names(name) {
            if let Some(a) = self.catalog().account_by_name(&n)? {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Record a directory user admitted by its groups: `DOMAIN\name`, no password, no roles of
    /// its own (its groups' roles come with each logon), every VM in its restore scope.
    fn record_directory_account(
        &self,
        directory: &Directory,
        user: &str,
        name: &str,
        address: Option<IpAddr>,
    ) -> CoreResult<AccountRow> {
        let row = AccountRow {
            id: Uuid::new_v4(),
            name: directory.canonical_name(name),
            password_hash: String::new(),
        };
        let r = (|| {
            let store = Store(self.catalog());
            store.insert_account(&row, &[])?;
            store.save_settings(&AccountRecord {
                id: row.id,
                name: row.name.clone(),
                account_type: AccountType::User,
                roles: Vec::new(),
                allow_restore_all_vms: true,
                flr: None,
                sql: None,
                has_password: false,
            })
        })();
        self.audit_result(
            audit::Actor { user, address },
            Action::AccountCreate,
            Some(&row.name),
            &r,
        );
        match r {
            Ok(()) => Ok(row),
            // Recorded meanwhile by a logon of the same user that ran at the same time.
            Err(e) => self.directory_account(directory, name)?.ok_or(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> DirectoryConfig {
        DirectoryConfig {
            url: url.into(),
            starttls: false,
            insecure: false,
            ca_file: None,
            locate: UserLocator::Template("uid={user},ou=people,dc=example,dc=org".into()),
            domains: vec!["EXAMPLE".into(), "example.org".into()],
            group_roles: Vec::new(),
            timeout: Duration::from_secs(3),
        }
    }

    #[test]
    fn plain_ldap_needs_starttls_or_an_explicit_insecure_flag() {
        let e = Directory::new(config("ldap://127.0.0.1:389"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("--ldap-insecure"), "{e}");
        assert!(Directory::new(DirectoryConfig {
            starttls: true,
            ..config("ldap://127.0.0.1:389")
        })
        .is_ok());
        assert!(Directory::new(DirectoryConfig {
            insecure: true,
            ..config("ldap://127.0.0.1:389")
        })
        .is_ok());
        assert!(Directory::new(config("ldaps://127.0.0.1:636")).is_ok());
        assert!(Directory::new(DirectoryConfig {
            starttls: true,
            ..config("ldaps://127.0.0.1:636")
        })
        .is_err());
        assert!(Directory::new(config("http://127.0.0.1")).is_err());
        assert!(Directory::new(config("ldaps://")).is_err());
    }

    #[test]
    fn templates_and_filters_need_the_user_placeholder() {
        let mut c = config("ldaps://h");
        c.locate = UserLocator::Template("uid=x,dc=org".into());
        assert!(Directory::new(c.clone()).is_err());
        c.locate = UserLocator::Search {
            base: "dc=org".into(),
            filter: "(uid={user}".into(),
            bind_dn: None,
            bind_password: None,
        };
        assert!(Directory::new(c.clone()).is_err());
        c.locate = UserLocator::Search {
            base: "dc=org".into(),
            filter: "(&(objectClass=person)(uid={user}))".into(),
            bind_dn: None,
            bind_password: None,
        };
        assert!(Directory::new(c).is_ok());
    }

    #[test]
    fn only_names_of_a_configured_domain_are_claimed() {
        let d = Directory::new(config("ldaps://h")).unwrap();
        assert_eq!(d.claim("EXAMPLE\\alice"), Some("alice"));
        assert_eq!(d.claim("example\\alice"), Some("alice"));
        assert_eq!(d.claim("alice@example.org"), Some("alice"));
        assert_eq!(d.claim("alice@EXAMPLE"), Some("alice"));
        assert_eq!(d.claim("OTHER\\alice"), None);
        assert_eq!(d.claim("alice@other.org"), None);
        assert_eq!(d.claim("admin"), None);
        assert_eq!(d.claim("EXAMPLE\\"), None);
        assert_eq!(d.claim("EXAMPLE\\a\u{0}b"), None);
        assert_eq!(d.canonical_name("alice"), "EXAMPLE\\alice");
    }

    #[test]
    fn group_role_mappings_split_at_the_last_equals_sign() {
        let g =
            GroupRole::parse("cn=restorers,ou=groups,dc=example,dc=org=VmRestoreOperator").unwrap();
        assert_eq!(g.group_dn, "cn=restorers,ou=groups,dc=example,dc=org");
        assert_eq!(g.role, EnterpriseRole::VmRestoreOperator);
        assert!(GroupRole::parse("cn=x,dc=org=Wizard").is_err());
        assert!(GroupRole::parse("restorers=PortalUser").is_err());
        assert!(GroupRole::parse("PortalUser").is_err());
    }

    #[test]
    fn user_input_is_escaped_for_dns_and_filters() {
        // RFC 4514: `,` `+` `=` `\` and the rest are escaped in an attribute value.
        assert_eq!(ldap3::dn_escape("a,ou=admins"), "a\\2cou\\3dadmins");
        // RFC 4515: `*` `(` `)` `\` NUL become \XX.
        assert_eq!(ldap3::ldap_escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
    }

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert_eq!(
            normalize_dn("CN=Restorers, OU=Groups,dc=Example"),
            "cn=restorers,ou=groups,dc=example"
        );
    }

    #[test]
    fn an_empty_password_is_refused_before_the_directory_is_asked() {
        // Port 1 on loopback: nothing listens; an empty password must not even connect.
        let d = Directory::new(config("ldaps://127.0.0.1:1")).unwrap();
        assert!(matches!(
            d.authenticate("alice", ""),
            Err(DirectoryError::Refused(_))
        ));
        assert!(matches!(
            d.authenticate("alice", "pw"),
            Err(DirectoryError::Unavailable(_))
        ));
    }
}
