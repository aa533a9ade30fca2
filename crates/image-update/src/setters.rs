//! Setter markers rewritten in YAML text, in place.
