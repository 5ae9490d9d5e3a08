//! What can be bought where: datacenters, plan categories, offers with monthly prices, OS images.

use http::Method;
use serde::Deserialize;

use crate::client::{Body, Call, VpsieClient};
use crate::error::Result;
use crate::wire::flex;

/// A datacenter (`GET /apps/v2/datacenter`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Datacenter {
    /// Identifier used in create calls.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Display name.
    #[serde(default, deserialize_with = "flex::string")]
    pub dc_name: String,
    /// Region / state.
    #[serde(default, deserialize_with = "flex::string")]
    pub state: String,
    /// Country.
    #[serde(default, deserialize_with = "flex::string")]
    pub country: String,
    /// Accepting new VMs.
    #[serde(default, deserialize_with = "flex::bool")]
    pub is_active: bool,
    /// Private (account-specific) datacenter.
    #[serde(default, deserialize_with = "flex::bool")]
    pub is_private: bool,
}

/// A plan category such as "Shared CPU" or "Compute Optimized".
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PlanCategory {
    /// Identifier.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Display name.
    #[serde(default, deserialize_with = "flex::string")]
    pub name: String,
}

/// A VM offer in one datacenter (`POST /apps/v2/resources`). `identifier` is what create takes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Offer {
    /// Datacenter-mapped offer identifier.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Display name.
    #[serde(default, deserialize_with = "flex::string")]
    pub nickname: String,
    /// vCPUs.
    #[serde(default, deserialize_with = "flex::i64")]
    pub cpu: i64,
    /// Memory in MiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub ram: i64,
    /// Disk in GiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub ssd: i64,
    /// Monthly traffic in GiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub traffic: i64,
    /// Monthly price (sent as a number or a string).
    #[serde(default, deserialize_with = "flex::f64")]
    pub price: f64,
    /// Network speed, as sent: an integer (Mbit/s) in the official clients' types, text in older answers.
    #[serde(default, deserialize_with = "flex::string")]
    pub net_speed: String,
}

/// A managed-Kubernetes node size (`POST /apps/v2/k8s/offers`); `id` is the group's `KubeSizeID`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct K8sOffer {
    /// Size id.
    #[serde(default, deserialize_with = "flex::i64")]
    pub id: i64,
    /// Display name.
    #[serde(default, deserialize_with = "flex::string")]
    pub name: String,
    /// vCPUs.
    #[serde(default, deserialize_with = "flex::i64")]
    pub cpu: i64,
    /// Memory in MiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub ram: i64,
    /// Disk in GiB.
    #[serde(default, deserialize_with = "flex::i64")]
    pub disk: i64,
    /// Monthly price.
    #[serde(default, deserialize_with = "flex::f64")]
    pub price: f64,
    /// Hourly price, when sent.
    #[serde(default, deserialize_with = "flex::f64")]
    pub hourly_price: f64,
}

/// A custom OS image (`GET /apps/v2/custom/images`). Stock images have no list endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OsImage {
    /// Identifier.
    #[serde(default, deserialize_with = "flex::string")]
    pub identifier: String,
    /// Label.
    #[serde(default, deserialize_with = "flex::string")]
    pub image_label: String,
    /// Datacenter identifier.
    #[serde(default, rename = "dcIdentifier", deserialize_with = "flex::string")]
    pub dc_identifier: String,
}

/// Page size used by [`VpsieClient::list_datacenters`].
pub const DEFAULT_PAGE_SIZE: u32 = 50;

impl VpsieClient {
    /// Lists every datacenter, reading all pages.
    pub async fn list_datacenters(&self) -> Result<Vec<Datacenter>> {
        self.list_datacenters_paged(DEFAULT_PAGE_SIZE).await
    }

    /// Lists every datacenter with `page_size` rows a request. Stops at `total`, or at a short page when
    /// the API sends no total.
    pub async fn list_datacenters_paged(&self, page_size: u32) -> Result<Vec<Datacenter>> {
        let limit = page_size.max(1);
        let mut out: Vec<Datacenter> = Vec::new();
        loop {
            let path = format!("/apps/v2/datacenter?offset={}&limit={limit}", out.len());
            let page = self.call::<Vec<Datacenter>>(Call::get("datacenter.list", path)).await?;
            let got = page.data.len();
            out.extend(page.data);
            let done = match page.total {
                Some(total) => out.len() as u64 >= total,
                None => got < limit as usize,
            };
            if done || got == 0 {
                return Ok(out);
            }
        }
    }

    /// Lists plan categories.
    pub async fn list_plan_categories(&self) -> Result<Vec<PlanCategory>> {
        Ok(self.call(Call::get("plans.category", "/api/v2/plans/category")).await?.data)
    }

    /// Lists the offers of a plan category in a datacenter for an OS image, with monthly prices.
    pub async fn list_offers(
        &self,
        dc_identifier: &str,
        os_identifier: &str,
        plan_category: &str,
    ) -> Result<Vec<Offer>> {
        let form = vec![
            ("dcIdentifier", dc_identifier.to_owned()),
            ("osIdentifier", os_identifier.to_owned()),
            ("planCatIdentifier", plan_category.to_owned()),
            ("isCustom", "0".to_owned()),
        ];
        let call = Call::send("resources.list", Method::POST, "/apps/v2/resources", Body::Form(form)).retryable();
        Ok(self.call(call).await?.data)
    }

    /// Lists managed-Kubernetes node sizes of a datacenter.
    pub async fn list_k8s_offers(&self, dc_identifier: &str) -> Result<Vec<K8sOffer>> {
        let body = Body::Json(serde_json::json!({ "dcIdentifier": dc_identifier }));
        let call = Call::send("k8s.offers", Method::POST, "/apps/v2/k8s/offers", body).retryable();
        Ok(self.call(call).await?.data)
    }

    /// Lists custom OS images.
    pub async fn list_os_images(&self) -> Result<Vec<OsImage>> {
        Ok(self.call(Call::get("images.list", "/apps/v2/custom/images")).await?.data)
    }
}
