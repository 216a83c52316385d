//! The restore request body, `POST /vmRestorePoints/{ID}?action=restore`
//! (seed page em_rest/post_vmrestorepoints_id_actionrestore.md), decoded strictly.
//!
//! Enterprise Manager silently misreads XML whose elements are out of order; emrest
//! refuses such bodies with a message naming the element and the expected order
//! (DESIGN.md "Wire format rules"), unless [`OrderPolicy::Lenient`] is chosen.
//! Unknown and duplicate members are refused under both policies.

pub(crate) mod json;
pub(crate) mod schema;
pub(crate) mod xml;

use crate::error::DecodeError;
use crate::Format;
use schema::{Fields, Group, Syntax};

/// Largest request body accepted (the documented body is well under 2 KiB).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Whether XML element order is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderPolicy {
    /// Out-of-order elements are an error naming the expected order.
    #[default]
    Strict,
    /// Any order is accepted (`--lenient-xml-order`).
    Lenient,
}

/// Whether members the reference marks 1/1 may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequiredPolicy {
    /// A body that leaves out a 1/1 member is an error naming it: Enterprise Manager silently
    /// defaults it, so a client that forgot `QuickRollback` learns only from the VM.
    #[default]
    Enforce,
    /// Left-out members take their defaults, as Enterprise Manager does
    /// (`--lenient-restore-spec`).
    Default,
}

/// How strictly a restore request is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RestoreSpecPolicy {
    /// XML element order.
    pub order: OrderPolicy,
    /// Members marked 1/1.
    pub required: RequiredPolicy,
}

/// A decoded restore request, keeping which form it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreSpec {
    /// `<RestoreSpec><VmRestoreSpec>` / `{"VmRestoreSpec":{…}}`: vSphere, Hyper-V,
    /// and the newer vCloud form with `HierarchyRootUid` and `VmRestoreParameters`.
    Vm(VmRestoreSpec),
    /// `<RestoreSpec><vCloudVmRestoreSpec>` / `{"vCloudVmRestoreSpec":{…}}`: the older
    /// VMware Cloud Director form (JSON.md C1).
    VCloud(VCloudVmRestoreSpec),
}

impl Default for RestoreSpec {
    fn default() -> Self {
        RestoreSpec::Vm(VmRestoreSpec::default())
    }
}

/// `<VmRestoreSpec>`: elements in the order PowerOnAfterRestore (alias
/// `PowerOnAfter`), HierarchyRootUid, QuickRollback, KeepOriginalVM, VmRestoreParameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmRestoreSpec {
    /// Power the VM on after the restore.
    pub power_on_after_restore: Option<bool>,
    /// vCloud: UID of the host to restore to.
    pub hierarchy_root_uid: Option<String>,
    /// Restore only changed blocks.
    pub quick_rollback: Option<bool>,
    /// Restore beside the original VM instead of over it.
    pub keep_original_vm: Option<bool>,
    /// vCloud: per-VM parameters.
    pub vm_restore_parameters: Option<VmRestoreParameters>,
}

/// `<vCloudVmRestoreSpec>`: PowerOnAfterRestore, HierarchyRootUid, vAppRef, VmRestoreParameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VCloudVmRestoreSpec {
    /// Power the VM on after the restore.
    pub power_on_after_restore: Option<bool>,
    /// UID of the host to restore to.
    pub hierarchy_root_uid: Option<String>,
    /// Reference of the vApp to restore into.
    pub v_app_ref: Option<String>,
    /// Per-VM parameters.
    pub vm_restore_parameters: Option<VmRestoreParameters>,
}

/// `<VmRestoreParameters>`: VmRestorePointUid (required), VmNewName, DatastoreRef,
/// OrgVdcStorageProfileRef, LinkedCloneVmTemplateRef. An empty value (`<X/>`, `""`)
/// is the same as an absent one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VmRestoreParameters {
    /// UID of the VM restore point to restore from.
    pub vm_restore_point_uid: Option<String>,
    /// Name of the restored VM.
    pub vm_new_name: Option<String>,
    /// Datastore reference.
    pub datastore_ref: Option<String>,
    /// OrgVdc storage profile reference.
    pub org_vdc_storage_profile_ref: Option<String>,
    /// Linked-clone template reference.
    pub linked_clone_vm_template_ref: Option<String>,
}

/// A request body's text: within [`MAX_BODY`], UTF-8, a leading byte-order mark dropped;
/// `None` when it is empty or only whitespace.
pub(crate) fn body_text(body: &[u8]) -> Result<Option<&str>, DecodeError> {
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

/// A body whose root element (or JSON object) is `root`, decoded by its schema table; an empty
/// body is refused naming `root`. With `attributes`, XML attributes are members of their element
/// (the job edit body); otherwise they are refused.
pub(crate) fn decode_body(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
    root: &'static schema::Group,
    attributes: bool,
) -> Result<schema::Fields, DecodeError> {
    let Some(text) = body_text(body)? else {
        return Err(DecodeError::body(format!(
            "the request needs a {} body",
            root.name
        )));
    };
    match format {
        Format::Xml => xml::decode_root_with(text, root, order, attributes),
        Format::Json => json::decode_root(text, root),
    }
}

/// Decodes a restore request body, refusing one that leaves out a member marked 1/1 (see
/// [`decode_restore_spec_with`]).
pub fn decode_restore_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<RestoreSpec, DecodeError> {
    let required = RequiredPolicy::Enforce;
    decode_restore_spec_with(body, format, RestoreSpecPolicy { order, required })
}

/// Decodes a restore request body.
///
/// An empty body (or only whitespace) gives the defaults: the scenario page answers
/// 202 to a body-less restore (JSON.md C1, em_rest/scenario_vm_restore.md), and Apache
/// CloudStack's Veeam provider sends none. A body that is there carries the members the seed
/// page marks 1/1 unless `policy.required` says otherwise.
pub fn decode_restore_spec_with(
    body: &[u8],
    format: Format,
    policy: RestoreSpecPolicy,
) -> Result<RestoreSpec, DecodeError> {
    let Some(text) = body_text(body)? else {
        return Ok(RestoreSpec::default());
    };
    let (group, fields) = match format {
        Format::Xml => xml::decode(text, policy.order)?,
        Format::Json => json::decode(text)?,
    };
    let spec = build(group, fields);
    if policy.required == RequiredPolicy::Enforce {
        let syntax = match format {
            Format::Xml => Syntax::Xml,
            Format::Json => Syntax::Json,
        };
        check_required(&spec, syntax)?;
    }
    Ok(spec)
}

/// The members the seed page marks 1/1 (em_rest/post_vmrestorepoints_id_actionrestore.md):
/// `PowerOnAfter(Restore)` in every form; `QuickRollback` in the VMware and Hyper-V form;
/// `HierarchyRootUid` in the VMware Cloud Director forms. A `VmRestoreSpec` is the Cloud
/// Director form when it carries a `HierarchyRootUid`: emrest also reads `VmRestoreParameters`
/// (a new name) in the VMware form, so their presence does not tell the form.
fn check_required(spec: &RestoreSpec, syntax: Syntax) -> Result<(), DecodeError> {
    let (group, members) = match spec {
        RestoreSpec::Vm(s) if s.hierarchy_root_uid.is_some() => (
            schema::VM_RESTORE_SPEC.name,
            vec![("PowerOnAfterRestore", s.power_on_after_restore.is_some())],
        ),
        RestoreSpec::Vm(s) => (
            schema::VM_RESTORE_SPEC.name,
            vec![
                ("PowerOnAfterRestore", s.power_on_after_restore.is_some()),
                ("QuickRollback", s.quick_rollback.is_some()),
            ],
        ),
        RestoreSpec::VCloud(s) => (
            schema::VCLOUD_VM_RESTORE_SPEC.name,
            vec![
                ("PowerOnAfterRestore", s.power_on_after_restore.is_some()),
                ("HierarchyRootUid", s.hierarchy_root_uid.is_some()),
            ],
        ),
    };
    match members.iter().find(|(_, present)| !present) {
        None => Ok(()),
        Some((name, _)) => {
            let spelled = match *name {
                "PowerOnAfterRestore" => {
                    format!("{} (or {})", syntax.show(name), syntax.show("PowerOnAfter"))
                }
                // The VMware form: name what would make it the Cloud Director one.
                "QuickRollback" => format!(
                    "{} (the VMware and Hyper-V form; the Cloud Director form carries {} instead)",
                    syntax.show(name),
                    syntax.show("HierarchyRootUid")
                ),
                _ => syntax.show(name),
            };
            Err(DecodeError::at(
                name,
                format!(
                    "{} {spelled} is required in {}: the reference marks it 1/1, and Enterprise \
                     Manager would silently default it (a server started with \
                     --lenient-restore-spec defaults it too)",
                    syntax.noun(),
                    syntax.show(group)
                ),
            ))
        }
    }
}

/// Turns validated fields into the typed spec.
fn build(group: &'static Group, mut f: Fields) -> RestoreSpec {
    if std::ptr::eq(group, &schema::VCLOUD_VM_RESTORE_SPEC) {
        RestoreSpec::VCloud(VCloudVmRestoreSpec {
            power_on_after_restore: f.take_bool("PowerOnAfterRestore"),
            hierarchy_root_uid: f.take_str("HierarchyRootUid"),
            v_app_ref: f.take_str("vAppRef"),
            vm_restore_parameters: f.take_group("VmRestoreParameters").map(build_parameters),
        })
    } else {
        RestoreSpec::Vm(VmRestoreSpec {
            power_on_after_restore: f.take_bool("PowerOnAfterRestore"),
            hierarchy_root_uid: f.take_str("HierarchyRootUid"),
            quick_rollback: f.take_bool("QuickRollback"),
            keep_original_vm: f.take_bool("KeepOriginalVM"),
            vm_restore_parameters: f.take_group("VmRestoreParameters").map(build_parameters),
        })
    }
}

fn build_parameters(mut f: Fields) -> VmRestoreParameters {
    VmRestoreParameters {
        vm_restore_point_uid: f.take_str("VmRestorePointUid"),
        vm_new_name: f.take_str("VmNewName"),
        datastore_ref: f.take_str("DatastoreRef"),
        org_vdc_storage_profile_ref: f.take_str("OrgVdcStorageProfileRef"),
        linked_clone_vm_template_ref: f.take_str("LinkedCloneVmTemplateRef"),
    }
}
