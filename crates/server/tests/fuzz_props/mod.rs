//! The property of the `request_edges` fuzz target (fuzz/), shared with the corpus replay
//! (tests/fuzz_corpus.rs): whatever a client sends as path, query string, Basic credentials,
//! session header or cookie, reading it never panics.

/// Five fields separated by 0xFF bytes: path, query, Authorization, X-RestSvcSessionId, Cookie.
pub fn request_edges(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0xFF);
    let mut next = || parts.next().unwrap_or_default();
    let path = String::from_utf8_lossy(next()).into_owned();
    let query = String::from_utf8_lossy(next()).into_owned();
    let (authorization, session, cookie) = (next(), next(), next());
    emrest_server::read_request_edges(&path, &query, authorization, session, cookie);
}
