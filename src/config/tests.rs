use std::collections::BTreeMap;
use std::time::Duration;

use super::check::{Compilers, Context, parse_size};
use super::*;
use crate::model::{CloudEvent, Concurrency, ExtValue};
use crate::rules::Unmatched;
use crate::rules::cel::Predicate;
use crate::rules::mapping::{Expr, FieldError, Mapping, MappingSpec, ReplyData};

const GW: &str = "gateways:\n  default: {url: \"grpc://127.0.0.1:54321\"}\n";

fn parse_env(yaml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |name: &str| vars.get(name).cloned();
    let ctx = Context {
        compilers: &Compilers::REAL,
        env: &env,
    };
    from_yaml_with(yaml, "test.yaml", &Overrides::default(), &ctx)
}

fn parse(yaml: &str) -> Result<Config, ConfigErrors> {
    parse_env(yaml, &[])
}

fn ok(yaml: &str) -> Config {
    match parse(yaml) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// The errors as `path: message` lines (the line number left out; `lines_of` has them).
fn errors(yaml: &str) -> Vec<String> {
    errors_of(parse(yaml))
}

fn errors_of(result: Result<Config, ConfigErrors>) -> Vec<String> {
    match result {
        Ok(_) => panic!("expected errors, the config was accepted"),
        Err(ConfigErrors(errs)) => errs
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect(),
    }
}

/// Asserts there is exactly one error and it starts with `prefix`; returns it.
fn one_error(yaml: &str, prefix: &str) -> String {
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    assert!(
        errs[0].starts_with(prefix),
        "expected an error starting with {prefix:?}, got {:?}",
        errs[0]
    );
    errs[0].clone()
}

fn with_routes(routes: &str) -> String {
    format!("{GW}routes:\n{routes}")
}

fn event(ty: &str, source: &str) -> CloudEvent {
    CloudEvent::new("1", source, ty)
}

// ---------------------------------------------------------------- valid configs and defaults

#[test]
fn minimal_config_gets_defaults() {
    let c = ok(&with_routes("  - name: r\n"));
    assert_eq!(c.listen, "0.0.0.0:8080".parse().expect("addr"));
    assert_eq!(c.max_body, 4 << 20);
    assert_eq!(c.unmatched, Unmatched::Accept);
    let gw = &c.gateways["default"];
    assert_eq!(gw.name, "default");
    assert_eq!(gw.url, "grpc://127.0.0.1:54321");
    assert_eq!(gw.timeout, Duration::from_secs(60));
    assert_eq!(gw.max_message_bytes, 64 << 20);
    assert_eq!(c.rules.routes.len(), 1);
    let r = &c.rules.routes[0];
    assert_eq!(r.name, "r");
    assert_eq!(r.gateway, "default");
    assert!(r.filters.is_empty());
    assert!(r.reply.is_none());
    assert_eq!(r.mapping.spec.endpoint, None);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn full_example_from_the_spec_validates() {
    let yaml = r#"
listen: 127.0.0.1:9090
limits: { max_body: 8MiB }
unmatched: reject
gateways:
  default:
    url: grpc://127.0.0.1:54321
    timeout: 1m30s
    max_message: 128MiB
  search:
    url: grpcs://search.example.com:443
routes:
  - name: orders
    filters:
      - exact:  { type: com.example.order.created }
      - prefix: { source: /shop/ }
      - any: [ { suffix: { subject: .pdf } }, { not: { exact: { subject: draft } } } ]
      - cel: 'event.data.priority > 5'
    gateway: default
    endpoint: /index
    target_executor: indexer
    parameters: '{"tenant": event.source}'
    docs: 'event.data.items.map(i, {"text": i.title, "tags": {"lang": i.lang}})'
    reply:
      type: com.example.order.indexed
      data: 'docs.map(d, {"id": d.id, "text": d.text})'
      to: $K_SINK
  - name: search.v2
    gateway: search
    endpoint: { cel: '"/search/" + event.type' }
"#;
    let c = match parse_env(
        yaml,
        &[("K_SINK", "http://broker-ingress.knative/ns/default")],
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.listen, "127.0.0.1:9090".parse().expect("addr"));
    assert_eq!(c.max_body, 8 << 20);
    assert_eq!(c.unmatched, Unmatched::Reject);
    assert_eq!(c.gateways["default"].timeout, Duration::from_secs(90));
    assert_eq!(c.gateways["default"].max_message_bytes, 128 << 20);
    assert_eq!(c.gateways["search"].url, "grpcs://search.example.com:443");
    let orders = &c.rules.routes[0];
    assert_eq!(orders.filters.len(), 4);
    assert_eq!(
        orders.mapping.spec.endpoint,
        Some(Expr::Literal("/index".into()))
    );
    assert_eq!(
        orders.mapping.spec.target_executor,
        Some(Expr::Literal("indexer".into()))
    );
    assert_eq!(
        orders.mapping.spec.parameters.as_deref(),
        Some(r#"{"tenant": event.source}"#)
    );
    let reply = orders.reply.as_ref().expect("reply");
    assert_eq!(reply.ty, "com.example.order.indexed");
    assert_eq!(reply.source, "/flowbridge/orders");
    assert_eq!(
        reply.to.as_deref(),
        Some("http://broker-ingress.knative/ns/default")
    );
    let search = &c.rules.routes[1];
    assert_eq!(search.gateway, "search");
    assert_eq!(
        search.mapping.spec.endpoint,
        Some(Expr::Cel(r#""/search/" + event.type"#.into()))
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn sizes_parse_with_units() {
    assert_eq!(parse_size("4MiB"), Ok(4 << 20));
    assert_eq!(parse_size("64KiB"), Ok(64 << 10));
    assert_eq!(parse_size("1MB"), Ok(1_000_000));
    assert_eq!(parse_size("2 gib"), Ok(2 << 30));
    assert_eq!(parse_size("70000"), Ok(70_000));
    assert_eq!(parse_size("100B"), Ok(100));
    assert!(parse_size("MiB").is_err());
    assert!(parse_size("4 Mebibytes").is_err());
    assert!(parse_size("1.5MiB").is_err());
    assert!(parse_size("99999999999999999999GiB").is_err());
}

#[test]
fn plain_integer_size_is_bytes() {
    let c = ok(&format!(
        "limits: {{max_body: 65536}}\n{GW}routes: [{{name: r}}]\n"
    ));
    assert_eq!(c.max_body, 65536);
}

#[test]
fn port_override_replaces_the_port() {
    let env = |_: &str| None;
    let ctx = Context {
        compilers: &Compilers::REAL,
        env: &env,
    };
    let overrides = Overrides {
        gateway: None,
        port: Some(9999),
    };
    let yaml = format!("listen: 127.0.0.1:1234\n{GW}routes: [{{name: r}}]\n");
    let c = from_yaml_with(&yaml, "t", &overrides, &ctx).expect("valid");
    assert_eq!(c.listen, "127.0.0.1:9999".parse().expect("addr"));
    let d = load(None, &overrides).expect("default");
    assert_eq!(d.listen, "0.0.0.0:9999".parse().expect("addr"));
}

#[test]
fn embedded_default_matches_everything() {
    let c = load(None, &Overrides::default()).expect("default config");
    assert_eq!(c.listen, "0.0.0.0:8080".parse().expect("addr"));
    assert_eq!(c.gateways.len(), 1);
    assert_eq!(c.gateways["default"].url, "grpc://127.0.0.1:8080");
    assert_eq!(c.rules.routes.len(), 1);
    let r = &c.rules.routes[0];
    assert_eq!(
        (r.name.as_str(), r.gateway.as_str()),
        ("default", "default")
    );
    assert!(r.reply.is_none());
    assert!(c.rules.route(&event("anything", "/x")).is_some());
    assert!(c.warnings.is_empty());
}

#[test]
fn embedded_default_takes_the_gateway_override() {
    let overrides = Overrides {
        gateway: Some("grpcs://flow.example.com:443".into()),
        port: None,
    };
    let c = load(None, &overrides).expect("default config");
    assert_eq!(c.gateways["default"].url, "grpcs://flow.example.com:443");

    let http = Overrides {
        gateway: Some("http://flow:80".into()),
        port: None,
    };
    let c = load(None, &http).expect("an HTTP gateway");
    assert_eq!(c.gateways["default"].url, "http://flow:80");

    let ws = Overrides {
        gateway: Some("ws://flow:80".into()),
        port: None,
    };
    let c = load(None, &ws).expect("a WebSocket gateway");
    assert_eq!(c.gateways["default"].url, "ws://flow:80");

    let bad = Overrides {
        gateway: Some("ftp://flow:80".into()),
        port: None,
    };
    let errs = errors_of(load(None, &bad));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("--gateway / FLOWBRIDGE_GATEWAY: unsupported scheme ftp://"),
        "{errs:?}"
    );
}

#[test]
fn load_reads_a_file_and_names_it_when_unreadable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flow.yaml");
    std::fs::write(&file, with_routes("  - name: r\n")).expect("write");
    let c = load(Some(&file), &Overrides::default()).expect("valid file");
    assert_eq!(c.rules.routes[0].name, "r");

    let missing = dir.path().join("missing.yaml");
    let errs = errors_of(load(Some(&missing), &Overrides::default()));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(&format!(
            "{}: cannot read the config file",
            missing.display()
        )),
        "{errs:?}"
    );
}

// ---------------------------------------------------------------- YAML-level errors

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let yaml = "gateways:\n  default: {url: grpc://x:1\nroutes: []\n";
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("line 3 column "), "{errs:?}");
}

/// The errors as `line N: path: message`, as `check` prints them.
fn lines_of(yaml: &str) -> Vec<String> {
    match parse(yaml) {
        Ok(_) => panic!("expected errors, the config was accepted"),
        Err(ConfigErrors(errs)) => errs.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn unknown_top_level_key_names_key_and_valid_keys() {
    let err = one_error(&format!("listn: 0.0.0.0:1\n{GW}"), "listn: ");
    assert!(err.contains("unknown field `listn`"), "{err}");
    assert!(
        err.contains("`listen`, `limits`, `unmatched`, `gateways`, `routes`"),
        "{err}"
    );
    assert!(lines_of(&format!("listn: 0.0.0.0:1\n{GW}"))[0].starts_with("line 1: listn: "));
}

#[test]
fn unknown_key_deep_inside_names_its_path() {
    let yaml = with_routes("  - name: r\n    filters:\n      - exactly: {type: a}\n");
    // Only the unknown key: not also "empty filter" for the filter it was removed from.
    let err = one_error(&yaml, "routes[0].filters[0].exactly: ");
    assert!(err.contains("unknown field `exactly`"), "{err}");
    assert!(err.contains("`exact`"), "{err}");
    assert!(lines_of(&yaml)[0].starts_with("line 6: routes[0].filters[0].exactly: "));
}

#[test]
fn wrong_type_has_its_path_and_line() {
    let yaml = format!("{GW}routes: {{name: r}}\n");
    let err = one_error(&yaml, "routes: invalid type: map, expected a sequence");
    assert!(lines_of(&yaml)[0].starts_with("line 3: routes: "), "{err}");
}

#[test]
fn unknown_keys_wrong_types_and_validation_errors_come_out_together() {
    let yaml = "\
listen: [8080]
gateways:
  main:
    url: ftp://127.0.0.1:1
    timeout: soon
    concurency: 4
routes:
  - name: a
    filters:
      - cel: 'event.data.x >'
      - exactly: { type: t }
    docs: 'evnt.data'
  - name: [b]
    endpoint: 7
  - name: c
    reply: { source: /x, tpye: y }
";
    let got = lines_of(yaml);
    let expected = [
        "line 1: listen: invalid type: sequence, expected a string",
        "line 4: gateways.main.url: ",
        "line 5: gateways.main.timeout: expected a duration",
        "line 6: gateways.main.concurency: unknown field `concurency`",
        "line 10: routes[0].filters[0].cel: ",
        "line 11: routes[0].filters[1].exactly: unknown field `exactly`",
        "line 12: routes[0].docs: ",
        "line 13: routes[1].name: invalid type: sequence, expected a string",
        "line 14: routes[1].endpoint: expected a string or {cel: expression}",
        "line 16: routes[2].reply.type: ",
        "line 16: routes[2].reply.tpye: unknown field `tpye`",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (line, prefix) in got.iter().zip(expected) {
        assert!(
            line.starts_with(prefix),
            "expected {prefix:?}, got {line:?} in {got:#?}"
        );
    }
}

#[test]
fn empty_file_is_an_error() {
    let err = one_error("# nothing here\n", "test.yaml: the config is empty");
    assert!(err.contains("gateways"), "{err}");
}

// ---------------------------------------------------------------- top-level values

#[test]
fn admin_listen_default_address_and_off() {
    let routes = format!("{GW}routes: [{{name: r}}]\n");
    let c = ok(&routes);
    assert_eq!(c.admin_listen, Some("0.0.0.0:9095".parse().expect("addr")));
    let c = ok(&format!("admin_listen: 127.0.0.1:9191\n{routes}"));
    assert_eq!(
        c.admin_listen,
        Some("127.0.0.1:9191".parse().expect("addr"))
    );
    assert_eq!(
        ok(&format!("admin_listen: \"\"\n{routes}")).admin_listen,
        None
    );
    assert_eq!(
        ok(&format!("admin_listen: 'off'\n{routes}")).admin_listen,
        None
    );
    one_error(
        &format!("admin_listen: localhost:9095\n{routes}"),
        "admin_listen: expected IP:port such as 0.0.0.0:9095",
    );
}

#[test]
fn bad_listen() {
    one_error(
        &format!("listen: localhost:8080\n{GW}routes: [{{name: r}}]\n"),
        "listen: expected IP:port such as 0.0.0.0:8080",
    );
    one_error(
        &format!("listen: 0.0.0.0\n{GW}routes: [{{name: r}}]\n"),
        "listen: expected IP:port",
    );
}

#[test]
fn max_body_below_64kib() {
    one_error(
        &format!("limits: {{max_body: 1KiB}}\n{GW}routes: [{{name: r}}]\n"),
        "limits.max_body: must be at least 64KiB (65536 bytes), got 1024 bytes",
    );
    one_error(
        &format!("limits: {{max_body: 65535}}\n{GW}routes: [{{name: r}}]\n"),
        "limits.max_body: must be at least 64KiB",
    );
}

#[test]
fn bad_size() {
    one_error(
        &format!("limits: {{max_body: 4 Mebibytes}}\n{GW}routes: [{{name: r}}]\n"),
        "limits.max_body: unknown size unit in \"4 Mebibytes\"",
    );
    one_error(
        &format!("limits: {{max_body: [1]}}\n{GW}routes: [{{name: r}}]\n"),
        "limits.max_body: expected a size such as 4MiB",
    );
    one_error(
        "gateways:\n  default: {url: \"grpc://h:1\", max_message: lots}\nroutes: [{name: r}]\n",
        "gateways.default.max_message: expected a size",
    );
}

#[test]
fn bad_unmatched() {
    one_error(
        &format!("unmatched: drop\n{GW}routes: [{{name: r}}]\n"),
        "unmatched: expected `accept` or `reject`, got \"drop\"",
    );
}

// ---------------------------------------------------------------- gateways

#[test]
fn bad_duration() {
    let gw = |t: &str| {
        format!(
            "gateways:\n  default: {{url: \"grpc://h:1\", timeout: {t}}}\nroutes: [{{name: r}}]\n"
        )
    };
    one_error(
        &gw("soon"),
        "gateways.default.timeout: expected a duration such as 60s",
    );
    one_error(
        &gw("0s"),
        "gateways.default.timeout: must be greater than 0",
    );
    one_error(
        &gw("30"),
        "gateways.default.timeout: 30 needs a unit, e.g. 30s",
    );
}

#[test]
fn bad_gateway_urls() {
    let gw = |u: &str| format!("gateways:\n  default: {{url: \"{u}\"}}\nroutes: [{{name: r}}]\n");
    one_error(
        &gw("ftp://h:1"),
        "gateways.default.url: unsupported scheme ftp:// in \"ftp://h:1\"; use grpc://",
    );
    one_error(
        &gw("grpc://h"),
        "gateways.default.url: \"grpc://h\" has no port",
    );
    one_error(
        &gw("h:1"),
        "gateways.default.url: \"h:1\" has no scheme; expected grpc://host:port",
    );
    one_error(&gw("127.0.0.1"), "gateways.default.url: ");
    one_error(
        &gw("grpc://h:1/path"),
        "gateways.default.url: \"grpc://h:1/path\": a gateway URL has no path",
    );
    one_error(&gw(""), "gateways.default.url: ");
    one_error(
        "gateways:\n  default: {timeout: 5s}\nroutes: [{name: r}]\n",
        "gateways.default.url: required",
    );
    // A trailing slash is normalised away.
    let c = ok(&gw("grpc://h:1/"));
    assert_eq!(c.gateways["default"].url, "grpc://h:1");
}

#[test]
fn no_gateways() {
    one_error(
        "routes: [{name: r}]\n",
        "gateways: at least one gateway is required",
    );
}

#[test]
fn unknown_gateway() {
    one_error(
        &with_routes("  - name: r\n    gateway: x\n"),
        "routes[0].gateway: unknown gateway \"x\" (known: default)",
    );
}

#[test]
fn ambiguous_gateway() {
    let yaml = "gateways:\n  b: {url: \"grpc://b:1\"}\n  a: {url: \"grpc://a:1\"}\n\
                routes:\n  - name: r\n  - name: s\n    gateway: b\n";
    one_error(
        yaml,
        "routes[0].gateway: required when several gateways are defined (known: a, b)",
    );
}

#[test]
fn bad_gateway_name() {
    one_error(
        "gateways:\n  Main: {url: \"grpc://h:1\"}\nroutes: [{name: r}]\n",
        "gateways.Main: invalid gateway name \"Main\"",
    );
}

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

// ---------------------------------------------------------------- many errors at once

#[test]
fn every_error_at_once_in_document_order() {
    let yaml = r#"
routes:
  - name: a
    gateway: nowhere
    filters:
      - cesql: "x = = 1"
      - all: []
  - name: a
    reply: {to: $NOPE_UNSET}
listen: nonsense
gateways:
  default:
    url: ftp://h:1
    timeout: never
limits: {max_body: 10}
"#;
    let errs = errors(yaml);
    let paths: Vec<&str> = errs
        .iter()
        .map(|e| e.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "routes[0].gateway",
            "routes[0].filters[0].cesql",
            "routes[0].filters[1].all",
            "routes[1].name",
            "routes[1].reply.type",
            "routes[1].reply.to",
            "listen",
            "gateways.default.url",
            "gateways.default.timeout",
            "limits.max_body",
        ],
        "{errs:#?}"
    );
}

// ---------------------------------------------------------------- compiler errors (seam)

fn failing_predicate(source: &str) -> Result<Predicate, String> {
    Err(format!("syntax error in {source:?}"))
}

fn failing_mapping(_: &MappingSpec) -> Result<Mapping, Vec<FieldError>> {
    Err(vec![
        FieldError {
            field: "docs",
            message: "undeclared reference to 'evnt'".into(),
        },
        FieldError {
            field: "endpoint.cel",
            message: "bad endpoint".into(),
        },
    ])
}

fn failing_reply_data(_: Option<&str>) -> Result<ReplyData, String> {
    Err("no such function: frobnicate".into())
}

#[test]
fn compile_errors_carry_their_paths() {
    let compilers = Compilers {
        predicate: failing_predicate,
        mapping: failing_mapping,
        reply_data: failing_reply_data,
    };
    let env = |_: &str| None;
    let ctx = Context {
        compilers: &compilers,
        env: &env,
    };
    let yaml = with_routes(
        r#"  - name: r
    filters:
      - exact: {type: a}
      - any: [{cel: 'event.x'}]
    endpoint: {cel: 'e'}
    docs: 'evnt.data'
    reply: {type: t, data: 'frobnicate()'}
"#,
    );
    let errs = errors_of(from_yaml_with(&yaml, "t", &Overrides::default(), &ctx));
    assert_eq!(
        errs,
        [
            "routes[0].filters[1].any[0].cel: syntax error in \"event.x\"",
            "routes[0].endpoint.cel: bad endpoint",
            "routes[0].docs: undeclared reference to 'evnt'",
            "routes[0].reply.data: no such function: frobnicate",
        ]
    );
}

// ---------------------------------------------------------------- shipped examples

#[test]
fn every_shipped_config_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("config/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "broker-trigger.yaml",
        "demo.yaml",
        "kafkasource.yaml",
        "pingsource.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "missing config/{expected}"
        );
    }
    // The examples read their secrets from the environment, as a Deployment would set them.
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| (name == "GITHUB_WEBHOOK_SECRET").then(|| "example-secret".to_string()))
    };
    let ctx = Context {
        compilers: &Compilers::REAL,
        env: &env,
    };
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let origin = file.display().to_string();
        match from_yaml_with(&text, &origin, &Overrides::default(), &ctx) {
            Ok(c) => {
                assert!(!c.rules.routes.is_empty(), "{}", file.display());
                assert!(
                    c.warnings.is_empty(),
                    "{}: {:?}",
                    file.display(),
                    c.warnings
                );
            }
            Err(e) => panic!("{} does not validate:\n{e}", file.display()),
        }
    }
}

// ---------------------------------------------------------------- delivery settings

#[test]
fn delivery_settings_default() {
    let c = ok(&with_routes("  - name: r\n"));
    let gw = &c.gateways["default"];
    assert_eq!(gw.connect_timeout, Duration::from_secs(120));
    assert_eq!(gw.concurrency, Concurrency::Auto { min: 1, max: 64 });
    assert_eq!(gw.rate, None);
    assert_eq!(gw.max_pending, 10_000);
    assert_eq!(gw.batch, crate::model::BatchSpec::default());
    assert_eq!(gw.batch.max_docs, 512);
    assert_eq!(gw.batch.max_bytes, 4 << 20);
    assert_eq!(gw.batch.linger, Duration::ZERO);
    assert_eq!(gw.retry.initial_backoff, Duration::from_millis(100));
    assert_eq!(gw.retry.max_backoff, Duration::from_secs(5));
    assert_eq!(gw.retry.codes, vec!["UNAVAILABLE".to_string()]);
    assert_eq!(c.rules.routes[0].dedup, None);
    assert_eq!(c.shutdown_grace, Duration::from_secs(30));
}

#[test]
fn delivery_settings_as_in_the_issue_validate() {
    let c = ok(r#"
gateways:
  default:
    url: grpc://127.0.0.1:54321
    timeout: 60s
    connect_timeout: 2m
    concurrency: 4
    rate: 12.5
    max_pending: 500
    batch: { max_docs: 32, max_bytes: 1MiB, linger: 5ms }
    retry: { initial_backoff: 50ms, max_backoff: 2s, codes: [UNAVAILABLE, resource_exhausted] }
routes:
  - name: r
    dedup: 5m
shutdown_grace: 45s
"#);
    let gw = &c.gateways["default"];
    assert_eq!(gw.connect_timeout, Duration::from_secs(120));
    assert_eq!(
        (gw.concurrency, gw.rate, gw.max_pending),
        (Concurrency::Fixed(4), Some(12.5), 500)
    );
    assert_eq!(gw.batch.max_docs, 32);
    assert_eq!(gw.batch.max_bytes, 1 << 20);
    assert_eq!(gw.batch.linger, Duration::from_millis(5));
    assert_eq!(gw.retry.initial_backoff, Duration::from_millis(50));
    assert_eq!(gw.retry.max_backoff, Duration::from_secs(2));
    assert_eq!(
        gw.retry.codes,
        vec!["UNAVAILABLE".to_string(), "RESOURCE_EXHAUSTED".to_string()]
    );
    assert_eq!(c.rules.routes[0].dedup, Some(Duration::from_secs(300)));
    assert_eq!(c.shutdown_grace, Duration::from_secs(45));
    let c = ok(
        "gateways:\n  default: {url: \"grpc://127.0.0.1:1\", rate: null, batch: {linger: 0}}\nroutes: [{name: r}]\n",
    );
    assert_eq!(c.gateways["default"].rate, None);
    assert_eq!(c.gateways["default"].batch.linger, Duration::ZERO);
}

#[test]
fn bad_delivery_settings_are_all_reported_with_paths() {
    let errs = errors(
        r#"
gateways:
  default:
    url: grpc://127.0.0.1:54321
    connect_timeout: 0s
    concurrency: 0
    rate: -1
    max_pending: lots
    batch: { max_docs: 0, max_bytes: 1KiB, linger: soon }
    retry: { initial_backoff: 2s, max_backoff: 1s, codes: [UNAVAILABLE, OK, NOPE] }
routes:
  - name: r
    dedup: 5
shutdown_grace: forever
"#,
    );
    let expect = [
        "gateways.default.connect_timeout: must be greater than 0",
        "gateways.default.concurrency: expected a whole number from 1 to 100000, got 0",
        "gateways.default.rate: expected a positive number of requests per second",
        "gateways.default.max_pending: expected a whole number from 1 to 100000000, got lots",
        "gateways.default.batch.max_docs: expected a whole number",
        "gateways.default.batch.max_bytes: must be at least 64KiB",
        "gateways.default.batch.linger: expected a duration",
        "gateways.default.retry.max_backoff: must not be below initial_backoff (1s < 2s)",
        "gateways.default.retry.codes[1]: expected a gRPC status code name other than OK",
        "gateways.default.retry.codes[2]: expected a gRPC status code name other than OK",
        "routes[0].dedup: 5 needs a unit",
        "shutdown_grace: expected a duration",
    ];
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
    for prefix in expect {
        assert!(
            errs.iter().any(|e| e.starts_with(prefix)),
            "no error starting with {prefix:?} in {errs:#?}"
        );
    }
}

#[test]
fn unknown_delivery_keys_are_rejected() {
    let errs = errors(
        "gateways:\n  default: {url: \"grpc://127.0.0.1:1\", batch: {max_doc: 3}}\nroutes: [{name: r}]\n",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains("unknown field `max_doc`"), "{errs:#?}");
    assert!(errs[0].contains("max_docs"), "{errs:#?}");
}

// ---------------------------------------------------------------------------------------------
// auth and webhooks

#[test]
fn auth_and_webhooks_parse_with_secrets_from_env_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "file-token\n").unwrap();
    let yaml = format!(
        "{GW}auth:\n  oidc:\n    issuer: https://kubernetes.default.svc.cluster.local\n    \
         audiences: [flowbridge]\n    subjects: [\"system:serviceaccount:knative-eventing:pinger\"]\n    \
         leeway: 0s\n  bearer:\n    tokens_from: [{{file: {}}}, {{env: TOKEN}}]\n\
         webhooks:\n  - name: github\n    source: https://github.com/acme/shop\n    \
         type: com.github.{{header}}\n    type_header: X-GitHub-Event\n    id_header: X-GitHub-Delivery\n    \
         auth:\n      hmac: {{header: X-Hub-Signature-256, prefix: \"sha256=\", secret: {{env: HOOK}}}}\n",
        token_file.display()
    );
    let config = parse_env(&yaml, &[("TOKEN", "env-token"), ("HOOK", "s3cret")]).unwrap();
    let auth = config.auth.as_ref().unwrap();
    let oidc = auth.oidc.as_ref().unwrap();
    assert_eq!(oidc.jwks, crate::auth::spec::JwksSource::Discovery);
    assert_eq!(oidc.leeway, Duration::ZERO);
    let tokens: Vec<&[u8]> = auth
        .bearer
        .as_ref()
        .unwrap()
        .tokens
        .iter()
        .map(|t| t.expose())
        .collect();
    assert_eq!(tokens, [b"file-token".as_slice(), b"env-token".as_slice()]);
    let hook = &config.webhooks[0];
    assert_eq!(hook.type_header.as_deref(), Some("x-github-event"));
    let hmac = hook.auth.as_ref().unwrap().hmac.as_ref().unwrap();
    assert_eq!(hmac.header, "x-hub-signature-256");
    assert_eq!(hmac.secret.expose(), b"s3cret");
    // Debug output (logged configs, panics) never carries a secret.
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("env-token") && !debug.contains("file-token")
    );
}

#[test]
fn auth_and_webhook_errors_all_at_once_with_paths() {
    let yaml = format!(
        "{GW}auth:\n  oidc:\n    issuer: not a url\n    jwks_file: /nonexistent/jwks.json\n    \
         jwks_url: https://x/jwks\n  bearer:\n    tokens_from: [{{env: NOPE}}, {{}}]\n  \
         hmac: {{header: X-Sig, secret: {{env: NOPE}}}}\n\
         webhooks:\n  - name: Git Hub\n    type: a.{{header}}\n  \
         - name: ok\n    source: s\n    type: t\n    auth:\n      hmac: {{header: \"bad header\", algorithm: md5, encoding: b32}}\n"
    );
    let errs = errors(&yaml);
    let expected = [
        // Missing keys sort first among their siblings.
        "auth.oidc.audiences: required",
        "auth.oidc.issuer: not a URL",
        "auth.oidc.jwks_url: set either jwks_file or jwks_url",
        "auth.bearer.tokens_from[0].env: environment variable NOPE is not set",
        "auth.bearer.tokens_from[1]: set exactly one of `file` and `env`",
        "auth.hmac: hmac signs the body of a plain webhook",
        "webhooks[0].source: required",
        "webhooks[0].name: invalid webhook name \"Git Hub\"",
        "webhooks[0].type: \"a.{header}\" uses {header} but no type_header",
        "webhooks[1].auth.hmac.secret: required",
        "webhooks[1].auth.hmac.header: \"bad header\" is not a valid HTTP header name",
        "webhooks[1].auth.hmac.algorithm: expected sha256 or sha1, got \"md5\"",
        "webhooks[1].auth.hmac.encoding: expected hex or base64, got \"b32\"",
    ];
    for (e, want) in errs.iter().zip(expected) {
        assert!(
            e.starts_with(want),
            "expected {want:?}, got {e:?}\nall: {errs:#?}"
        );
    }
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
}

#[test]
fn empty_auth_and_bad_jwks_file_are_errors() {
    one_error(&format!("{GW}auth: {{}}\n"), "auth: lists no method");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    let e = one_error(
        &format!(
            "{GW}auth:\n  oidc: {{issuer: \"https://i\", audiences: [a], jwks_file: {}}}\n",
            jwks.display()
        ),
        "auth.oidc.jwks_file:",
    );
    assert!(e.contains("no usable signature key"), "{e}");
}

#[test]
fn docarray_defaults_to_auto_and_rejects_other_values() {
    let gw = |d: &str| {
        format!("gateways:\n  default: {{url: \"grpc://h:1\"{d}}}\nroutes: [{{name: r}}]\n")
    };
    let c = parse(&gw("")).expect("valid");
    assert_eq!(
        c.gateways["default"].docarray,
        crate::model::DocarrayMode::Auto
    );
    let c = parse(&gw(", docarray: v2")).expect("valid");
    assert_eq!(
        c.gateways["default"].docarray,
        crate::model::DocarrayMode::V2
    );
    let c = parse(&gw(", docarray: v1")).expect("valid");
    assert_eq!(
        c.gateways["default"].docarray,
        crate::model::DocarrayMode::V1
    );
    one_error(
        &gw(", docarray: v3"),
        "gateways.default.docarray: expected v1 (docarray < 0.30), v2 (docarray >= 0.30) or auto",
    );
}

// ---------------------------------------------------------------- TLS settings

mod tls {
    use super::*;
    use crate::tls::testing::Ca;

    fn files() -> (tempfile::TempDir, String, String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::new("config test ca");
        let leaf = ca.leaf(&["localhost"]);
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p.display().to_string()
        };
        let cert = write("tls.crt", &leaf.cert_pem);
        let key = write("tls.key", &leaf.key_pem);
        let ca = write("ca.crt", &ca.pem);
        (dir, cert, key, ca)
    }

    #[test]
    fn listener_tls_and_gateway_ca_load_and_are_watched() {
        let (_dir, cert, key, ca) = files();
        let c = ok(&format!(
            "tls: {{cert_file: {cert}, key_file: {key}, client_ca_file: {ca}}}\n\
             gateways:\n  g: {{url: \"grpcs://127.0.0.1:5443\", ca_file: {ca}, tls_server_name: flow.local}}\n  \
             h: {{url: \"https://127.0.0.1:8443\", ca_file: {ca}, tls_server_name: flow.local}}\n\
             routes:\n  - name: r\n    gateway: g\n"
        ));
        // https:// HTTP gateways take the same TLS keys as grpcs:// ones.
        assert_eq!(c.gateways["h"].url, "https://127.0.0.1:8443");
        assert_eq!(
            c.gateways["h"].tls.server_name.as_deref(),
            Some("flow.local")
        );
        assert_eq!(c.gateways["h"].tls.ca_pem, c.gateways["g"].tls.ca_pem);
        let tls = c.tls.as_ref().expect("tls");
        assert_eq!(tls.cert_file.display().to_string(), cert);
        let gw = &c.gateways["g"].tls;
        assert_eq!(gw.server_name.as_deref(), Some("flow.local"));
        assert!(
            gw.ca_pem
                .as_deref()
                .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
        );
        let watched: Vec<String> = c
            .referenced_files()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(watched, [cert, key, ca.clone(), ca.clone(), ca]);
    }

    #[test]
    fn tls_problems_are_reported_with_their_paths() {
        let (_dir, cert, _key, ca) = files();
        let errs = errors(&format!(
            "tls: {{cert_file: {cert}}}\n\
             gateways:\n  a: {{url: \"grpc://127.0.0.1:1\", ca_file: {ca}, tls_server_name: x}}\n  \
             b: {{url: \"grpcs://127.0.0.1:2\", ca_file: /nonexistent/ca.pem, tls_server_name: \"not a name!\"}}\n\
             routes:\n  - name: r\n    gateway: a\n"
        ));
        assert_eq!(errs.len(), 5, "{errs:#?}");
        let expect = [
            "tls.key_file: required with `tls`",
            "gateways.a.ca_file: only for TLS gateways (grpcs://, https://, wss://)",
            "gateways.a.tls_server_name: only for TLS gateways",
            "gateways.b.ca_file: cannot read /nonexistent/ca.pem",
            "gateways.b.tls_server_name: \"not a name!\" is not a DNS name",
        ];
        for prefix in expect {
            assert!(
                errs.iter().any(|e| e.starts_with(prefix)),
                "no error starting with {prefix:?} in {errs:#?}"
            );
        }
    }

    #[test]
    fn a_key_that_does_not_fit_fails_at_its_path() {
        let (dir, cert, _key, _ca) = files();
        let other = Ca::new("other").leaf(&["localhost"]);
        let key = dir.path().join("other.key");
        std::fs::write(&key, other.key_pem).expect("write");
        let e = one_error(
            &format!(
                "tls: {{cert_file: {cert}, key_file: {}}}\n{GW}routes:\n  - name: r\n",
                key.display()
            ),
            "tls.key_file: ",
        );
        assert!(e.contains("does not fit the certificate"), "{e}");
    }
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

// ---------------------------------------------------------------- concurrency

#[test]
fn concurrency_is_auto_by_default_with_bounds_or_fixed() {
    let gw = |c: &str| {
        ok(&format!(
            "gateways:\n  default: {{url: \"grpc://h:1\", concurrency: {c}}}\nroutes: [{{name: r}}]\n"
        ))
        .gateways["default"]
            .concurrency
    };
    assert_eq!(gw("auto"), Concurrency::Auto { min: 1, max: 64 });
    assert_eq!(gw("{min: 2, max: 8}"), Concurrency::Auto { min: 2, max: 8 });
    assert_eq!(gw("{max: 8}"), Concurrency::Auto { min: 1, max: 8 });
    assert_eq!(gw("{min: 100}"), Concurrency::Auto { min: 100, max: 100 });
    assert_eq!(gw("8"), Concurrency::Fixed(8));
    let errs = errors(
        "gateways:\n  a: {url: \"grpc://h:1\", concurrency: fast}\n  \
         b: {url: \"grpc://h:2\", concurrency: {min: 5, max: 2}}\n  \
         c: {url: \"grpc://h:3\", concurrency: {mni: 1}}\n  \
         d: {url: \"grpc://h:4\", concurrency: 0}\n\
         routes: [{name: r, gateway: a}]\n",
    );
    let expected = [
        "gateways.a.concurrency: expected auto, {min: N, max: N} or a whole number",
        "gateways.b.concurrency.min: min 5 is above max 2",
        "gateways.c.concurrency.mni: unknown key",
        "gateways.d.concurrency: expected a whole number from 1 to 100000, got 0",
    ];
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    for (err, prefix) in errs.iter().zip(expected) {
        assert!(err.starts_with(prefix), "expected {prefix:?}, got {err:?}");
    }
}
