//! Names shared by every part of the product: the API group, labels, annotations, taints and finalizers.
//! Defined once here so the controller, the drain code and the CLI cannot drift apart.

/// The API group of our CRDs.
pub const GROUP: &str = "autoscaler.vpsie.com";
/// The API version of our CRDs.
pub const VERSION: &str = "v1alpha1";

/// Label on Nodes and VPSieNodes: the NodeGroup they belong to.
pub const LABEL_NODEGROUP: &str = "autoscaler.vpsie.com/nodegroup";
/// Label on Nodes: the VPSie offering they run on.
pub const LABEL_OFFERING: &str = "autoscaler.vpsie.com/offering";
/// Label on Nodes: the VPSie datacenter.
pub const LABEL_DATACENTER: &str = "autoscaler.vpsie.com/datacenter";
/// Label on Nodes and VPSieNodes: created and managed by this autoscaler.
pub const LABEL_MANAGED: &str = "autoscaler.vpsie.com/managed";

/// Pod annotation: never disrupt this pod (the autoscaler's own name for it).
pub const ANNOTATION_DO_NOT_DISRUPT: &str = "autoscaler.vpsie.com/do-not-disrupt";
/// Pod annotation also honoured: Karpenter's do-not-disrupt.
pub const ANNOTATION_KARPENTER_DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";
/// Pod annotation of the Cluster Autoscaler: `"false"` blocks eviction, `"true"` allows it despite local storage.
pub const ANNOTATION_SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// Node annotation: never scale this node down.
pub const ANNOTATION_SCALE_DOWN_DISABLED: &str = "autoscaler.vpsie.com/scale-down-disabled";
/// Node annotation written by the scale-down loop: since when (RFC 3339) the node has been unneeded. It
/// survives a restart, so the stabilization window does not start again.
pub const ANNOTATION_UNNEEDED_SINCE: &str = "autoscaler.vpsie.com/unneeded-since";
/// VPSieNode annotation: the correlation id of the decision that created or removed it.
pub const ANNOTATION_DECISION: &str = "autoscaler.vpsie.com/decision";
/// VPSieNode annotation: what created it (`scale-up`, `headroom`, `min-nodes`, `consolidation`).
pub const ANNOTATION_CREATED_FOR: &str = "autoscaler.vpsie.com/created-for";
/// VPSieNode annotation on a repair's replacement: the broken VPSieNode it replaces (so a pass that finds
/// the broken one still there, after a failed delete or a restart, creates no second replacement).
pub const ANNOTATION_REPAIRS: &str = "autoscaler.vpsie.com/repairs";
/// VPSieNode annotation on a consolidation's replacement: the nodes it replaces, comma-separated.
pub const ANNOTATION_REPLACES: &str = "autoscaler.vpsie.com/replaces";

/// VPSieNode annotation written just before the VPSieNode is deleted: `involuntary` when the node must go
/// whatever its pods want (its NodeGroup deleted, `maxNodes` lowered, a repair, a failed node). Its drain
/// then evicts local-storage, controller-less and kube-system pods too, and stops at the group's
/// `terminationGracePeriodSeconds`. Absent (scale-down, consolidation, a `kubectl delete`): voluntary.
pub const ANNOTATION_REMOVAL: &str = "autoscaler.vpsie.com/removal";
/// The value of [`ANNOTATION_REMOVAL`] for an involuntary removal.
pub const REMOVAL_INVOLUNTARY: &str = "involuntary";

/// Taint put on a node being drained so the scheduler places nothing new on it.
pub const TAINT_TO_BE_DELETED: &str = "autoscaler.vpsie.com/to-be-deleted";
/// Startup taint on new nodes until they are initialised.
pub const TAINT_INITIALIZING: &str = "autoscaler.vpsie.com/initializing";
/// `PreferNoSchedule` taint the scale-down loop puts on a node it is about to remove, so new pods avoid it.
pub const TAINT_DELETION_CANDIDATE: &str = "autoscaler.vpsie.com/deletion-candidate";

/// Finalizer on NodeGroups: remove its VPSieNodes before the group goes.
pub const FINALIZER_NODEGROUP: &str = "autoscaler.vpsie.com/nodegroup-cleanup";
/// Finalizer on VPSieNodes: delete the VPSie VM before the object goes.
pub const FINALIZER_VPSIENODE: &str = "autoscaler.vpsie.com/vm-cleanup";

/// Field manager name for server-side apply.
pub const FIELD_MANAGER: &str = "vpsie-autoscaler";

/// Label-key prefixes a NodeGroup may not set on nodes: they belong to Kubernetes or to us.
pub const RESERVED_LABEL_PREFIXES: &[&str] = &["kubernetes.io/", "k8s.io/", "autoscaler.vpsie.com/"];
