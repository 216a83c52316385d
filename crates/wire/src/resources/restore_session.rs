//! `<RestoreSession>` (em_rest/get_restoresessions_id.md, em_rest/restoresessions_id.md).

use super::{entity_layer, resource_layer, Entity, JobSessionLayer, Link};
use crate::node::{attr, elem, Node, Representation};
use crate::time::UtcTime;

/// State of a restore session (em_rest/get_restoresessions_id.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Starting.
    Starting,
    /// Stopping.
    Stopping,
    /// Working.
    Working,
    /// Stopped (finished).
    Stopped,
}

impl SessionState {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Starting => "Starting",
            SessionState::Stopping => "Stopping",
            SessionState::Working => "Working",
            SessionState::Stopped => "Stopped",
        }
    }
}

/// Result of a restore session (em_rest/get_restoresessions_id.md); `None` while
/// it runs, as job sessions report it (JSON.md D3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionResult {
    /// Not finished yet.
    None,
    /// Succeeded.
    Success,
    /// Finished with warnings.
    Warning,
    /// Failed.
    Failed,
}

impl SessionResult {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionResult::None => "None",
            SessionResult::Success => "Success",
            SessionResult::Warning => "Warning",
            SessionResult::Failed => "Failed",
        }
    }
}

/// A restore session entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSession {
    /// URL of the entity.
    pub href: String,
    /// `<vm>@<yyyy-mm-dd hh:mm:ss>`.
    pub name: String,
    /// `urn:veeam:RestoreSession:<uuid>`.
    pub uid: String,
    /// `VmDisplayName` attribute.
    pub vm_display_name: Option<String>,
    /// Up (backup server), Alternate and Related (VM restore point) links.
    pub links: Vec<Link>,
    /// UID of the job (JobSessionEntityType; unset for restores).
    pub job_uid: Option<String>,
    /// Name of the job (JobSessionEntityType).
    pub job_name: Option<String>,
    /// `RestoreVm` or `FileLevelRestore`.
    pub job_type: String,
    /// When the session started.
    pub creation_time_utc: UtcTime,
    /// When the session ended.
    pub end_time_utc: Option<UtcTime>,
    /// State.
    pub state: SessionState,
    /// Result.
    pub result: SessionResult,
    /// Progress in percent.
    pub progress: i32,
    /// Why the session failed (JobSessionEntityType).
    pub failure_message: Option<String>,
    /// Reference to the restored object.
    pub restored_obj_ref: Option<String>,
}

impl Representation for RestoreSession {
    fn to_node(&self) -> Node<'_> {
        let RestoreSession {
            href,
            name,
            uid,
            vm_display_name,
            links,
            job_uid,
            job_name,
            job_type,
            creation_time_utc,
            end_time_utc,
            state,
            result,
            progress,
            failure_message,
            restored_obj_ref,
        } = self;
        // RestoreSessionEntityType adds `RestoredObjRef` and `@VmDisplayName` to
        // JobSessionEntityType (JSON.md B4, XSD order); unset members are absent
        // in XML, which gives exactly the elements shown on
        // em_rest/restoresessions_id.md.
        Node::new(Self::ELEMENT)
            .layer(vec![
                elem("RestoredObjRef", restored_obj_ref),
                attr("VmDisplayName", vm_display_name),
            ])
            .layer(
                JobSessionLayer {
                    job_uid: job_uid.into(),
                    job_name: job_name.into(),
                    job_type,
                    creation_time_utc: *creation_time_utc,
                    end_time_utc: *end_time_utc,
                    state: state.as_str(),
                    result: result.as_str(),
                    progress: *progress,
                    failure_message,
                }
                .members(),
            )
            .layer(entity_layer(name, uid))
            .layer(resource_layer(links, href, Self::ELEMENT))
    }
}
