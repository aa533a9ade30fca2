//! Go `text/template` rendering of commit messages.
