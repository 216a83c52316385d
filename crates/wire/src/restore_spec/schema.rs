//! The restore request's schema and the one validator both decoders share.
//!
//! Element order is the XSD `xs:sequence` order: the seed page's examples show
//! `PowerOnAfterRestore, HierarchyRootUid, QuickRollback, VmRestoreParameters` and
//! `PowerOnAfterRestore, QuickRollback, KeepOriginalVM`; the vCloud form is
//! `PowerOnAfterRestore, HierarchyRootUid, vAppRef, VmRestoreParameters` (JSON.md C1).

use crate::error::DecodeError;

/// The type of a member.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// xs:boolean.
    Bool,
    /// A boolean whose documented examples write `True`/`False` (post_security_accounts.md:
    /// `<DenyInPlaceRestore>True</DenyInPlaceRestore>`, `"FlrInplaceOnly": "true"`): the
    /// words are matched ignoring case, in XML and in JSON strings.
    LaxBool,
    /// A string; empty means absent.
    Str,
    /// A nested element with members of its own.
    Group(&'static Group),
    /// A repeated nested element: in XML the element appears once per item, consecutively;
    /// in JSON the value is an array of objects (or one object), under the field's name or
    /// its alias.
    Repeated(&'static Group),
    /// An xs:long: XML text, a JSON number or a JSON string of digits (the reference's JSON
    /// examples quote numbers: `"RetryTimes": "3"`).
    Int,
    /// A repeated text element (`<Days>Sunday</Days><Days>Monday</Days>`), a JSON array of
    /// strings (or one string).
    StrList,
    /// A number or a string (TimeOffsetUtc: `2` in one example, a TimeSpan in the type),
    /// kept as text.
    NumOrStr,
    /// A decimal number (`0.25`): a JSON number or string, XML text; kept as its text.
    Decimal,
    /// A member a client may send back as it received it (links, read-only values): accepted
    /// in any shape and not read.
    Ignored,
}

/// One member of a group.
#[derive(Debug)]
pub(crate) struct Field {
    /// Canonical name.
    pub name: &'static str,
    /// Another accepted spelling in the same position.
    pub alias: Option<&'static str>,
    /// Type.
    pub kind: Kind,
    /// Whether the member must be present (and non-empty).
    pub required: bool,
}

/// An element with an ordered list of members.
#[derive(Debug)]
pub(crate) struct Group {
    /// Element name.
    pub name: &'static str,
    /// Members, in schema order.
    pub fields: &'static [Field],
}

impl Field {
    /// A member without an alias that may be left out.
    pub(crate) const fn optional(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            alias: None,
            kind,
            required: false,
        }
    }

    /// A member without an alias that a body must carry.
    pub(crate) const fn required(name: &'static str, kind: Kind) -> Field {
        Field {
            name,
            alias: None,
            kind,
            required: true,
        }
    }
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field::optional(name, kind)
}

/// The seed page's table spells it `PowerOnAfter` while every example uses
/// `PowerOnAfterRestore` (em_rest/post_vmrestorepoints_id_actionrestore.md);
/// accept both, in the same position.
const POWER_ON: Field = Field {
    name: "PowerOnAfterRestore",
    alias: Some("PowerOnAfter"),
    kind: Kind::Bool,
    required: false,
};

/// `<VmRestoreParameters>`; `VmRestorePointUid` is 1/1 on the seed page.
pub(crate) static VM_RESTORE_PARAMETERS: Group = Group {
    name: "VmRestoreParameters",
    fields: &[
        Field {
            required: true,
            ..field("VmRestorePointUid", Kind::Str)
        },
        field("VmNewName", Kind::Str),
        field("DatastoreRef", Kind::Str),
        field("OrgVdcStorageProfileRef", Kind::Str),
        field("LinkedCloneVmTemplateRef", Kind::Str),
    ],
};

/// `<VmRestoreSpec>`.
pub(crate) static VM_RESTORE_SPEC: Group = Group {
    name: "VmRestoreSpec",
    fields: &[
        POWER_ON,
        field("HierarchyRootUid", Kind::Str),
        field("QuickRollback", Kind::Bool),
        field("KeepOriginalVM", Kind::Bool),
        field("VmRestoreParameters", Kind::Group(&VM_RESTORE_PARAMETERS)),
    ],
};

/// `<vCloudVmRestoreSpec>`.
pub(crate) static VCLOUD_VM_RESTORE_SPEC: Group = Group {
    name: "vCloudVmRestoreSpec",
    fields: &[
        POWER_ON,
        field("HierarchyRootUid", Kind::Str),
        field("vAppRef", Kind::Str),
        field("VmRestoreParameters", Kind::Group(&VM_RESTORE_PARAMETERS)),
    ],
};

/// The root element of the request.
pub(crate) const ROOT: &str = "RestoreSpec";

/// The two forms the root may contain, exactly one of.
pub(crate) static SPECS: [&Group; 2] = [&VM_RESTORE_SPEC, &VCLOUD_VM_RESTORE_SPEC];

/// A validated value.
#[derive(Debug)]
pub(crate) enum Parsed {
    Bool(bool),
    Str(String),
    Group(Fields),
    List(Vec<Fields>),
    Int(i64),
    Strs(Vec<String>),
}

/// The members present in a validated group, by canonical name.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(&'static str, Parsed)>);

impl Fields {
    fn take(&mut self, name: &str) -> Option<Parsed> {
        let i = self.0.iter().position(|(n, _)| *n == name)?;
        Some(self.0.swap_remove(i).1)
    }

    /// The boolean member `name`, if present.
    pub fn take_bool(&mut self, name: &str) -> Option<bool> {
        match self.take(name)? {
            Parsed::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The string member `name`, if present and non-empty.
    pub fn take_str(&mut self, name: &str) -> Option<String> {
        match self.take(name)? {
            Parsed::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The nested group `name`, if present.
    pub fn take_group(&mut self, name: &str) -> Option<Fields> {
        match self.take(name)? {
            Parsed::Group(f) => Some(f),
            _ => None,
        }
    }

    /// The integer member `name`, if present.
    pub fn take_int(&mut self, name: &str) -> Option<i64> {
        match self.take(name)? {
            Parsed::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The strings of the repeated text member `name`, if present.
    pub fn take_strs(&mut self, name: &str) -> Option<Vec<String>> {
        match self.take(name)? {
            Parsed::Strs(v) => Some(v),
            _ => None,
        }
    }

    /// The items of the repeated member `name` (empty when absent).
    pub fn take_list(&mut self, name: &str) -> Vec<Fields> {
        match self.take(name) {
            Some(Parsed::List(v)) => v,
            _ => Vec::new(),
        }
    }
}

/// How names are written in messages, and how they are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Element names, matched exactly.
    Xml,
    /// Property names, matched ignoring ASCII case, as Json.NET does by default.
    Json,
}

impl Syntax {
    /// `<Name>` or `"Name"`.
    pub fn show(self, name: &str) -> String {
        match self {
            Syntax::Xml => format!("<{name}>"),
            Syntax::Json => format!("\"{name}\""),
        }
    }

    /// `element` or `property`.
    pub fn noun(self) -> &'static str {
        match self {
            Syntax::Xml => "element",
            Syntax::Json => "property",
        }
    }

    /// `elements` or `properties`.
    pub fn plural(self) -> &'static str {
        match self {
            Syntax::Xml => "elements",
            Syntax::Json => "properties",
        }
    }

    /// Whether `got` spells `want`.
    pub fn matches(self, got: &str, want: &str) -> bool {
        match self {
            Syntax::Xml => got == want,
            Syntax::Json => got.eq_ignore_ascii_case(want),
        }
    }
}

/// A raw member value from one of the two syntaxes.
pub(crate) trait Raw: Sized {
    /// The syntax this value came from.
    const SYNTAX: Syntax;
    /// Leaf text; `None` when null.
    fn text(&self, name: &str) -> Result<Option<String>, DecodeError>;
    /// Leaf boolean; `None` when null.
    fn boolean(&self, name: &str) -> Result<Option<bool>, DecodeError>;
    /// Leaf boolean, `True`/`False` in any case accepted; `None` when null.
    fn lax_boolean(&self, name: &str) -> Result<Option<bool>, DecodeError>;
    /// Members of a nested group; `None` when null.
    fn members(self, name: &str) -> Result<Option<Vec<(String, Self)>>, DecodeError>;
    /// The items a repeated member's value holds (an XML element is one item).
    fn items(self, name: &str) -> Result<Vec<Self>, DecodeError>;
    /// Leaf integer; `None` when null.
    fn integer(&self, name: &str) -> Result<Option<i64>, DecodeError>;
    /// Leaf number or text, as text; `None` when null.
    fn number_text(&self, name: &str) -> Result<Option<String>, DecodeError> {
        self.text(name)
    }
    /// Whether this value is an XML attribute (exempt from element order).
    fn is_attribute(&self) -> bool {
        false
    }
}

/// Parses an integer written as text.
pub(crate) fn parse_int(syntax: Syntax, name: &str, text: &str) -> Result<i64, DecodeError> {
    text.trim().parse().map_err(|_| {
        DecodeError::at(
            name,
            format!(
                "{} {} has invalid integer value {}",
                syntax.noun(),
                syntax.show(name),
                shown(text)
            ),
        )
    })
}

/// Longest element or property name accepted; the longest the requests use has 33 characters.
const MAX_NAME: usize = 64;

/// Refuses an element or property name that no request uses and that would be unsafe to
/// repeat in a message (too long, or not made of name characters): every later message may
/// then quote names as they are.
pub(crate) fn check_name(syntax: Syntax, name: &str) -> Result<(), DecodeError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DecodeError::body(format!(
            "{} {} is not a name any request uses: names are letters, digits, '_', '-' or '.', at most {MAX_NAME} characters",
            syntax.noun(),
            shown(name)
        )))
    }
}

/// Shows a client-supplied value in a message: quoted, escaped, and short.
pub(crate) fn shown(value: &str) -> String {
    format!("{:?}", crate::clip(value, 40))
}

/// Parses xs:boolean (`true`, `false`, `1`, `0`, surrounding whitespace allowed).
pub(crate) fn parse_bool(syntax: Syntax, name: &str, text: &str) -> Result<bool, DecodeError> {
    match text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid_bool(syntax, name, &shown(text))),
    }
}

/// Parses `true`/`false` in any case, `1`, `0`.
pub(crate) fn parse_bool_lax(syntax: Syntax, name: &str, text: &str) -> Result<bool, DecodeError> {
    parse_bool(syntax, name, &text.trim().to_ascii_lowercase())
}

/// The error for a value that is not a boolean.
pub(crate) fn invalid_bool(syntax: Syntax, name: &str, shown_value: &str) -> DecodeError {
    DecodeError::at(
        name,
        format!(
            "{} {} has invalid boolean value {}: expected true or false",
            syntax.noun(),
            syntax.show(name),
            shown_value
        ),
    )
}

fn field_names(group: &Group) -> String {
    group
        .fields
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds the field `name` spells in `group`.
pub(crate) fn lookup(group: &Group, syntax: Syntax, name: &str) -> Option<usize> {
    group.fields.iter().position(|f| {
        syntax.matches(name, f.name) || f.alias.is_some_and(|a| syntax.matches(name, a))
    })
}

/// Validates the members of `group`: unknown and duplicate members are errors,
/// so are out-of-order ones when `ordered`, and missing required ones.
pub(crate) fn decode_group<R: Raw>(
    group: &'static Group,
    members: Vec<(String, R)>,
    ordered: bool,
) -> Result<Fields, DecodeError> {
    let syntax = R::SYNTAX;
    let mut seen: Vec<Option<String>> = vec![None; group.fields.len()];
    let mut furthest: Option<usize> = None;
    let mut previous: Option<usize> = None;
    let mut out = Fields::default();

    for (name, raw) in members {
        let Some(idx) = lookup(group, syntax, &name) else {
            return Err(DecodeError::at(
                &name,
                format!(
                    "unknown {} {} in {}: expected {} are {}",
                    syntax.noun(),
                    syntax.show(&name),
                    syntax.show(group.name),
                    syntax.plural(),
                    field_names(group)
                ),
            ));
        };
        let field = &group.fields[idx];
        let repeat = syntax == Syntax::Xml
            && matches!(field.kind, Kind::Repeated(_) | Kind::StrList)
            && previous == Some(idx);
        previous = Some(idx);
        if repeat && matches!(field.kind, Kind::StrList) {
            let text = raw.text(&name)?.unwrap_or_default().trim().to_owned();
            if let Some((_, Parsed::Strs(v))) = out.0.iter_mut().find(|(n, _)| *n == field.name) {
                v.push(text);
            }
            continue;
        }
        if repeat {
            // The next item of a repeated XML element.
            if let Kind::Repeated(g) = field.kind {
                let item = match raw.members(&name)? {
                    Some(m) => decode_group(g, m, ordered)?,
                    None => Fields::default(),
                };
                if let Some((_, Parsed::List(v))) = out.0.iter_mut().find(|(n, _)| *n == field.name)
                {
                    v.push(item);
                }
            }
            continue;
        }
        if let Some(first) = &seen[idx] {
            let what = if *first == name {
                "appears more than once".to_owned()
            } else {
                format!("repeats {}", syntax.show(first))
            };
            return Err(DecodeError::at(
                &name,
                format!(
                    "{} {} {} in {}",
                    syntax.noun(),
                    syntax.show(&name),
                    what,
                    syntax.show(group.name)
                ),
            ));
        }
        let attribute = raw.is_attribute();
        if ordered && !attribute && furthest.is_some_and(|f| idx < f) {
            return Err(DecodeError::at(
                &name,
                format!(
                    "{} {} is out of order in {}: expected order is {}",
                    syntax.noun(),
                    syntax.show(&name),
                    syntax.show(group.name),
                    field_names(group)
                ),
            ));
        }
        if !attribute {
            furthest = furthest.max(Some(idx));
        }

        let value = match field.kind {
            Kind::Bool => raw.boolean(&name)?.map(Parsed::Bool),
            Kind::LaxBool => raw.lax_boolean(&name)?.map(Parsed::Bool),
            Kind::Str => raw
                .text(&name)?
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .map(Parsed::Str),
            Kind::Group(g) => match raw.members(&name)? {
                Some(m) => Some(Parsed::Group(decode_group(g, m, ordered)?)),
                None => None,
            },
            Kind::Repeated(g) => {
                let mut items = Vec::new();
                for item in raw.items(&name)? {
                    items.push(match item.members(&name)? {
                        Some(m) => decode_group(g, m, ordered)?,
                        None => Fields::default(),
                    });
                }
                Some(Parsed::List(items))
            }
            Kind::Int => raw.integer(&name)?.map(Parsed::Int),
            Kind::NumOrStr => match raw.integer(&name) {
                Ok(v) => v.map(|i| Parsed::Str(i.to_string())),
                Err(_) => raw
                    .text(&name)?
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .map(Parsed::Str),
            },
            Kind::Decimal => raw
                .number_text(&name)?
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .map(Parsed::Str),
            Kind::StrList => {
                let mut v = Vec::new();
                for item in raw.items(&name)? {
                    if let Some(t) = item.text(&name)? {
                        v.push(t.trim().to_owned());
                    }
                }
                Some(Parsed::Strs(v))
            }
            Kind::Ignored => None,
        };
        seen[idx] = Some(name);
        if let Some(v) = value {
            out.0.push((field.name, v));
        }
    }

    for f in group.fields.iter().filter(|f| f.required) {
        if !out.0.iter().any(|(n, _)| *n == f.name) {
            return Err(DecodeError::at(
                f.name,
                format!(
                    "{} {} is required in {}",
                    syntax.noun(),
                    syntax.show(f.name),
                    syntax.show(group.name)
                ),
            ));
        }
    }
    Ok(out)
}
