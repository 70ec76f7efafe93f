//! JSON written as text by serde_json, carried as text: a tool whose data
//! is megabytes (a 10k-series summary) writes it once, and the transport
//! copies it out, with no `serde_json::Value` tree between (several times
//! the memory of the text).
//!
//! Members are added to a written object by reopening it before its last
//! `}`; this needs no `raw_value` feature of serde_json (which would also
//! change how every `Value` is parsed: an object with its magic key is
//! replaced by the JSON in its string).

use serde::Serialize;

/// A JSON value written by serde_json (so valid JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// `value` written as JSON.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::to_string(value).map(Self)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This object with `key: value` added last; `None` when this is not an
    /// object. `key` is a member name of ours, written as it is.
    pub fn with_member(self, key: &'static str, value: &JsonText) -> Option<Self> {
        let mut text = self.0;
        if !text.starts_with('{') || text.pop() != Some('}') {
            return None;
        }
        if text.len() > 1 {
            text.push(',');
        }
        text.push('"');
        text.push_str(key);
        text.push_str("\":");
        text.push_str(value.as_str());
        text.push('}');
        Some(Self(text))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn members_are_added_to_objects_only() {
        let data = JsonText::of(&json!({"series": [{"a": "}\"{"}]})).expect("written");
        for object in [json!({}), json!({"returned": 1, "note": "a } b"})] {
            let joined = JsonText::of(&object)
                .expect("written")
                .with_member("data", &data)
                .expect("an object");
            let mut want = object.clone();
            want["data"] = json!({"series": [{"a": "}\"{"}]});
            assert_eq!(
                serde_json::from_str::<Value>(joined.as_str()).expect("JSON"),
                want
            );
        }
        for not_object in [json!([1]), json!("{}"), json!(null)] {
            let text = JsonText::of(&not_object).expect("written");
            assert_eq!(text.with_member("data", &data), None);
        }
    }
}
