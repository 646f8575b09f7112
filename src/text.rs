//! Text helpers for messages that end up in error bodies, logs and replies' error texts. Depends
//! on nothing else in the crate.

/// Cut `s` to at most `max` bytes on a char boundary, marking the cut with "…".
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
