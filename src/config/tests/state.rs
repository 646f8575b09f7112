//! `state:`: the Redis URL, TLS, password, prefix, timeouts and `on_state_error`, with every
//! problem at once and its line.

use super::load::lines_of;
use super::*;
use crate::state::{Policies, Policy};

fn with_state(state: &str) -> String {
    format!("{GW}routes:\n  - name: r\nstate:\n{state}")
}

#[test]
fn no_state_means_none_and_defaults_fill_in() {
    assert!(ok(&with_routes("  - name: r\n")).state.is_none());
    let config = ok(&with_state("  redis: redis://127.0.0.1:6379/0\n"));
    let state = config.state.unwrap();
    assert_eq!(state.url, "redis://127.0.0.1:6379/0");
    assert_eq!(state.key_prefix, "flowbridge:");
    assert_eq!(state.command_timeout, std::time::Duration::from_millis(250));
    assert_eq!(state.on_state_error, Policies::default());
    let config = ok(&with_state(
        "  redis: redis://redis:6379\n  key_prefix: \"team-a:\"\n  command_timeout: 100ms\n  \
         connect_timeout: 2s\n  on_state_error: {dedup: closed}\n",
    ));
    let state = config.state.unwrap();
    assert_eq!(state.key_prefix, "team-a:");
    assert_eq!(state.connect_timeout, std::time::Duration::from_secs(2));
    assert_eq!(
        state.on_state_error,
        Policies {
            dedup: Policy::Closed,
            rate: Policy::Open
        }
    );
    let both = ok(&with_state(
        "  redis: redis://redis\n  on_state_error: closed\n",
    ));
    assert_eq!(both.state.unwrap().on_state_error.rate, Policy::Closed);
}

#[test]
fn password_comes_from_env_or_file_and_is_not_shown() {
    let config = parse_env(
        &with_state("  redis: redis://redis:6379/0\n  password: {env: REDIS_PASSWORD}\n"),
        &[("REDIS_PASSWORD", "s3cret")],
    )
    .unwrap();
    let state = config.state.unwrap();
    assert_eq!(state.password.as_deref(), Some("s3cret"));
    assert!(!format!("{state:?}").contains("s3cret"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "from-file\n").unwrap();
    let config = ok(&with_state(&format!(
        "  redis: redis://redis:6379/0\n  password: {{file: {}}}\n",
        file.display()
    )));
    assert_eq!(
        config.state.as_ref().unwrap().password.as_deref(),
        Some("from-file")
    );
    assert!(config.referenced_files().contains(&file));
}

#[test]
fn every_mistake_at_once_with_its_line() {
    let yaml = with_state(
        "  redis: http://redis:6379\n  ca_file: /nope.pem\n  password: {env: MISSING}\n  \
         command_timeout: 30s\n  on_state_error: {dedup: maybe, speed: open}\n  colour: red\n",
    );
    let got = lines_of(&yaml);
    let expected = [
        "line 6: state.redis: \"http://redis:6379\": expected redis://",
        "line 7: state.ca_file: cannot read /nope.pem",
        "line 8: state.password.env: environment variable MISSING is not set",
        "line 9: state.command_timeout: at most 10s",
        "line 10: state.on_state_error.dedup: expected open (go on without the shared state) or closed",
        "line 10: state.on_state_error.speed: unknown feature",
        "line 11: state.colour: unknown field `colour`",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (got, want) in got.iter().zip(expected) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }
}

#[test]
fn ca_file_needs_rediss_and_redis_is_required() {
    one_error(
        &with_state("  redis: redis://redis:6379\n  ca_file: /x.pem\n"),
        "state.ca_file: only for rediss://",
    );
    one_error(
        &with_state("  key_prefix: x\n"),
        "state.redis: required with `state`",
    );
    one_error(
        &with_state("  redis: redis://redis:6379/zero\n"),
        "state.redis: \"redis://redis:6379/zero\": the path is the database number",
    );
}
