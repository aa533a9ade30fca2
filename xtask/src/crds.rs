//! `cargo xtask crds`: CRD YAML in crds/ generated from the API types.

pub fn run(_check: bool) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
