//! Wire formats. `raw` is the fast path's view of a JSON request: the top-level object with its
//! values left as unparsed slices of the client's bytes, so a passthrough request is re-emitted
//! with only the fields the router changes (e.g. `model`) and never re-serialised deeply.

pub mod openai;
pub mod raw;
