//! `cargo xtask crdgen [--check]`: writes `deploy/crds/*.yaml` from the Rust types, or fails when they
//! are stale.

use anyhow::{Context, bail};

use crate::ci::root;

pub(crate) fn run(check: bool) -> anyhow::Result<()> {
    let dir = root().join("deploy/crds");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut stale = Vec::new();
    for (name, yaml) in autoscaler_api::crd_yaml_files()? {
        let path = dir.join(&name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == yaml {
            continue;
        }
        if check {
            stale.push(name);
        } else {
            std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        bail!("deploy/crds is stale ({}); run `cargo xtask crdgen` and commit the result", stale.join(", "));
    }
    if check {
        println!("deploy/crds is up to date");
    }
    Ok(())
}
