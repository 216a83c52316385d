//! emrest extension (`/api/emrest/faults`): the fault rules a server started with
//! `--allow-faults` injects. The request body `FaultRuleSpec` is decoded strictly like every
//! other body (schema table, XML order enforced unless lenient, unknown and duplicate members
//! refused); what its values mean is checked by the domain, which names the member at fault.
//! The resource `FaultRule` is the spec's members followed by who added the rule and its
//! counters.

use crate::error::DecodeError;
use crate::node::{elem, Node, Representation};
use crate::resources::{resource_layer, Link};
use crate::restore_spec::schema::{Field, Group, Kind};
use crate::restore_spec::{decode_body, OrderPolicy};
use crate::Format;

static FAULT_RULE_SPEC: Group = Group {
    name: "FaultRuleSpec",
    fields: &[
        Field::required("Operation", Kind::Str),
        Field::optional("RestoreMode", Kind::Str),
        Field::optional("Method", Kind::Str),
        Field::optional("Route", Kind::Str),
        Field::optional("VmName", Kind::Str),
        Field::optional("AccountName", Kind::Str),
        Field::optional("Fire", Kind::Str),
        Field::optional("Count", Kind::Int),
        Field::optional("Probability", Kind::Decimal),
        Field::optional("Seed", Kind::Int),
        Field::required("Effect", Kind::Str),
        Field::optional("Percent", Kind::Int),
        Field::optional("DelayMs", Kind::Int),
        Field::optional("StatusCode", Kind::Int),
        Field::optional("Message", Kind::Str),
    ],
};

/// `FaultRuleSpec`, as sent: names and numbers, not yet checked against each other.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultRuleSpec {
    /// `Restore`, `Backup`, `Logon` or `Request`.
    pub operation: String,
    /// `Full` or `QuickRollback` (restores).
    pub restore_mode: Option<String>,
    /// `GET`, `POST`, `PUT` or `DELETE` (requests).
    pub method: Option<String>,
    /// A route template as docs/openapi.json names it (`/tasks/{ID}`), `/api` optional.
    pub route: Option<String>,
    /// Only tasks on the VM of this name.
    pub vm_name: Option<String>,
    /// Only work of this account (logons: the user name logging on).
    pub account_name: Option<String>,
    /// `Always` (the default), `First`, `Every` or `Chance`.
    pub fire: Option<String>,
    /// N of `First` and `Every`.
    pub count: Option<i64>,
    /// The probability of `Chance`, as sent (`0.25`).
    pub probability: Option<String>,
    /// The seed of `Chance`.
    pub seed: Option<i64>,
    /// `Fail`, `Delay`, `Hang`, `Stall`, `Status`, `Drop` or `ExpireSession`.
    pub effect: String,
    /// Where `Fail` and `Stall` happen, in percent of the task.
    pub percent: Option<i64>,
    /// How long `Delay` waits and `Stall` stalls, in milliseconds.
    pub delay_ms: Option<i64>,
    /// The status `Status` answers.
    pub status_code: Option<i64>,
    /// The task's result of `Fail`, the Error body's message of `Status`.
    pub message: Option<String>,
}

/// Decodes a `FaultRuleSpec`.
pub fn decode_fault_rule_spec(
    body: &[u8],
    format: Format,
    order: OrderPolicy,
) -> Result<FaultRuleSpec, DecodeError> {
    let mut f = decode_body(body, format, order, &FAULT_RULE_SPEC, false)?;
    Ok(FaultRuleSpec {
        operation: f.take_str("Operation").unwrap_or_default(),
        restore_mode: f.take_str("RestoreMode"),
        method: f.take_str("Method"),
        route: f.take_str("Route"),
        vm_name: f.take_str("VmName"),
        account_name: f.take_str("AccountName"),
        fire: f.take_str("Fire"),
        count: f.take_int("Count"),
        probability: f.take_str("Probability"),
        seed: f.take_int("Seed"),
        effect: f.take_str("Effect").unwrap_or_default(),
        percent: f.take_int("Percent"),
        delay_ms: f.take_int("DelayMs"),
        status_code: f.take_int("StatusCode"),
        message: f.take_str("Message"),
    })
}

/// A fault rule in force (`GET /api/emrest/faults/{ID}`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Its URL.
    pub href: String,
    /// `Delete` to remove it.
    pub links: Vec<Link>,
    /// Its ID (a UUID).
    pub id: String,
    /// The rule, as a `FaultRuleSpec` would send it (members that do not apply left out).
    pub spec: FaultRuleSpec,
    /// One line saying what it does.
    pub description: String,
    /// The account (or `uid N` of the admin channel) that added it.
    pub created_by: String,
    /// When it was added.
    pub creation_time_utc: crate::UtcTime,
    /// Times it matched.
    pub matched: u64,
    /// Times it fired.
    pub fired: u64,
}

impl Representation for FaultRule {
    fn to_node(&self) -> Node<'_> {
        let FaultRule {
            href,
            links,
            id,
            spec,
            description,
            created_by,
            creation_time_utc,
            matched,
            fired,
        } = self;
        let s = spec;
        let mut members = vec![elem("Id", id), elem("Operation", &s.operation)];
        let opt = |m: &mut Vec<_>, name: &'static str, v: &'_ Option<String>| {
            if let Some(v) = v {
                m.push(elem(name, v.clone()));
            }
        };
        opt(&mut members, "RestoreMode", &s.restore_mode);
        opt(&mut members, "Method", &s.method);
        opt(&mut members, "Route", &s.route);
        opt(&mut members, "VmName", &s.vm_name);
        opt(&mut members, "AccountName", &s.account_name);
        opt(&mut members, "Fire", &s.fire);
        let num = |m: &mut Vec<_>, name: &'static str, v: Option<i64>| {
            if let Some(v) = v {
                m.push(elem(name, v));
            }
        };
        num(&mut members, "Count", s.count);
        opt(&mut members, "Probability", &s.probability);
        num(&mut members, "Seed", s.seed);
        members.push(elem("Effect", &s.effect));
        num(&mut members, "Percent", s.percent);
        num(&mut members, "DelayMs", s.delay_ms);
        num(&mut members, "StatusCode", s.status_code);
        opt(&mut members, "Message", &s.message);
        members.extend([
            elem("Description", description),
            elem("CreatedBy", created_by),
            elem("CreationTimeUTC", *creation_time_utc),
            elem("Matched", i64::try_from(*matched).unwrap_or(i64::MAX)),
            elem("Fired", i64::try_from(*fired).unwrap_or(i64::MAX)),
        ]);
        Node::new("FaultRule")
            .layer(members)
            .layer(resource_layer(links, href, "FaultRule"))
    }
}
