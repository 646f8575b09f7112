//! `routes:` entries: names, endpoints, filters (every dialect, routing real events), `reply`
//! (with `to:` from the environment, the loop warning) and `schema`.

use super::*;
use crate::model::ExtValue;

// ---------------------------------------------------------------- routes

#[test]
fn route_names() {
    one_error(
        &with_routes("  - endpoint: /x\n"),
        "routes[0].name: required",
    );
    one_error(
        &with_routes("  - name: Orders\n"),
        "routes[0].name: invalid route name \"Orders\"",
    );
    one_error(
        &with_routes("  - name: -x\n"),
        "routes[0].name: invalid route name",
    );
    ok(&with_routes("  - name: orders.v2_eu-1\n"));
}

#[test]
fn duplicate_route_names() {
    let errs = errors(&with_routes(
        "  - name: r\n  - name: s\n  - name: r\n  - name: r\n",
    ));
    assert_eq!(
        errs,
        [
            "routes[2].name: duplicate route name \"r\" (first used by routes[0])",
            "routes[3].name: duplicate route name \"r\" (first used by routes[0])",
        ]
    );
}

#[test]
fn endpoint_forms() {
    one_error(
        &with_routes("  - name: r\n    endpoint: {cell: x}\n"),
        "routes[0].endpoint: expected a string or {cel: expression}; found keys cell",
    );
    one_error(
        &with_routes("  - name: r\n    endpoint: [a]\n"),
        "routes[0].endpoint: expected a string or {cel: expression}",
    );
    one_error(
        &with_routes("  - name: r\n    target_executor: {cel: 5}\n"),
        "routes[0].target_executor.cel: expected a CEL expression",
    );
    one_error(
        &with_routes("  - name: r\n    endpoint: ''\n"),
        "routes[0].endpoint: must not be empty",
    );
}

#[test]
fn zero_routes_is_legal_with_a_warning() {
    for yaml in [GW.to_string(), format!("{GW}routes: []\n")] {
        let c = ok(&yaml);
        assert!(c.rules.routes.is_empty());
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert_eq!(c.warnings[0].path, "routes");
        assert!(c.warnings[0].message.contains("no routes"));
    }
}

// ---------------------------------------------------------------- filters

#[test]
fn empty_all_and_any() {
    one_error(
        &with_routes("  - name: r\n    filters:\n      - all: []\n"),
        "routes[0].filters[0].all: needs at least one filter",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - not: {any: []}\n"),
        "routes[0].filters[0].not.any: needs at least one filter",
    );
}

#[test]
fn two_dialects_in_one_filter() {
    one_error(
        &with_routes("  - name: r\n    filters:\n      - {exact: {type: a}, cel: 'true'}\n"),
        "routes[0].filters[0]: a filter holds exactly one dialect, found exact and cel",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - {}\n"),
        "routes[0].filters[0]: empty filter: needs exactly one of exact, prefix, suffix, all, any, not, cel",
    );
}

#[test]
fn cesql_filters_compile_at_load() {
    let c = ok(&with_routes(
        "  - name: r\n    filters:\n      - cesql: \"type = 'a' AND source LIKE '/shop/%'\"\n",
    ));
    let route = &c.rules.routes[0];
    assert!(route.matches(&event("a", "/shop/eu")));
    assert!(!route.matches(&event("a", "/store/eu")));
    assert!(!route.matches(&event("b", "/shop/eu")));
}

#[test]
fn bad_cesql_is_reported_with_its_position() {
    one_error(
        &with_routes(
            "  - name: r\n    filters:\n      - cesql: \"type = 'a' AND (source = 'b'\"\n",
        ),
        "routes[0].filters[0].cesql: syntax error at line 1, column 29: expected ')' to close the '(' at line 1, column 16",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - cesql: \"LOWER(type, 1) = 'a'\"\n"),
        "routes[0].filters[0].cesql: missing function at line 1, column 1: LOWER takes 1 argument, found 2",
    );
    one_error(
        &with_routes(
            "  - name: r\n    filters:\n      - not: {cesql: \"type = 'a' OR nope(1)\"}\n",
        ),
        "routes[0].filters[0].not.cesql: missing function at line 1, column 15: unknown function nope",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - cesql: \"LENGTH(type)\"\n"),
        "routes[0].filters[0].cesql: a filter expression must be Boolean, this one is Integer",
    );
}

#[test]
fn attribute_filters_need_exactly_one_attribute() {
    one_error(
        &with_routes("  - name: r\n    filters:\n      - exact: {type: a, source: b}\n"),
        "routes[0].filters[0].exact: has 2 attributes (type, source); Knative allows exactly one",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - prefix: {}\n"),
        "routes[0].filters[0].prefix: needs one attribute",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - suffix: .pdf\n"),
        "routes[0].filters[0].suffix: expected one attribute and its value",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - exact: {Type: a}\n"),
        "routes[0].filters[0].exact.Type: attribute names are lower-case letters and digits",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - exact: {type: ''}\n"),
        "routes[0].filters[0].exact.type: the value must not be empty",
    );
    one_error(
        &with_routes("  - name: r\n    filters:\n      - exact: {type: [a]}\n"),
        "routes[0].filters[0].exact.type: expected a string value",
    );
}

#[test]
fn yaml_scalars_become_attribute_strings() {
    let c = ok(&with_routes(
        "  - name: r\n    filters:\n      - exact: {partition: 3}\n      - exact: {specversion: 1.0}\n      - exact: {sampled: true}\n",
    ));
    let mut e = event("t", "/s");
    e.extensions
        .insert("partition".into(), ExtValue::Integer(3));
    e.extensions
        .insert("sampled".into(), ExtValue::String("true".into()));
    assert!(c.rules.routes[0].matches(&e));
}

#[test]
fn filters_from_yaml_route_events() {
    let c = ok(&with_routes(
        r#"  - name: pdfs
    filters:
      - exact: { type: com.example.file }
      - any: [ { suffix: { subject: .pdf } }, { exact: { kind: pdf } } ]
      - not: { prefix: { source: /private/ } }
  - name: nested
    filters:
      - all: [ { prefix: { type: com.example. } }, { not: { exact: { subject: draft } } } ]
  - name: rest
"#,
    ));
    let route = |e: &CloudEvent| c.rules.route(e).map(|r| r.name.clone());

    let mut pdf = event("com.example.file", "/public/x");
    pdf.subject = Some("a.pdf".into());
    assert_eq!(route(&pdf).as_deref(), Some("pdfs"));

    let mut by_ext = event("com.example.file", "/public/x");
    by_ext
        .extensions
        .insert("kind".into(), ExtValue::String("pdf".into()));
    assert_eq!(route(&by_ext).as_deref(), Some("pdfs"));

    let mut private = pdf.clone();
    private.source = "/private/x".into();
    // `not` excludes it from `pdfs`; `nested` takes it (subject is not "draft").
    assert_eq!(route(&private).as_deref(), Some("nested"));

    let mut draft = private.clone();
    draft.subject = Some("draft".into());
    assert_eq!(route(&draft).as_deref(), Some("rest"));

    // Missing subject and no `kind`: `any` fails; `nested` matches (not(subject == draft)).
    assert_eq!(
        route(&event("com.example.file", "/public/x")).as_deref(),
        Some("nested")
    );
    assert_eq!(route(&event("org.other", "/x")).as_deref(), Some("rest"));
}

// ---------------------------------------------------------------- reply

#[test]
fn reply_without_type() {
    one_error(
        &with_routes("  - name: r\n    reply: {source: /x}\n"),
        "routes[0].reply.type: required",
    );
    one_error(
        &with_routes("  - name: r\n    reply: {type: ''}\n"),
        "routes[0].reply.type: required",
    );
}

#[test]
fn reply_source_defaults_to_route_name() {
    let c = ok(&with_routes(
        "  - name: orders\n    reply: {type: com.example.done}\n",
    ));
    let reply = c.rules.routes[0].reply.as_ref().expect("reply");
    assert_eq!(reply.source, "/flowbridge/orders");
    assert_eq!(reply.to, None);
}

#[test]
fn reply_to_from_the_environment() {
    let yaml = with_routes("  - name: r\n    reply: {type: t.done, to: $K_SINK}\n");
    let errs = errors_of(parse_env(&yaml, &[]));
    assert_eq!(
        errs,
        [
            "routes[0].reply.to: environment variable K_SINK is not set (a Knative SinkBinding sets K_SINK)"
        ]
    );
    let errs = errors_of(parse_env(&yaml, &[("K_SINK", " ")]));
    assert_eq!(
        errs,
        ["routes[0].reply.to: environment variable K_SINK is empty"]
    );
    let errs = errors_of(parse_env(&yaml, &[("K_SINK", "ftp://sink")]));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "routes[0].reply.to: $K_SINK: \"ftp://sink\": scheme must be http or https"
        ),
        "{errs:?}"
    );
    let c = parse_env(&yaml, &[("K_SINK", "http://sink.ns.svc.cluster.local")]).expect("valid");
    assert_eq!(
        c.rules.routes[0]
            .reply
            .as_ref()
            .and_then(|r| r.to.as_deref()),
        Some("http://sink.ns.svc.cluster.local")
    );
    let braces = with_routes("  - name: r\n    reply: {type: t.done, to: '${SINK_2}'}\n");
    let c = parse_env(&braces, &[("SINK_2", "https://sink/path")]).expect("valid");
    assert_eq!(
        c.rules.routes[0]
            .reply
            .as_ref()
            .and_then(|r| r.to.as_deref()),
        Some("https://sink/path")
    );
}

#[test]
fn reply_timeout_defaults_to_30s_and_must_be_a_positive_duration() {
    let c = ok(&with_routes(
        "  - name: r\n    reply: {type: t.done, to: 'http://sink/'}\n",
    ));
    let reply = c.rules.routes[0].reply.as_ref().expect("reply");
    assert_eq!(reply.timeout, std::time::Duration::from_secs(30));
    let c = ok(&with_routes(
        "  - name: r\n    reply: {type: t.done, to: 'http://sink/', timeout: 2s}\n",
    ));
    let reply = c.rules.routes[0].reply.as_ref().expect("reply");
    assert_eq!(reply.timeout, std::time::Duration::from_secs(2));
    one_error(
        &with_routes("  - name: r\n    reply: {type: t.done, timeout: 0s}\n"),
        "routes[0].reply.timeout: must be greater than 0",
    );
    one_error(
        &with_routes("  - name: r\n    reply: {type: t.done, timeout: 5}\n"),
        "routes[0].reply.timeout: 5 needs a unit, e.g. 5s",
    );
}

#[test]
fn reply_to_literal_url() {
    one_error(
        &with_routes("  - name: r\n    reply: {type: t.done, to: 'sink:8080'}\n"),
        "routes[0].reply.to: ",
    );
    let c = ok(&with_routes(
        "  - name: r\n    reply: {type: t.done, to: 'http://sink:8080/in'}\n",
    ));
    assert_eq!(
        c.rules.routes[0]
            .reply
            .as_ref()
            .and_then(|r| r.to.as_deref()),
        Some("http://sink:8080/in")
    );
}

#[test]
fn reply_type_matched_by_own_filters_warns() {
    let c = ok(&with_routes(
        "  - name: r\n    filters:\n      - exact: {type: a.b}\n    reply: {type: a.b}\n",
    ));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].path, "routes[0].reply.type");
    assert!(c.warnings[0].message.contains("loop"), "{:?}", c.warnings);

    // A prefix that also covers the reply type, nested in `all`.
    let c = ok(&with_routes(
        "  - name: r\n    filters:\n      - all: [{prefix: {type: com.example.}}]\n    reply: {type: com.example.done}\n",
    ));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);

    // No filters at all: the route matches its own reply.
    let c = ok(&with_routes("  - name: r\n    reply: {type: a.done}\n"));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);

    // Different type: fine. A source filter that excludes the reply source: fine.
    let c = ok(&with_routes(
        "  - name: r\n    filters:\n      - exact: {type: a.b}\n    reply: {type: a.c}\n",
    ));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let c = ok(&with_routes(
        "  - name: r\n    filters:\n      - prefix: {type: a.}\n      - prefix: {source: /shop/}\n    reply: {type: a.c}\n",
    ));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

// ---------------------------------------------------------------- route schema

#[test]
fn route_schema_inline_or_from_a_file_compiles_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("order.schema.json");
    std::fs::write(&file, r#"{"type": "object", "required": ["id"]}"#).expect("write");
    let c = ok(&with_routes(&format!(
        "  - name: inline\n    schema: {{ type: object, properties: {{ qty: {{ type: integer, minimum: 1 }} }} }}\n  - name: file\n    schema: {}\n",
        file.display()
    )));
    let routes = &c.rules.routes;
    assert!(routes[0].schema.is_some() && routes[1].schema.is_some());
    assert_eq!(routes[0].schema.as_ref().and_then(|s| s.file()), None);
    // A reload watches the schema file.
    assert!(c.referenced_files().contains(&file));
    let bad = CloudEvent {
        data: Some(crate::model::Data::Json(serde_json::json!({"qty": 0}))),
        ..CloudEvent::new("1", "/s", "t")
    };
    let e = routes[0]
        .schema
        .as_ref()
        .expect("schema")
        .check(&bad)
        .expect_err("qty 0");
    assert_eq!(e.violations[0].pointer, "/qty");
    assert!(
        routes[1]
            .schema
            .as_ref()
            .expect("schema")
            .check(&bad)
            .is_err()
    );
}

#[test]
fn bad_route_schemas_are_reported_with_their_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_json = dir.path().join("broken.json");
    std::fs::write(&not_json, "{\"type\": ").expect("write");
    let errs = errors(&with_routes(&format!(
        "  - name: a\n    schema: {{ type: strin }}\n  - name: b\n    schema: {}\n  - name: c\n    schema: /nonexistent/s.json\n  - name: d\n    schema: 7\n  - name: e\n    schema: {{ $ref: 'https://example.com/s.json' }}\n",
        not_json.display()
    )));
    let expected = [
        "routes[0].schema: invalid JSON Schema at ",
        "routes[1].schema: schema file ",
        "routes[2].schema: cannot read schema file /nonexistent/s.json",
        "routes[3].schema: expected a schema file path or an inline JSON Schema mapping",
        "routes[4].schema: invalid JSON Schema",
    ];
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    for (err, prefix) in errs.iter().zip(expected) {
        assert!(err.starts_with(prefix), "expected {prefix:?}, got {err:?}");
    }
}
