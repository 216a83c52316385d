//! JSON request decoding: `{"VmRestoreSpec":{…}}` or `{"vCloudVmRestoreSpec":{…}}`
//! (the root element is dropped, JSON.md A2; seed page JSON example).
//!
//! Member order is irrelevant in JSON; unknown and duplicate properties are errors,
//! `null` and `""` mean absent (JSON.md A8 shows `"LinkedCloneVmTemplateRef": ""`).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::schema::{
    self, check_name, decode_group, invalid_bool, parse_bool, shown, Fields, Group, Raw, Syntax,
};
use crate::error::DecodeError;

/// A JSON value that keeps object members in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
enum JValue {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array(Vec<JValue>),
    Object(Vec<(String, JValue)>),
}

impl JValue {
    /// A short description of the value for messages.
    fn describe(&self) -> String {
        match self {
            JValue::Null => "null".to_owned(),
            JValue::Bool(b) => b.to_string(),
            JValue::Number(n) => shown(n).trim_matches('"').to_owned(),
            JValue::Str(s) => shown(s),
            JValue::Array(_) => "an array".to_owned(),
            JValue::Object(_) => "an object".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for JValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = JValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<JValue, E> {
        Ok(JValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<JValue, E> {
        Ok(JValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<JValue, D::Error> {
        JValue::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JValue, E> {
        Ok(JValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JValue, E> {
        Ok(JValue::Number(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JValue, E> {
        Ok(JValue::Number(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JValue, E> {
        Ok(JValue::Number(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<JValue, E> {
        Ok(JValue::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<JValue, E> {
        Ok(JValue::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JValue, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(JValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JValue, A::Error> {
        let mut members = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, JValue>()? {
            members.push((k, v));
        }
        Ok(JValue::Object(members))
    }
}

impl Raw for JValue {
    const SYNTAX: Syntax = Syntax::Json;

    fn text(&self, name: &str) -> Result<Option<String>, DecodeError> {
        match self {
            JValue::Null => Ok(None),
            JValue::Str(s) => Ok(Some(s.clone())),
            other => Err(DecodeError::at(
                name,
                format!(
                    "property \"{name}\" must be a string, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn number_text(&self, name: &str) -> Result<Option<String>, DecodeError> {
        match self {
            JValue::Number(n) => Ok(Some(n.clone())),
            other => other.text(name),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, DecodeError> {
        match self {
            JValue::Null => Ok(None),
            JValue::Bool(b) => Ok(Some(*b)),
            // Json.NET also reads "true"/"false" strings into a bool.
            JValue::Str(s) => parse_bool(Syntax::Json, name, s).map(Some),
            other => Err(invalid_bool(Syntax::Json, name, &other.describe())),
        }
    }

    fn lax_boolean(&self, name: &str) -> Result<Option<bool>, DecodeError> {
        match self {
            JValue::Str(s) => schema::parse_bool_lax(Syntax::Json, name, s).map(Some),
            other => other.boolean(name),
        }
    }

    fn members(self, name: &str) -> Result<Option<Vec<(String, Self)>>, DecodeError> {
        match self {
            JValue::Null => Ok(None),
            JValue::Object(m) => Ok(Some(m)),
            other => Err(DecodeError::at(
                name,
                format!(
                    "property \"{name}\" must be an object, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, DecodeError> {
        match self {
            JValue::Null => Ok(None),
            JValue::Number(n) => n.parse::<i64>().map(Some).map_err(|_| {
                DecodeError::at(
                    name,
                    format!("property \"{name}\" must be a whole number, found {n}"),
                )
            }),
            JValue::Str(s) => schema::parse_int(Syntax::Json, name, s).map(Some),
            other => Err(DecodeError::at(
                name,
                format!(
                    "property \"{name}\" must be a number, found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn items(self, _name: &str) -> Result<Vec<Self>, DecodeError> {
        Ok(match self {
            JValue::Null => Vec::new(),
            JValue::Array(v) => v,
            other => vec![other],
        })
    }
}

/// Parses a JSON body, refusing property names no request uses (see [`check_name`]).
fn parse(text: &str) -> Result<JValue, DecodeError> {
    fn names(v: &JValue) -> Result<(), DecodeError> {
        match v {
            JValue::Object(members) => members.iter().try_for_each(|(k, v)| {
                check_name(Syntax::Json, k)?;
                names(v)
            }),
            JValue::Array(items) => items.iter().try_for_each(names),
            _ => Ok(()),
        }
    }
    let value: JValue = serde_json::from_str(text)
        .map_err(|e| DecodeError::body(format!("malformed JSON: {e}")))?;
    names(&value)?;
    Ok(value)
}

/// Decodes a JSON object whose members are those of `root` (the root element is dropped,
/// JSON.md A2).
pub(crate) fn decode_root(text: &str, root: &'static Group) -> Result<Fields, DecodeError> {
    let value = parse(text)?;
    let JValue::Object(members) = value else {
        return Err(DecodeError::body(format!(
            "request body must be a JSON object (a {})",
            root.name
        )));
    };
    decode_group(root, members, false)
}

/// Decodes a JSON restore request into the chosen form and its fields.
pub(super) fn decode(text: &str) -> Result<(&'static Group, Fields), DecodeError> {
    let value = parse(text)?;
    let choice = || {
        schema::SPECS
            .iter()
            .map(|g| format!("\"{}\"", g.name))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let JValue::Object(members) = value else {
        return Err(DecodeError::body(format!(
            "request body must be a JSON object with {}",
            choice()
        )));
    };
    let mut chosen: Option<(&'static Group, JValue)> = None;
    for (key, v) in members {
        let Some(group) = schema::SPECS
            .iter()
            .find(|g| Syntax::Json.matches(&key, g.name))
        else {
            return Err(DecodeError::at(
                &key,
                format!("unknown property \"{key}\": expected {}", choice()),
            ));
        };
        if chosen.is_some() {
            return Err(DecodeError::at(
                &key,
                format!(
                    "property \"{key}\" is not allowed here: the body contains exactly one of {}",
                    choice()
                ),
            ));
        }
        chosen = Some((group, v));
    }
    let Some((group, v)) = chosen else {
        return Err(DecodeError::body(format!(
            "request body must contain {}",
            choice()
        )));
    };
    let members = v.members(group.name)?.unwrap_or_default();
    Ok((group, decode_group(group, members, false)?))
}
