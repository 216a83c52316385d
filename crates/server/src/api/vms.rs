//! `/emrest/vms` (emrest extension): the VMs the caller may restore, for the restore portal.

use super::Ctx;
use crate::reply::Reply;
use emrest_core::vms::RestorableVmRecord;
use emrest_core::{Caller, CoreError, PointType};
use emrest_wire as wire;
use emrest_wire::Link;

fn restorable_vm(ctx: &Ctx, v: &RestorableVmRecord) -> wire::RestorableVm {
    wire::RestorableVm {
        links: vec![Link::fixed(
            "Related",
            ctx.href(format_args!(
                "/vmRestorePoints/{}?format=Entity",
                v.last_point_id
            )),
            None,
            Some("VmRestorePoint"),
        )],
        name: v.name.clone(),
        hierarchy_obj_ref: v.hierarchy_obj_ref.clone(),
        platform: v.platform.urn_platform().to_string(),
        hierarchy_root_name: v.root_name.clone(),
        power_state: v
            .powered_on
            .map(|on| if on { "PoweredOn" } else { "PoweredOff" }.to_string()),
        restore_point_count: i64::try_from(v.points).unwrap_or(i64::MAX),
        last_restore_point_uid: wire::urn("VmRestorePoint", v.last_point_id),
        last_restore_point_time_utc: wire::UtcTime::from_unix_millis(v.last_point_created),
        last_restore_point_type: match v.last_point_type {
            PointType::Full => "Full",
            PointType::Increment => "Increment",
        }
        .to_string(),
    }
}

/// `GET /emrest/vms`: the VMs with a restore point inside the caller's restore scope.
pub(super) fn list_restorable_vms(ctx: &Ctx, caller: &Caller) -> Result<Reply, CoreError> {
    let v = ctx.core.as_caller(caller).restorable_vms()?;
    let items = v.iter().map(|r| restorable_vm(ctx, r)).collect();
    Ok(Reply::ok(ctx.format, &wire::EntityList(items)))
}
