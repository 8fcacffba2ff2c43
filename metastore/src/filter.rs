//! Hive's partition filter language: the strings clients pass to
//! `get_partitions_by_filter`, `get_num_partitions_by_filter` and
//! `get_partition_names_by_filter`, such as `ds = "2024-01-01" and hr > 3`.
//! [`parse`] reads one into an [`Expr`]; [`Expr::bind`] checks it against a
//! table's partition keys; [`BoundFilter::matches`] then tests partitions.
//!
//! # Grammar
//!
//! The union of Hive 2.3/3's `Filter.g` and Hive 4's `PartitionFilter.g4`
//! (standalone-metastore/metastore-server/src/main/java/org/apache/hadoop/hive/metastore/parser/),
//! plus a few additions marked (+):
//!
//! ```text
//! filter     := or | ""                        (empty: every partition)
//! or         := and (OR and)*
//! and        := unary (AND unary)*             (AND binds tighter than OR)
//! unary      := NOT unary (+) | "(" or ")" | condition
//! condition  := key op value | value op key
//!             | key [NOT] BETWEEN value AND value
//!             | "(" key ")" [NOT] IN "(" value ("," value)* ")"
//!             | key [NOT] IN "(" value ("," value)* ")"              (+)
//!             | key NOT LIKE value                                    (+)
//!             | "(" STRUCT "(" key ("," key)* ")" ")" [NOT] IN
//!                   "(" [CONST] STRUCT "(" values ")" ("," ...)* ")"
//! op         := = | == | <> | != | < | <= | > | >= | LIKE
//! key        := [A-Za-z0-9_]+ | `back``quoted`
//! value      := string+ | [-]digits | yyyy-mm-dd | yyyy-mm-dd hh:mm:ss
//!             | DATE string | TIMESTAMP string
//! string     := '...' | "..."   (a backslash escapes the next character)
//! ```
//!
//! Keywords are case-insensitive. As in Hive, a backslash only stops the
//! next character from ending the string: it stays in the value (`"a\"b"`
//! is the four characters `a\"b`), and adjacent strings are glued the way
//! Hive 4 glues them (`'a' 'b'` is `a''b`). Spark never sends either: it
//! quotes with whichever quote the value lacks. `<=>` parses but is refused,
//! as Hive 4 refuses it. (+): Hive writes IN only as `(key) IN (...)` and
//! has no general NOT; `key IN (...)`, `NOT <condition>` and `NOT LIKE` are
//! accepted too. A key may be a keyword where nothing else fits (`date =
//! "2024-01-01"`), which Hive rejects.
//!
//! Nesting is handled without recursion, so a hostile filter cannot
//! overflow the stack: more than [`MAX_NESTING`] open parentheses or NOTs,
//! or AND/OR nested deeper than [`MAX_TREE_DEPTH`] once flattened, is an
//! error. Spark's long `((a or b) or c) ...` chains flatten to depth one.
//!
//! # Semantics
//!
//! Hive compares in two ways: its direct-SQL path (MetaStoreDirectSql's
//! PartitionFilterGenerator) casts the stored text to the key's type; its
//! JDO fallback (ExpressionTree) compares strings and refuses other types.
//! We follow direct SQL, which answers first and is what users expect
//! (`hr > 3` must not match `hr=10` by string order):
//!
//! - `string`, `char`, `varchar` keys compare as strings (code point
//!   order, case-sensitive); a date or timestamp literal is compared as its
//!   text; an integer literal is an error, as in Hive.
//! - `tinyint`, `smallint`, `int`, `bigint` keys compare as integers. The
//!   value may be an integer literal or a string holding one (`p = "5"`,
//!   which Hive refuses); any other literal is an error that starts with
//!   Hive's "Filtering is supported only on partition keys of type string".
//!   A stored value that is not an integer never matches.
//! - `date` keys compare as dates and `timestamp` keys as timestamps; the
//!   literal may be quoted or a DATE/TIMESTAMP literal and must parse.
//! - Other key types are errors, as in Hive.
//! - The default partition ([`DEFAULT_PARTITION_NAME`], Hive's stand-in
//!   for null) never matches a comparison on a non-string key, whatever the
//!   operator, as SQL's null would not (Hive's `case when PART_KEY_VAL <>
//!   '__HIVE_DEFAULT_PARTITION__' then cast(...) else null end`). Comparing
//!   with that very name (`p = "__HIVE_DEFAULT_PARTITION__"`) compares the
//!   stored text instead, which is how Hive lets clients select it. On
//!   string keys it is an ordinary string, as in Hive.
//! - `LIKE` matches the stored text, case-sensitively, against a pattern in
//!   either dialect Hive has used: SQL's (`%` any run, `_` one character,
//!   `\` escapes the next character; Hive 3+ direct SQL) and the Java regex
//!   subset its JDO path hands to DataNucleus (`.*` any run, `.` one
//!   character), which is what Spark sends for startsWith/endsWith/contains
//!   (`p like "abc.*"`). Other regex syntax is literal. A pattern meant in
//!   one dialect can match a little more under the other (`.` in an SQL
//!   pattern); clients re-check partitions, so a superset is safe.
//!   `value LIKE key` is an error, with Hive's message.
//! - Key names match case-insensitively; an unknown key is an error with
//!   Hive's message.
//! - `BETWEEN a AND b` is `>= a AND <= b`, `NOT BETWEEN` is `< a OR > b`;
//!   `IN` is ORed `=`, `NOT IN` is ANDed `!=`; NOT is pushed down to the
//!   comparisons by inverting them, as Hive 4 does, so the default
//!   partition still matches nothing under NOT.

use std::cmp::Ordering;
use std::fmt;

use crate::names::DEFAULT_PARTITION_NAME;

/// Most open parentheses and NOTs a filter may nest.
pub const MAX_NESTING: usize = 10_000;

/// Most levels of AND/OR a parsed filter may have after flattening (`a and
/// (b and c)` is one level). Bounds the recursion of everything that walks
/// an [`Expr`].
pub const MAX_TREE_DEPTH: usize = 500;

/// A partition key of the table a filter is evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKey {
    /// The key's name, as stored (Hive stores it lower-cased).
    pub name: String,
    /// The key's Hive type, such as `string`, `int` or `varchar(10)`.
    pub type_name: String,
}

impl PartitionKey {
    /// A key from its name and Hive type.
    pub fn new(name: impl Into<String>, type_name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            type_name: type_name.into(),
        }
    }
}

/// A parsed filter. AND and OR hold their operands in order and are never
/// directly nested in themselves (`a and (b and c)` is one `And`); NOT has
/// already been pushed down into the comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// True when every operand is; `And(vec![])` is the empty filter.
    And(Vec<Expr>),
    /// True when some operand is.
    Or(Vec<Expr>),
    /// One comparison of a key with a constant.
    Compare(Comparison),
}

/// `key op value`, with the key on the left whatever the filter's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The key as written (unquoted if it was backquoted).
    pub key: String,
    /// The operator.
    pub op: CompareOp,
    /// The constant.
    pub value: Literal,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `=` or `==`.
    Eq,
    /// `<>` or `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `LIKE`.
    Like,
    /// `NOT LIKE`, or a negated LIKE.
    NotLike,
}

impl CompareOp {
    /// The operator that holds when this one does not.
    fn inverted(self) -> Self {
        match self {
            Self::Eq => Self::Ne,
            Self::Ne => Self::Eq,
            Self::Lt => Self::Ge,
            Self::Le => Self::Gt,
            Self::Gt => Self::Le,
            Self::Ge => Self::Lt,
            Self::Like => Self::NotLike,
            Self::NotLike => Self::Like,
        }
    }

    /// The operator with its operands swapped (`5 < k` is `k > 5`).
    fn mirrored(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
            other => other,
        }
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Self::Eq => ordering == Ordering::Equal,
            Self::Ne => ordering != Ordering::Equal,
            Self::Lt => ordering == Ordering::Less,
            Self::Le => ordering != Ordering::Greater,
            Self::Gt => ordering == Ordering::Greater,
            Self::Ge => ordering != Ordering::Less,
            // LIKE never reaches an ordering comparison.
            Self::Like | Self::NotLike => false,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Like => "LIKE",
            Self::NotLike => "NOT LIKE",
        })
    }
}

/// A constant in a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A quoted string, quotes removed, backslashes kept (see the module
    /// documentation).
    String(String),
    /// An integer.
    Integer(i64),
    /// `DATE '2024-01-01'` or a bare `2024-01-01`, checked to be a date.
    Date(String),
    /// `TIMESTAMP '2024-01-01 10:00:00'` or a bare `2024-01-01 10:00:00`.
    Timestamp(String),
}

impl Literal {
    /// The literal as text, as compared with string keys.
    fn text(&self) -> String {
        match self {
            Self::String(s) | Self::Date(s) | Self::Timestamp(s) => s.clone(),
            Self::Integer(i) => i.to_string(),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => write!(f, "{s:?}"),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Date(s) => write!(f, "DATE '{s}'"),
            Self::Timestamp(s) => write!(f, "TIMESTAMP '{s}'"),
        }
    }
}

/// Why a filter could not be parsed or applied. Every message is meant for
/// a client, as the text of a `MetaException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The filter is not in the grammar. `position` counts characters from
    /// 0, as ANTLR's column numbers in Hive's messages do.
    #[error("Error parsing partition filter at position {position}: {message}")]
    Syntax {
        /// Where the problem starts, in characters from the start.
        position: usize,
        /// What was expected and what was found.
        message: String,
    },
    /// The filter names a key the table is not partitioned by (Hive's
    /// message, from ExpressionTree.LeafNode.getPartColIndexForFilter).
    #[error("Specified key <{key}> is not a partitioning key for the table")]
    UnknownKey {
        /// The key as written in the filter.
        key: String,
    },
    /// The filter compares a key whose type cannot be filtered on
    /// (Hive's direct-SQL message, with the key added).
    #[error("Filter pushdown not supported for type {type_name} (partition key <{key}>)")]
    UnsupportedKeyType {
        /// The key as written in the filter.
        key: String,
        /// The key's type.
        type_name: String,
    },
    /// A constant that cannot be compared with the key's type, such as a
    /// string on an int key. The message starts like Hive's.
    #[error(
        "Filtering is supported only on partition keys of type string, or on integral, \
         date and timestamp keys with constants of their type: key <{key}> of type \
         {type_name} cannot be compared with {value}"
    )]
    TypeMismatch {
        /// The key as written in the filter.
        key: String,
        /// The key's type.
        type_name: String,
        /// The constant, as it would be written in a filter.
        value: String,
    },
    /// The partition given to [`BoundFilter::matches`] or
    /// [`Expr::evaluate`] has another number of values than the table has
    /// keys (a caller's mistake, not a client's).
    #[error("A partition has {values} values but its table has {keys} partition keys")]
    ValueCount {
        /// How many keys the table has.
        keys: usize,
        /// How many values were given.
        values: usize,
    },
}

// ---------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Minus,
    Op(CompareOp),
    /// `<=>`, lexed so it can be refused by name.
    NullSafeEq,
    /// A quoted string with its quotes, as written.
    Str(String),
    Integer(String),
    DateValue(String),
    TimestampValue(String),
    Word(String),
    QuotedIdent(String),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Character offset of the token's first character.
    pos: usize,
}

fn syntax(position: usize, message: impl Into<String>) -> FilterError {
    FilterError::Syntax {
        position,
        message: message.into(),
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::Minus => "'-'".into(),
        Tok::Op(op) => format!("'{op}'"),
        Tok::NullSafeEq => "'<=>'".into(),
        Tok::Str(s) => format!("string {s}"),
        Tok::Integer(s) | Tok::DateValue(s) | Tok::TimestampValue(s) => format!("'{s}'"),
        Tok::Word(s) => format!("'{s}'"),
        Tok::QuotedIdent(s) => format!("`{s}`"),
        Tok::Eof => "the end of the filter".into(),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `chars[at..]` starts with `pattern`, where `9` stands for any
/// ASCII digit.
fn shape_at(chars: &[char], at: usize, pattern: &str) -> bool {
    let mut rest = chars.get(at..).unwrap_or(&[]).iter();
    pattern.chars().all(|p| match rest.next() {
        Some(&c) if p == '9' => c.is_ascii_digit(),
        Some(&c) => c == p,
        None => false,
    })
}

fn lex(input: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        // Hive's WS rule: space, tab, CR, LF.
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            i += 1;
            continue;
        }
        let text = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '-' => {
                i += 1;
                Tok::Minus
            }
            '=' => {
                i += if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                Tok::Op(CompareOp::Eq)
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Op(CompareOp::Ne)
            }
            '<' => match (chars.get(i + 1), chars.get(i + 2)) {
                (Some('='), Some('>')) => {
                    i += 3;
                    Tok::NullSafeEq
                }
                (Some('='), _) => {
                    i += 2;
                    Tok::Op(CompareOp::Le)
                }
                (Some('>'), _) => {
                    i += 2;
                    Tok::Op(CompareOp::Ne)
                }
                _ => {
                    i += 1;
                    Tok::Op(CompareOp::Lt)
                }
            },
            '>' => {
                if chars.get(i + 1) == Some(&'=') {
                    i += 2;
                    Tok::Op(CompareOp::Ge)
                } else {
                    i += 1;
                    Tok::Op(CompareOp::Gt)
                }
            }
            '\'' | '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax(start, "unterminated string literal")),
                        Some('\\') => {
                            if i + 1 >= chars.len() {
                                return Err(syntax(start, "unterminated string literal"));
                            }
                            i += 2;
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                Tok::Str(text(start, i))
            }
            '`' => {
                i += 1;
                let mut name = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(syntax(start, "unterminated quoted identifier")),
                        Some('`') if chars.get(i + 1) == Some(&'`') => {
                            name.push('`');
                            i += 2;
                        }
                        Some('`') => {
                            i += 1;
                            break;
                        }
                        Some(&other) => {
                            name.push(other);
                            i += 1;
                        }
                    }
                }
                Tok::QuotedIdent(name)
            }
            c if is_word_char(c) => {
                // ANTLR takes the longest match: a timestamp, then a date,
                // then a run of word characters (all digits: an integer).
                if shape_at(&chars, i, "9999-99-99 99:99:99") {
                    i += 19;
                    Tok::TimestampValue(text(start, i))
                } else if shape_at(&chars, i, "9999-99-99") {
                    i += 10;
                    Tok::DateValue(text(start, i))
                } else {
                    while i < chars.len() && is_word_char(chars[i]) {
                        i += 1;
                    }
                    let word = text(start, i);
                    if word.bytes().all(|b| b.is_ascii_digit()) {
                        Tok::Integer(word)
                    } else {
                        Tok::Word(word)
                    }
                }
            }
            other => {
                return Err(syntax(start, format!("unexpected character {other:?}")));
            }
        };
        tokens.push(Token { tok, pos: start });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        pos: chars.len(),
    });
    Ok(tokens)
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

/// Reads a filter. The empty string is the filter that every partition
/// matches (`And(vec![])`), as in Hive; anything else must be a condition.
pub fn parse(filter: &str) -> Result<Expr, FilterError> {
    if filter.is_empty() {
        return Ok(Expr::And(Vec::new()));
    }
    let tokens = lex(filter)?;
    Parser { tokens, at: 0 }.parse_filter()
}

/// Operators waiting on the parser's stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackOp {
    Open(usize),
    Not,
    And,
    Or,
}

/// An operand with its AND/OR depth.
struct Operand {
    expr: Expr,
    depth: usize,
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

fn is_keyword(tok: &Tok, keyword: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
}

impl Parser {
    fn peek(&self, ahead: usize) -> &Tok {
        let i = (self.at + ahead).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn pos(&self) -> usize {
        self.tokens[self.at.min(self.tokens.len() - 1)].pos
    }

    fn next(&mut self) -> Token {
        let token = self.tokens[self.at.min(self.tokens.len() - 1)].clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    fn expected(&self, what: &str) -> FilterError {
        syntax(
            self.pos(),
            format!("expected {what}, found {}", describe(self.peek(0))),
        )
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), FilterError> {
        if self.peek(0) == tok {
            self.next();
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), FilterError> {
        if is_keyword(self.peek(0), keyword) {
            self.next();
            Ok(())
        } else {
            Err(self.expected(keyword))
        }
    }

    /// Operator precedence without recursion: operands and operators on two
    /// stacks, reduced as precedence requires.
    fn parse_filter(mut self) -> Result<Expr, FilterError> {
        let mut operands: Vec<Operand> = Vec::new();
        // Bounded by MAX_NESTING: each level of parentheses or NOT holds
        // at most one Open/Not and two pending ANDs/ORs.
        let mut ops: Vec<(StackOp, usize)> = Vec::new();
        loop {
            // Expecting an operand.
            let pos = self.pos();
            if is_keyword(self.peek(0), "NOT") && !self.not_is_a_key() {
                if ops.len() >= MAX_NESTING {
                    return Err(too_deep(pos));
                }
                self.next();
                ops.push((StackOp::Not, pos));
                continue;
            }
            if self.peek(0) == &Tok::LParen && !self.paren_starts_condition() {
                if ops.len() >= MAX_NESTING {
                    return Err(too_deep(pos));
                }
                self.next();
                ops.push((StackOp::Open(pos), pos));
                continue;
            }
            let condition = self.parse_condition()?;
            let depth = match &condition {
                Expr::Compare(_) => 0,
                _ => 2,
            };
            operands.push(Operand {
                expr: condition,
                depth,
            });

            // Expecting an operator, a ')' or the end.
            loop {
                let pos = self.pos();
                match self.peek(0).clone() {
                    Tok::RParen => {
                        self.next();
                        loop {
                            match ops.pop() {
                                Some((StackOp::Open(_), _)) => break,
                                Some((op, op_pos)) => reduce(&mut operands, op, op_pos)?,
                                None => return Err(syntax(pos, "unbalanced ')'")),
                            }
                        }
                        // A NOT before the group applies now.
                        while let Some(&(StackOp::Not, op_pos)) = ops.last() {
                            ops.pop();
                            reduce(&mut operands, StackOp::Not, op_pos)?;
                        }
                    }
                    Tok::Word(w)
                        if w.eq_ignore_ascii_case("AND") || w.eq_ignore_ascii_case("OR") =>
                    {
                        self.next();
                        let op = if w.eq_ignore_ascii_case("AND") {
                            StackOp::And
                        } else {
                            StackOp::Or
                        };
                        while let Some(&(top, top_pos)) = ops.last() {
                            let reduces = match top {
                                StackOp::Not => true,
                                StackOp::And => true,
                                StackOp::Or => op == StackOp::Or,
                                StackOp::Open(_) => false,
                            };
                            if !reduces {
                                break;
                            }
                            ops.pop();
                            reduce(&mut operands, top, top_pos)?;
                        }
                        ops.push((op, pos));
                        break;
                    }
                    Tok::Eof => {
                        while let Some((op, op_pos)) = ops.pop() {
                            if let StackOp::Open(open) = op {
                                return Err(syntax(
                                    pos,
                                    format!("expected ')' to close the '(' at position {open}"),
                                ));
                            }
                            reduce(&mut operands, op, op_pos)?;
                        }
                        let result = operands.pop().expect("one operand is left");
                        debug_assert!(operands.is_empty());
                        return Ok(result.expr);
                    }
                    _ => return Err(self.expected("AND, OR, ')' or the end of the filter")),
                }
            }
        }
    }

    /// `NOT` at the start of an operand is a key named "not" only when a
    /// comparison operator follows it (`not = 1`).
    fn not_is_a_key(&self) -> bool {
        matches!(self.peek(1), Tok::Op(_) | Tok::NullSafeEq)
    }

    /// Whether the `(` at the cursor opens `(key) [NOT] IN` or
    /// `(STRUCT(...)) [NOT] IN` rather than a group.
    fn paren_starts_condition(&self) -> bool {
        if is_keyword(self.peek(1), "STRUCT") && self.peek(2) == &Tok::LParen {
            return true;
        }
        let key = matches!(self.peek(1), Tok::Word(_) | Tok::QuotedIdent(_));
        key && self.peek(2) == &Tok::RParen
            && (is_keyword(self.peek(3), "IN")
                || (is_keyword(self.peek(3), "NOT") && is_keyword(self.peek(4), "IN")))
    }

    fn parse_key(&mut self) -> Result<String, FilterError> {
        match self.peek(0).clone() {
            Tok::Word(w) => {
                self.next();
                Ok(w)
            }
            Tok::QuotedIdent(name) => {
                self.next();
                Ok(name)
            }
            _ => Err(self.expected("a partition key")),
        }
    }

    /// Whether a value (rather than a key) starts at the cursor.
    fn at_value(&self) -> bool {
        match self.peek(0) {
            Tok::Str(_) | Tok::Integer(_) | Tok::Minus | Tok::DateValue(_) => true,
            Tok::TimestampValue(_) => true,
            t @ Tok::Word(_) => {
                (is_keyword(t, "DATE") || is_keyword(t, "TIMESTAMP"))
                    && matches!(self.peek(1), Tok::Str(_))
            }
            _ => false,
        }
    }

    fn parse_value(&mut self) -> Result<Literal, FilterError> {
        let pos = self.pos();
        match self.peek(0).clone() {
            Tok::Str(first) => {
                self.next();
                // Hive 4's `STRING+`: the tokens' texts glued, then unquoted.
                let mut raw = first;
                while let Tok::Str(more) = self.peek(0).clone() {
                    self.next();
                    raw.push_str(&more);
                }
                Ok(Literal::String(unquote(&raw)))
            }
            Tok::Minus => {
                self.next();
                match self.peek(0).clone() {
                    Tok::Integer(digits) => {
                        self.next();
                        parse_integer(&format!("-{digits}"), pos)
                    }
                    _ => Err(self.expected("digits after '-'")),
                }
            }
            Tok::Integer(digits) => {
                self.next();
                parse_integer(&digits, pos)
            }
            Tok::DateValue(text) => {
                self.next();
                check_date(&text, pos)?;
                Ok(Literal::Date(text))
            }
            Tok::TimestampValue(text) => {
                self.next();
                check_timestamp(&text, pos)?;
                Ok(Literal::Timestamp(text))
            }
            t @ Tok::Word(_) if is_keyword(&t, "DATE") || is_keyword(&t, "TIMESTAMP") => {
                let is_date = is_keyword(&t, "DATE");
                self.next();
                let text = match self.peek(0).clone() {
                    Tok::Str(raw) => {
                        self.next();
                        unquote(&raw)
                    }
                    _ => return Err(self.expected("a quoted string")),
                };
                if is_date {
                    check_date(&text, pos)?;
                    Ok(Literal::Date(text))
                } else {
                    check_timestamp(&text, pos)?;
                    Ok(Literal::Timestamp(text))
                }
            }
            _ => Err(self.expected("a value (a quoted string, an integer or a date)")),
        }
    }

    fn parse_value_list(&mut self) -> Result<Vec<Literal>, FilterError> {
        self.expect(&Tok::LParen, "'('")?;
        let mut values = vec![self.parse_value()?];
        while self.peek(0) == &Tok::Comma {
            self.next();
            values.push(self.parse_value()?);
        }
        self.expect(&Tok::RParen, "',' or ')'")?;
        Ok(values)
    }

    fn parse_op(&mut self) -> Result<CompareOp, FilterError> {
        match self.peek(0).clone() {
            Tok::Op(op) => {
                self.next();
                Ok(op)
            }
            Tok::NullSafeEq => Err(syntax(self.pos(), "Unsupported comparison operator: <=>")),
            t if is_keyword(&t, "LIKE") => {
                self.next();
                Ok(CompareOp::Like)
            }
            _ => Err(self.expected("a comparison operator")),
        }
    }

    /// One condition; never recursive.
    fn parse_condition(&mut self) -> Result<Expr, FilterError> {
        if self.peek(0) == &Tok::LParen {
            // paren_starts_condition said so.
            self.next();
            if is_keyword(self.peek(0), "STRUCT") {
                return self.parse_struct_in();
            }
            let key = self.parse_key()?;
            self.expect(&Tok::RParen, "')'")?;
            let negated = self.parse_optional_not();
            self.expect_keyword("IN")?;
            return Ok(in_list(&key, self.parse_value_list()?, negated));
        }
        if self.at_value() {
            let value = self.parse_value()?;
            let op_pos = self.pos();
            let op = self.parse_op()?;
            let key = self.parse_key()?;
            if op == CompareOp::Like {
                return Err(syntax(
                    op_pos,
                    format!("Value should be on the RHS for LIKE operator : Key <{key}>"),
                ));
            }
            return Ok(compare(key, op.mirrored(), value));
        }
        let key = self.parse_key()?;
        let negated = self.parse_optional_not();
        let tok = self.peek(0).clone();
        if is_keyword(&tok, "BETWEEN") {
            self.next();
            let lower = self.parse_value()?;
            self.expect_keyword("AND")?;
            let upper = self.parse_value()?;
            return Ok(if negated {
                Expr::Or(vec![
                    compare(key.clone(), CompareOp::Lt, lower),
                    compare(key, CompareOp::Gt, upper),
                ])
            } else {
                Expr::And(vec![
                    compare(key.clone(), CompareOp::Ge, lower),
                    compare(key, CompareOp::Le, upper),
                ])
            });
        }
        if is_keyword(&tok, "IN") {
            self.next();
            return Ok(in_list(&key, self.parse_value_list()?, negated));
        }
        if negated {
            if is_keyword(&tok, "LIKE") {
                self.next();
                return Ok(compare(key, CompareOp::NotLike, self.parse_value()?));
            }
            return Err(self.expected("BETWEEN, IN or LIKE after NOT"));
        }
        let op = match self.parse_op() {
            Ok(op) => op,
            Err(FilterError::Syntax { position, message }) if message.starts_with("expected") => {
                return Err(syntax(
                    position,
                    format!(
                        "expected a comparison operator, BETWEEN or IN after key <{key}>, found {}",
                        describe(self.peek(0))
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        Ok(compare(key, op, self.parse_value()?))
    }

    fn parse_optional_not(&mut self) -> bool {
        if is_keyword(self.peek(0), "NOT") {
            self.next();
            true
        } else {
            false
        }
    }

    /// `(STRUCT(k1, k2)) [NOT] IN ([CONST] STRUCT(v1, v2), ...)`, cursor
    /// after the first `(`.
    fn parse_struct_in(&mut self) -> Result<Expr, FilterError> {
        self.expect_keyword("STRUCT")?;
        self.expect(&Tok::LParen, "'('")?;
        let mut keys = vec![self.parse_key()?];
        while self.peek(0) == &Tok::Comma {
            self.next();
            keys.push(self.parse_key()?);
        }
        self.expect(&Tok::RParen, "',' or ')'")?;
        self.expect(&Tok::RParen, "')'")?;
        let negated = self.parse_optional_not();
        self.expect_keyword("IN")?;
        self.expect(&Tok::LParen, "'('")?;
        let mut rows = Vec::new();
        loop {
            let pos = self.pos();
            if is_keyword(self.peek(0), "CONST") {
                self.next();
            }
            self.expect_keyword("STRUCT")?;
            let values = self.parse_value_list()?;
            if values.len() != keys.len() {
                return Err(syntax(
                    pos,
                    format!(
                        "Struct key [{}] and value of {} fields sizes do not match.",
                        keys.join(", "),
                        values.len()
                    ),
                ));
            }
            // One row: all keys equal (IN), or some key differs (NOT IN).
            let cells: Vec<Expr> = keys
                .iter()
                .zip(values)
                .map(|(k, v)| {
                    let op = if negated {
                        CompareOp::Ne
                    } else {
                        CompareOp::Eq
                    };
                    compare(k.clone(), op, v)
                })
                .collect();
            rows.push(junction(!negated, cells));
            if self.peek(0) == &Tok::Comma {
                self.next();
                continue;
            }
            self.expect(&Tok::RParen, "',' or ')'")?;
            break;
        }
        Ok(junction(negated, rows))
    }
}

fn too_deep(position: usize) -> FilterError {
    syntax(
        position,
        format!("the filter nests parentheses and NOTs more than {MAX_NESTING} deep"),
    )
}

fn compare(key: String, op: CompareOp, value: Literal) -> Expr {
    Expr::Compare(Comparison { key, op, value })
}

fn in_list(key: &str, values: Vec<Literal>, negated: bool) -> Expr {
    let op = if negated {
        CompareOp::Ne
    } else {
        CompareOp::Eq
    };
    let leaves = values
        .into_iter()
        .map(|v| compare(key.to_string(), op, v))
        .collect();
    junction(negated, leaves)
}

/// AND (`is_and`) or OR of `children`; one child is returned as it is, as
/// Hive's buildTreeFromNodes does.
fn junction(is_and: bool, mut children: Vec<Expr>) -> Expr {
    if children.len() == 1 {
        return children.pop().expect("one child");
    }
    if is_and {
        Expr::And(children)
    } else {
        Expr::Or(children)
    }
}

/// Hive's unquoteString/TrimQuotes: strips one pair of matching quotes.
fn unquote(raw: &str) -> String {
    let b = raw.as_bytes();
    if b.len() > 1 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        raw[1..raw.len() - 1].to_string()
    } else {
        raw.to_string()
    }
}

fn parse_integer(text: &str, pos: usize) -> Result<Literal, FilterError> {
    text.parse::<i64>()
        .map(Literal::Integer)
        .map_err(|_| syntax(pos, format!("integer {text} is out of range")))
}

fn check_date(text: &str, pos: usize) -> Result<(), FilterError> {
    parse_date_strict(text)
        .map(|_| ())
        .ok_or_else(|| syntax(pos, format!("invalid date '{text}', expected yyyy-mm-dd")))
}

fn check_timestamp(text: &str, pos: usize) -> Result<(), FilterError> {
    parse_timestamp(text, true).map(|_| ()).ok_or_else(|| {
        syntax(
            pos,
            format!("invalid timestamp '{text}', expected yyyy-mm-dd hh:mm:ss"),
        )
    })
}

/// Applies a waiting operator to the operands it takes.
fn reduce(operands: &mut Vec<Operand>, op: StackOp, pos: usize) -> Result<(), FilterError> {
    match op {
        StackOp::Not => {
            let operand = operands.pop().expect("NOT has an operand");
            operands.push(Operand {
                expr: negate(operand.expr),
                depth: operand.depth,
            });
        }
        StackOp::And | StackOp::Or => {
            let rhs = operands.pop().expect("a binary operator has two operands");
            let lhs = operands.pop().expect("a binary operator has two operands");
            let is_and = op == StackOp::And;
            let same = |e: &Expr| match e {
                Expr::And(_) => is_and,
                Expr::Or(_) => !is_and,
                Expr::Compare(_) => false,
            };
            let mut depth = 1;
            let mut children = Vec::new();
            for operand in [lhs, rhs] {
                if same(&operand.expr) {
                    depth = depth.max(operand.depth);
                    match operand.expr {
                        Expr::And(c) | Expr::Or(c) => children.extend(c),
                        Expr::Compare(_) => unreachable!(),
                    }
                } else {
                    depth = depth.max(operand.depth + 1);
                    children.push(operand.expr);
                }
            }
            if depth > MAX_TREE_DEPTH {
                return Err(syntax(
                    pos,
                    format!("the filter nests AND and OR more than {MAX_TREE_DEPTH} deep"),
                ));
            }
            let expr = if is_and {
                Expr::And(children)
            } else {
                Expr::Or(children)
            };
            operands.push(Operand { expr, depth });
        }
        StackOp::Open(_) => unreachable!("parentheses are not reduced"),
    }
    Ok(())
}

/// NOT pushed down: De Morgan on AND/OR, inverted comparisons at the leaves
/// (PartFilterVisitor.negateTree in Hive 4). Recursion is bounded by
/// [`MAX_TREE_DEPTH`].
fn negate(expr: Expr) -> Expr {
    match expr {
        Expr::And(children) => Expr::Or(children.into_iter().map(negate).collect()),
        Expr::Or(children) => Expr::And(children.into_iter().map(negate).collect()),
        Expr::Compare(mut c) => {
            c.op = c.op.inverted();
            Expr::Compare(c)
        }
    }
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// How a key's values compare, from its Hive type (Hive's FilterType in
/// MetaStoreDirectSql).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyClass {
    String,
    Integral,
    Date,
    Timestamp,
    Unsupported,
}

fn key_class(type_name: &str) -> KeyClass {
    // ColumnType.getTypeName: the name without its parameters.
    let lower = type_name.trim().to_ascii_lowercase();
    let base = lower.split('(').next().unwrap_or("").trim();
    match base {
        "string" | "char" | "varchar" => KeyClass::String,
        "tinyint" | "smallint" | "int" | "integer" | "bigint" => KeyClass::Integral,
        "date" => KeyClass::Date,
        "timestamp" => KeyClass::Timestamp,
        _ => KeyClass::Unsupported,
    }
}

type Date = (i32, u32, u32);
type Timestamp = (Date, u32, u32, u32, u32);

/// A filter checked against a table's partition keys, ready to test many
/// partitions: keys resolved, constants converted, patterns compiled.
#[derive(Debug, Clone)]
pub struct BoundFilter {
    root: Bound,
    keys: usize,
}

#[derive(Debug, Clone)]
enum Bound {
    And(Vec<Bound>),
    Or(Vec<Bound>),
    Leaf { index: usize, test: Test },
}

#[derive(Debug, Clone)]
enum Test {
    /// Compare the stored text with a string.
    Text {
        op: CompareOp,
        value: String,
    },
    Integer {
        op: CompareOp,
        value: i128,
    },
    Date {
        op: CompareOp,
        value: Date,
    },
    Timestamp {
        op: CompareOp,
        value: Timestamp,
    },
    Like {
        negated: bool,
        pattern: LikePattern,
        /// Whether the default partition never matches (non-string keys).
        skip_default: bool,
    },
}

impl Expr {
    /// The keys the filter names, as first written, each once (compared
    /// ignoring case).
    pub fn referenced_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        let mut stack = vec![self];
        while let Some(expr) = stack.pop() {
            match expr {
                Expr::And(children) | Expr::Or(children) => stack.extend(children.iter().rev()),
                Expr::Compare(c) => {
                    if !keys.iter().any(|k| k.eq_ignore_ascii_case(&c.key)) {
                        keys.push(&c.key);
                    }
                }
            }
        }
        keys
    }

    /// Checks the filter against a table's partition keys: every key must
    /// exist (ignoring case) and be of a type that can be filtered on, and
    /// every constant must suit its key's type.
    pub fn bind(&self, keys: &[PartitionKey]) -> Result<BoundFilter, FilterError> {
        Ok(BoundFilter {
            root: bind_expr(self, keys)?,
            keys: keys.len(),
        })
    }

    /// Whether the partition with `values` (one per key, in key order)
    /// passes the filter. To test many partitions, [`Expr::bind`] once.
    pub fn evaluate(&self, keys: &[PartitionKey], values: &[&str]) -> Result<bool, FilterError> {
        self.bind(keys)?.matches(values)
    }
}

fn bind_expr(expr: &Expr, keys: &[PartitionKey]) -> Result<Bound, FilterError> {
    Ok(match expr {
        Expr::And(children) => Bound::And(
            children
                .iter()
                .map(|c| bind_expr(c, keys))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(children) => Bound::Or(
            children
                .iter()
                .map(|c| bind_expr(c, keys))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Compare(c) => bind_comparison(c, keys)?,
    })
}

fn bind_comparison(c: &Comparison, keys: &[PartitionKey]) -> Result<Bound, FilterError> {
    let index = keys
        .iter()
        .position(|k| {
            k.name.eq_ignore_ascii_case(&c.key) || k.name.to_lowercase() == c.key.to_lowercase()
        })
        .ok_or_else(|| FilterError::UnknownKey { key: c.key.clone() })?;
    let key = &keys[index];
    let class = key_class(&key.type_name);
    if class == KeyClass::Unsupported {
        return Err(FilterError::UnsupportedKeyType {
            key: c.key.clone(),
            type_name: key.type_name.clone(),
        });
    }
    let mismatch = || FilterError::TypeMismatch {
        key: c.key.clone(),
        type_name: key.type_name.clone(),
        value: c.value.to_string(),
    };
    if matches!(c.op, CompareOp::Like | CompareOp::NotLike) {
        let test = Test::Like {
            negated: c.op == CompareOp::NotLike,
            pattern: LikePattern::new(&c.value.text()),
            skip_default: class != KeyClass::String,
        };
        return Ok(Bound::Leaf { index, test });
    }
    let op = c.op;
    let test = match (class, &c.value) {
        (KeyClass::String, Literal::Integer(_)) => return Err(mismatch()),
        (KeyClass::String, value) => Test::Text {
            op,
            value: value.text(),
        },
        // Comparing with the default partition's name compares the stored
        // text, whatever the key's type (MetaStoreDirectSql's
        // isDefaultPartition).
        (_, Literal::String(s)) if s == DEFAULT_PARTITION_NAME => Test::Text {
            op,
            value: s.clone(),
        },
        (KeyClass::Integral, Literal::Integer(i)) => Test::Integer {
            op,
            value: i128::from(*i),
        },
        (KeyClass::Integral, Literal::String(s)) => match s.parse::<i64>() {
            Ok(i) => Test::Integer {
                op,
                value: i128::from(i),
            },
            Err(_) => return Err(mismatch()),
        },
        (KeyClass::Date, Literal::String(s) | Literal::Date(s)) => Test::Date {
            op,
            value: parse_date_strict(s).ok_or_else(mismatch)?,
        },
        (KeyClass::Timestamp, Literal::String(s) | Literal::Timestamp(s) | Literal::Date(s)) => {
            Test::Timestamp {
                op,
                value: parse_timestamp(s, false).ok_or_else(mismatch)?,
            }
        }
        _ => return Err(mismatch()),
    };
    Ok(Bound::Leaf { index, test })
}

impl BoundFilter {
    /// Whether the partition with `values` (one per partition key, in key
    /// order, as stored) passes the filter.
    pub fn matches(&self, values: &[&str]) -> Result<bool, FilterError> {
        if values.len() != self.keys {
            return Err(FilterError::ValueCount {
                keys: self.keys,
                values: values.len(),
            });
        }
        Ok(self.root.matches(values))
    }
}

impl Bound {
    /// Recursion is bounded by [`MAX_TREE_DEPTH`].
    fn matches(&self, values: &[&str]) -> bool {
        match self {
            Bound::And(children) => children.iter().all(|c| c.matches(values)),
            Bound::Or(children) => children.iter().any(|c| c.matches(values)),
            Bound::Leaf { index, test } => test.matches(values[*index]),
        }
    }
}

impl Test {
    fn matches(&self, stored: &str) -> bool {
        let is_default = stored == DEFAULT_PARTITION_NAME;
        match self {
            Test::Text { op, value } => op.holds(stored.cmp(value.as_str())),
            Test::Integer { op, value } => {
                !is_default && parse_stored_integer(stored).is_some_and(|v| op.holds(v.cmp(value)))
            }
            Test::Date { op, value } => {
                !is_default && parse_stored_date(stored).is_some_and(|v| op.holds(v.cmp(value)))
            }
            Test::Timestamp { op, value } => {
                !is_default
                    && parse_timestamp(stored, false).is_some_and(|v| op.holds(v.cmp(value)))
            }
            Test::Like {
                negated,
                pattern,
                skip_default,
            } => {
                if *skip_default && is_default {
                    return false;
                }
                pattern.matches(stored) != *negated
            }
        }
    }
}

/// A stored integral value as SQL's cast to `decimal(21,0)` reads it:
/// surrounding blanks ignored, an optional sign.
fn parse_stored_integer(stored: &str) -> Option<i128> {
    stored.trim().parse::<i128>().ok()
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn valid_date(year: i32, month: u32, day: u32) -> Option<Date> {
    ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
        .then_some((year, month, day))
}

fn digits(s: &str, min: usize, max: usize) -> Option<u32> {
    if s.len() < min || s.len() > max || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `yyyy-mm-dd` exactly, a real calendar date (Hive's non-lenient
/// `yyyy-MM-dd`).
fn parse_date_strict(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    valid_date(digits(y, 4, 4)? as i32, digits(m, 2, 2)?, digits(d, 2, 2)?)
}

/// A stored date value, read as a database's cast would: `yyyy-m-d`, and a
/// time after a space or `T` ignored (some writers store both).
fn parse_stored_date(s: &str) -> Option<Date> {
    let s = s.trim();
    let date = s.split([' ', 'T']).next()?;
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    valid_date(digits(y, 4, 4)? as i32, digits(m, 1, 2)?, digits(d, 1, 2)?)
}

/// `yyyy-mm-dd hh:mm:ss[.fffffffff]`; when `strict` is false a date alone
/// (midnight) and one-digit fields are accepted too.
fn parse_timestamp(s: &str, strict: bool) -> Option<Timestamp> {
    let s = s.trim();
    let (date_part, time_part) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None if !strict => (s, None),
        None => return None,
    };
    let date = if strict {
        parse_date_strict(date_part)?
    } else {
        parse_stored_date(date_part)?
    };
    let Some(time) = time_part else {
        return Some((date, 0, 0, 0, 0));
    };
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time, None),
    };
    let min = if strict { 2 } else { 1 };
    let mut parts = hms.split(':');
    let (h, mi, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (h, mi, sec) = (
        digits(h, min, 2)?,
        digits(mi, min, 2)?,
        digits(sec, min, 2)?,
    );
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let nanos = match fraction {
        None => 0,
        Some(f) => {
            let n = digits(f, 1, 9)?;
            n * 10u32.pow(9 - f.len() as u32)
        }
    };
    Some((date, h, mi, sec, nanos))
}

/// A LIKE pattern in both of Hive's dialects (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LikePattern {
    parts: Vec<LikePart>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LikePart {
    Char(char),
    AnyChar,
    AnyRun,
}

impl LikePattern {
    fn new(pattern: &str) -> Self {
        let chars: Vec<char> = pattern.chars().collect();
        let mut parts = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let part = match chars[i] {
                '\\' if i + 1 < chars.len() => {
                    i += 1;
                    LikePart::Char(chars[i])
                }
                '%' => LikePart::AnyRun,
                '_' => LikePart::AnyChar,
                '.' if chars.get(i + 1) == Some(&'*') => {
                    i += 1;
                    LikePart::AnyRun
                }
                '.' => LikePart::AnyChar,
                c => LikePart::Char(c),
            };
            // Consecutive runs are one run.
            if !(part == LikePart::AnyRun && parts.last() == Some(&LikePart::AnyRun)) {
                parts.push(part);
            }
            i += 1;
        }
        Self { parts }
    }

    /// Whole-string match, iterative with one backtrack point (the last
    /// run), so linear-ish and never recursive.
    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.parts.get(p) {
                Some(LikePart::AnyRun) => {
                    backtrack = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(LikePart::AnyChar) => {
                    p += 1;
                    t += 1;
                    continue;
                }
                Some(LikePart::Char(c)) if *c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            match backtrack {
                Some((bp, bt)) => {
                    p = bp + 1;
                    t = bt + 1;
                    backtrack = Some((bp, bt + 1));
                }
                None => return false,
            }
        }
        self.parts[p..].iter().all(|part| *part == LikePart::AnyRun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(key: &str, op: CompareOp, value: Literal) -> Expr {
        compare(key.to_string(), op, value)
    }
    fn s(v: &str) -> Literal {
        Literal::String(v.to_string())
    }
    fn i(v: i64) -> Literal {
        Literal::Integer(v)
    }
    use CompareOp::*;

    #[test]
    fn parses_every_operator() {
        let cases = [
            ("k = 'v'", cmp("k", Eq, s("v"))),
            ("k == 'v'", cmp("k", Eq, s("v"))),
            ("k <> 'v'", cmp("k", Ne, s("v"))),
            ("k != 'v'", cmp("k", Ne, s("v"))),
            ("k < 1", cmp("k", Lt, i(1))),
            ("k <= 1", cmp("k", Le, i(1))),
            ("k > 1", cmp("k", Gt, i(1))),
            ("k >= -1", cmp("k", Ge, i(-1))),
            ("k >= - 1", cmp("k", Ge, i(-1))),
            ("k like 'a%'", cmp("k", Like, s("a%"))),
            ("k NOT LIKE 'a%'", cmp("k", NotLike, s("a%"))),
            // Reverse order: the operator is mirrored.
            ("1 < k", cmp("k", Gt, i(1))),
            ("'x' >= k", cmp("k", Le, s("x"))),
            ("\"p23\" = p2", cmp("p2", Eq, s("p23"))),
            // Keywords ignore case; keys keep theirs.
            (
                "Ds = 1 AnD HR = 2",
                Expr::And(vec![cmp("Ds", Eq, i(1)), cmp("HR", Eq, i(2))]),
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(parse(filter).unwrap(), expected, "{filter}");
        }
    }

    #[test]
    fn parses_between_in_and_not() {
        let cases = [
            (
                "k between 1 and 3",
                Expr::And(vec![cmp("k", Ge, i(1)), cmp("k", Le, i(3))]),
            ),
            (
                "k NOT BETWEEN 'a' AND 'b'",
                Expr::Or(vec![cmp("k", Lt, s("a")), cmp("k", Gt, s("b"))]),
            ),
            (
                "(k) IN (1, 2, 3)",
                Expr::Or(vec![
                    cmp("k", Eq, i(1)),
                    cmp("k", Eq, i(2)),
                    cmp("k", Eq, i(3)),
                ]),
            ),
            (
                "(k) not in ('a', 'b')",
                Expr::And(vec![cmp("k", Ne, s("a")), cmp("k", Ne, s("b"))]),
            ),
            ("k in (1)", cmp("k", Eq, i(1))),
            ("k not in (1)", cmp("k", Ne, i(1))),
            (
                "not (a = 1 and b < 2)",
                Expr::Or(vec![cmp("a", Ne, i(1)), cmp("b", Ge, i(2))]),
            ),
            ("not a like 'x'", cmp("a", NotLike, s("x"))),
            ("not not a = 1", cmp("a", Eq, i(1))),
            (
                "not k between 1 and 2",
                Expr::Or(vec![cmp("k", Lt, i(1)), cmp("k", Gt, i(2))]),
            ),
            (
                "(struct(a, b)) in (const struct(1, 'x'), struct(2, 'y'))",
                Expr::Or(vec![
                    Expr::And(vec![cmp("a", Eq, i(1)), cmp("b", Eq, s("x"))]),
                    Expr::And(vec![cmp("a", Eq, i(2)), cmp("b", Eq, s("y"))]),
                ]),
            ),
            (
                "(STRUCT(a,b)) NOT IN (CONST STRUCT(1,'x'))",
                Expr::Or(vec![cmp("a", Ne, i(1)), cmp("b", Ne, s("x"))]),
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(parse(filter).unwrap(), expected, "{filter}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let a = || cmp("a", Eq, i(1));
        let b = || cmp("b", Eq, i(2));
        let c = || cmp("c", Eq, i(3));
        let cases = [
            (
                "a = 1 or b = 2 and c = 3",
                Expr::Or(vec![a(), Expr::And(vec![b(), c()])]),
            ),
            (
                "a = 1 and b = 2 or c = 3",
                Expr::Or(vec![Expr::And(vec![a(), b()]), c()]),
            ),
            (
                "(a = 1 or b = 2) and c = 3",
                Expr::And(vec![Expr::Or(vec![a(), b()]), c()]),
            ),
            (
                "a = 1 and (b = 2 or c = 3)",
                Expr::And(vec![a(), Expr::Or(vec![b(), c()])]),
            ),
            (
                "((a = 1) or (b = 2)) or c = 3",
                Expr::Or(vec![a(), b(), c()]),
            ),
            ("a = 1 and b = 2 and c = 3", Expr::And(vec![a(), b(), c()])),
            (
                "not a = 1 and b = 2",
                Expr::And(vec![cmp("a", Ne, i(1)), b()]),
            ),
            (
                "not (a = 1) or b = 2",
                Expr::Or(vec![cmp("a", Ne, i(1)), b()]),
            ),
            ("(((a = 1)))", a()),
        ];
        for (filter, expected) in cases {
            assert_eq!(parse(filter).unwrap(), expected, "{filter}");
        }
    }

    #[test]
    fn literals_and_quoting() {
        let cases = [
            (r#"k = "a b""#, s("a b")),
            ("k = 'say \"hi\"'", s("say \"hi\"")),
            ("k = \"it's\"", s("it's")),
            // Backslashes are kept, as Hive keeps them.
            (r#"k = "a\"b""#, s(r#"a\"b"#)),
            (r"k = 'a\'b'", s(r"a\'b")),
            (r"k = 'a\\'", s(r"a\\")),
            // Hive 4 glues adjacent strings as written.
            ("k = 'a' 'b'", s("a''b")),
            ("k = ''", s("")),
            ("k = 'é中'", s("é中")),
            ("k = 9223372036854775807", i(i64::MAX)),
            ("k = -9223372036854775808", i(i64::MIN)),
            ("k = 007", i(7)),
            ("k = 2024-02-29", Literal::Date("2024-02-29".into())),
            ("k = date '2024-01-01'", Literal::Date("2024-01-01".into())),
            (
                "k = DATE \"2024-01-01\"",
                Literal::Date("2024-01-01".into()),
            ),
            (
                "k = 2024-01-01 10:20:30",
                Literal::Timestamp("2024-01-01 10:20:30".into()),
            ),
            (
                "k = timestamp '2024-01-01 10:20:30.5'",
                Literal::Timestamp("2024-01-01 10:20:30.5".into()),
            ),
        ];
        for (filter, value) in cases {
            assert_eq!(parse(filter).unwrap(), cmp("k", Eq, value), "{filter}");
        }
        // Keys: backquoted, with digits or underscores first, or keywords
        // where nothing else fits.
        let keys = [
            ("`my key` = 1", "my key"),
            ("`a``b` = 1", "a`b"),
            ("`and` = 1", "and"),
            ("_k = 1", "_k"),
            ("1k = 1", "1k"),
            ("date = 1", "date"),
            ("timestamp = 1", "timestamp"),
            ("not = 1", "not"),
            ("and = 1", "and"),
        ];
        for (filter, key) in keys {
            assert_eq!(parse(filter).unwrap(), cmp(key, Eq, i(1)), "{filter}");
        }
        assert_eq!(
            parse("date = '2024-01-01'").unwrap(),
            cmp("date", Eq, s("2024-01-01"))
        );
        assert_eq!(
            parse("date '2024-01-01' < date").unwrap(),
            cmp("date", Gt, Literal::Date("2024-01-01".into()))
        );
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert_eq!(parse("").unwrap(), Expr::And(vec![]));
        let keys = [PartitionKey::new("ds", "string")];
        assert!(parse("").unwrap().evaluate(&keys, &["x"]).unwrap());
    }

    #[test]
    fn syntax_errors_name_position_and_expectation() {
        let cases = [
            (
                "   ",
                3,
                "expected a partition key, found the end of the filter",
            ),
            (
                "c1 >= ",
                6,
                "expected a value (a quoted string, an integer or a date), found the end of the filter",
            ),
            ("p2 !< 'dd'", 3, "unexpected character '!'"),
            ("k = 'abc", 4, "unterminated string literal"),
            (
                "k = 1 and",
                9,
                "expected a partition key, found the end of the filter",
            ),
            (
                "k = 1 k = 2",
                6,
                "expected AND, OR, ')' or the end of the filter, found 'k'",
            ),
            ("(k = 1", 6, "expected ')' to close the '(' at position 0"),
            ("k = 1)", 5, "unbalanced ')'"),
            (
                "k 1",
                2,
                "expected a comparison operator, BETWEEN or IN after key <k>, found '1'",
            ),
            ("k <=> 1", 2, "Unsupported comparison operator: <=>"),
            (
                "'a' like k",
                4,
                "Value should be on the RHS for LIKE operator : Key <k>",
            ),
            (
                "k = 99999999999999999999",
                4,
                "integer 99999999999999999999 is out of range",
            ),
            (
                "k = 2024-02-30",
                4,
                "invalid date '2024-02-30', expected yyyy-mm-dd",
            ),
            (
                "k = date '2024-1-1'",
                4,
                "invalid date '2024-1-1', expected yyyy-mm-dd",
            ),
            (
                "k = timestamp '2024-01-01'",
                4,
                "invalid timestamp '2024-01-01', expected yyyy-mm-dd hh:mm:ss",
            ),
            ("k between 1 or 2", 12, "expected AND, found 'or'"),
            (
                "k not = 1",
                6,
                "expected BETWEEN, IN or LIKE after NOT, found '='",
            ),
            (
                "(k) in ()",
                8,
                "expected a value (a quoted string, an integer or a date), found ')'",
            ),
            ("(k) in (1 2)", 10, "expected ',' or ')', found '2'"),
            (
                "(struct(a, b)) in (struct(1))",
                19,
                "Struct key [a, b] and value of 1 fields sizes do not match.",
            ),
            (
                "k = `x`",
                4,
                "expected a value (a quoted string, an integer or a date), found `x`",
            ),
            (
                "k = 1 and (",
                11,
                "expected a partition key, found the end of the filter",
            ),
            ("é = 1", 0, "unexpected character 'é'"),
        ];
        for (filter, position, message) in cases {
            match parse(filter) {
                Err(FilterError::Syntax {
                    position: p,
                    message: m,
                }) => {
                    assert_eq!((p, m.as_str()), (position, message), "{filter:?}");
                }
                other => panic!("{filter:?}: expected a syntax error, got {other:?}"),
            }
        }
        assert_eq!(
            parse("c1 >= ").unwrap_err().to_string(),
            "Error parsing partition filter at position 6: expected a value (a quoted string, \
             an integer or a date), found the end of the filter"
        );
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}k = 1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(matches!(
            parse(&deep),
            Err(FilterError::Syntax {
                position: 10_000,
                ..
            })
        ));
        let nots = format!("{}k = 1", "not ".repeat(100_000));
        assert!(matches!(parse(&nots), Err(FilterError::Syntax { .. })));
        let unclosed = "(".repeat(100_000);
        assert!(parse(&unclosed).is_err());

        // Alternating AND/OR nesting is bounded too, and a tree at the limit
        // can still be evaluated and dropped on a test thread's stack.
        let alternating = |levels: usize| {
            let mut f = String::from("k = 0");
            for n in 0..levels {
                let op = if n % 2 == 0 { "and" } else { "or" };
                f = format!("k = {n} {op} ({f})");
            }
            f
        };
        let at_limit = parse(&alternating(MAX_TREE_DEPTH)).unwrap();
        let keys = [PartitionKey::new("k", "int")];
        assert!(at_limit.evaluate(&keys, &["0"]).is_ok());
        assert!(parse(&alternating(MAX_TREE_DEPTH + 1)).is_err());

        // Spark's left-deep `((a or b) or c)` chains flatten to one OR; only
        // their parentheses count against MAX_NESTING.
        let mut chain = String::from("k = 0");
        for n in 1..20_000 {
            chain = format!("({chain} or k = {n})");
        }
        let chain = parse(&chain[..]);
        assert!(
            chain.is_err(),
            "20000 nested parentheses exceed MAX_NESTING"
        );
        let mut chain = String::from("k = 0");
        for n in 1..5_000 {
            chain = format!("({chain} or k = {n})");
        }
        match parse(&chain).unwrap() {
            Expr::Or(children) => assert_eq!(children.len(), 5_000),
            other => panic!("{other:?}"),
        }
    }

    /// TestHiveMetaStore.testPartitionFilter (Hive 3/4,
    /// standalone-metastore/metastore-server/src/test/java/org/apache/hadoop/hive/metastore/TestHiveMetaStore.java):
    /// p1 string, p2 string, p3 int, six partitions; the expected counts
    /// are Hive's.
    #[test]
    fn hive_test_partition_filter_cases() {
        let keys = [
            PartitionKey::new("p1", "string"),
            PartitionKey::new("p2", "string"),
            PartitionKey::new("p3", "int"),
        ];
        let parts: [[&str; 3]; 6] = [
            ["p11", "p21", "31"],
            ["p11", "p22", "32"],
            ["p12", "p21", "31"],
            ["p12", "p23", "32"],
            ["p13", "p24", "31"],
            ["p13", "p25", "-33"],
        ];
        let cases = [
            ("p1 = \"p11\"", 2),
            ("p1 = \"p12\"", 2),
            ("p2 = \"p21\"", 2),
            ("p2 = \"p23\"", 1),
            ("p3 = 31", 3),
            ("p3 = 33", 0),
            ("p3 = -33", 1),
            ("p1 = \"p11\" and p2=\"p22\"", 1),
            ("p1 = \"p11\" or p2=\"p23\"", 3),
            ("p1 = \"p11\" or p1=\"p12\"", 4),
            ("p1 = \"p11\" and p3 = 31", 1),
            ("p3 = -33 or p1 = \"p12\"", 3),
            ("p1 != \"p11\"", 4),
            ("p2 != \"p23\"", 5),
            ("p2 != \"p33\"", 6),
            ("p3 != 32", 4),
            ("p3 != 8589934592", 6),
            ("p1 != \"p11\" and p1 != \"p12\"", 2),
            ("p1 != \"p11\" and p2 != \"p22\"", 4),
            ("p1 != \"p11\" or p2 != \"p22\"", 5),
            ("p1 != \"p12\" and p2 != \"p25\"", 3),
            ("p1 != \"p12\" or p2 != \"p25\"", 6),
            ("p3 != -33 or p1 != \"p13\"", 5),
            ("p1 != \"p11\" and p3 = 31", 2),
            ("p3 != 31 and p1 = \"p12\"", 1),
            ("31 != p3 and p1 = \"p12\"", 1),
            ("\"p23\" = p2", 1),
            ("p1 = \"p11\" or (p1=\"p12\" and p2=\"p21\")", 3),
            (
                "p1 = \"p11\" or (p1=\"p12\" and p2=\"p21\") Or (p1=\"p13\" aNd p2=\"p24\")",
                4,
            ),
            ("p1=\"p12\" and (p2=\"p27\" Or p2=\"p21\")", 1),
            ("p1=\"p12\" and p2=\"p27\" Or p2=\"p21\"", 2),
            ("p1 > \"p12\"", 2),
            ("p1 >= \"p12\"", 4),
            ("p1 < \"p12\"", 2),
            ("p1 <= \"p12\"", 4),
            ("p1 like \"p1.*\"", 6),
            ("p2 like \"p.*3\"", 1),
            ("p3 < 0", 1),
            ("p3 >= -33", 6),
            ("p3 > -33", 5),
            ("p3 > 31 and p3 < 32", 0),
            ("p3 > 31 or p3 < 31", 3),
            ("p3 > 30 or p3 < 30", 6),
            ("p3 >= 31 or p3 < -32", 6),
            ("p3 >= 32", 2),
            ("p3 > 32", 0),
            ("p1 between \"p11\" and \"p12\"", 4),
            ("p1 not between \"p11\" and \"p12\"", 2),
            ("p3 not between 0 and 2", 6),
            ("p3 between 31 and 32", 5),
            ("p3 between 32 and 31", 0),
            ("p3 between -32 and 34 and p3 not between 31 and 32", 0),
            ("p3 between 1 and 3 or p3 not between 1 and 3", 6),
            ("p3 between 31 and 32 and p1 between \"p12\" and \"p14\"", 3),
        ];
        for (filter, expected) in cases {
            let bound = parse(filter).unwrap().bind(&keys).unwrap();
            let count = parts
                .iter()
                .filter(|p| bound.matches(&p[..]).unwrap())
                .count();
            assert_eq!(count, expected, "{filter}");
        }
        // Hive's negative cases.
        let err = parse("p3 >= \"p12\"").unwrap().bind(&keys).unwrap_err();
        assert!(
            err.to_string()
                .contains("Filtering is supported only on partition keys of type string"),
            "{err}"
        );
        let err = parse("c1 >= \"p12\"").unwrap().bind(&keys).unwrap_err();
        assert!(
            err.to_string()
                .contains("<c1> is not a partitioning key for the table")
        );
        assert!(
            parse("c1 >= ")
                .unwrap_err()
                .to_string()
                .contains("Error parsing partition filter")
        );
        assert!(parse("p2 !< 'dd'").is_err());
    }

    /// Filters as Spark 3.x's HiveShim.convertFilters writes them
    /// (sql/hive/src/main/scala/org/apache/spark/sql/hive/client/HiveShim.scala):
    /// `name op value` with strings quoted by quoteStringLiteral, integers
    /// and dates bare, IN as `(a = 1 or a = 2)`, NOT IN as `!=` ANDed,
    /// And/Or parenthesised, startsWith/endsWith/contains as LIKE `.*`.
    #[test]
    fn spark_filters() {
        let keys = [
            PartitionKey::new("ds", "string"),
            PartitionKey::new("hr", "int"),
            PartitionKey::new("day", "date"),
        ];
        let part = ["2024-01-01", "10", "2024-01-01"];
        let default = [
            DEFAULT_PARTITION_NAME,
            DEFAULT_PARTITION_NAME,
            DEFAULT_PARTITION_NAME,
        ];
        let cases = [
            ("ds = \"2024-01-01\"", true, false),
            ("hr = 10", true, false),
            ("hr > 9", true, false),
            ("hr > 9 and ds = \"2024-01-01\"", true, false),
            ("(hr > 9 and ds = \"2024-01-01\")", true, false),
            ("(hr < 9 or ds = \"2024-01-01\")", true, false),
            ("((hr < 9 or hr = 10) and ds >= \"2024\")", true, false),
            ("(hr = 1 or hr = 2 or hr = 10)", true, false),
            ("(hr != 1 and hr != 2)", true, false),
            ("(ds != \"a\" and ds != \"b\")", true, true),
            ("hr != 10", false, false),
            ("9 < hr", true, false),
            ("\"2024-01-01\" = ds", true, false),
            ("ds like \"2024.*\"", true, false),
            ("ds like \".*01\"", true, false),
            ("ds like \".*-01-.*\"", true, false),
            ("ds like \"2025.*\"", false, false),
            ("day = 2024-01-01", true, false),
            ("day > 2023-12-31", true, false),
            ("(day = 2023-12-31 or day = 2024-01-01)", true, false),
            ("(day != 2023-12-31 and day != 2024-01-02)", true, false),
            ("day like \"2024.*\"", true, false),
            ("ds = 'say \"x\"'", false, false),
        ];
        for (filter, matches_part, matches_default) in cases {
            let bound = parse(filter).unwrap().bind(&keys).unwrap();
            assert_eq!(bound.matches(&part).unwrap(), matches_part, "{filter}");
            assert_eq!(
                bound.matches(&default).unwrap(),
                matches_default,
                "{filter} on default"
            );
        }
    }

    #[test]
    fn numeric_string_date_and_default_semantics() {
        let keys = [
            PartitionKey::new("s", "string"),
            PartitionKey::new("n", "bigint"),
            PartitionKey::new("d", "date"),
            PartitionKey::new("t", "timestamp"),
            PartitionKey::new("v", "varchar(10)"),
        ];
        let eval = |filter: &str, values: [&str; 5]| -> bool {
            parse(filter).unwrap().evaluate(&keys, &values).unwrap()
        };
        let row = ["10", "10", "2024-03-05", "2024-03-05 10:00:00", "10"];
        let cases = [
            // Strings compare as strings, integral keys as numbers.
            ("s > '9'", false),
            ("v > '9'", false),
            ("n > 9", true),
            ("n > '9'", true),
            ("n = '10'", true),
            ("n < 100", true),
            ("n between 9 and 11", true),
            ("s = 2024-03-05", false),
            ("s like '1_'", true),
            ("s like '1%'", true),
            ("n like '1%'", true),
            // Dates and timestamps compare as such.
            ("d = '2024-03-05'", true),
            ("d = date '2024-03-05'", true),
            ("d > 2024-03-04", true),
            ("d < '2024-03-10'", true),
            ("t > '2024-03-05 09:59:59'", true),
            ("t = timestamp '2024-03-05 10:00:00.000'", true),
            ("t >= '2024-03-05'", true),
            ("t < 2024-03-05 10:00:01", true),
        ];
        for (filter, expected) in cases {
            assert_eq!(eval(filter, row), expected, "{filter}");
        }
        // Stored integers and dates as a database's cast reads them.
        assert!(eval("n = 7", ["", "007", "2024-3-5", "2024-03-05", ""]));
        assert!(eval("n = -7", ["", " -7 ", "2024-3-5", "2024-03-05", ""]));
        assert!(eval(
            "d = '2024-03-05'",
            ["", "1", "2024-3-5", "2024-03-05", ""]
        ));
        assert!(eval(
            "d = '2024-03-05'",
            ["", "1", "2024-03-05 00:00:00", "2024-03-05", ""]
        ));
        assert!(!eval("n = 1", ["", "one", "2024-03-05", "2024-03-05", ""]));
        assert!(!eval("n != 1", ["", "one", "2024-03-05", "2024-03-05", ""]));
        // Beyond i64: Hive casts to decimal(21,0).
        assert!(eval(
            "n < 1",
            ["", "-99999999999999999999", "2024-03-05", "2024-03-05", ""]
        ));

        // The default partition matches no comparison on non-string keys...
        let d = DEFAULT_PARTITION_NAME;
        let defaults = [d, d, d, d, d];
        for filter in [
            "n = 1",
            "n != 1",
            "n < 1",
            "n > 1",
            "not n = 1",
            "(n) not in (1, 2)",
            "n not between 1 and 2",
            "d != '2024-01-01'",
            "t != '2024-01-01 00:00:00'",
            "n like '%'",
            "n not like 'x'",
        ] {
            assert!(!eval(filter, defaults), "{filter}");
        }
        // ...unless the filter names it, and on string keys it is a string.
        for filter in [
            "n = '__HIVE_DEFAULT_PARTITION__'",
            "d = \"__HIVE_DEFAULT_PARTITION__\"",
            "t = '__HIVE_DEFAULT_PARTITION__'",
            "s = '__HIVE_DEFAULT_PARTITION__'",
            "s != 'x'",
            "s like '__HIVE%'",
            "v > 'A'",
        ] {
            assert!(eval(filter, defaults), "{filter}");
        }
        assert!(!eval("n != '__HIVE_DEFAULT_PARTITION__'", defaults));
        assert!(eval("n != '__HIVE_DEFAULT_PARTITION__'", row));
    }

    #[test]
    fn bind_errors() {
        let keys = [
            PartitionKey::new("s", "string"),
            PartitionKey::new("n", "int"),
            PartitionKey::new("d", "date"),
            PartitionKey::new("b", "boolean"),
            PartitionKey::new("x", "decimal(10,2)"),
        ];
        let err = |filter: &str| parse(filter).unwrap().bind(&keys).unwrap_err();
        assert_eq!(err("zz = 1"), FilterError::UnknownKey { key: "zz".into() });
        assert_eq!(
            err("zz = 1").to_string(),
            "Specified key <zz> is not a partitioning key for the table"
        );
        assert_eq!(
            err("b = 'true'").to_string(),
            "Filter pushdown not supported for type boolean (partition key <b>)"
        );
        assert!(matches!(
            err("x > 1"),
            FilterError::UnsupportedKeyType { .. }
        ));
        for filter in [
            "s = 1",
            "n = 'abc'",
            "n = 2024-01-01",
            "d = 1",
            "d = 'yesterday'",
        ] {
            assert!(
                matches!(err(filter), FilterError::TypeMismatch { .. }),
                "{filter}"
            );
        }
        assert_eq!(
            err("s = 1").to_string(),
            "Filtering is supported only on partition keys of type string, or on integral, date \
             and timestamp keys with constants of their type: key <s> of type string cannot be \
             compared with 1"
        );
        // Errors surface whichever way AND/OR would short-circuit.
        assert!(parse("s = 'a' or zz = 1").unwrap().bind(&keys).is_err());
        // Keys match ignoring case.
        assert!(parse("S = 'a' and N = 1").unwrap().bind(&keys).is_ok());
        let bound = parse("s = 'a'").unwrap().bind(&keys).unwrap();
        assert_eq!(
            bound.matches(&["a"]).unwrap_err(),
            FilterError::ValueCount { keys: 5, values: 1 }
        );
    }

    #[test]
    fn like_patterns() {
        let cases = [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("a%", "abc", true),
            ("a%", "a", true),
            ("%c", "abc", true),
            ("%b%", "abc", true),
            ("a_c", "abc", true),
            ("a_c", "ac", false),
            ("a.*", "abc", true),
            (".*b.*", "abc", true),
            ("a.c", "abc", true),
            (".*", "", true),
            ("%", "", true),
            ("_", "", false),
            (r"a\%", "a%", true),
            (r"a\%", "ab", false),
            (r"a\_c", "a_c", true),
            (r"a\_c", "abc", false),
            (r"a\.c", "a.c", true),
            (r"a\.c", "abc", false),
            ("a*", "a*", true),
            ("a*", "aa", false),
            ("[ab]", "a", false),
            ("[ab]", "[ab]", true),
            ("%a%a%a%a%b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("é_", "éx", true),
            (r"trailing\", r"trailing\", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                LikePattern::new(pattern).matches(text),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn referenced_keys_in_order_once() {
        let expr =
            parse("b = 1 and (a = 2 or B = 3) and (struct(c, a)) in (struct(1, 2))").unwrap();
        assert_eq!(expr.referenced_keys(), vec!["b", "a", "c"]);
        assert!(parse("").unwrap().referenced_keys().is_empty());
    }
}
