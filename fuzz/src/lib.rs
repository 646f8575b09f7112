//! What the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and the replay test
//! (`tests/fuzz_regressions.rs`, which includes this file with `#[path]`) share:
//!
//! * [`wire`]: the byte formats the targets decode fuzzer input from. They are hand-written
//!   (behind an [`arbitrary::Arbitrary`] impl) rather than derived, so that they can also be
//!   *encoded*: the replay test turns the conformance fixtures into seed inputs with them.
//! * [`check`]: the invariants each target asserts. A broken invariant panics, which libFuzzer
//!   reports as a crash and `cargo test` as a failure.
//!
//! Text fields in the formats end with [`wire::END`] (0xFF, a byte UTF-8 never uses), so a
//! mutation that inserts or deletes bytes inside a field keeps the rest of the input aligned.

/// Byte formats of the fuzz inputs: decode from any bytes (never fails), encode for seeds.
pub mod wire {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use flowbridge::cloudevents;
    use flowbridge::model::{CloudEvent, Data, ExtValue, SpecVersion};
    use http::{HeaderMap, HeaderName, HeaderValue};
    use serde_json::{Map, Number, Value};

    /// Ends a text field, a header list, an array or an object.
    pub const END: u8 = 0xFF;
    /// Deepest JSON nesting the event format builds (serde_json's own limit is 128).
    pub const MAX_JSON_DEPTH: usize = 32;

    /// Reads fields from fuzzer bytes; running out of input yields empty fields, never an error.
    pub struct Reader<'a> {
        data: &'a [u8],
    }

    impl<'a> Reader<'a> {
        pub fn new(data: &'a [u8]) -> Reader<'a> {
            Reader { data }
        }

        pub fn byte(&mut self) -> Option<u8> {
            let (&first, rest) = self.data.split_first()?;
            self.data = rest;
            Some(first)
        }

        /// Bytes up to the next [`END`] (consumed) or the end of the input.
        pub fn field(&mut self) -> &'a [u8] {
            let cut = self
                .data
                .iter()
                .position(|&b| b == END)
                .unwrap_or(self.data.len());
            let (field, rest) = self.data.split_at(cut);
            self.data = rest.get(1..).unwrap_or_default();
            field
        }

        pub fn text(&mut self) -> String {
            String::from_utf8_lossy(self.field()).into_owned()
        }

        /// Eight bytes, little-endian, zero-padded when the input runs out.
        pub fn u64(&mut self) -> u64 {
            let mut buf = [0u8; 8];
            for slot in &mut buf {
                *slot = self.byte().unwrap_or(0);
            }
            u64::from_le_bytes(buf)
        }

        pub fn rest(&mut self) -> &'a [u8] {
            std::mem::take(&mut self.data)
        }
    }

    /// The inverse of [`Reader`]. Fields cannot contain [`END`]; such values make the encoder
    /// return `None` (no fixture has them).
    #[derive(Default)]
    pub struct Writer {
        pub out: Vec<u8>,
    }

    impl Writer {
        pub fn byte(&mut self, b: u8) {
            self.out.push(b);
        }

        pub fn field(&mut self, bytes: &[u8]) -> Option<()> {
            if bytes.contains(&END) {
                return None;
            }
            self.out.extend_from_slice(bytes);
            self.out.push(END);
            Some(())
        }

        pub fn u64(&mut self, v: u64) {
            self.out.extend_from_slice(&v.to_le_bytes());
        }

        pub fn rest(&mut self, bytes: &[u8]) {
            self.out.extend_from_slice(bytes);
        }
    }

    // -----------------------------------------------------------------------------------------
    // HTTP message (binding_headers)

    /// Header names picked by one selector byte; any other name is spelled out.
    pub const HEADER_NAMES: &[&str] = &[
        "content-type",
        "ce-specversion",
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-time",
        "ce-subject",
        "ce-dataschema",
        "ce-schemaurl",
        "ce-datacontenttype",
        "ce-datacontentencoding",
        "ce-traceparent",
        "ce-partitionkey",
        "ce-comexampleextension1",
    ];

    /// An HTTP message: headers in order (repeats allowed) and a body.
    ///
    /// Format: per header a selector byte `s` (`s % (HEADER_NAMES.len() + 1)` picks a name; the
    /// last choice means "name follows as a field"), then the value as a field; [`END`] as the
    /// selector ends the headers; the rest of the input is the body.
    #[derive(Debug, Clone, PartialEq)]
    pub struct HttpInput {
        pub headers: Vec<(String, Vec<u8>)>,
        pub body: Vec<u8>,
    }

    impl HttpInput {
        pub fn decode(data: &[u8]) -> HttpInput {
            let mut r = Reader::new(data);
            let mut headers = Vec::new();
            while let Some(selector) = r.byte() {
                if selector == END {
                    break;
                }
                let choice = usize::from(selector) % (HEADER_NAMES.len() + 1);
                let name = match HEADER_NAMES.get(choice) {
                    Some(known) => (*known).to_string(),
                    None => r.text(),
                };
                headers.push((name, r.field().to_vec()));
            }
            HttpInput {
                headers,
                body: r.rest().to_vec(),
            }
        }

        pub fn encode(&self) -> Option<Vec<u8>> {
            let mut w = Writer::default();
            for (name, value) in &self.headers {
                match HEADER_NAMES.iter().position(|known| known == name) {
                    Some(i) => w.byte(u8::try_from(i).ok()?),
                    None => {
                        w.byte(u8::try_from(HEADER_NAMES.len()).ok()?);
                        w.field(name.as_bytes())?;
                    }
                }
                w.field(value)?;
            }
            w.byte(END);
            w.rest(&self.body);
            Some(w.out)
        }

        /// The headers an HTTP server could have received: names and values that `http` does
        /// not accept (a server would have refused the request) are left out.
        pub fn header_map(&self) -> HeaderMap {
            let mut map = HeaderMap::new();
            for (name, value) in &self.headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_bytes(value),
                ) {
                    map.append(name, value);
                }
            }
            map
        }

        pub fn from_message(headers: &HeaderMap, body: &[u8]) -> HttpInput {
            HttpInput {
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                    .collect(),
                body: body.to_vec(),
            }
        }
    }

    impl<'a> arbitrary::Arbitrary<'a> for HttpInput {
        fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<HttpInput> {
            Ok(HttpInput::decode(u.bytes(u.len())?))
        }
    }

    // -----------------------------------------------------------------------------------------
    // CloudEvent (rules_eval)

    /// A CloudEvent as fuzzer bytes.
    ///
    /// Format: a flags byte (bit 0: spec 0.3; bits 1–4: `datacontenttype`, `dataschema`,
    /// `subject`, `time` present), the fields `id`, `source`, `type`, the present optional
    /// attributes in that order, extensions (a selector byte each — [`END`] ends the list,
    /// `s % 3` picks string/boolean/integer — the name field, then a field, a byte or four
    /// bytes), then a data kind byte (`% 4`: none, JSON tree, text, bytes) and the data: a
    /// [`json`] tree or the rest of the input.
    #[derive(Debug, Clone, PartialEq)]
    pub struct EventInput(pub CloudEvent);

    impl EventInput {
        pub fn decode(data: &[u8]) -> EventInput {
            let mut r = Reader::new(data);
            let flags = r.byte().unwrap_or(0);
            let mut event = CloudEvent::new(r.text(), r.text(), r.text());
            if flags & 1 == 1 {
                event.specversion = SpecVersion::V03;
            }
            let mut optional = |bit: u8| (flags & (1 << bit) != 0).then(|| r.text());
            event.datacontenttype = optional(1);
            event.dataschema = optional(2);
            event.subject = optional(3);
            event.time = optional(4);
            let mut extensions = BTreeMap::new();
            while let Some(selector) = r.byte() {
                if selector == END {
                    break;
                }
                let name = r.text();
                let value = match selector % 3 {
                    0 => ExtValue::String(r.text()),
                    1 => ExtValue::Bool(r.byte().unwrap_or(0) & 1 == 1),
                    _ => {
                        let mut buf = [0u8; 4];
                        for slot in &mut buf {
                            *slot = r.byte().unwrap_or(0);
                        }
                        ExtValue::Integer(i64::from(i32::from_le_bytes(buf)))
                    }
                };
                extensions.insert(name, value);
            }
            event.extensions = extensions;
            event.data = match r.byte().map(|kind| kind % 4) {
                None | Some(0) => None,
                Some(1) => Some(Data::Json(json::read(&mut r, 0))),
                Some(2) => Some(Data::Text(String::from_utf8_lossy(r.rest()).into_owned())),
                _ => Some(Data::Binary(Bytes::copy_from_slice(r.rest()))),
            };
            EventInput(event)
        }

        pub fn encode(&self) -> Option<Vec<u8>> {
            let e = &self.0;
            let mut w = Writer::default();
            let mut flags = u8::from(e.specversion == SpecVersion::V03);
            for (bit, present) in [
                e.datacontenttype.is_some(),
                e.dataschema.is_some(),
                e.subject.is_some(),
                e.time.is_some(),
            ]
            .into_iter()
            .enumerate()
            {
                if present {
                    flags |= 1 << (bit + 1);
                }
            }
            w.byte(flags);
            for text in [&e.id, &e.source, &e.ty] {
                w.field(text.as_bytes())?;
            }
            for text in [&e.datacontenttype, &e.dataschema, &e.subject, &e.time]
                .into_iter()
                .flatten()
            {
                w.field(text.as_bytes())?;
            }
            for (name, value) in &e.extensions {
                match value {
                    ExtValue::String(s) => {
                        w.byte(0);
                        w.field(name.as_bytes())?;
                        w.field(s.as_bytes())?;
                    }
                    ExtValue::Bool(b) => {
                        w.byte(1);
                        w.field(name.as_bytes())?;
                        w.byte(u8::from(*b));
                    }
                    ExtValue::Integer(i) => {
                        w.byte(2);
                        w.field(name.as_bytes())?;
                        w.rest(&i32::try_from(*i).ok()?.to_le_bytes());
                    }
                }
            }
            w.byte(END);
            match &e.data {
                None => w.byte(0),
                Some(Data::Json(v)) => {
                    w.byte(1);
                    json::write(&mut w, v, 0)?;
                }
                Some(Data::Text(s)) => {
                    w.byte(2);
                    w.rest(s.as_bytes());
                }
                Some(Data::Binary(b)) => {
                    w.byte(3);
                    w.rest(b);
                }
            }
            Some(w.out)
        }

        /// The event as the HTTP binding would deliver it (through the JSON event format's
        /// validation), or `None` when the binding would have refused it.
        pub fn validated(&self) -> Option<CloudEvent> {
            cloudevents::from_json(&cloudevents::to_json(&self.0)).ok()
        }
    }

    impl<'a> arbitrary::Arbitrary<'a> for EventInput {
        fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<EventInput> {
            Ok(EventInput::decode(u.bytes(u.len())?))
        }
    }

    /// JSON values as a tree of tagged nodes: a tag byte (`% 9`: null, false, true, i64, u64,
    /// f64, string, array, object), then the payload (eight bytes, a field, or the members:
    /// array elements start with their own tag, object members with any byte but [`END`]
    /// followed by the key field and the value; [`END`] closes the container).
    pub mod json {
        use super::*;

        pub fn read(r: &mut Reader<'_>, depth: usize) -> Value {
            match r.byte() {
                None | Some(END) => Value::Null,
                Some(tag) => read_tagged(r, tag, depth),
            }
        }

        fn read_tagged(r: &mut Reader<'_>, tag: u8, depth: usize) -> Value {
            match tag % 9 {
                0 => Value::Null,
                1 => Value::Bool(false),
                2 => Value::Bool(true),
                // Two's complement: the same eight bytes as the u64.
                3 => Value::from(r.u64().cast_signed()),
                4 => Value::from(r.u64()),
                5 => Number::from_f64(f64::from_bits(r.u64())).map_or(Value::Null, Value::Number),
                6 => Value::String(r.text()),
                _ if depth >= MAX_JSON_DEPTH => Value::Null,
                7 => {
                    let mut items = Vec::new();
                    while let Some(tag) = r.byte() {
                        if tag == END {
                            break;
                        }
                        items.push(read_tagged(r, tag, depth + 1));
                    }
                    Value::Array(items)
                }
                _ => {
                    let mut members = Map::new();
                    while let Some(marker) = r.byte() {
                        if marker == END {
                            break;
                        }
                        let key = r.text();
                        let value = read(r, depth + 1);
                        members.insert(key, value);
                    }
                    Value::Object(members)
                }
            }
        }

        pub fn write(w: &mut Writer, value: &Value, depth: usize) -> Option<()> {
            match value {
                Value::Null => w.byte(0),
                Value::Bool(false) => w.byte(1),
                Value::Bool(true) => w.byte(2),
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        w.byte(3);
                        w.u64(i.cast_unsigned());
                    } else if let Some(u) = n.as_u64() {
                        w.byte(4);
                        w.u64(u);
                    } else {
                        w.byte(5);
                        w.u64(n.as_f64()?.to_bits());
                    }
                }
                Value::String(s) => {
                    w.byte(6);
                    w.field(s.as_bytes())?;
                }
                Value::Array(_) | Value::Object(_) if depth >= MAX_JSON_DEPTH => return None,
                Value::Array(items) => {
                    w.byte(7);
                    for item in items {
                        write(w, item, depth + 1)?;
                    }
                    w.byte(END);
                }
                Value::Object(members) => {
                    w.byte(8);
                    for (key, value) in members {
                        w.byte(0);
                        w.field(key.as_bytes())?;
                        write(w, value, depth + 1)?;
                    }
                    w.byte(END);
                }
            }
            Some(())
        }
    }
}

/// The invariants, one entry point per target.
pub mod check {
    use std::collections::HashSet;
    use std::sync::LazyLock;

    use bytes::Bytes;
    use flowbridge::cloudevents::{self, BindingError, Decoded, Mode};
    use flowbridge::config::{self, ConfigErrors, Overrides};
    use flowbridge::ingress::error::IngressError;
    use flowbridge::model::{CloudEvent, Data, ExtValue};
    use flowbridge::rules::RuleSet;
    use flowbridge::rules::cesql::Expression;
    use http::header::CONTENT_TYPE;
    use http::{HeaderMap, HeaderValue};
    use serde_json::Value;

    use super::wire::{EventInput, HttpInput};

    const STRUCTURED: &str = "application/cloudevents+json";
    const BATCH: &str = "application/cloudevents-batch+json";

    // -----------------------------------------------------------------------------------------
    // HTTP binding

    /// `binding_headers`: any HTTP message decodes to events that survive both encodings, or
    /// fails with a 4xx.
    pub fn binding_headers(data: &[u8]) {
        let input = HttpInput::decode(data);
        http_message(&input.header_map(), &Bytes::from(input.body));
    }

    /// `binding_json`: the bytes as a structured-mode body and as a batch body.
    pub fn binding_json(data: &[u8]) {
        let body = Bytes::copy_from_slice(data);
        http_message(&content_type(STRUCTURED), &body);
        http_message(&content_type(BATCH), &body);
    }

    fn content_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    /// Decode, then check the outcome.
    pub fn http_message(headers: &HeaderMap, body: &Bytes) {
        match cloudevents::decode(headers, body) {
            Err(error) => binding_error(error),
            Ok(decoded) => {
                let mode = cloudevents::detect_mode(headers);
                assert_eq!(mode, Ok(decoded.mode), "decode and detect_mode disagree");
                if decoded.mode != Mode::Batched {
                    assert_eq!(decoded.events.len(), 1, "{:?} mode", decoded.mode);
                }
                for event in &decoded.events {
                    structured_round_trip(event);
                    binary_round_trip(event);
                }
                if decoded.mode == Mode::Batched {
                    batch_round_trip(&decoded.events);
                }
            }
        }
    }

    /// A refused message is the sender's fault (4xx), says why, and fits the error body.
    pub fn binding_error(error: BindingError) {
        let message = error.to_string();
        assert!(!message.trim().is_empty(), "empty binding error: {error:?}");
        let error = IngressError::Binding(error);
        assert!(
            error.status().is_client_error(),
            "binding error answered {}: {error}",
            error.status()
        );
        let body = error.body("");
        assert!(body.len() < 1024, "error body of {} bytes", body.len());
    }

    fn decode_one(headers: &HeaderMap, body: Bytes, what: &str) -> Result<Decoded, String> {
        cloudevents::decode(headers, &body).map_err(|e| format!("{what} re-decode failed: {e}"))
    }

    /// `to_json` then structured decode gives the same event, exactly.
    pub fn structured_round_trip(event: &CloudEvent) {
        let body = Bytes::from(cloudevents::to_json(event).to_string());
        let decoded = match decode_one(&content_type(STRUCTURED), body, "structured") {
            Ok(decoded) => decoded,
            Err(e) => panic!("{e}\nevent: {event:?}"),
        };
        assert_eq!(
            decoded.events,
            std::slice::from_ref(event),
            "structured round trip"
        );
    }

    /// The same events come back from a batch of their JSON forms.
    pub fn batch_round_trip(events: &[CloudEvent]) {
        let batch = Value::Array(events.iter().map(cloudevents::to_json).collect());
        let decoded = match decode_one(
            &content_type(BATCH),
            Bytes::from(batch.to_string()),
            "batch",
        ) {
            Ok(decoded) => decoded,
            Err(e) => panic!("{e}\nevents: {events:?}"),
        };
        assert_eq!(decoded.events, events, "batch round trip");
    }

    /// `encode_binary` then decode gives the same event, up to what binary mode cannot carry:
    /// extension types (all strings in headers), the default content type `encode_binary`
    /// writes, empty data (an empty body is no data), and whether bytes were text or binary.
    /// The one refusal allowed: data given as bytes (`data_base64`) under a JSON or text content
    /// type that the bytes do not satisfy.
    pub fn binary_round_trip(event: &CloudEvent) {
        let (headers, body) = cloudevents::encode_binary(event);
        let decoded = match cloudevents::decode(&headers, &body) {
            Ok(decoded) => decoded,
            Err(e) => {
                let bytes_under_declared_type = matches!(event.data, Some(Data::Binary(_)))
                    && event.datacontenttype.is_some()
                    && e.to_string().starts_with("attribute \"datacontenttype\"");
                assert!(
                    bytes_under_declared_type,
                    "binary re-decode failed: {e}\nevent: {event:?}\nheaders: {headers:?}"
                );
                return;
            }
        };
        assert_eq!(decoded.mode, Mode::Binary);
        assert_eq!(decoded.events.len(), 1);
        let expected = as_binary_sees_it(event);
        let got = as_binary_sees_it(&decoded.events[0]);
        assert_eq!(
            got, expected,
            "binary round trip\nevent: {event:?}\nheaders: {headers:?}"
        );
    }

    /// What of an event binary mode preserves.
    #[derive(Debug, PartialEq)]
    struct BinaryView {
        event: CloudEvent,
        payload: Option<Payload>,
    }

    #[derive(Debug)]
    enum Payload {
        Json(Value),
        Bytes(Vec<u8>),
    }

    impl PartialEq for Payload {
        fn eq(&self, other: &Payload) -> bool {
            let as_json = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).ok();
            match (self, other) {
                (Payload::Json(a), Payload::Json(b)) => a == b,
                (Payload::Bytes(a), Payload::Bytes(b)) => a == b,
                (Payload::Json(j), Payload::Bytes(b)) | (Payload::Bytes(b), Payload::Json(j)) => {
                    as_json(b).as_ref() == Some(j)
                }
            }
        }
    }

    fn as_binary_sees_it(event: &CloudEvent) -> BinaryView {
        let mut event = event.clone();
        for value in event.extensions.values_mut() {
            *value = ExtValue::String(value.to_canonical());
        }
        if event.datacontenttype.is_none() {
            event.datacontenttype = match event.data {
                Some(Data::Json(_)) => Some("application/json".to_string()),
                Some(Data::Text(_)) => Some("text/plain; charset=utf-8".to_string()),
                Some(Data::Binary(_)) => Some("application/octet-stream".to_string()),
                None => None,
            };
        }
        let payload = match event.data.take() {
            None => None,
            Some(Data::Json(v)) => Some(Payload::Json(v)),
            Some(Data::Text(s)) => Some(Payload::Bytes(s.into_bytes())),
            Some(Data::Binary(b)) => Some(Payload::Bytes(b.to_vec())),
        };
        let payload = payload.filter(|p| !matches!(p, Payload::Bytes(b) if b.is_empty()));
        BinaryView { event, payload }
    }

    // -----------------------------------------------------------------------------------------
    // Config

    /// `config_yaml`: loading any text never panics; a refusal lists at least one problem, each
    /// with a path and a message; warnings have both too.
    pub fn config_yaml(data: &[u8]) {
        // A config file is read with `read_to_string`: non-UTF-8 never reaches the parser.
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match config::from_yaml(text, "fuzz.yaml", &Overrides::default()) {
            Ok(config) => {
                for warning in &config.warnings {
                    assert!(
                        !warning.path.is_empty(),
                        "warning without a path: {warning:?}"
                    );
                    assert!(!warning.message.is_empty(), "empty warning: {warning:?}");
                }
            }
            Err(ConfigErrors(errors)) => {
                assert!(!errors.is_empty(), "refused without a reason");
                for error in &errors {
                    assert!(!error.path.is_empty(), "error without a path: {error:?}");
                    assert!(!error.message.is_empty(), "empty error: {error:?}");
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rules: CEL and CESQL programs on fuzzed events

    /// The fixed routes `rules_eval` runs every event through: CEL and CESQL filters and
    /// mappings written the way an operator would, reaching into `event.data` with the
    /// indexes, sizes and conversions a hostile sender controls. One filter per route, so that
    /// every filter is evaluated.
    pub const RULES_YAML: &str = include_str!("rules.yaml");

    static RULES: LazyLock<RuleSet> = LazyLock::new(|| {
        match config::from_yaml(RULES_YAML, "fuzz/src/rules.yaml", &Overrides::default()) {
            Ok(config) => config.rules,
            Err(errors) => panic!("fuzz/src/rules.yaml does not load:\n{errors}"),
        }
    });

    /// CESQL expressions evaluated in full (not only as filters): any result type.
    pub const CESQL: &[&str] = &[
        "LENGTH(subject) + INT(seq) * 1000000",
        "ABS(INT(seq)) - 2147483647",
        "-INT(seq)",
        "INT(seq) / INT(divisor)",
        "INT(seq) % INT(divisor)",
        "SUBSTRING(subject, INT(seq))",
        "SUBSTRING(subject, INT(seq), INT(divisor))",
        "LEFT(subject, INT(seq))",
        "RIGHT(type, INT(seq))",
        "CONCAT_WS(STRING(seq), type, source, id, subject)",
        "UPPER(LOWER(TRIM(subject)))",
        "subject LIKE '%a%b_c%\\%%'",
        "source LIKE '_%_%_%_%_%_%_%_%_%_%z'",
        "BOOL(flag) XOR IS_BOOL(flag) AND IS_INT(seq)",
        "seq IN (1, 2, '3', TRUE, type)",
        "EXISTS comexampleextension1 OR NOT EXISTS subject",
        "time > '2020' AND dataschema <> ''",
    ];

    static EXPRESSIONS: LazyLock<Vec<Expression>> = LazyLock::new(|| {
        CESQL
            .iter()
            .map(|source| match Expression::compile(source) {
                Ok(e) => e,
                Err(e) => panic!("fuzz CESQL expression {source:?} does not compile: {e}"),
            })
            .collect()
    });

    /// `rules_eval`: decode an event; if the binding would accept it, run it through every
    /// fixed program.
    pub fn rules_eval(data: &[u8]) {
        if let Some(event) = EventInput::decode(data).validated() {
            rules(&event);
        }
    }

    /// Every route's filters, mapping and reply on one event, and every CESQL expression.
    /// Invariants: `matches` agrees with `first_failure` and with `RuleSet::route`/`trace`;
    /// errors name their field; a request has an endpoint and unique, non-empty top-level
    /// document ids; `Expression::matches` agrees with `Expression::evaluate`.
    pub fn rules(event: &CloudEvent) {
        let rules = &*RULES;
        for route in &rules.routes {
            let failure = route.first_failure(event);
            assert_eq!(
                route.matches(event),
                failure.is_none(),
                "route {}: matches and first_failure disagree",
                route.name
            );
            match route.mapping.apply(event) {
                Err(e) => {
                    assert!(!e.field.is_empty(), "route {}: {e:?}", route.name);
                    assert!(!e.message.is_empty(), "route {}: {e:?}", route.name);
                }
                Ok(request) => {
                    assert!(!request.endpoint.is_empty(), "route {}", route.name);
                    let mut ids = HashSet::new();
                    for doc in &request.docs {
                        assert!(
                            !doc.id.is_empty(),
                            "route {}: document without id",
                            route.name
                        );
                        assert!(
                            ids.insert(doc.id.as_str()),
                            "route {}: duplicate document id {:?}",
                            route.name,
                            doc.id
                        );
                    }
                    if let Some(reply) = &route.reply
                        && let Err(e) = reply.data.render(event, &request.docs)
                    {
                        assert!(!e.field.is_empty(), "route {} reply: {e:?}", route.name);
                    }
                }
            }
        }
        let chosen = rules.route(event).map(|r| r.name.as_str());
        let trace = rules.trace(event);
        let traced = trace
            .last()
            .filter(|t| t.failure.is_none())
            .map(|t| t.route.name.as_str());
        assert_eq!(chosen, traced, "RuleSet::route and RuleSet::trace disagree");

        for expression in EXPRESSIONS.iter() {
            let evaluation = expression.evaluate(event);
            let expected = match evaluation.errors.first() {
                Some(e) => Err(e.clone()),
                None => Ok(evaluation.value == flowbridge::rules::cesql::Value::Bool(true)),
            };
            assert_eq!(
                expression.matches(event),
                expected,
                "{expression}: matches and evaluate disagree"
            );
        }
    }
}
