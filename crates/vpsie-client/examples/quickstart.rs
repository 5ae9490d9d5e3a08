//! Quick start: list the catalog, create a VM idempotently, wait for it, delete it.
//!
//! Against the simulator:
//! ```text
//! cargo run -p vpsie-sim -- --port 8080 &
//! VPSIE_BASE_URL=http://127.0.0.1:8080 VPSIE_TOKEN=sim-token VPSIE_DELETE_PASSWORD=sim-password \
//!     cargo run -p vpsie-client --example quickstart
//! ```
//! Credentials come from `VPSIE_TOKEN`, or `VPSIE_CLIENT_ID` + `VPSIE_CLIENT_SECRET`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vpsie_client::{ClientConfig, CreateOutcome, CreateVmRequest, Credentials, Secret, VmLookup, VpsieClient};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = std::env::var("VPSIE_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let credentials = Credentials::from_keys(|key| {
        let var = match key {
            "token" => "VPSIE_TOKEN",
            "clientId" => "VPSIE_CLIENT_ID",
            "clientSecret" => "VPSIE_CLIENT_SECRET",
            _ => return None,
        };
        std::env::var(var).ok()
    })?;
    let client = VpsieClient::new(ClientConfig::new(&base, credentials))?;

    let dcs = client.list_datacenters().await?;
    println!("{} datacenters: {}", dcs.len(), dcs.iter().map(|d| d.identifier.as_str()).collect::<Vec<_>>().join(", "));
    let dc = dcs.first().context("no datacenter")?.identifier.clone();
    let os = std::env::var("VPSIE_OS").unwrap_or_else(|_| "ubuntu-22.04-lts".into());

    let categories = client.list_plan_categories().await?;
    let mut offers = Vec::new();
    for cat in &categories {
        offers.extend(client.list_offers(&dc, &os, &cat.identifier).await?);
    }
    let offer = offers
        .iter()
        .filter(|o| o.cpu >= 2 && o.ram >= 4096)
        .min_by(|a, b| a.price.total_cmp(&b.price))
        .context("no offer with 2 vCPU and 4 GiB")?;
    println!(
        "{} offers in {dc}; cheapest with 2 vCPU / 4 GiB: {} at ${:.2}/month",
        offers.len(),
        offer.nickname,
        offer.price
    );

    let hostname = format!("quickstart-{}", std::process::id());
    let mut request = CreateVmRequest::new(&hostname, &dc, &offer.identifier, &os);
    request.tags = vec!["example:quickstart".into()];
    match client.create_vm(&request).await? {
        CreateOutcome::Requested => println!("requested {hostname}"),
        CreateOutcome::AlreadyExists(_) | CreateOutcome::AlreadyRequested => println!("{hostname} already existed"),
    }
    // Calling create again is safe: it finds the VM instead of making a second one.
    assert!(matches!(client.create_vm(&request).await?, CreateOutcome::AlreadyExists(_)));

    let started = Instant::now();
    let vm = loop {
        if let Some(VmLookup::Created(vm)) = client.find_vm_by_hostname(&hostname).await?
            && vm.is_ready()
        {
            break vm;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("{hostname} did not become ready in 120 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!(
        "{hostname} is ready after {:.1}s: {} ({})",
        started.elapsed().as_secs_f64(),
        vm.default_ip,
        vm.identifier
    );

    match std::env::var("VPSIE_DELETE_PASSWORD") {
        Ok(password) => {
            client.delete_vm(&vm.identifier, &Secret::new(password), "quickstart example").await?;
            println!("deleted {hostname}");
        }
        Err(_) => println!("VPSIE_DELETE_PASSWORD not set; leaving {hostname} running"),
    }
    Ok(())
}
