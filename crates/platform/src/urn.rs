//! HierarchyObjRef URNs: `urn:<Platform>:<Type>:<HierarchyRootId>.<ObjectRef>`
//! (em_rest/constructing_hierarchyobjreftype.md).
//!
//! The object ref is everything after the first `.` that follows the root id, so it may
//! itself contain `:` and `.` (Cloud Director refs are URNs: `urn:vcloud:vm:<uuid>`).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::PlatformError;
use crate::model::PlatformKind;

/// Canonical spellings of the URN `<Type>` segments emrest produces.
pub mod types {
    /// A virtual machine (all platforms).
    pub const VM: &str = "Vm";
    /// A datastore (VMware, vCloud) or volume (Hyper-V).
    pub const DATASTORE: &str = "Datastore";
    /// A vCenter root.
    pub const VC: &str = "Vc";
    /// A Hyper-V host root.
    pub const HOST: &str = "Host";
    /// A VMware VM template.
    pub const TEMPLATE: &str = "Template";
    /// A Cloud Director root.
    pub const VCD_SYSTEM: &str = "VcdSystem";
    /// A Cloud Director org VDC storage profile.
    pub const ORG_VDC_STORAGE_PROFILE: &str = "OrgVdcStorageProfile";
    /// A Cloud Director vApp template.
    pub const VAPP_TEMPLATE: &str = "VappTemplate";
}

/// Types documented for VMware (the page writes `VM`; real refs use `Vm`).
const VMWARE_TYPES: &[&str] = &[
    "Vm",
    "Host",
    "Cluster",
    "Template",
    "VirtualApp",
    "Vc",
    "Datacenter",
    "Folder",
    "Datastore",
    "ComputeResource",
    "ResourcePool",
    "Tag",
    "Category",
    "StoragePod",
];
/// Types documented for Cloud Director, plus the datastore and storage profile refs
/// that appear in em_rest restore specs.
const VCLOUD_TYPES: &[&str] = &[
    "VcdSystem",
    "Organization",
    "OrgVdc",
    "Vapp",
    "Vm",
    "VappTemplate",
    "VmTemplate",
    "Datastore",
    "OrgVdcStorageProfile",
];
/// Types documented for Hyper-V, plus `Datastore` for volumes.
const HYPERV_TYPES: &[&str] = &[
    "Vm",
    "Host",
    "Cluster",
    "Scvmm",
    "HostGroup",
    "VmGroup",
    "Datastore",
];

/// The object types a HierarchyObjRef (and a lookup) may name on a platform
/// (em_rest/lookup_query.md), in canonical spelling.
pub fn known_types(kind: PlatformKind) -> &'static [&'static str] {
    match kind {
        PlatformKind::VMware => VMWARE_TYPES,
        PlatformKind::HyperV => HYPERV_TYPES,
        PlatformKind::VCloud => VCLOUD_TYPES,
    }
}

/// Formats `urn:<Platform>:<Type>:<root>.<object_ref>`.
pub fn hierarchy_obj_ref(kind: PlatformKind, type_: &str, root: Uuid, object_ref: &str) -> String {
    format!(
        "urn:{}:{}:{}.{}",
        kind.urn_platform(),
        type_,
        root.hyphenated(),
        object_ref
    )
}

/// A parsed HierarchyObjRef.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjRef {
    /// Platform segment.
    pub kind: PlatformKind,
    /// Type segment, in canonical spelling (e.g. `Vm`).
    pub type_: String,
    /// HierarchyRootId.
    pub root: Uuid,
    /// Object ref within the root (may contain `:` and `.`).
    pub object_ref: String,
}

impl fmt::Display for ObjRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hierarchy_obj_ref(
            self.kind,
            &self.type_,
            self.root,
            &self.object_ref,
        ))
    }
}

impl FromStr for ObjRef {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hierarchy_obj_ref(s)
    }
}

/// Parses `urn:<Platform>:<Type>:<root uuid>.<ref>` into its parts.
///
/// `urn`, the platform and the type are matched case-insensitively (real responses spell
/// the Hyper-V platform both `Hyperv` and `HyperV`); the type is returned in canonical
/// spelling. The error's reason names the part that is wrong.
pub fn parse_hierarchy_obj_ref(s: &str) -> Result<ObjRef, PlatformError> {
    let bad = |reason: String| PlatformError::InvalidRef {
        value: s.to_string(),
        reason,
    };
    let rest = match s.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("urn:") => &s[4..],
        _ => return Err(bad("must start with 'urn:'".into())),
    };
    let (platform, rest) = rest
        .split_once(':')
        .ok_or_else(|| bad("missing ':' after the platform".into()))?;
    let kind = PlatformKind::from_urn_platform(platform).ok_or_else(|| {
        bad(format!(
            "unknown platform {platform:?}; expected VMware, HyperV or vCloud"
        ))
    })?;
    let (type_, rest) = rest
        .split_once(':')
        .ok_or_else(|| bad("missing ':' after the object type".into()))?;
    let known = known_types(kind);
    let type_ = known
        .iter()
        .find(|t| t.eq_ignore_ascii_case(type_))
        .ok_or_else(|| {
            bad(format!(
                "unknown object type {type_:?} for platform {}; expected one of {}",
                kind.urn_platform(),
                known.join(", ")
            ))
        })?;
    let (root, object_ref) = rest.split_once('.').ok_or_else(|| {
        bad("missing '.' between the hierarchy root id and the object ref".into())
    })?;
    let root = parse_hyphenated_uuid(root)
        .ok_or_else(|| bad(format!("hierarchy root id {root:?} is not a UUID")))?;
    if object_ref.is_empty() {
        return Err(bad("object ref is empty".into()));
    }
    if object_ref
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad(
            "object ref contains whitespace or control characters".into()
        ));
    }
    Ok(ObjRef {
        kind,
        type_: (*type_).to_string(),
        root,
        object_ref: object_ref.to_string(),
    })
}

/// Parses only the 36-character hyphenated form of a UUID.
pub(crate) fn parse_hyphenated_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "a2b0c55d-829a-4efe-bd95-125ee77ba9dd";

    fn root() -> Uuid {
        Uuid::parse_str(ROOT).unwrap()
    }

    fn reason(s: &str) -> String {
        match parse_hierarchy_obj_ref(s) {
            Err(PlatformError::InvalidRef { value, reason }) => {
                assert_eq!(value, s);
                reason
            }
            other => panic!("{s:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn formats_the_documented_vmware_example() {
        assert_eq!(
            hierarchy_obj_ref(PlatformKind::VMware, types::VM, root(), "vm-7870"),
            "urn:VMware:Vm:a2b0c55d-829a-4efe-bd95-125ee77ba9dd.vm-7870"
        );
    }

    #[test]
    fn formats_hyperv_and_vcloud_refs() {
        assert_eq!(
            hierarchy_obj_ref(
                PlatformKind::HyperV,
                types::VM,
                root(),
                "e3e47ce3-ace6-4f06-9aaf-f52cf2e11234"
            ),
            format!("urn:HyperV:Vm:{ROOT}.e3e47ce3-ace6-4f06-9aaf-f52cf2e11234")
        );
        assert_eq!(
            hierarchy_obj_ref(
                PlatformKind::VCloud,
                types::ORG_VDC_STORAGE_PROFILE,
                root(),
                "urn:vcloud:vdcstorageprofile:1afeb3cc-bc4f-4e0f-b092-a3f8bbe70adc"
            ),
            format!("urn:vCloud:OrgVdcStorageProfile:{ROOT}.urn:vcloud:vdcstorageprofile:1afeb3cc-bc4f-4e0f-b092-a3f8bbe70adc")
        );
    }

    #[test]
    fn parses_the_documented_vmware_example() {
        let r =
            parse_hierarchy_obj_ref("urn:VMware:Vm:a2b0c55d-829a-4efe-bd95-125ee77ba9dd.vm-7870")
                .unwrap();
        assert_eq!(
            r,
            ObjRef {
                kind: PlatformKind::VMware,
                type_: "Vm".into(),
                root: root(),
                object_ref: "vm-7870".into()
            }
        );
    }

    #[test]
    fn parses_vcloud_refs_whose_object_ref_contains_colons_and_dots() {
        let s = format!(
            "urn:vCloud:Datastore:{ROOT}.urn:vcloud:datastore:68d9f62d-f3c1-4842-8ad6-9b7faca3c92a"
        );
        let r = parse_hierarchy_obj_ref(&s).unwrap();
        assert_eq!(r.kind, PlatformKind::VCloud);
        assert_eq!(r.type_, "Datastore");
        assert_eq!(r.root, root());
        assert_eq!(
            r.object_ref,
            "urn:vcloud:datastore:68d9f62d-f3c1-4842-8ad6-9b7faca3c92a"
        );
        assert_eq!(r.to_string(), s);

        let dotted = format!("urn:vCloud:Vm:{ROOT}.urn:vcloud:vm:a.b.c");
        assert_eq!(
            parse_hierarchy_obj_ref(&dotted).unwrap().object_ref,
            "urn:vcloud:vm:a.b.c"
        );
    }

    #[test]
    fn parses_hyperv_in_either_spelling_and_canonicalises_the_type() {
        let guid = "e3e47ce3-ace6-4f06-9aaf-f52cf2e11234";
        for s in [
            format!("urn:HyperV:Vm:{ROOT}.{guid}"),
            format!("urn:Hyperv:VM:{ROOT}.{guid}"),
        ] {
            let r: ObjRef = s.parse().unwrap();
            assert_eq!(r.kind, PlatformKind::HyperV);
            assert_eq!(r.type_, "Vm");
            assert_eq!(r.object_ref, guid);
            assert_eq!(r.to_string(), format!("urn:HyperV:Vm:{ROOT}.{guid}"));
        }
    }

    #[test]
    fn rejects_bad_refs_naming_what_is_wrong() {
        assert!(reason("").contains("urn:"));
        assert!(reason("VMware:Vm:x.y").contains("urn:"));
        assert!(reason("urn:VMware").contains("platform"));
        assert!(reason(&format!("urn:Xen:Vm:{ROOT}.vm-1")).contains("unknown platform \"Xen\""));
        assert!(reason(&format!("urn:VMware:Vm{ROOT}.vm-1")).contains("object type"));
        assert!(reason(&format!("urn:VMware:Toaster:{ROOT}.vm-1"))
            .contains("unknown object type \"Toaster\""));
        assert!(reason(&format!("urn:Hyperv:OrgVdc:{ROOT}.x")).contains("unknown object type"));
        assert!(reason(&format!("urn:VMware:Vm:{ROOT}")).contains("'.'"));
        assert!(reason("urn:VMware:Vm:not-a-uuid.vm-1").contains("not a UUID"));
        assert!(
            reason("urn:VMware:Vm:a2b0c55d829a4efebd95125ee77ba9dd.vm-1").contains("not a UUID")
        );
        assert!(reason(&format!("urn:VMware:Vm:{ROOT}.")).contains("empty"));
        assert!(reason(&format!("urn:VMware:Vm:{ROOT}.vm 1")).contains("whitespace"));
    }
}
