//! Both auth modes against the simulator: token, client credentials, refresh before expiry, 401 then
//! refresh, refused credentials.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use vpsie_client::{ClientConfig, Credentials, Error, VpsieClient};
use vpsie_sim::SimConfig;

#[tokio::test]
async fn access_token_is_sent_as_vpsie_auth() {
    let sim = sim().await;
    let client = token_client(&sim);
    client.list_vms(None).await.unwrap();
    let log = sim.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].auth, "vpsie-auth");
    assert_eq!(log[0].status, 200);
}

#[tokio::test]
async fn wrong_token_is_unauthorized_without_retry() {
    let sim = sim().await;
    let client = VpsieClient::new(fast(ClientConfig::new(sim.base_url(), Credentials::Token("nope".into())))).unwrap();
    let err = client.list_vms(None).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { ref message, .. } if message == "Please authenticate"), "{err}");
    assert_eq!(sim.requests().len(), 1, "a 401 with a fixed token is final");
}

#[tokio::test]
async fn client_credentials_are_exchanged_once_and_reused() {
    let sim = sim().await;
    let client = VpsieClient::new(credentials_config(&sim)).unwrap();
    for _ in 0..3 {
        client.list_datacenters().await.unwrap();
    }
    assert_eq!(sim.count_requests("POST", "/apps/v2/auth/from/api"), 1);
    assert_eq!(sim.count_requests("GET", "/apps/v2/datacenter"), 3);
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    // Tokens live 6 s; the client refreshes 3 s before expiry, so after 3.3 s it must refresh
    // proactively, before the server would ever refuse the token.
    let sim = sim_with(SimConfig { token_ttl: Duration::from_secs(6), ..SimConfig::default() }).await;
    let mut cfg = credentials_config(&sim);
    cfg.token_refresh_margin = Duration::from_secs(3);
    let client = VpsieClient::new(cfg).unwrap();
    client.list_vms(None).await.unwrap();
    client.list_vms(None).await.unwrap();
    assert_eq!(sim.count_requests("POST", "/apps/v2/auth/from/api"), 1);
    tokio::time::sleep(Duration::from_millis(3300)).await;
    client.list_vms(None).await.unwrap();
    assert_eq!(sim.count_requests("POST", "/apps/v2/auth/from/api"), 2, "refreshed proactively");
    assert!(sim.requests().iter().all(|r| r.status != 401), "no request was ever refused");
}

#[tokio::test]
async fn a_401_triggers_one_refresh_and_one_resend() {
    let sim = sim().await;
    let client = VpsieClient::new(credentials_config(&sim)).unwrap();
    client.list_vms(None).await.unwrap();
    sim.expire_tokens();
    sim.clear_requests();
    client.list_vms(None).await.unwrap();
    let seq: Vec<(String, u16)> = sim.requests().into_iter().map(|r| (r.path, r.status)).collect();
    assert_eq!(
        seq,
        vec![
            ("/apps/v2/vm".to_owned(), 401),
            ("/apps/v2/auth/from/api".to_owned(), 200),
            ("/apps/v2/vm".to_owned(), 200),
        ]
    );
}

#[tokio::test]
async fn refused_client_credentials_are_unauthorized() {
    let sim = sim().await;
    let cfg = fast(ClientConfig::new(
        sim.base_url(),
        Credentials::ClientCredentials { client_id: "sim-client".into(), client_secret: "wrong".into() },
    ));
    let err = VpsieClient::new(cfg).unwrap().list_vms(None).await.unwrap_err();
    assert_eq!(err.kind(), "unauthorized", "{err}");
    assert_eq!(sim.count_requests("GET", "/apps/v2/vm"), 0, "no API call without a token");
}

#[tokio::test]
async fn bad_configuration_is_rejected_up_front() {
    let err = VpsieClient::new(ClientConfig::new("not a url", Credentials::Token("t".into()))).unwrap_err();
    assert!(matches!(err, Error::Config(ref m) if m.contains("base_url")), "{err}");
}
