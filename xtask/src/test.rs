//! `cargo xtask test`: install or build what is missing, then run every test.

pub fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
