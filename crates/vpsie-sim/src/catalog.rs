//! The simulated catalog: datacenters, plan categories, per-datacenter offers with monthly prices,
//! managed-Kubernetes sizes and OS images. Built once from the seed.

use serde::Serialize;

use crate::rng::SimRng;

/// A datacenter.
#[derive(Debug, Clone, Serialize)]
pub struct Datacenter {
    /// Numeric id.
    pub id: i64,
    /// Identifier.
    pub identifier: String,
    /// Display name.
    pub dc_name: String,
    /// Region.
    pub state: String,
    /// Country.
    pub country: String,
}

/// A plan category.
#[derive(Debug, Clone, Serialize)]
pub struct Category {
    /// Identifier.
    pub identifier: String,
    /// Display name.
    pub name: String,
    /// Short code used in offer nicknames (`sc`, `co`).
    pub code: String,
}

/// An offer of one size in one datacenter. The same size has a different identifier in each
/// datacenter, as on the real API ("datacenter-mapped offer identifier").
#[derive(Debug, Clone, Serialize)]
pub struct Offer {
    /// Identifier (what VM create takes).
    pub identifier: String,
    /// Datacenter identifier.
    pub dc: String,
    /// Category identifier.
    pub category: String,
    /// Nickname such as `sc-2cpu-4gb`.
    pub nickname: String,
    /// vCPUs.
    pub cpu: i64,
    /// Memory in MiB.
    pub ram: i64,
    /// Disk in GiB.
    pub ssd: i64,
    /// Traffic in GiB.
    pub traffic: i64,
    /// Monthly price in USD.
    pub price: f64,
}

/// A managed-Kubernetes node size.
#[derive(Debug, Clone, Serialize)]
pub struct K8sSize {
    /// Size id (`KubeSizeID`).
    pub id: i64,
    /// Name.
    pub name: String,
    /// vCPUs.
    pub cpu: i64,
    /// Memory in MiB.
    pub ram: i64,
    /// Disk in GiB.
    pub disk: i64,
    /// Monthly price.
    pub price: f64,
}

/// An OS image.
#[derive(Debug, Clone, Serialize)]
pub struct OsImage {
    /// Identifier (what VM create takes). Stock images use readable ids such as `ubuntu-22.04-lts`.
    pub identifier: String,
    /// Label.
    pub image_label: String,
}

/// Everything for sale.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    /// Datacenters.
    pub datacenters: Vec<Datacenter>,
    /// Plan categories.
    pub categories: Vec<Category>,
    /// Offers, per datacenter and category.
    pub offers: Vec<Offer>,
    /// Managed-Kubernetes sizes (the same in every datacenter).
    pub k8s_sizes: Vec<K8sSize>,
    /// OS images.
    pub os_images: Vec<OsImage>,
}

/// (vCPU, GiB) of shared-CPU sizes.
const SHARED: &[(i64, i64)] =
    &[(1, 1), (1, 2), (2, 2), (2, 4), (4, 8), (6, 16), (8, 16), (8, 32), (12, 48), (16, 64), (24, 96), (32, 128)];
/// (vCPU, GiB) of compute-optimized sizes.
const COMPUTE: &[(i64, i64)] = &[(2, 4), (4, 8), (8, 16), (16, 32), (32, 64)];
const DC_NAMES: &[(&str, &str, &str)] = &[
    ("dc-us-east-1", "New York", "US"),
    ("dc-us-west-1", "Los Angeles", "US"),
    ("dc-eu-west-1", "Amsterdam", "NL"),
    ("dc-eu-central-1", "Frankfurt", "DE"),
    ("dc-ap-south-1", "Singapore", "SG"),
];

/// Monthly price: shared vCPUs are cheap, dedicated (compute-optimized) ones cost more; memory costs the
/// same in both. Rounded to cents.
fn monthly_price(compute: bool, cpu: i64, gib: i64) -> f64 {
    let per_cpu = if compute { 9.0 } else { 3.5 };
    let raw = per_cpu * cpu as f64 + 1.75 * gib as f64 + 1.0;
    (raw * 100.0).round() / 100.0
}

impl Catalog {
    /// Builds the catalog for `datacenters` datacenters (the first five have real-looking names).
    pub fn generate(rng: &mut SimRng, datacenters: usize) -> Self {
        let datacenters: Vec<Datacenter> = (0..datacenters.max(1))
            .map(|i| {
                let (identifier, name, country) = DC_NAMES
                    .get(i)
                    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
                    .unwrap_or_else(|| (format!("dc-sim-{i}"), format!("Sim {i}"), "XX".to_owned()));
                Datacenter { id: i as i64 + 1, identifier, dc_name: name.clone(), state: name, country }
            })
            .collect();
        let categories = vec![
            Category { identifier: rng.identifier(), name: "Shared CPU".into(), code: "sc".into() },
            Category { identifier: rng.identifier(), name: "Compute Optimized".into(), code: "co".into() },
        ];
        let mut offers = Vec::new();
        for dc in &datacenters {
            for (cat, sizes) in categories.iter().zip([SHARED, COMPUTE]) {
                for &(cpu, gib) in sizes {
                    offers.push(Offer {
                        identifier: rng.identifier(),
                        dc: dc.identifier.clone(),
                        category: cat.identifier.clone(),
                        nickname: format!("{}-{cpu}cpu-{gib}gb", cat.code),
                        cpu,
                        ram: gib * 1024,
                        ssd: (cpu * 25).clamp(25, 640),
                        traffic: 1000 * cpu,
                        price: monthly_price(cat.code == "co", cpu, gib),
                    });
                }
            }
        }
        let k8s_sizes = SHARED
            .iter()
            .filter(|(cpu, _)| *cpu >= 2)
            .enumerate()
            .map(|(i, &(cpu, gib))| K8sSize {
                id: i as i64 + 1,
                name: format!("k8s-{cpu}cpu-{gib}gb"),
                cpu,
                ram: gib * 1024,
                disk: (cpu * 25).clamp(25, 640),
                price: monthly_price(false, cpu, gib),
            })
            .collect();
        let os_images = ["ubuntu-22.04-lts", "ubuntu-24.04-lts", "debian-12"]
            .iter()
            .map(|id| OsImage { identifier: (*id).to_owned(), image_label: id.replace('-', " ") })
            .collect();
        Self { datacenters, categories, offers, k8s_sizes, os_images }
    }

    /// The offer with this identifier.
    pub fn offer(&self, identifier: &str) -> Option<&Offer> {
        self.offers.iter().find(|o| o.identifier == identifier)
    }

    /// The offer of this nickname in a datacenter (for tests and the demo).
    pub fn offer_by_nickname(&self, dc: &str, nickname: &str) -> Option<&Offer> {
        self.offers.iter().find(|o| o.dc == dc && o.nickname == nickname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_per_datacenter_and_span_the_range() {
        let c = Catalog::generate(&mut SimRng::new(1), 2);
        assert_eq!(c.offers.len(), 2 * (SHARED.len() + COMPUTE.len()));
        let a = c.offer_by_nickname("dc-us-east-1", "sc-2cpu-4gb").map(|o| o.identifier.clone());
        let b = c.offer_by_nickname("dc-us-west-1", "sc-2cpu-4gb").map(|o| o.identifier.clone());
        assert!(a.is_some() && a != b);
        assert_eq!(c.offers.iter().map(|o| o.cpu).min(), Some(1));
        assert_eq!(c.offers.iter().map(|o| o.ram).max(), Some(128 * 1024));
        assert!(monthly_price(true, 4, 8) > monthly_price(false, 4, 8));
    }
}
