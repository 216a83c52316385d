//! The lookup service (lookup_service.md, lookup_query.md, get_lookup.md): find objects of the
//! virtual infrastructure by hierarchy root, name and type, or by their HierarchyObjRef, so a
//! client can build `DatastoreRef`, `OrgVdcStorageProfileRef` and restore scopes.
//!
//! Objects come from the inventory of the registered hierarchy roots: the root itself (`Vc`,
//! `Host` or `VcdSystem`), its datastores (`Datastore`), storage profiles
//! (`OrgVdcStorageProfile`), templates (`Template`, `VappTemplate`) and VMs (`Vm`). A type the
//! platform documents but emrest's inventory has none of (`Cluster`, `Tag`, …) finds nothing.
//!
//! `name` is matched without regard to case; `*` matches any run of characters and `?` one
//! character (lookupsvc.md's links use `name=*`). No `name` means `*`; no `type` means every
//! type.

use crate::error::{CoreError, CoreResult};
use crate::model::{Caller, HierarchyRootRecord};
use crate::View;
use emrest_platform::{hierarchy_obj_ref, known_types, parse_hierarchy_obj_ref, types};
use uuid::Uuid;

/// One object found: what `<HierarchyItem>` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HierarchyItemRecord {
    /// Its HierarchyObjRef, e.g. `urn:VMware:Vm:<root>.vm-1001`.
    pub object_ref: String,
    /// Its type, e.g. `Vm`.
    pub object_type: String,
    /// Its display name.
    pub object_name: String,
}

/// A lookup as the client sent it.
#[derive(Clone, Debug, Default)]
pub struct LookupRequest<'a> {
    /// `host=`: a HierarchyRoot UID (`urn:veeam:HierarchyRoot:<uuid>`) or bare UUID.
    pub host: Option<&'a str>,
    /// `hierarchyRef=` (or veeam_em's misspelling `hierachyRef`).
    pub hierarchy_ref: Option<&'a str>,
    /// `name=`, with `*` and `?` wildcards.
    pub name: Option<&'a str>,
    /// `type=`, e.g. `Vm`.
    pub type_: Option<&'a str>,
}

/// Case-insensitive glob match with `*` and `?`.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    // Iterative wildcard matching with backtracking to the last '*'.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn parse_root_uid(s: &str) -> Option<Uuid> {
    let t = s.trim();
    let bare = match t.rsplit_once(':') {
        Some((prefix, id)) if prefix.eq_ignore_ascii_case("urn:veeam:HierarchyRoot") => id,
        Some(_) => return None,
        None => t,
    };
    Uuid::parse_str(bare).ok()
}

impl View<'_> {
    /// Every object of a registered root, the root first.
    fn root_objects(
        &self,
        caller: &Caller,
        root: &HierarchyRootRecord,
    ) -> CoreResult<Vec<HierarchyItemRecord>> {
        let kind = root.kind;
        let item = |type_: &str, object_ref: &str, name: &str| HierarchyItemRecord {
            object_ref: hierarchy_obj_ref(kind, type_, root.id, object_ref),
            object_type: type_.to_string(),
            object_name: name.to_string(),
        };
        let inv = self.inventory();
        let mut v = vec![item(kind.root_type(), &root.unique_id, &root.name)];
        v.extend(
            inv.datastores(root.id)?
                .iter()
                .map(|d| item(types::DATASTORE, &d.object_ref, &d.name)),
        );
        v.extend(
            inv.storage_profiles(root.id)?
                .iter()
                .map(|p| HierarchyItemRecord {
                    object_ref: p.hierarchy_obj_ref(),
                    object_type: types::ORG_VDC_STORAGE_PROFILE.to_string(),
                    object_name: p.name.clone(),
                }),
        );
        if let Some(t) = kind.template_type() {
            v.extend(
                inv.templates(root.id)?
                    .iter()
                    .map(|tp| item(t, &tp.object_ref, &tp.name)),
            );
        }
        v.extend(
            inv.vms()?
                .iter()
                .filter(|vm| vm.root == root.id)
                // A VM outside the caller's restore scope is not revealed (issue 4).
                .filter(|vm| crate::security::can_see_inventory_vm(caller, vm))
                .map(|vm| item(types::VM, &vm.object_ref, &vm.name)),
        );
        Ok(v)
    }

    /// Look objects up by root, name and type, or by HierarchyObjRef.
    pub fn lookup(&self, req: &LookupRequest) -> CoreResult<Vec<HierarchyItemRecord>> {
        let caller = self.caller();
        let roots = self.infrastructure().hierarchy_roots()?;
        if let Some(r) = req.hierarchy_ref.filter(|s| !s.trim().is_empty()) {
            let parsed = parse_hierarchy_obj_ref(r.trim())
                .map_err(|e| CoreError::invalid("hierarchyRef", format!("hierarchyRef: {e}")))?;
            let Some(root) = roots.iter().find(|x| x.id == parsed.root) else {
                return Ok(Vec::new());
            };
            let wanted = parsed.to_string();
            return Ok(self
                .root_objects(caller, root)?
                .into_iter()
                .filter(|o| o.object_ref.eq_ignore_ascii_case(&wanted))
                .collect());
        }
        let Some(host) = req.host.filter(|s| !s.trim().is_empty()) else {
            return Err(CoreError::invalid(
                "host",
                "A lookup needs host=<HierarchyRoot UID> (with optional name= and type=) or hierarchyRef=<HierarchyObjRef>",
            ));
        };
        let id = parse_root_uid(host).ok_or_else(|| {
            CoreError::invalid(
                "host",
                format!("'{host}' is not a hierarchy root: expected urn:veeam:HierarchyRoot:<uuid> or a UUID"),
            )
        })?;
        let root = roots
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| CoreError::not_found("Hierarchy root", id))?;
        let type_ = match req.type_.map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(
                known_types(root.kind)
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(t))
                    .ok_or_else(|| {
                        CoreError::invalid(
                            "type",
                            format!(
                                "'{t}' is not an object type of {} hierarchies; types: {}",
                                root.kind.wire_platform(),
                                known_types(root.kind).join(", ")
                            ),
                        )
                    })?,
            ),
        };
        let pattern = req
            .name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("*");
        Ok(self
            .root_objects(caller, root)?
            .into_iter()
            .filter(|o| type_.is_none_or(|t| o.object_type.eq_ignore_ascii_case(t)))
            .filter(|o| name_matches(pattern, &o.object_name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_with_wildcards_ignoring_case() {
        assert!(name_matches("*", "anything"));
        assert!(name_matches("*", ""));
        assert!(name_matches("DC", "dc"));
        assert!(!name_matches("DC", "dc01"));
        assert!(name_matches("dc*", "DC01"));
        assert!(name_matches("*01", "dc01"));
        assert!(name_matches("d?0*", "dc01"));
        assert!(name_matches("*c*1*", "dc01"));
        assert!(!name_matches("*x*", "dc01"));
        assert!(!name_matches("?", ""));
    }

    #[test]
    fn root_uids_parse_as_urn_or_uuid() {
        let id = Uuid::new_v4();
        assert_eq!(
            parse_root_uid(&format!("urn:veeam:HierarchyRoot:{id}")),
            Some(id)
        );
        assert_eq!(parse_root_uid(&id.to_string()), Some(id));
        assert_eq!(parse_root_uid(&format!("urn:veeam:Backup:{id}")), None);
    }
}
