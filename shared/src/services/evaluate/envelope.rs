//! Reading an events message in one pass: the envelope's fields through serde_json, each
//! record's JSON tape built (and the record's text validated) as the list is read, so no
//! record is scanned twice (once to find where it ends, again to index its fields). Same wire
//! form as [`crate::messages::AuditEventsMessage`], and the same verdicts as reading it with
//! serde_json: invalid JSON anywhere, a missing or duplicated field, or a field of the wrong
//! type is a malformed message; unknown fields are ignored.

use crate::audit::{AuditRecord, RecordError};
use crate::ids::{AuditStream, MspId, TenantId};
use crate::tape::{Tape, scan_string, skip_ws};
use serde::de::DeserializeOwned;

/// An events message as the evaluator reads it: the records stay JSON text, with their tapes,
/// until they are made [`AuditRecord`]s.
pub(super) struct EventsEnvelope<'a> {
    pub msp_id: MspId,
    pub tenant_id: TenantId,
    pub stream: AuditStream,
    pub content_id: String,
    pub records: Vec<RawRecord<'a>>,
}

/// One record of a message: its JSON text and the tape built over it while reading.
pub(super) struct RawRecord<'a> {
    text: &'a str,
    tape: Option<Tape>,
}

impl RawRecord<'_> {
    /// The record's JSON text, as in the message.
    pub fn get(&self) -> &str {
        self.text
    }

    /// The record, from the tape read with the message (once; a second call reads the text
    /// again).
    pub fn record(&mut self) -> Result<AuditRecord, RecordError> {
        match self.tape.take() {
            Some(tape) => AuditRecord::from_tape(self.text, tape),
            None => AuditRecord::from_json(self.text),
        }
    }
}

/// Reads an events message.
///
/// # Errors
/// A message saying what is wrong (invalid JSON, a missing, duplicated or mistyped field).
pub(super) fn read(body: &str) -> Result<EventsEnvelope<'_>, String> {
    let b = body.as_bytes();
    let invalid = |at: usize| format!("invalid JSON at byte {at}");
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(format!("expected an object at byte {i}"));
    }
    let (mut msp_id, mut tenant_id, mut stream, mut content_id, mut records) = (None, None, None, None, None);
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return Err(invalid(i));
            }
            let (key_end, escaped) = scan_string(b, i).ok_or_else(|| invalid(i))?;
            let key: std::borrow::Cow<'_, str> = if escaped {
                serde_json::from_str::<String>(&body[i..key_end]).map_err(|e| e.to_string())?.into()
            } else {
                body[i + 1..key_end - 1].into()
            };
            i = skip_ws(b, key_end);
            if b.get(i) != Some(&b':') {
                return Err(invalid(i));
            }
            i = skip_ws(b, i + 1);
            i = match &*key {
                "records" => {
                    let (list, end) = read_records(body, i)?;
                    set(&mut records, list, "records")?;
                    end
                }
                "msp_id" => field(body, i, &mut msp_id, "msp_id")?,
                "tenant_id" => field(body, i, &mut tenant_id, "tenant_id")?,
                "stream" => field(body, i, &mut stream, "stream")?,
                "content_id" => field(body, i, &mut content_id, "content_id")?,
                _ => i + Tape::build_prefix(&body[i..]).ok_or_else(|| invalid(i))?.1,
            };
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(invalid(i)),
            }
        }
    }
    if skip_ws(b, i) != b.len() {
        return Err(format!("trailing characters at byte {i}"));
    }
    let missing = |name: &str| format!("missing field `{name}`");
    Ok(EventsEnvelope {
        msp_id: msp_id.ok_or_else(|| missing("msp_id"))?,
        tenant_id: tenant_id.ok_or_else(|| missing("tenant_id"))?,
        stream: stream.ok_or_else(|| missing("stream"))?,
        content_id: content_id.ok_or_else(|| missing("content_id"))?,
        records: records.ok_or_else(|| missing("records"))?,
    })
}

fn set<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("duplicate field `{name}`"));
    }
    *slot = Some(value);
    Ok(())
}

/// Reads the value at `at` into `slot` with serde_json; returns the index just past it.
fn field<T: DeserializeOwned>(body: &str, at: usize, slot: &mut Option<T>, name: &str) -> Result<usize, String> {
    let (_, len) = Tape::build_prefix(&body[at..]).ok_or_else(|| format!("invalid JSON at byte {at}"))?;
    let value = serde_json::from_str(&body[at..at + len]).map_err(|e| format!("field `{name}`: {e}"))?;
    set(slot, value, name)?;
    Ok(at + len)
}

/// Reads the list of records at `at`, building each record's tape; returns the list and the
/// index just past it.
fn read_records(body: &str, at: usize) -> Result<(Vec<RawRecord<'_>>, usize), String> {
    let b = body.as_bytes();
    let invalid = |at: usize| format!("invalid JSON at byte {at}");
    if b.get(at) != Some(&b'[') {
        return Err(format!("field `records`: expected a list at byte {at}"));
    }
    let mut records = Vec::new();
    let mut i = skip_ws(b, at + 1);
    if b.get(i) == Some(&b']') {
        return Ok((records, i + 1));
    }
    loop {
        let (tape, len) = Tape::build_record_prefix(&body[i..]).ok_or_else(|| invalid(i))?;
        records.push(RawRecord { text: &body[i..i + len], tape: Some(tape) });
        i = skip_ws(b, i + len);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return Ok((records, i + 1)),
            _ => return Err(invalid(i)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::AuditEventsMessage;
    use serde_json::json;

    fn message(records: &serde_json::Value) -> String {
        json!({"msp_id": "acme-msp", "tenant_id": "5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11", "stream": "Audit.General",
               "content_id": "blob-1", "records": records})
        .to_string()
    }

    fn record(id: &str) -> serde_json::Value {
        json!({"Id": id, "RecordType": 1, "CreationTime": "2026-01-05T10:00:00", "Operation": "Set-Mailbox", "UserId": "a\u{e9}\"b"})
    }

    #[test]
    fn a_message_reads_as_serde_json_reads_it_with_each_record_built_from_its_own_text() {
        let text = message(&json!([record("r-1"), record("r-2")]));
        let mut envelope = read(&text).unwrap();
        assert_eq!((envelope.msp_id.as_str(), envelope.content_id.as_str()), ("acme-msp", "blob-1"));
        assert_eq!(envelope.records.len(), 2);
        assert_eq!(serde_json::from_str::<serde_json::Value>(envelope.records[1].get()).unwrap(), record("r-2"));
        let built = envelope.records[1].record().unwrap();
        assert_eq!(built, AuditRecord::from_value(record("r-2")).unwrap());
        assert_eq!((built.id.as_str(), built.user_id.as_str()), ("r-2", "a\u{e9}\"b"));
        assert!(read(&message(&json!([]))).unwrap().records.is_empty());
        let spaced = "{ \"content_id\" : \"c\" , \"records\" : [ {\"Id\":\"x\"} , 1 ] , \"msp_id\":\"acme-msp\", \"extra\": {\"a\": [1]}, \
                      \"tenant_id\":\"5e1f2c8a-7d41-4f0e-9a51-2b7d0c9e4a11\",\"stream\":\"Audit.General\" } ";
        let mut envelope = read(spaced).unwrap();
        assert_eq!(envelope.records.iter().map(RawRecord::get).collect::<Vec<_>>(), ["{\"Id\":\"x\"}", "1"]);
        assert_eq!(envelope.records[1].record().unwrap_err(), RecordError::NotAnObject);
    }

    #[test]
    fn whatever_serde_json_refuses_is_a_malformed_message() {
        let valid = message(&json!([record("r-1")]));
        assert!(read(&valid).is_ok());
        let broken = [
            valid.replacen("\"r-1\"", "\"r-\u{1}1\"", 1),
            valid.replacen("\"r-1\"", "\"r-\\x1\"", 1),
            valid.replacen("\"r-1\"", "\"r-\\u12G4\"", 1),
            valid.replacen("\"RecordType\":1", "\"RecordType\":01", 1),
            valid.replacen("\"RecordType\":1", "\"RecordType\":1.", 1),
            valid.replacen("\"RecordType\":1", "\"RecordType\":-", 1),
            valid.replacen("\"RecordType\":1", "\"RecordType\":1e", 1),
            valid.replacen("\"RecordType\":1", "\"RecordType\":tru", 1),
            valid.replacen("}]", "]", 1),
            valid.replacen("}]", "},]", 1),
            format!("{valid} x"),
            valid.replacen("\"msp_id\"", "\"msp\"", 1),
            valid.replacen("\"acme-msp\"", "17", 1),
            valid.replacen("{", "{\"stream\":\"Audit.General\",", 1),
            valid.replacen("\"records\":[", "\"records\":{\"a\":[", 1).replacen("}]", "}]}", 1),
        ];
        let reference = |text: &str| serde_json::from_str::<AuditEventsMessage>(text).is_ok();
        for text in broken {
            assert!(!reference(&text), "serde_json refuses {text}");
            assert!(read(&text).is_err(), "{text}");
        }
        for number in ["0", "-0", "1.5", "-12e+3", "2E-2", "10"] {
            let text = valid.replacen("\"RecordType\":1", &format!("\"RecordType\":{number}"), 1);
            assert!(reference(&text) && read(&text).is_ok(), "{number}");
        }
        let escapes = valid.replacen("\"r-1\"", "\"r-\\u00e9\\n\\/1\"", 1);
        assert!(reference(&escapes) && read(&escapes).is_ok());
    }
}
