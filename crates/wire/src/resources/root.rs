//! The API root (`GET /api`) and logon sessions (em_rest/logging_on.md,
//! em_rest/get_loginsessions_id.md, JSON.md B1/B2).

use super::{links_member, resource_layer, Link};
use crate::node::{attr, child, elem, list, ListStyle, Node, Representation, Scalar};

/// `GET /api`: the supported API versions and the logon links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseManager {
    /// One entry per API version, each with its `Create` logon link.
    pub supported_versions: Vec<SupportedVersion>,
    /// `Down` → `/logonSessions`, `Create` → `/sessionMngr/?v=latest`.
    pub links: Vec<Link>,
}

/// One `<SupportedVersion Name="v1_7">` entry of the API root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedVersion {
    /// Version name, e.g. `v1_7`.
    pub name: String,
    /// The `Create` link that opens a logon session for this version.
    pub links: Vec<Link>,
}

impl EnterpriseManager {
    /// The root document for `api_base` (e.g. `https://host:9398/api`, no trailing
    /// slash) listing `versions` (e.g. `["v1_5", "v1_6", "v1_7"]`, JSON.md B2).
    pub fn new(api_base: &str, versions: &[&str]) -> Self {
        let logon = |v: &str| {
            Link::new(
                "Create",
                format!("{api_base}/sessionMngr/?v={v}"),
                None,
                Some("LogonSession"),
            )
        };
        EnterpriseManager {
            supported_versions: versions
                .iter()
                .map(|v| SupportedVersion {
                    name: (*v).to_owned(),
                    links: vec![logon(v)],
                })
                .collect(),
            links: vec![
                Link::new(
                    "Down",
                    format!("{api_base}/logonSessions"),
                    None,
                    Some("LogonSessionList"),
                ),
                logon("latest"),
            ],
        }
    }
}

impl Representation for SupportedVersion {
    fn to_node(&self) -> Node<'_> {
        let SupportedVersion { name, links } = self;
        // JSON `Links, Name` (JSON.md A5).
        Node::new("SupportedVersion").layer(vec![links_member(links), attr("Name", name)])
    }
}

impl Representation for EnterpriseManager {
    fn to_node(&self) -> Node<'_> {
        let EnterpriseManager {
            supported_versions,
            links,
        } = self;
        // `SupportedVersions` is a ListType: `{"SupportedVersions":{"SupportedVersions":[…]}}`
        // (JSON.md A7.3); the root has no Href/Type, hence `null`s (JSON.md A2, B2).
        let versions = Node::new("SupportedVersions").layer(vec![list(
            "SupportedVersions",
            ListStyle::Inline,
            "SupportedVersion",
            Some(
                supported_versions
                    .iter()
                    .map(Representation::to_node)
                    .collect(),
            ),
        )]);
        Node::new("EnterpriseManager")
            .layer(vec![child("SupportedVersions", Some(versions))])
            .layer(resource_layer(links, Scalar::Null, Scalar::Null))
    }
}

/// A logon session (`POST /sessionMngr/`, `GET /logonSessions/{ID}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogonSession {
    /// URL of this logon session.
    pub href: String,
    /// Links to the resources available to the user, and `Delete` for logout.
    pub links: Vec<Link>,
    /// Name of the logged-on account.
    pub user_name: String,
    /// ID of the session (the token is its base64, JSON.md B1).
    pub session_id: String,
}

impl Representation for LogonSession {
    fn to_node(&self) -> Node<'_> {
        let LogonSession {
            href,
            links,
            user_name,
            session_id,
        } = self;
        // JSON `UserName, SessionId, Links, Href, Type` (JSON.md A5, B1).
        Node::new("LogonSession")
            .layer(vec![
                elem("UserName", user_name),
                elem("SessionId", session_id),
            ])
            .layer(resource_layer(links, href, "LogonSession"))
    }
}

/// emrest extension (`GET /api/emrest/logonSessions`, administrators only): a live logon session
/// of any account. It is named by a handle, a digest of its SessionId, because the SessionId
/// is its owner's token; `DELETE /api/emrest/logonSessions/{Handle}` ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedLogonSession {
    /// URL of this session under the extension.
    pub href: String,
    /// `Delete` to end it.
    pub links: Vec<Link>,
    /// Names the session: the first half of the SHA-256 of its SessionId, in hex.
    pub handle: String,
    /// Name of the account logged on.
    pub user_name: String,
    /// When the session was opened.
    pub creation_time_utc: crate::UtcTime,
    /// When the session was last used.
    pub last_activity_time_utc: crate::UtcTime,
    /// Whether it is the session of the request that listed it.
    pub current: bool,
}

impl Representation for ManagedLogonSession {
    fn to_node(&self) -> Node<'_> {
        let ManagedLogonSession {
            href,
            links,
            handle,
            user_name,
            creation_time_utc,
            last_activity_time_utc,
            current,
        } = self;
        Node::new("ManagedLogonSession")
            .layer(vec![
                elem("Handle", handle),
                elem("UserName", user_name),
                elem("CreationTimeUTC", *creation_time_utc),
                elem("LastActivityTimeUTC", *last_activity_time_utc),
                elem("Current", *current),
            ])
            .layer(resource_layer(links, href, "ManagedLogonSession"))
    }
}
