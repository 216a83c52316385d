//! The VMs a caller may restore (the portal's first page, `GET /api/emrest/vms`): every VM
//! with a restore point inside the caller's restore scope, where it lives and its power state
//! now (from the inventory), and its newest point. Built only from
//! [`View::vm_restore_points`](crate::View::vm_restore_points), so the scope rules are the API's own, in one place.

use crate::error::CoreResult;
use crate::model::{Millis, PointType, VmRestorePointRecord};
use crate::View;
use emrest_platform::{PlatformKind, PowerState, VmKey};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One VM the caller may restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestorableVmRecord {
    /// The VM (root and object ref).
    pub vm: VmKey,
    /// Its name in its newest restore point.
    pub name: String,
    /// Its platform.
    pub platform: PlatformKind,
    /// Its HierarchyObjRef (`urn:<Platform>:Vm:<root>.<ref>`).
    pub hierarchy_obj_ref: String,
    /// The name of its hierarchy root (vCenter, Hyper-V host, Cloud Director), while registered.
    pub root_name: Option<String>,
    /// Whether it is powered on now; `None` when the VM is no longer in the inventory.
    pub powered_on: Option<bool>,
    /// How many restore points of it the caller may see.
    pub points: usize,
    /// Its newest restore point.
    pub last_point_id: Uuid,
    pub last_point_created: Millis,
    pub last_point_type: PointType,
}

impl View<'_> {
    /// The VMs `caller` may restore, by name then hierarchy root: one per VM that has a VM
    /// restore point the caller may see.
    pub fn restorable_vms(&self) -> CoreResult<Vec<RestorableVmRecord>> {
        let newest: BTreeMap<VmKey, (usize, VmRestorePointRecord)> = if self.caller().sees_all_vms()
        {
            // Every point counts: the catalog counts them per VM on its index.
            self.catalog
                .newest_vm_points()?
                .into_iter()
                .map(|(p, n)| (p.vm.clone(), (n as usize, p)))
                .collect()
        } else {
            // Only the points in the caller's scope count: read them a batch at a time, keeping
            // the newest of each VM, not every point.
            let mut newest = BTreeMap::new();
            self.vm_restore_points_by_batch(None, &mut |batch| {
                for p in batch {
                    match newest.get_mut(&p.vm) {
                        Some((n, _)) => *n += 1,
                        // The listing is newest first: a VM's first point is its newest.
                        None => {
                            newest.insert(p.vm.clone(), (1, p));
                        }
                    }
                }
                Ok(true)
            })?;
            newest
        };
        let roots: HashMap<Uuid, String> = self
            .inventory()
            .roots()?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect();
        let power: HashMap<VmKey, PowerState> = self
            .inventory()
            .vms()?
            .into_iter()
            .map(|v| (v.key(), v.power))
            .collect();
        let mut v: Vec<RestorableVmRecord> = newest
            .into_iter()
            .map(|(key, (count, p))| RestorableVmRecord {
                name: p.vm_name.clone(),
                platform: p.platform,
                hierarchy_obj_ref: p.hierarchy_obj_ref.clone(),
                root_name: roots.get(&key.root).cloned(),
                powered_on: power.get(&key).map(|p| *p == PowerState::PoweredOn),
                points: count,
                last_point_id: p.id,
                last_point_created: p.created,
                last_point_type: p.point_type,
                vm: key,
            })
            .collect();
        v.sort_by(|a, b| {
            (a.name.to_lowercase(), &a.root_name).cmp(&(b.name.to_lowercase(), &b.root_name))
        });
        Ok(v)
    }
}
