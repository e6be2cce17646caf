//! A top-level JSON object whose values stay raw (borrowed slices of the request body).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::Invalid;

enum Val<'a> {
    Borrowed(&'a RawValue),
}

impl Val<'_> {
    fn text(&self) -> &str {
        match self {
            Val::Borrowed(r) => r.get(),
        }
    }
}

/// Fields in the client's order; on duplicate keys the last one wins (as in most JSON parsers).
pub struct RawObject<'a> {
    fields: Vec<(String, Val<'a>)>,
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Vec<(String, Val<'de>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut fields: Vec<(String, Val<'de>)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
            match fields.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = Val::Borrowed(v),
                None => fields.push((k, Val::Borrowed(v))),
            }
        }
        Ok(fields)
    }
}

impl<'a> RawObject<'a> {
    /// Parses the body; a non-object or malformed JSON is a 400 naming the problem.
    pub fn parse(body: &'a [u8]) -> Result<RawObject<'a>, Invalid> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Invalid::new(
                "request body is empty; expected a JSON object",
                None,
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(body);
        let fields = de
            .deserialize_map(ObjectVisitor)
            .and_then(|f| de.end().map(|_| f))
            .map_err(|e| {
                let what = if e.is_data() {
                    "request body must be a JSON object".to_string()
                } else {
                    format!("malformed JSON in request body: {e}")
                };
                Invalid::new(what, None)
            })?;
        Ok(RawObject { fields })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.text())
    }

    /// The field as `T`, `None` when absent or `null`; a wrong type is a 400 naming the field.
    pub fn field<T: de::DeserializeOwned>(
        &self,
        key: &str,
        expected: &str,
    ) -> Result<Option<T>, Invalid> {
        match self.get(key) {
            None | Some("null") => Ok(None),
            Some(raw) => serde_json::from_str(raw)
                .map(Some)
                .map_err(|_| Invalid::new(format!("\"{key}\" must be {expected}"), Some(key))),
        }
    }

    /// A required string field.
    pub fn required_str(&self, key: &str) -> Result<String, Invalid> {
        match self.field::<String>(key, "a string")? {
            Some(s) if !s.is_empty() => Ok(s),
            Some(_) => Err(Invalid::new(
                format!("\"{key}\" must not be empty"),
                Some(key),
            )),
            None => Err(Invalid::new(
                format!("missing required field \"{key}\""),
                Some(key),
            )),
        }
    }

    /// Checks that a field is present and is a JSON array.
    pub fn require_array(&self, key: &str) -> Result<(), Invalid> {
        match self.get(key) {
            None | Some("null") => Err(Invalid::new(
                format!("missing required field \"{key}\""),
                Some(key),
            )),
            Some(raw) if raw.starts_with('[') => Ok(()),
            Some(_) => Err(Invalid::new(
                format!("\"{key}\" must be an array"),
                Some(key),
            )),
        }
    }

    /// Re-emits the object with `overrides` replacing (or adding) fields and `drop` removed.
    pub fn to_bytes(&self, overrides: &[(&str, &str)], drop: &[&str]) -> Bytes {
        let size: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.text().len() + 4)
            .sum();
        let mut out = BytesMut::with_capacity(size + 64).writer();
        let buf = out.get_mut();
        buf.put_u8(b'{');
        let mut first = true;
        let mut put = |buf: &mut BytesMut, k: &str, v: &str| {
            if !first {
                buf.put_u8(b',');
            }
            first = false;
            // Keys come from valid JSON or our own literals: serialising a &str cannot fail.
            buf.extend_from_slice(serde_json::to_string(k).unwrap_or_default().as_bytes());
            buf.put_u8(b':');
            buf.extend_from_slice(v.as_bytes());
        };
        for (k, v) in &self.fields {
            if drop.contains(&k.as_str()) {
                continue;
            }
            let value = overrides
                .iter()
                .find(|(ok, _)| ok == k)
                .map_or(v.text(), |(_, ov)| ov);
            put(buf, k, value);
        }
        for (k, v) in overrides {
            if !self.fields.iter().any(|(fk, _)| fk == k) {
                put(buf, k, v);
            }
        }
        buf.put_u8(b'}');
        out.into_inner().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_what_it_is_told_and_keeps_order_and_bytes() {
        let body = br#"{"model":"a","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"temperature":0.70,"tools":[1]}"#;
        let o = RawObject::parse(body).unwrap();
        let out = o.to_bytes(&[("model", "\"org/b\"")], &["tools"]);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"org/b","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"temperature":0.70}"#
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "request body is empty; expected a JSON object"),
            (b"[1,2]", "request body must be a JSON object"),
            (
                b"{\"model\": }",
                "malformed JSON in request body: expected value at line 1 column 11",
            ),
            (
                b"{\"a\":1} x",
                "malformed JSON in request body: trailing characters at line 1 column 9",
            ),
        ];
        for (body, want) in cases {
            let e = RawObject::parse(body).err().unwrap();
            assert_eq!(e.to_string(), *want);
        }
        let o = RawObject::parse(br#"{"model": 5, "stream": "yes", "messages": {}}"#).unwrap();
        assert_eq!(
            o.required_str("model").unwrap_err().to_string(),
            "\"model\" must be a string"
        );
        assert_eq!(
            o.field::<bool>("stream", "true or false")
                .unwrap_err()
                .to_string(),
            "\"stream\" must be true or false"
        );
        assert_eq!(
            o.require_array("messages").unwrap_err().to_string(),
            "\"messages\" must be an array"
        );
        assert_eq!(
            o.required_str("nope").unwrap_err().to_string(),
            "missing required field \"nope\""
        );
    }

    #[test]
    fn duplicate_keys_last_wins_and_null_is_absent() {
        let o = RawObject::parse(br#"{"stream": true, "stream": null}"#).unwrap();
        assert_eq!(o.field::<bool>("stream", "a boolean").unwrap(), None);
    }
}
