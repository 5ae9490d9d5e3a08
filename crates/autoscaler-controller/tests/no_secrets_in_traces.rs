//! Logs and exported trace spans of loading credentials and calling VPSie carry no secret value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use autoscaler_controller::credentials::{CredentialsConfig, build_client, parse};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn credentials_and_vpsie_calls_leave_no_secret_in_logs_or_spans() {
    const TOKEN: &str = "tok-trace-4d3c2b1a0f";
    const PASSWORD: &str = "pw-trace-9e8d7c6b";
    let sim = vpsie_sim::SimHandle::start(vpsie_sim::SimConfig {
        access_tokens: vec![TOKEN.into()],
        ..vpsie_sim::SimConfig::default()
    })
    .await
    .unwrap();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_writer(move || writer.clone()),
        );
    let _guard = tracing::subscriber::set_default(subscriber);

    let secret = Secret {
        data: Some(
            [("token", TOKEN), ("deletePassword", PASSWORD)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    let span = tracing::info_span!("reconcile", correlation_id = %autoscaler_controller::telemetry::correlation_id());
    async {
        let creds = parse(&secret).unwrap();
        tracing::info!(?creds, "credentials parsed");
        let cfg = CredentialsConfig {
            namespace: "kube-system".into(),
            name: "vpsie-secret".into(),
            base_url: sim.base_url(),
            identity: "trace-test".into(),
        };
        let client = build_client(&cfg, &creds).unwrap();
        let categories = client.list_plan_categories().await.unwrap();
        tracing::info!(n = categories.len(), "listed");
        let _ = client.get_vm("missing").await;
    }
    .instrument(span)
    .await;

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert!(spans.len() >= 3, "the reconcile span and the client's call spans were exported: {}", spans.len());
    let exported = format!("{spans:?}");
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("credentials parsed") && logged.contains("correlation_id"), "{logged}");
    for (what, text) in [("exported spans", &exported), ("logs", &logged)] {
        assert!(!text.contains(TOKEN), "{what} carry the token");
        assert!(!text.contains(PASSWORD), "{what} carry the delete password");
    }
}
