//! The properties the filter fuzz target checks, shared by the fuzz target (fuzz/) and the
//! corpus replay test (tests/fuzz_corpus.rs). Whatever the text, `filter::parse` returns (no
//! panic, no stack overflow: nesting is bounded); an error names a position inside the text;
//! a parsed filter prints back to a filter that parses to the same tree; and the query service
//! turns it, for every query type, into SQL that SQLite accepts (a bad field or value is a 400
//! naming it, never a catalog error).

use emrest_core::demo::DemoOptions;
use emrest_core::filter::{self, Expr, Op};
use emrest_core::query::{QueryRequest, QueryType};
use emrest_core::{Caller, Core, CoreConfig, CoreError, Owner, Role};

/// A demo estate and a logged-on administrator to run queries as.
pub struct World {
    pub core: Owner,
    pub caller: Caller,
    _dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CoreConfig {
            durability: emrest_repo::Durability::NoSync,
            ..CoreConfig::new(dir.path())
        };
        let (core, _) = Core::open(cfg).unwrap();
        core.create_demo(&DemoOptions { disk_size: 1 << 16 })
            .unwrap();
        core.add_account("fuzz", "fuzz pw", Role::PortalAdministrator)
            .unwrap();
        let session = core.logons().logon("fuzz", "fuzz pw").unwrap();
        let caller = core.logons().caller(session.id).unwrap();
        World {
            core,
            caller,
            _dir: dir,
        }
    }
}

/// The filter written back: compound terms in parentheses, quoted values with ASCII quotes
/// (inner quotes doubled), unquoted values as they were, after a space.
pub fn print(e: &Expr) -> String {
    fn term(e: &Expr) -> String {
        match e {
            Expr::Cmp(_) => print(e),
            _ => format!("({})", print(e)),
        }
    }
    match e {
        Expr::Cmp(c) => {
            let value = if c.value.quoted {
                format!("\"{}\"", c.value.text.replace('"', "\"\""))
            } else {
                c.value.text.clone()
            };
            // A space after the operator: `a> =1` compares with "=1", `a>=1` with "1".
            format!("{}{} {}", c.field, c.op.as_str(), value)
        }
        Expr::And(v) => v.iter().map(term).collect::<Vec<_>>().join(";"),
        Expr::Or(v) => v.iter().map(term).collect::<Vec<_>>().join(","),
    }
}

/// The tree without positions.
fn shape(e: &Expr) -> String {
    match e {
        Expr::Cmp(c) => format!(
            "[{}|{:?}|{:?}|{}]",
            c.field, c.op, c.value.text, c.value.quoted
        ),
        Expr::And(v) => format!("and({})", v.iter().map(shape).collect::<Vec<_>>().join(" ")),
        Expr::Or(v) => format!("or({})", v.iter().map(shape).collect::<Vec<_>>().join(" ")),
    }
}

fn positions_inside(e: &Expr, chars: usize) {
    match e {
        Expr::Cmp(c) => {
            assert!((1..=chars).contains(&c.field_pos), "{c:?}");
            assert!((1..=chars).contains(&c.value.pos), "{c:?}");
            let _: Op = c.op;
        }
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|t| positions_inside(t, chars)),
    }
}

/// The whole property for one input.
pub fn filter(w: &World, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let chars = text.chars().count();
    let expr = match filter::parse(&text) {
        Ok(e) => e,
        Err(e) => {
            assert!(
                (1..=chars + 1).contains(&e.position),
                "position {} outside {chars} characters: {e}",
                e.position
            );
            assert!(!e.message.is_empty() && !e.found.is_empty(), "{e:?}");
            return;
        }
    };
    positions_inside(&expr, chars);
    let printed = print(&expr);
    let again = filter::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?} does not parse: {e}"));
    assert_eq!(
        shape(&again),
        shape(&expr),
        "{text:?} printed as {printed:?}"
    );
    for t in QueryType::ALL {
        let req = QueryRequest {
            type_name: t.name(),
            filter: Some(&text),
            ..QueryRequest::default()
        };
        match w.core.as_caller(&w.caller).query(&req) {
            Ok(_) | Err(CoreError::Invalid { .. }) => {}
            Err(e) => panic!("type {} filter {text:?}: {e:?}", t.name()),
        }
    }
}
