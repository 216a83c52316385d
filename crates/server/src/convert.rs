//! Wire request bodies to domain requests.

use emrest_core::{RestoreParameters, RestoreRequest};
use emrest_wire as wire;

fn params(p: Option<wire::VmRestoreParameters>) -> Option<RestoreParameters> {
    p.map(|p| {
        let wire::VmRestoreParameters {
            vm_restore_point_uid,
            vm_new_name,
            datastore_ref,
            org_vdc_storage_profile_ref,
            linked_clone_vm_template_ref,
        } = p;
        RestoreParameters {
            vm_restore_point_uid,
            vm_new_name,
            datastore_ref,
            org_vdc_storage_profile_ref,
            linked_clone_vm_template_ref,
        }
    })
}

/// A decoded RestoreSpec as a domain request; unset booleans are false.
pub fn restore_request(spec: wire::RestoreSpec) -> RestoreRequest {
    match spec {
        wire::RestoreSpec::Vm(s) => {
            let wire::VmRestoreSpec {
                power_on_after_restore,
                hierarchy_root_uid,
                quick_rollback,
                keep_original_vm,
                vm_restore_parameters,
            } = s;
            RestoreRequest {
                power_on_after: power_on_after_restore.unwrap_or(false),
                quick_rollback: quick_rollback.unwrap_or(false),
                keep_original_vm: keep_original_vm.unwrap_or(false),
                hierarchy_root_uid,
                parameters: params(vm_restore_parameters),
            }
        }
        wire::RestoreSpec::VCloud(s) => {
            let wire::VCloudVmRestoreSpec {
                power_on_after_restore,
                hierarchy_root_uid,
                v_app_ref: _,
                vm_restore_parameters,
            } = s;
            RestoreRequest {
                power_on_after: power_on_after_restore.unwrap_or(false),
                quick_rollback: false,
                keep_original_vm: false,
                hierarchy_root_uid,
                parameters: params(vm_restore_parameters),
            }
        }
    }
}
