//! Tests of `crate::dispatch::batch`.

use super::*;

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn doc(id: &str) -> Document {
    Document {
        id: id.into(),
        ..Document::default()
    }
}

const CAPS: Caps = Caps {
    max_docs: 4,
    max_bytes: 1000,
};

#[test]
fn same_key_events_join_up_to_max_docs() {
    let a = ids(&["a"]);
    let b = ids(&["b1", "b2"]);
    let c = ids(&["c"]);
    let d = ids(&["d"]);
    let queue = [
        Candidate {
            key: "k",
            ids: &a,
            bytes: 10,
            alone: false,
        },
        Candidate {
            key: "k",
            ids: &b,
            bytes: 10,
            alone: false,
        },
        Candidate {
            key: "k",
            ids: &c,
            bytes: 10,
            alone: false,
        },
        Candidate {
            key: "k",
            ids: &d,
            bytes: 10,
            alone: false,
        },
    ];
    assert_eq!(select(&queue, CAPS), vec![0, 1, 2]);
}

#[test]
fn other_keys_collisions_and_loners_are_skipped() {
    let a = ids(&["a"]);
    let other = ids(&["o"]);
    let clash = ids(&["a"]);
    let lonely = ids(&["x", "x"]);
    let b = ids(&["b"]);
    let queue = [
        Candidate {
            key: "k",
            ids: &a,
            bytes: 10,
            alone: false,
        },
        Candidate {
            key: "j",
            ids: &other,
            bytes: 10,
            alone: false,
        },
        Candidate {
            key: "k",
            ids: &clash,
            bytes: 10,
            alone: false,
        },
        Candidate {
            key: "k",
            ids: &lonely,
            bytes: 10,
            alone: true,
        },
        Candidate {
            key: "k",
            ids: &b,
            bytes: 10,
            alone: false,
        },
    ];
    assert_eq!(select(&queue, CAPS), vec![0, 4]);
}

#[test]
fn byte_cap_and_oversized_first_event() {
    let a = ids(&["a"]);
    let b = ids(&["b"]);
    let c = ids(&["c"]);
    let queue = [
        Candidate {
            key: "k",
            ids: &a,
            bytes: 600,
            alone: false,
        },
        Candidate {
            key: "k",
            ids: &b,
            bytes: 600,
            alone: false,
        },
        Candidate {
            key: "k",
            ids: &c,
            bytes: 300,
            alone: false,
        },
    ];
    assert_eq!(select(&queue, CAPS), vec![0, 2]);
    let big = ids(&["1", "2", "3", "4", "5", "6"]);
    let queue = [
        Candidate {
            key: "k",
            ids: &big,
            bytes: 5000,
            alone: false,
        },
        Candidate {
            key: "k",
            ids: &a,
            bytes: 1,
            alone: false,
        },
    ];
    assert_eq!(
        select(&queue, CAPS),
        vec![0],
        "an oversized event goes out alone"
    );
    let lonely = ids(&["x", "x"]);
    let queue = [
        Candidate {
            key: "k",
            ids: &lonely,
            bytes: 1,
            alone: true,
        },
        Candidate {
            key: "k",
            ids: &a,
            bytes: 1,
            alone: false,
        },
    ];
    assert_eq!(select(&queue, CAPS), vec![0]);
    assert!(select(&[], CAPS).is_empty());
}

#[test]
fn duplicate_ids_are_detected() {
    assert!(has_duplicate_ids(&ids(&["a", "b", "a"])));
    assert!(!has_duplicate_ids(&ids(&["a", "b"])));
}

#[test]
fn results_go_back_by_id_in_flow_order() {
    let sent = vec![ids(&["e1"]), ids(&["e2/0", "e2/1"])];
    let got = split(&sent, vec![doc("e2/1"), doc("e1"), doc("e2/0")]);
    let got: Vec<Vec<String>> = got
        .into_iter()
        .map(|r| r.unwrap().into_iter().map(|d| d.id).collect())
        .collect();
    assert_eq!(got, vec![ids(&["e1"]), ids(&["e2/1", "e2/0"])]);
}

#[test]
fn a_single_event_gets_whatever_came_back() {
    let got = split(&[ids(&["a"])], vec![doc("renamed"), doc("added")]);
    assert_eq!(got[0].as_ref().unwrap().len(), 2);
}

#[test]
fn dropped_documents_fail_only_their_event() {
    let sent = vec![ids(&["a"]), ids(&["b1", "b2"])];
    let got = split(&sent, vec![doc("a"), doc("b1")]);
    assert!(got[0].is_ok());
    let err = got[1].as_ref().unwrap_err();
    assert!(err.contains("returned 1 of this event's 2"), "{err}");
    assert!(err.contains("\"b2\""), "{err}");
}

#[test]
fn renamed_or_duplicated_documents_fail_loudly() {
    let sent = vec![ids(&["a"]), ids(&["b"])];
    let got = split(&sent, vec![doc("a"), doc("B")]);
    for r in &got {
        let err = r.as_ref().unwrap_err();
        assert!(err.contains("ids not in the request (\"B\")"), "{err}");
    }
    let got = split(&sent, vec![doc("a"), doc("b"), doc("b")]);
    assert!(got[0].is_ok());
    let err = got[1].as_ref().unwrap_err();
    assert!(err.contains("came back twice"), "{err}");
}
