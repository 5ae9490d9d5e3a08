//! The VPSie offering catalog (sizes and monthly prices) for the datacenters and OS images the NodeGroups
//! use, refreshed by the leader: at once when it becomes leader or a NodeGroup needs a datacenter not listed
//! yet, then every `--catalog-refresh`. Followers never call VPSie.

use std::collections::BTreeSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use vpsie_client::VpsieClient;

use crate::cluster::Cluster;
use crate::credentials::VpsieHandle;
use crate::health::Health;
use crate::leader::Leadership;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::CATALOG_OFFERINGS;

/// One offering in one datacenter.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogOffer {
    /// The datacenter-mapped identifier VM create takes.
    pub identifier: String,
    /// Datacenter identifier.
    pub datacenter: String,
    /// Plan category name (`Shared CPU`, `Compute Optimized`).
    pub category: String,
    /// Nickname (`sc-2cpu-4gb`).
    pub nickname: String,
    /// vCPUs.
    pub cpu: i64,
    /// Memory in MiB.
    pub ram_mib: i64,
    /// Disk in GiB.
    pub disk_gib: i64,
    /// Monthly price in USD.
    pub monthly_price: f64,
}

/// A datacenter and the OS image its offers were listed for (offers depend on the OS).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Datacenter identifier.
    pub datacenter: String,
    /// OS image identifier.
    pub os_image: String,
}

#[derive(Debug, Default)]
struct State {
    offers: Vec<CatalogOffer>,
    listed: BTreeSet<Location>,
}

/// The shared catalog. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    state: Arc<RwLock<State>>,
    /// Notified when the offers change: whoever found the catalog empty (or without an offering it
    /// needed) acts at once instead of at its next periodic pass.
    changed: Arc<tokio::sync::Notify>,
}

impl Catalog {
    /// Every cached offer.
    pub fn offers(&self) -> Vec<CatalogOffer> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).offers.clone()
    }

    /// Replaces the catalog (tests, and the refresher); wakes the waiters of [`Catalog::changed`] when the
    /// offers differ from before.
    pub fn set(&self, offers: Vec<CatalogOffer>, listed: BTreeSet<Location>) {
        metrics::gauge!(CATALOG_OFFERINGS).set(offers.len() as f64);
        let differs = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let differs = state.offers != offers;
            *state = State { offers, listed };
            differs
        };
        if differs {
            self.changed.notify_waiters();
        }
    }

    /// What people read for an offering: its nickname (`sc-4cpu-8gb`) when the catalog knows it, else the
    /// identifier as given.
    pub fn name_of(&self, identifier: &str) -> String {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .offers
            .iter()
            .find(|o| o.identifier == identifier && !o.nickname.is_empty())
            .map_or_else(|| identifier.to_owned(), |o| o.nickname.clone())
    }

    /// Notified whenever [`Catalog::set`] changes the offers.
    pub fn changed(&self) -> &tokio::sync::Notify {
        &self.changed
    }

    fn missing(&self, wanted: &BTreeSet<Location>) -> bool {
        !wanted.is_subset(&self.state.read().unwrap_or_else(PoisonError::into_inner).listed)
    }

    /// Lists the offers of every location with `client`: one call for the categories, one per location and
    /// category.
    pub async fn refresh(
        &self,
        client: &VpsieClient,
        wanted: &BTreeSet<Location>,
    ) -> Result<usize, vpsie_client::Error> {
        let categories = client.list_plan_categories().await?;
        let mut offers = Vec::new();
        for loc in wanted {
            for cat in &categories {
                for o in client.list_offers(&loc.datacenter, &loc.os_image, &cat.identifier).await? {
                    if offers.iter().any(|x: &CatalogOffer| x.identifier == o.identifier) {
                        continue;
                    }
                    offers.push(CatalogOffer {
                        identifier: o.identifier,
                        datacenter: loc.datacenter.clone(),
                        category: cat.name.clone(),
                        nickname: o.nickname,
                        cpu: o.cpu,
                        ram_mib: o.ram,
                        disk_gib: o.ssd,
                        monthly_price: o.price,
                    });
                }
            }
        }
        let n = offers.len();
        self.set(offers, wanted.clone());
        Ok(n)
    }
}

/// The locations the NodeGroups in the cache use.
pub fn wanted(cluster: &Cluster) -> BTreeSet<Location> {
    cluster
        .nodegroups
        .read()
        .values()
        .map(|e| Location {
            datacenter: e.group.spec.datacenter_id.clone(),
            os_image: e.group.spec.os_image_id.clone(),
        })
        .collect()
}

/// Keeps the catalog fresh while this replica leads.
pub fn spawn(
    catalog: Catalog,
    vpsie: VpsieHandle,
    cluster: Cluster,
    leadership: Leadership,
    health: Health,
    shutdown: Shutdown,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: Option<tokio::time::Instant> = None;
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            health.beat("catalog", Duration::from_secs(60));
            if !leadership.is_leader() {
                last = None; // a new term starts with a fresh catalog
                continue;
            }
            let wanted = wanted(&cluster);
            let due = last.is_none_or(|t| t.elapsed() >= every) || catalog.missing(&wanted);
            let backing_off = retry_at.is_some_and(|t| tokio::time::Instant::now() < t);
            if wanted.is_empty() || !due || backing_off {
                continue;
            }
            let Some(client) = vpsie.client() else { continue };
            let Some(_work) = shutdown.start_work() else { return };
            let mut lost = leadership.clone();
            tokio::select! {
                r = catalog.refresh(&client, &wanted) => match r {
                    Ok(n) => {
                        last = Some(tokio::time::Instant::now());
                        retry_at = None;
                        tracing::info!(offers = n, locations = wanted.len(), "VPSie catalog refreshed");
                    }
                    Err(e) => {
                        // Retry in 10 s, not at every 2 s tick: a rejected token must not hammer the API.
                        retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                        tracing::warn!(error = %e, "VPSie catalog refresh failed; keeping the last one");
                    }
                },
                () = lost.lost() => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(id: &str) -> CatalogOffer {
        CatalogOffer {
            identifier: id.into(),
            datacenter: "dc".into(),
            category: "Shared CPU".into(),
            nickname: "sc-2cpu-4gb".into(),
            cpu: 2,
            ram_mib: 4096,
            disk_gib: 50,
            monthly_price: 15.0,
        }
    }

    #[tokio::test]
    async fn a_change_of_offers_wakes_waiters_and_the_same_offers_do_not() {
        let catalog = Catalog::default();
        let woken = catalog.changed().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        catalog.set(vec![offer("a")], BTreeSet::new());
        assert!(futures::poll!(woken.as_mut()).is_ready(), "the first load wakes");

        let again = catalog.changed().notified();
        tokio::pin!(again);
        again.as_mut().enable();
        catalog.set(vec![offer("a")], BTreeSet::new());
        assert!(futures::poll!(again.as_mut()).is_pending(), "an unchanged refresh does not");
        catalog.set(vec![offer("a"), offer("b")], BTreeSet::new());
        assert!(futures::poll!(again.as_mut()).is_ready(), "a new offer does");
    }

    #[test]
    fn offerings_read_by_nickname_when_known() {
        let catalog = Catalog::default();
        catalog.set(vec![offer("6775dc77")], BTreeSet::new());
        assert_eq!(catalog.name_of("6775dc77"), "sc-2cpu-4gb");
        assert_eq!(catalog.name_of("unknown-id"), "unknown-id");
    }
}
