//! A top-level JSON object whose values stay raw (borrowed slices of the request body).

use std::borrow::Cow;
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
    fields: Vec<(Key<'a>, Val<'a>)>,
}

/// A key as the body wrote it: borrowed when it has no escapes (the usual case), unescaped
/// into its own string when it has.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A value [`RawObject::to_bytes`] writes: JSON text as it is, or a string to quote.
pub enum Put<'v> {
    Raw(&'v str),
    Str(&'v str),
}

/// Writes `s` as a JSON string.
fn put_str(buf: &mut BytesMut, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.reserve(s.len() + 2);
        buf.put_u8(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.put_u8(b'"');
    } else {
        // Writing a &str into memory cannot fail.
        let _ = serde_json::to_writer(buf.writer(), s);
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Vec<(Key<'de>, Val<'de>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut fields: Vec<(Key<'de>, Val<'de>)> =
            Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((k, v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
            match fields.iter_mut().find(|(key, _)| key.0 == k.0) {
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
        // Checked once, whole: parsed as a `str`, serde_json then checks no string or raw value
        // again (from bytes it checks each one it reads, the messages' text among them).
        let text = std::str::from_utf8(body).map_err(|e| {
            Invalid::new(
                format!(
                    "malformed JSON in request body: not UTF-8 at byte {}",
                    e.valid_up_to()
                ),
                None,
            )
        })?;
        let mut de = serde_json::Deserializer::from_str(text);
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
            .find(|(k, _)| k.0 == key)
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

    /// Re-emits the object with `overrides` replacing (or adding) fields and the fields `drop`
    /// says yes to removed.
    pub fn to_bytes(&self, overrides: &[(&str, Put<'_>)], drop: impl Fn(&str) -> bool) -> Bytes {
        let size: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.0.len() + v.text().len() + 4)
            .sum();
        let mut buf = BytesMut::with_capacity(size + 64);
        buf.put_u8(b'{');
        let mut first = true;
        let mut put = |buf: &mut BytesMut, k: &str, v: &Put<'_>| {
            if !first {
                buf.put_u8(b',');
            }
            first = false;
            put_str(buf, k);
            buf.put_u8(b':');
            match v {
                Put::Raw(raw) => buf.extend_from_slice(raw.as_bytes()),
                Put::Str(text) => put_str(buf, text),
            }
        };
        for (k, v) in &self.fields {
            let k = &*k.0;
            if drop(k) {
                continue;
            }
            match overrides.iter().find(|(ok, _)| *ok == k) {
                Some((_, ov)) => put(&mut buf, k, ov),
                None => put(&mut buf, k, &Put::Raw(v.text())),
            }
        }
        for (k, v) in overrides {
            if !self.fields.iter().any(|(fk, _)| fk.0 == *k) {
                put(&mut buf, k, v);
            }
        }
        buf.put_u8(b'}');
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_what_it_is_told_and_keeps_order_and_bytes() {
        let body = br#"{"model":"a","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"temperature":0.70,"tools":[1]}"#;
        let o = RawObject::parse(body).unwrap();
        let out = o.to_bytes(&[("model", Put::Raw("\"org/b\""))], |k| k == "tools");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"org/b","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"temperature":0.70}"#
        );
    }

    #[test]
    fn escaped_keys_and_string_values_are_written_as_valid_json() {
        let body = br#"{"mo\u0064el":"a","say \"hi\"":1,"tab\there":2}"#;
        let o = RawObject::parse(body).unwrap();
        assert_eq!(
            o.get("model"),
            Some("\"a\""),
            "an escaped key is matched unescaped"
        );
        let out = o.to_bytes(
            &[
                ("model", Put::Str("org/\"q\"\n")),
                ("extra", Put::Str("plain")),
            ],
            |_| false,
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"org/\"q\"\n","say \"hi\"":1,"tab\there":2,"extra":"plain"}"#
        );
        let back: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(back["model"], "org/\"q\"\n");
        assert_eq!(back["say \"hi\""], 1);
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
            (
                b"{\"a\":\"\xff\"}",
                "malformed JSON in request body: not UTF-8 at byte 6",
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
