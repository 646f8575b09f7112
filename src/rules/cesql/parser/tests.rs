//! Tests of the CESQL parser: precedence, associativity and syntax errors.

use super::*;

/// A compact rendering of the tree, to check precedence and associativity.
fn show(n: &Node) -> String {
    match &n.kind {
        Kind::Lit(Literal::Bool(b)) => b.to_string(),
        Kind::Lit(Literal::Int(i)) => i.to_string(),
        Kind::Lit(Literal::Str(s)) => format!("'{s}'"),
        Kind::Attr(a) => a.name().to_string(),
        Kind::Exists(a) => format!("exists({})", a.name()),
        Kind::Not(x) => format!("not({})", show(x)),
        Kind::Neg(x) => format!("neg({})", show(x)),
        Kind::Arith(op, l, r) => format!("{op:?}({}, {})", show(l), show(r)),
        Kind::Cmp(op, l, r) => format!("{op:?}({}, {})", show(l), show(r)),
        Kind::And(v) => format!("and({})", v.iter().map(show).collect::<Vec<_>>().join(", ")),
        Kind::Or(v) => format!("or({})", v.iter().map(show).collect::<Vec<_>>().join(", ")),
        Kind::Xor(l, r) => format!("xor({}, {})", show(l), show(r)),
        Kind::Like { value, negated, .. } => {
            format!("like{}({})", if *negated { "!" } else { "" }, show(value))
        }
        Kind::In {
            value,
            set,
            negated,
        } => format!(
            "in{}({}; {})",
            if *negated { "!" } else { "" },
            show(value),
            set.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        Kind::Call { name, args, .. } => format!(
            "{name}({})",
            args.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn p(s: &str) -> String {
    show(&parse(s).expect("parses"))
}

fn err(s: &str) -> Error {
    parse(s).expect_err("should not parse")
}

#[test]
fn precedence_follows_the_grammar() {
    assert_eq!(p("4 * 2 + 4 / 2"), "Add(Mul(4, 2), Div(4, 2))");
    assert_eq!(p("1 - 2 - 3"), "Sub(Sub(1, 2), 3)");
    assert_eq!(p("a = 1 + 2"), "Eq(a, Add(1, 2))");
    assert_eq!(p("NOT a = b"), "Eq(not(a), b)");
    assert_eq!(p("1 + a LIKE 'x'"), "Add(1, like(a))");
    assert_eq!(p("a NOT IN (1, 2) = TRUE"), "Eq(in!(a; 1, 2), true)");
    assert_eq!(p("NOT EXISTS time"), "not(exists(time))");
    assert_eq!(p("--10"), "neg(-10)");
    assert_eq!(p("-'10'"), "neg('10')");
    assert_eq!(p("ABS(-2147483648)"), "ABS(-2147483648)");
}

#[test]
fn logic_is_one_right_associative_level_with_flat_runs() {
    assert_eq!(p("a AND b AND c"), "and(a, b, c)");
    assert_eq!(p("a OR b AND c"), "or(a, and(b, c))");
    assert_eq!(p("a AND b OR c"), "and(a, or(b, c))");
    assert_eq!(p("(a AND b) OR c"), "or(and(a, b), c)");
    assert_eq!(p("a XOR b AND c"), "xor(a, and(b, c))");
    assert_eq!(
        p("type = 'x' AND source LIKE '/shop/%' AND EXISTS subject"),
        "and(Eq(type, 'x'), like(source), exists(subject))"
    );
}

#[test]
fn keywords_functions_and_identifiers_ignore_case() {
    assert_eq!(
        p("int(hop) < INT(ttl) and Exists SOURCE"),
        "and(Lt(int(hop), INT(ttl)), exists(source))"
    );
    assert_eq!(p("tRuE"), "true");
    assert_eq!(p("x NoT LiKe 'a'"), "like!(x)");
}

#[test]
fn errors_carry_positions() {
    let e = err("ABC(");
    assert_eq!(e.kind, ErrorKind::Parse);
    assert_eq!(e.pos, Pos { line: 1, column: 5 });
    let e = err("x LIKE 123");
    assert_eq!(e.pos, Pos { line: 1, column: 8 });
    assert!(e.message.contains("string literal"), "{e}");
    let e = err("type = 'a' AND\n  (source = 'b'");
    assert_eq!(
        e.pos,
        Pos {
            line: 2,
            column: 16
        }
    );
    assert!(e.message.contains("line 2, column 3"), "{e}");
    let e = err("a = ");
    assert!(e.message.contains("after '='"), "{e}");
    assert_eq!(err("").message, "empty expression");
    assert!(err("a b").message.contains("after a complete expression"));
    assert!(err("my_ext = 1").message.contains("not an attribute name"));
    assert!(err("a IN ()").message.contains("empty"));
    assert!(err("2147483648").message.contains("32 bits"));
    assert!(err("a NOT b").message.contains("LIKE or IN"));
    assert!(err("EXISTS 'x'").message.contains("attribute name"));
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(err(&deep).message.contains("nested too deeply"));
    let nots = format!("{}TRUE", "NOT ".repeat(10_000));
    assert!(err(&nots).message.contains("nested too deeply"));
    let sum = vec!["1"; 10_000].join(" + ");
    assert!(err(&sum).message.contains("nested too deeply"));
    // A long run of ORs stays flat and is fine.
    let ors = vec!["a = 1"; 5_000].join(" OR ");
    assert!(parse(&ors).is_ok());
}

#[test]
fn unknown_calls_parse_unbound() {
    let n = parse("nope(1) OR concat_ws()").expect("parses");
    let Kind::Or(items) = &n.kind else {
        panic!("or expected")
    };
    assert!(matches!(items[0].kind, Kind::Call { func: None, .. }));
    assert!(matches!(items[1].kind, Kind::Call { func: None, .. }));
}
