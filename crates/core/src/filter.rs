//! The filter grammar of the query service, parsed into a syntax tree. No SQL and no field
//! knowledge here: `query` checks fields and values and turns the tree into a parameterized
//! WHERE clause.
//!
//! Grammar (filter.md, query_comparison.md, query_and_or.md, query_grouping.md,
//! optional_query_parameters.md, JSON.md C7):
//!
//! ```text
//! filter     := or
//! or         := and ( ',' and )*          -- ',' is OR
//! and        := term ( ';' term )*        -- ';' is AND, binding tighter than ',' (as in FIQL)
//! term       := '(' or ')' | comparison
//! comparison := field op value
//! field      := [A-Za-z0-9_.]+            -- matched case-insensitively later
//! op         := '==' | '!=' | '<=' | '>=' | '<' | '>'
//! value      := '"' ( [^"] | '""' )* '"'  -- a doubled quote is one quote
//!             | unquoted                  -- up to ';' ',' '(' ')' or the end; spaces dropped
//! ```
//!
//! Whitespace between tokens is ignored. An unquoted value has its spaces removed, as
//! optional_query_parameters.md says the server does. Typographic quotes (“…”, ”…”), which the
//! same page uses in its examples, delimit a value too when the value starts with one.
//!
//! Positions in errors are 1-based character positions in the filter as decoded from the URL.

/// A comparison operator (query_comparison.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Op {
    /// The filter spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
        }
    }
}

/// A value as written in the filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    /// The value, quotes removed and doubled quotes undone.
    pub text: String,
    /// Whether it was quoted.
    pub quoted: bool,
    /// 1-based position of its first character (the opening quote when quoted).
    pub pos: usize,
}

/// `<field><op><value>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// Field name as written.
    pub field: String,
    /// 1-based position of the field name.
    pub field_pos: usize,
    /// The operator.
    pub op: Op,
    /// The value.
    pub value: Literal,
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Cmp(Comparison),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A syntax error: where, what was found there, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Invalid filter at position {position} ({found}): {message}")]
pub struct FilterError {
    /// 1-based character position.
    pub position: usize,
    /// The offending token, quoted, or `end of filter`.
    pub found: String,
    /// What was expected.
    pub message: String,
}

/// Parse a filter.
pub fn parse(input: &str) -> Result<Expr, FilterError> {
    let mut p = Parser {
        s: input.chars().collect(),
        i: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(p.error("the filter is empty; expected a comparison such as Name==\"x\""));
    }
    let e = p.or()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error("expected ';' (and), ',' (or) or the end of the filter"));
    }
    Ok(e)
}

struct Parser {
    s: Vec<char>,
    i: usize,
    /// Open '(' groups around the cursor.
    depth: usize,
}

/// Deepest nesting of '(' groups accepted. The parser recurses once per group, so without a
/// bound a URL of '(' characters overflows the stack and aborts the server.
pub const MAX_GROUP_DEPTH: usize = 32;

const OPEN_QUOTES: [char; 3] = ['"', '\u{201C}', '\u{201D}'];

impl Parser {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The token at the cursor, for error messages.
    fn found(&self) -> String {
        if self.at_end() {
            return "end of filter".into();
        }
        let word: String = self.s[self.i..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_' || **c == '.')
            .take(40)
            .collect();
        if word.is_empty() {
            format!("'{}'", self.s[self.i])
        } else {
            format!("'{word}'")
        }
    }

    fn error(&self, message: impl Into<String>) -> FilterError {
        FilterError {
            position: self.i + 1,
            found: self.found(),
            message: message.into(),
        }
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.and()?];
        while self.eat(',') {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.term()?];
        while self.eat(';') {
            terms.push(self.term()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn term(&mut self) -> Result<Expr, FilterError> {
        self.skip_ws();
        let open = self.i;
        if self.eat('(') {
            if self.depth == MAX_GROUP_DEPTH {
                self.i = open;
                return Err(self.error(format!(
                    "groups are nested too deeply: the limit is {MAX_GROUP_DEPTH} levels of '('"
                )));
            }
            self.depth += 1;
            let e = self.or();
            self.depth -= 1;
            let e = e?;
            if !self.eat(')') {
                return Err(self.error(format!(
                    "expected ')' to close the '(' at position {}",
                    open + 1
                )));
            }
            return Ok(e);
        }
        self.comparison().map(Expr::Cmp)
    }

    fn comparison(&mut self) -> Result<Comparison, FilterError> {
        self.skip_ws();
        let field_pos = self.i + 1;
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.error("expected a field name"));
        }
        let field: String = self.s[start..self.i].iter().collect();
        self.skip_ws();
        let op = self.operator()?;
        self.skip_ws();
        let value = self.value()?;
        Ok(Comparison {
            field,
            field_pos,
            op,
            value,
        })
    }

    fn operator(&mut self) -> Result<Op, FilterError> {
        let two: String = self.s[self.i..].iter().take(2).collect();
        let (op, len) = match two.as_str() {
            "==" => (Op::Eq, 2),
            "!=" => (Op::Ne, 2),
            "<=" => (Op::Le, 2),
            ">=" => (Op::Ge, 2),
            _ => match self.peek() {
                Some('<') => (Op::Lt, 1),
                Some('>') => (Op::Gt, 1),
                Some('=') => {
                    return Err(self.error("'=' is not an operator; equality is '=='"));
                }
                _ => {
                    return Err(self.error("expected a comparison operator (==, !=, <, >, <=, >=)"));
                }
            },
        };
        self.i += len;
        Ok(op)
    }

    fn value(&mut self) -> Result<Literal, FilterError> {
        let pos = self.i + 1;
        match self.peek() {
            Some(q) if OPEN_QUOTES.contains(&q) => {
                // A value opened with an ASCII quote closes with one; a typographic one with
                // either typographic quote.
                let closes = |c: char| {
                    if q == '"' {
                        c == '"'
                    } else {
                        c == '\u{201C}' || c == '\u{201D}'
                    }
                };
                self.i += 1;
                let mut text = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return Err(FilterError {
                                position: pos,
                                found: format!("'{q}'"),
                                message: "this quoted value is never closed".into(),
                            })
                        }
                        Some(c) if closes(c) => {
                            if self.s.get(self.i + 1).copied().is_some_and(closes) {
                                text.push(c);
                                self.i += 2;
                            } else {
                                self.i += 1;
                                break;
                            }
                        }
                        Some(c) => {
                            text.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(Literal {
                    text,
                    quoted: true,
                    pos,
                })
            }
            _ => {
                let mut text = String::new();
                while let Some(c) = self.peek() {
                    if matches!(c, ';' | ',' | '(' | ')') {
                        break;
                    }
                    if !c.is_whitespace() {
                        text.push(c);
                    }
                    self.i += 1;
                }
                if text.is_empty() {
                    return Err(FilterError {
                        position: pos,
                        found: self.found(),
                        message: "expected a value after the operator".into(),
                    });
                }
                Ok(Literal {
                    text,
                    quoted: false,
                    pos,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: &str, op: Op, text: &str, quoted: bool) -> (String, Op, String, bool) {
        (field.into(), op, text.into(), quoted)
    }

    fn flat(e: &Expr) -> (String, Op, String, bool) {
        match e {
            Expr::Cmp(c) => (c.field.clone(), c.op, c.value.text.clone(), c.value.quoted),
            other => panic!("not a comparison: {other:?}"),
        }
    }

    #[test]
    fn every_operator_parses() {
        for (s, op) in [
            ("a==1", Op::Eq),
            ("a!=1", Op::Ne),
            ("a<1", Op::Lt),
            ("a>1", Op::Gt),
            ("a<=1", Op::Le),
            ("a>=1", Op::Ge),
        ] {
            assert_eq!(flat(&parse(s).unwrap()), cmp("a", op, "1", false), "{s}");
        }
    }

    #[test]
    fn semicolon_binds_tighter_than_comma() {
        let e = parse("a==1;b==2,c==3").unwrap();
        match e {
            Expr::Or(v) => {
                assert_eq!(v.len(), 2);
                assert!(matches!(&v[0], Expr::And(a) if a.len() == 2));
                assert_eq!(flat(&v[1]), cmp("c", Op::Eq, "3", false));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn groups_nest() {
        // query_grouping.md's example.
        let e =
            parse("(jobtype==replica;scheduleconfigured==false),(jobtype==backup;scheduleconfigured==true)")
                .unwrap();
        assert!(
            matches!(e, Expr::Or(ref v) if v.len() == 2 && v.iter().all(|t| matches!(t, Expr::And(_))))
        );
        // The veeam client's filter (JSON.md D1).
        let e = parse(r#"jobname=="X";(result=="Success",result=="Warning");creationtime>"2024-01-01T00:00:00Z""#).unwrap();
        match e {
            Expr::And(v) => {
                assert_eq!(v.len(), 3);
                assert!(matches!(&v[1], Expr::Or(o) if o.len() == 2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quoted_values_keep_separators_and_undouble_quotes() {
        assert_eq!(
            flat(&parse(r#"Name=="a;b,(c) ""q""""#).unwrap()),
            cmp("Name", Op::Eq, r#"a;b,(c) "q""#, true)
        );
        assert_eq!(
            flat(&parse("Name==\u{201D}Fileserver Backup\u{201D}").unwrap()),
            cmp("Name", Op::Eq, "Fileserver Backup", true)
        );
        assert_eq!(
            flat(&parse(r#"Name=="""#).unwrap()),
            cmp("Name", Op::Eq, "", true)
        );
    }

    #[test]
    fn unquoted_values_drop_spaces_and_keep_dates_whole() {
        assert_eq!(
            flat(&parse(" Name == File server ").unwrap()),
            cmp("Name", Op::Eq, "Fileserver", false)
        );
        assert_eq!(
            flat(&parse("CreationTime>2024-01-01T00:00:00.5Z").unwrap()),
            cmp("CreationTime", Op::Gt, "2024-01-01T00:00:00.5Z", false)
        );
    }

    fn err(s: &str) -> FilterError {
        parse(s).unwrap_err()
    }

    #[test]
    fn errors_name_position_and_token() {
        let e = err("Name=\"x\"");
        assert_eq!((e.position, e.found.as_str()), (5, "'='"));
        assert!(e.message.contains("=="), "{e}");

        let e = err("Name\"x\"");
        assert_eq!((e.position, e.found.as_str()), (5, "'\"'"));
        assert!(e.message.contains("comparison operator"), "{e}");

        let e = err("Name==\"abc");
        assert_eq!((e.position, e.found.as_str()), (7, "'\"'"));
        assert!(e.message.contains("never closed"), "{e}");

        let e = err("(a==1;b==2");
        assert_eq!((e.position, e.found.as_str()), (11, "end of filter"));
        assert!(e.message.contains("position 1"), "{e}");

        let e = err("a==1;;b==2");
        assert_eq!((e.position, e.found.as_str()), (6, "';'"));
        assert!(e.message.contains("field name"), "{e}");

        let e = err("a==");
        assert_eq!((e.position, e.found.as_str()), (4, "end of filter"));

        let e = err("a==\"x\"junk");
        assert_eq!((e.position, e.found.as_str()), (7, "'junk'"));

        let e = err("a==1)");
        assert_eq!((e.position, e.found.as_str()), (5, "')'"));

        let e = err("   ");
        assert_eq!(e.position, 4);
        assert_eq!(
            e.to_string(),
            "Invalid filter at position 4 (end of filter): the filter is empty; expected a comparison such as Name==\"x\""
        );
    }

    #[test]
    fn nesting_is_bounded_instead_of_overflowing_the_stack() {
        let ok = format!(
            "{}a==1{}",
            "(".repeat(MAX_GROUP_DEPTH),
            ")".repeat(MAX_GROUP_DEPTH)
        );
        assert!(parse(&ok).is_ok());
        let deep = format!("{}a==1{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = err(&deep);
        assert_eq!((e.position, e.found.as_str()), (MAX_GROUP_DEPTH + 1, "'('"));
        assert!(e.message.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let e = err("Name==\"é\"x");
        assert_eq!(e.position, 10);
    }
}
