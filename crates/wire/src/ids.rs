//! Resource IDs and UIDs (URNs).
//!
//! An `{ID}` in a path may be the bare UUID or the full UID
//! `urn:veeam:<Kind>:<uuid>` (DESIGN.md, em_rest/get_restoresessions_id.md shows
//! `urn:veeam:RestoreSession:<uuid>` UIDs beside bare-UUID URLs).

use uuid::Uuid;

/// Parses a bare hyphenated UUID or `urn:veeam:<kind>:<uuid>`; the `urn:veeam:`
/// prefix and `kind` are matched case-insensitively.
pub fn parse_id(s: &str, kind: &str) -> Option<Uuid> {
    let s = s.trim();
    let bare = match split_urn(s) {
        Some((k, rest)) if k.eq_ignore_ascii_case(kind) => rest,
        Some(_) => return None,
        None => s,
    };
    parse_hyphenated(bare)
}

/// `urn:veeam:<kind>:<uuid>` (lower-case hyphenated UUID).
pub fn urn(kind: &str, id: Uuid) -> String {
    format!("urn:veeam:{kind}:{}", id.hyphenated())
}

/// Splits `urn:veeam:<kind>:<rest>` into `(kind, rest)`.
fn split_urn(s: &str) -> Option<(&str, &str)> {
    let prefix = s.get(..10)?;
    if !prefix.eq_ignore_ascii_case("urn:veeam:") {
        return None;
    }
    s[10..].split_once(':')
}

/// Only the canonical 36-character form: braces, `urn:uuid:` and the 32-digit
/// form are not IDs Enterprise Manager ever hands out.
fn parse_hyphenated(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::try_parse(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f0c9a57-1d2e-4b6a-9c8d-7e6f5a4b3c2d";

    #[test]
    fn accepts_bare_and_urn_forms() {
        let id = Uuid::parse_str(ID).unwrap();
        assert_eq!(parse_id(ID, "Job"), Some(id));
        assert_eq!(parse_id(&ID.to_uppercase(), "Job"), Some(id));
        assert_eq!(parse_id(&format!("urn:veeam:Job:{ID}"), "Job"), Some(id));
        assert_eq!(parse_id(&format!("URN:VEEAM:job:{ID}"), "Job"), Some(id));
    }

    #[test]
    fn rejects_other_kinds_and_forms() {
        assert_eq!(parse_id(&format!("urn:veeam:Backup:{ID}"), "Job"), None);
        assert_eq!(parse_id(&format!("{{{ID}}}"), "Job"), None);
        assert_eq!(parse_id(&ID.replace('-', ""), "Job"), None);
        assert_eq!(parse_id(&format!("urn:uuid:{ID}"), "Job"), None);
        assert_eq!(parse_id("task-1", "Task"), None);
        assert_eq!(parse_id("", "Job"), None);
        assert_eq!(parse_id("urn:veeam:Job", "Job"), None);
    }

    #[test]
    fn urn_is_lower_case() {
        let id = Uuid::parse_str(&ID.to_uppercase()).unwrap();
        assert_eq!(
            urn("VmRestorePoint", id),
            format!("urn:veeam:VmRestorePoint:{ID}")
        );
    }
}
