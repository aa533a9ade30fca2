//! `cargo xtask demo`: set everything up and run the main job.

pub fn run() -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
