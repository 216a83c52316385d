//! Which VMs a restore or a backup is working on, so that two never touch one VM at once: a
//! second restore of a VM, a backup of a VM being restored and a restore over a VM being backed
//! up are refused up front (`Conflict`, which the server answers with 400: http_response_codes.md
//! has no 409) instead of reading or writing disks another worker is changing.

use crate::error::{CoreError, CoreResult};
use emrest_platform::VmKey;
use std::collections::HashMap;
use std::sync::Mutex;

/// What holds a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Activity {
    /// A restore over the VM (or of a new VM of that name).
    Restore,
    /// A run of the named backup job.
    Backup { job: String },
}

/// The VMs in use, each with what uses it.
#[derive(Default)]
pub(crate) struct BusyVms(Mutex<HashMap<VmKey, Activity>>);

impl BusyVms {
    /// Claim every VM (key, name) for `activity`, or none of them: refused, naming the first
    /// VM in use and what uses it.
    pub(crate) fn claim(&self, vms: &[(VmKey, String)], activity: &Activity) -> CoreResult<()> {
        let mut busy = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((name, held)) = vms
            .iter()
            .find_map(|(k, name)| busy.get(k).map(|held| (name, held)))
        {
            return Err(CoreError::Conflict(conflict(name, held, activity)));
        }
        for (k, _) in vms {
            busy.insert(k.clone(), activity.clone());
        }
        Ok(())
    }

    /// Runs `record` while no VM can be claimed, and releases `keys` when it succeeds: whoever
    /// sees what it recorded (a task that reads Finished) finds the VMs free.
    pub(crate) fn release_on<'a, T, E>(
        &self,
        keys: impl IntoIterator<Item = &'a VmKey>,
        record: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let mut busy = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let recorded = record();
        if recorded.is_ok() {
            for k in keys {
                busy.remove(k);
            }
        }
        recorded
    }

    /// Release VMs claimed before.
    pub(crate) fn release<'a>(&self, keys: impl IntoIterator<Item = &'a VmKey>) {
        let mut busy = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            busy.remove(k);
        }
    }
}

fn conflict(vm: &str, held: &Activity, wanted: &Activity) -> String {
    match (held, wanted) {
        (Activity::Restore, Activity::Restore) => {
            format!("VM '{vm}' is already being restored; wait for that task to finish")
        }
        (Activity::Restore, Activity::Backup { job }) => format!(
            "VM '{vm}' is being restored; start job '{job}' again when the restore has finished"
        ),
        (Activity::Backup { job }, Activity::Restore) => format!(
            "VM '{vm}' is being backed up by job '{job}'; restore it when the job has finished, or stop the job"
        ),
        (Activity::Backup { job }, Activity::Backup { .. }) => format!(
            "VM '{vm}' is being backed up by job '{job}'; start this job again when that one has finished"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(r: &str) -> (VmKey, String) {
        (
            VmKey {
                root: uuid::Uuid::nil(),
                object_ref: r.to_string(),
            },
            format!("name-{r}"),
        )
    }

    #[test]
    fn a_claim_takes_all_or_nothing_and_names_the_vm_and_its_holder() {
        let busy = BusyVms::default();
        let job = Activity::Backup { job: "J".into() };
        busy.claim(&[vm("a")], &Activity::Restore).unwrap();
        let err = busy.claim(&[vm("b"), vm("a")], &job).unwrap_err();
        assert_eq!(
            err.to_string(),
            "VM 'name-a' is being restored; start job 'J' again when the restore has finished"
        );
        // Nothing of the refused claim was kept: b is still free.
        busy.claim(&[vm("b")], &Activity::Restore).unwrap();
        busy.release([&vm("a").0]);
        busy.claim(&[vm("a")], &job).unwrap();
        let err = busy.claim(&[vm("a")], &Activity::Restore).unwrap_err();
        assert!(
            err.to_string().contains("being backed up by job 'J'"),
            "{err}"
        );
    }
}
