//! JSON helpers: mask every string value of a document (keys untouched),
//! restore one, and the `P/fast_text_mask` response shape.

use serde_json::Value;

use crate::masker::reserve_existing;
use crate::restore::{unmask, Mappings};
use crate::{FastMasker, MaskSession};

fn for_each_string(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| for_each_string(x, f)),
        Value::Object(o) => o.values_mut().for_each(|x| for_each_string(x, f)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

impl FastMasker {
    /// Mask every string value of `value` in place (object keys are left as
    /// they are). Placeholders already present anywhere in the document are
    /// reserved first, so none is issued twice with two meanings.
    pub fn mask_json(&self, value: &mut Value, session: &mut MaskSession) {
        for_each_string(value, &mut |s| {
            reserve_existing(s, session);
        });
        for_each_string(value, &mut |s| {
            if let std::borrow::Cow::Owned(m) = self.mask(s, session) {
                *s = m;
            }
        });
    }

    /// [`mask_json`](Self::mask_json) for a request body whose top-level
    /// `keep` fields (e.g. `model`, which routing needs verbatim) stay as they are.
    pub fn mask_json_except(&self, value: &mut Value, session: &mut MaskSession, keep: &[&str]) {
        let Value::Object(obj) = value else {
            return self.mask_json(value, session);
        };
        for (k, v) in obj.iter_mut() {
            if !keep.contains(&k.as_str()) {
                for_each_string(v, &mut |s| {
                    reserve_existing(s, session);
                });
            }
        }
        for (k, v) in obj.iter_mut() {
            if !keep.contains(&k.as_str()) {
                self.mask_json(v, session);
            }
        }
    }

    /// The `P/fast_text_mask` answer: `{"text": masked, "mappings": {placeholder: original}}`.
    pub fn fast_text_mask(&self, text: &str) -> Value {
        let mut session = MaskSession::new();
        let masked = self.mask(text, &mut session).into_owned();
        serde_json::json!({ "text": masked, "mappings": session.mappings_json() })
    }
}

/// Restore every string value of `value` in place.
pub fn unmask_json(value: &mut Value, mappings: &Mappings) {
    if mappings.is_empty() {
        return;
    }
    for_each_string(value, &mut |s| {
        if s.contains('{') {
            *s = unmask(s, mappings);
        }
    });
}
