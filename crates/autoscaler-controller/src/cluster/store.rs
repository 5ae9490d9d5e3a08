//! A watched, converted cache: each object is reduced to what the autoscaler reads before it is stored.
//!
//! kube-runtime's reflector keeps whole objects; at 30,000 pods a whole `Pod` costs kilobytes, the decision
//! core's model a few hundred bytes. So the watch stream is consumed here directly: every object is converted
//! as it arrives and the full object dropped. A relist (`Init` .. `InitDone`) fills a fresh map that replaces
//! the old one at once, so readers never see a half-listed cache.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::health::Health;
use crate::telemetry::metrics::{CACHE_OBJECTS, CONVERT_ERRORS};

/// The map a store holds. Values are boxed so the table itself stays small: at 30,000 pods a resize of a
/// table of inline entries briefly held two tables of ~9 MB and ~4.5 MB, the largest single item of the
/// start-up peak.
pub type Entries<V> = HashMap<Box<str>, Box<V>>;

/// One converted cache, keyed by `namespace/name` (or `name` for cluster-scoped objects).
#[derive(Debug)]
pub struct Store<V> {
    kind: &'static str,
    map: RwLock<Entries<V>>,
    synced: AtomicBool,
    changed: Notify,
}

impl<V> Store<V> {
    /// An empty, unsynced store of objects of `kind`.
    pub fn new(kind: &'static str) -> Self {
        Self { kind, map: RwLock::new(HashMap::new()), synced: AtomicBool::new(false), changed: Notify::new() }
    }

    /// The kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Read access to every entry. Hold the guard briefly: writers wait for it.
    pub fn read(&self) -> RwLockReadGuard<'_, Entries<V>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Whether the first full list has been stored.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Resolves after the next change to the store.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// A future for the next change, which a caller can `enable()` before reading the store so a change
    /// made while it works is not missed.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Inserts or replaces one entry (tests and callers that feed a store by hand).
    pub fn insert(&self, key: impl Into<Box<str>>, value: V) {
        self.map.write().unwrap_or_else(PoisonError::into_inner).insert(key.into(), Box::new(value));
        self.changed.notify_waiters();
    }

    /// Removes one entry.
    pub fn remove(&self, key: &str) {
        self.map.write().unwrap_or_else(PoisonError::into_inner).remove(key);
        self.changed.notify_waiters();
    }

    fn replace_all(&self, map: Entries<V>) {
        *self.map.write().unwrap_or_else(PoisonError::into_inner) = map;
        self.synced.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Marks the store synced without a watch (tests).
    pub fn mark_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }
}

/// The cache key of an object.
pub fn key_of<K: Resource>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

/// What to do with a watched object.
pub enum Converted<V> {
    /// Store this.
    Keep(V),
    /// Not needed (e.g. a finished pod): make sure it is not in the store.
    Skip,
    /// Could not be converted: counted, logged, left out.
    Failed(String),
}

/// Watches `api` and keeps `store` current until the stream ends (it retries with backoff forever).
pub async fn drive<K, V>(
    api: Api<K>,
    config: watcher::Config,
    store: Arc<Store<V>>,
    health: Health,
    mut convert: impl FnMut(K, Option<&V>) -> Converted<V>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    V: Send + Sync,
{
    let stream = watcher(api, config).default_backoff();
    tokio::pin!(stream);
    let mut relist: Option<Entries<V>> = None;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(10));
    loop {
        let event = tokio::select! {
            ev = stream.next() => ev,
            _ = heartbeat.tick() => {
                health.beat(store.kind(), Duration::from_secs(120));
                metrics::gauge!(CACHE_OBJECTS, "kind" => store.kind()).set(store.len() as f64);
                continue;
            }
        };
        match event {
            Some(Ok(watcher::Event::Init)) => relist = Some(HashMap::new()),
            Some(Ok(watcher::Event::InitApply(obj))) => {
                let key = key_of(&obj);
                // Compared with what the store held before this (re)list: empty on the first list, the state
                // before a watch gap on a relist, so changes made during the gap are still seen.
                let converted = {
                    let map = store.read();
                    convert(obj, map.get(key.as_str()).map(|b| &**b))
                };
                let buffer = relist.get_or_insert_with(HashMap::new);
                match keep(store.kind(), &key, converted) {
                    Some(v) => buffer.insert(key.into(), Box::new(v)),
                    None => buffer.remove(key.as_str()),
                };
            }
            Some(Ok(watcher::Event::InitDone)) => {
                let map = relist.take().unwrap_or_default();
                tracing::info!(kind = store.kind(), objects = map.len(), "cache synced");
                metrics::gauge!(CACHE_OBJECTS, "kind" => store.kind()).set(map.len() as f64);
                store.replace_all(map);
            }
            Some(Ok(watcher::Event::Apply(obj))) => {
                let key = key_of(&obj);
                let converted = {
                    let map = store.read();
                    convert(obj, map.get(key.as_str()).map(|b| &**b))
                };
                match keep(store.kind(), &key, converted) {
                    Some(v) => store.insert(key, v),
                    None => store.remove(&key),
                }
            }
            Some(Ok(watcher::Event::Delete(obj))) => store.remove(&key_of(&obj)),
            Some(Err(e)) => tracing::warn!(kind = store.kind(), error = %e, "watch error; retrying"),
            None => return,
        }
    }
}

fn keep<V>(kind: &'static str, key: &str, c: Converted<V>) -> Option<V> {
    match c {
        Converted::Keep(v) => Some(v),
        Converted::Skip => None,
        Converted::Failed(why) => {
            metrics::counter!(CONVERT_ERRORS, "kind" => kind).increment(1);
            tracing::warn!(kind, object = key, problem = %why, "left out of plans: cannot convert");
            None
        }
    }
}
