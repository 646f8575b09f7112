//! The CESQL syntax tree: what the parser builds and the evaluator walks. Attribute names are
//! resolved to the event field they read, LIKE patterns are precompiled and function calls are
//! bound to their built-in, so evaluation does no name lookups and no allocation on success.

use super::Pos;
use super::functions::Func;
use super::like::Like;

/// Deepest syntax tree accepted (the evaluator recurses once per level).
pub(crate) const MAX_TREE_DEPTH: u16 = 200;

/// A context attribute or extension an expression reads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attr {
    SpecVersion,
    Id,
    Source,
    Type,
    Subject,
    Time,
    DataContentType,
    /// `dataschema` (1.0) or `schemaurl` (0.3): the same field.
    DataSchema,
    Extension(Box<str>),
}

impl Attr {
    /// `name` is already lower case.
    pub(crate) fn from_name(name: &str) -> Attr {
        match name {
            "specversion" => Attr::SpecVersion,
            "id" => Attr::Id,
            "source" => Attr::Source,
            "type" => Attr::Type,
            "subject" => Attr::Subject,
            "time" => Attr::Time,
            "datacontenttype" => Attr::DataContentType,
            "dataschema" | "schemaurl" => Attr::DataSchema,
            other => Attr::Extension(other.into()),
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Attr::SpecVersion => "specversion",
            Attr::Id => "id",
            Attr::Source => "source",
            Attr::Type => "type",
            Attr::Subject => "subject",
            Attr::Time => "time",
            Attr::DataContentType => "datacontenttype",
            Attr::DataSchema => "dataschema",
            Attr::Extension(name) => name,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Bool(bool),
    Int(i32),
    Str(Box<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogicOp {
    And,
    Or,
    Xor,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Where the node starts (operators: where the operator is).
    pub pos: Pos,
    /// Height of the subtree (a leaf is 1).
    pub depth: u16,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Lit(Literal),
    Attr(Attr),
    Exists(Attr),
    Not(Box<Node>),
    Neg(Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    /// Every operand, left to right, short-circuit (a flattened chain of `AND`s).
    And(Vec<Node>),
    /// Any operand, left to right, short-circuit (a flattened chain of `OR`s).
    Or(Vec<Node>),
    Xor(Box<Node>, Box<Node>),
    Like {
        value: Box<Node>,
        pattern: Like,
        negated: bool,
    },
    In {
        value: Box<Node>,
        set: Vec<Node>,
        negated: bool,
    },
    /// `func` is `None` when no built-in has this name and arity (a MissingFunctionError when
    /// evaluated; `compile` rejects it up front).
    Call {
        name: Box<str>,
        func: Option<Func>,
        args: Vec<Node>,
    },
}

impl Kind {
    fn children(&self) -> Vec<&Node> {
        match self {
            Kind::Lit(_) | Kind::Attr(_) | Kind::Exists(_) => Vec::new(),
            Kind::Not(n) | Kind::Neg(n) => vec![n],
            Kind::Arith(_, l, r) | Kind::Cmp(_, l, r) | Kind::Xor(l, r) => vec![l, r],
            Kind::And(v) | Kind::Or(v) => v.iter().collect(),
            Kind::Like { value, .. } => vec![value],
            Kind::In { value, set, .. } => std::iter::once(&**value).chain(set).collect(),
            Kind::Call { args, .. } => args.iter().collect(),
        }
    }
}

impl Node {
    /// A node over already-built children; `None` when the tree would get too deep.
    pub(crate) fn new(kind: Kind, pos: Pos) -> Option<Node> {
        let depth = kind
            .children()
            .iter()
            .map(|c| c.depth)
            .max()
            .unwrap_or(0)
            .checked_add(1)?;
        (depth <= MAX_TREE_DEPTH).then_some(Node { kind, pos, depth })
    }

    /// Visit every node, parents first (recursion bounded by [`MAX_TREE_DEPTH`]).
    pub(crate) fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Node)) {
        f(self);
        for child in self.kind.children() {
            child.walk(f);
        }
    }
}
