//! Proves the test harness (`tests/support`): the shared real Jina Flow starts, its gateway port
//! accepts TCP, the recorder's file starts empty and is parsed; and the raw HTTP reader works.

mod support;

use std::time::Duration;

#[test]
fn shared_flow_starts_with_empty_record_and_open_gateway() {
    let flow = support::shared_flow();
    assert!(
        support::port_accepts(flow.port),
        "gateway port {} refuses TCP; log:\n{}",
        flow.port,
        flow.log_tail(40)
    );
    assert_eq!(flow.records(), Vec::<serde_json::Value>::new());
    assert!(flow.records_with_doc("no-such-doc").is_empty());
    assert_eq!(
        flow.wait_for_record(Duration::from_millis(100), |_| true),
        None
    );
    assert!(flow.grpc_url().ends_with(&format!(":{}", flow.port)));
}

#[test]
fn shared_flow_is_one_instance_per_binary() {
    let a = support::shared_flow();
    let b = support::shared_flow();
    assert!(std::ptr::eq(a, b));
}

#[test]
fn http_reader_parses_plain_and_chunked_bodies() {
    let plain = support::parse_response(
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok",
        false,
    )
    .expect("plain response");
    assert_eq!(plain.status, 202);
    assert_eq!(plain.header("X-A"), Some("b"));
    assert_eq!(plain.body, b"ok");

    let chunked = support::parse_response(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        false,
    )
    .expect("chunked response");
    assert_eq!(chunked.body, b"abcde");

    assert!(support::parse_response(b"HTTP/1.1 200 OK\r\n", false).is_err());
    assert!(
        support::parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
            false
        )
        .is_err()
    );
}

#[test]
fn free_port_is_bindable() {
    let port = support::free_port();
    assert_ne!(port, 0);
    assert!(!support::port_accepts(port));
}
