//! Whole configs: defaults, the embedded default, the file loader, YAML-level errors, every
//! error at once in document order, compiler errors through the test seam, the shipped examples.

use std::time::Duration;

use super::*;
use crate::config::check::parse_size;
use crate::rules::Unmatched;
use crate::rules::cel::Predicate;
use crate::rules::mapping::{Expr, FieldError, Mapping, MappingSpec, ReplyData};

// ---------------------------------------------------------------- valid configs and defaults

#[test]
fn minimal_config_gets_defaults() {
    let c = ok(&with_routes("  - name: r\n"));
    assert_eq!(c.listen, "0.0.0.0:8080".parse().expect("addr"));
    assert_eq!(c.limits.max_body, 4 << 20);
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
    assert_eq!(c.limits.max_body, 8 << 20);
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
    assert_eq!(c.limits.max_body, 65536);
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
pub(super) fn lines_of(yaml: &str) -> Vec<String> {
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
