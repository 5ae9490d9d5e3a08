//! Decoding never panics: every response type fed arbitrary bytes, truncated valid answers, and valid
//! envelopes with fields of the wrong type.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use vpsie_client::wire::decode_envelope;
use vpsie_client::{
    Cluster, ClusterNode, Datacenter, K8sOffer, NodeGroup, Offer, OsImage, PendingVm, PlanCategory, Project, Script,
    SshKey, Tag, Vm, VmStatus,
};

/// Decodes as a single object and as a list; the result may be an error, never a panic.
fn both<T: DeserializeOwned>(body: &[u8]) {
    let _ = decode_envelope::<T>("fuzz", 200, body);
    let _ = decode_envelope::<Vec<T>>("fuzz", 200, body);
}

fn all_types(body: &[u8]) {
    both::<Vm>(body);
    both::<PendingVm>(body);
    both::<VmStatus>(body);
    both::<Offer>(body);
    both::<K8sOffer>(body);
    both::<Datacenter>(body);
    both::<PlanCategory>(body);
    both::<OsImage>(body);
    both::<SshKey>(body);
    both::<Script>(body);
    both::<Tag>(body);
    both::<Project>(body);
    both::<Cluster>(body);
    both::<ClusterNode>(body);
    both::<NodeGroup>(body);
}

/// Real-shaped answers, as the simulator and the API send them.
const SAMPLES: &[&str] = &[
    r#"{"error":false,"data":[{"id":1,"identifier":"a-b","hostname":"h","cpu":"2","ram":4096,"power":1,"is_active":"1","default_ip":"203.0.113.5","private_ip":null,"project_id":3,"dcIdentifier":"dc"}],"total":1}"#,
    r#"{"error":false,"data":[{"identifier":"x","nickname":"sc-2cpu-4gb","cpu":2,"ram":4096,"ssd":50,"price":"14.25"}]}"#,
    r#"{"error":false,"data":{"cluster_name":"c","identifier":"i","nodes":[{"id":1,"hostname":"n","node_type":2,"private_ip":"10.0.0.1"}],"price":12.5}}"#,
    r#"{"error":false,"data":[{"id":"7","data":{"hostname":"h","resourceIdentifier":"r","addPublicIpV4":true},"running":1}]}"#,
    r#"{"error":false,"data":{"rows":[{"id":1,"identifier":"p","name":"Default","is_default":1}],"count":1}}"#,
    r#"{"error":true,"code":401,"message":"Please authenticate"}"#,
    r#"{"error":false,"data":false}"#,
];

/// Values of the wrong type to put where a field is expected.
fn wrong_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|n| serde_json::json!(n)),
        ".{0,12}".prop_map(serde_json::Value::String),
        Just(serde_json::json!([1, "x"])),
        Just(serde_json::json!({"nested": {}})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        all_types(&body);
    }

    #[test]
    fn truncated_answers_never_panic(sample in 0..SAMPLES.len(), cut in 0usize..400) {
        let s = SAMPLES[sample].as_bytes();
        all_types(&s[..cut.min(s.len())]);
    }

    #[test]
    fn wrong_field_types_never_panic(
        field in prop_oneof![
            Just("id"), Just("identifier"), Just("hostname"), Just("cpu"), Just("ram"), Just("price"),
            Just("power"), Just("is_active"), Just("private_ip"), Just("nodes"), Just("data"), Just("total")
        ],
        value in wrong_value(),
    ) {
        let mut row = serde_json::json!({"id": 1, "identifier": "i", "hostname": "h", "cpu": 2, "price": 3.5});
        row[field] = value.clone();
        let body = serde_json::json!({"error": false, "data": [row.clone()], "total": 1});
        all_types(body.to_string().as_bytes());
        let single = serde_json::json!({"error": false, "data": row});
        all_types(single.to_string().as_bytes());
    }
}

#[test]
fn valid_samples_decode() {
    let vms = decode_envelope::<Vec<Vm>>("t", 200, SAMPLES[0].as_bytes()).unwrap();
    assert_eq!(vms.data[0].cpu, 2);
    assert!(vms.data[0].is_ready());
    assert_eq!(vms.total, Some(1));
    let offers = decode_envelope::<Vec<Offer>>("t", 200, SAMPLES[1].as_bytes()).unwrap();
    assert!((offers.data[0].price - 14.25).abs() < 1e-9);
    let cluster = decode_envelope::<Cluster>("t", 200, SAMPLES[2].as_bytes()).unwrap();
    assert_eq!(cluster.data.nodes.len(), 1);
}
