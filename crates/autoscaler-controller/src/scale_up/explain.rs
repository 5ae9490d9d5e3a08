//! The sentences a scale-up leaves on pods and NodeGroups. A pod no group can host gets one Event whose
//! note groups the same reason across groups ("needs 1 nvidia.com/gpu ... in 15 groups (general-*,
//! cpu-*, ...)") so it stays within the 1 KB an Event note holds; each group's own refusal goes to its
//! status (`lastDecision`). Pure.

use std::collections::BTreeMap;

use autoscaler_decision::scale_up::{GroupRefusal, Unplaced};

/// How many group names (or `prefix-*` patterns) a grouped reason lists before `...`.
const NAMES_SHOWN: usize = 4;

/// The Event note for a pod the plan leaves pending: each distinct reason once, with the groups that gave
/// it. `blocked` overrides a group's refusal (a paused or misconfigured group says why itself).
pub fn pending_note(unplaced: &Unplaced, blocked: &BTreeMap<String, String>) -> String {
    if unplaced.refusals.is_empty() {
        return "no NodeGroup can add a node for it: there is no usable NodeGroup".to_owned();
    }
    // Same reason text once the group's own name is taken out -> the groups that gave it, in order.
    let mut by_reason: Vec<(String, Vec<&str>)> = Vec::new();
    for r in &unplaced.refusals {
        let text = reason_of(r, blocked);
        let generic = text.replace(&r.group, "{group}");
        match by_reason.iter_mut().find(|(g, _)| *g == generic) {
            Some((_, groups)) => groups.push(&r.group),
            None => by_reason.push((generic, vec![&r.group])),
        }
    }
    let parts: Vec<String> = by_reason
        .into_iter()
        .map(|(generic, groups)| match groups.as_slice() {
            [one] => generic.replace("{group}", one),
            many => format!("{} in {} groups ({})", generic.replace("{group}", "the group"), many.len(), names(many)),
        })
        .collect();
    format!("not triggering scale-up: {}", parts.join("; "))
}

fn reason_of(r: &GroupRefusal, blocked: &BTreeMap<String, String>) -> String {
    blocked.get(&r.group).map_or_else(|| r.message.clone(), |why| format!("{} cannot grow: {why}", r.group))
}

/// Group names, shortened: names sharing a prefix before their last `-` become `prefix-*`.
fn names(groups: &[&str]) -> String {
    let mut by_prefix: BTreeMap<&str, usize> = BTreeMap::new();
    for g in groups {
        *by_prefix.entry(g.rsplit_once('-').map_or(*g, |(p, _)| p)).or_default() += 1;
    }
    let mut shown: Vec<String> = Vec::new();
    for g in groups {
        let prefix = g.rsplit_once('-').map_or(*g, |(p, _)| p);
        let item =
            if by_prefix.get(prefix).copied().unwrap_or(0) > 1 { format!("{prefix}-*") } else { (*g).to_owned() };
        if !shown.contains(&item) {
            shown.push(item);
        }
    }
    let more = shown.len() > NAMES_SHOWN;
    shown.truncate(NAMES_SHOWN);
    if more {
        shown.push("...".into());
    }
    shown.join(", ")
}

/// Each group's refusal for its status: `12 pending pod(s) not placed here: <reason>` with the most common
/// reason the group gave.
pub fn group_refusals(unplaced: &[Unplaced], blocked: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut counts: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for u in unplaced {
        for r in &u.refusals {
            *counts.entry(&r.group).or_default().entry(reason_of(r, blocked)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(group, reasons)| {
            let total: usize = reasons.values().sum();
            let top = reasons.iter().max_by_key(|(_, n)| **n).map(|(r, _)| r.clone()).unwrap_or_default();
            (group.to_owned(), format!("{total} pending pod(s) not placed here: {top}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(group: &str, message: String) -> GroupRefusal {
        GroupRefusal { group: group.into(), code: "insufficient_resources".into(), message }
    }

    #[test]
    fn one_reason_from_many_groups_is_said_once_and_fits_an_event() {
        let groups: Vec<String> = (0..8)
            .map(|i| format!("general-{i}"))
            .chain((0..7).map(|i| format!("cpu-{i}")))
            .chain(["gpu-a100".to_owned()])
            .collect();
        let refusals = groups
            .iter()
            .map(|g| {
                if g == "gpu-a100" {
                    refusal(g, format!("{g} is at maxNodes 2"))
                } else {
                    refusal(g, format!("needs 1 nvidia.com/gpu; the largest offering of {g} has none"))
                }
            })
            .collect();
        let u = Unplaced { pod: "ml/train-0".into(), refusals };
        let note = pending_note(&u, &BTreeMap::new());
        assert_eq!(
            note,
            "not triggering scale-up: needs 1 nvidia.com/gpu; the largest offering of the group has none in 15 \
             groups (general-*, cpu-*); gpu-a100 is at maxNodes 2"
        );
        assert!(note.len() <= crate::events::NOTE_LIMIT);
    }

    #[test]
    fn a_single_group_keeps_its_own_sentence_and_a_block_overrides_it() {
        let u = Unplaced {
            pod: "shop/big-0".into(),
            refusals: vec![refusal("general", "needs 6 CPU; the largest offering of general has 4".into())],
        };
        assert_eq!(
            pending_note(&u, &BTreeMap::new()),
            "not triggering scale-up: needs 6 CPU; the largest offering of general has 4"
        );
        let blocked: BTreeMap<String, String> =
            [("general".to_owned(), "launches paused until 12:00 (runaway guard)".to_owned())].into();
        assert_eq!(
            pending_note(&u, &blocked),
            "not triggering scale-up: general cannot grow: launches paused until 12:00 (runaway guard)"
        );
        let per_group = group_refusals(&[u.clone(), u], &BTreeMap::new());
        assert_eq!(
            per_group.get("general").map(String::as_str),
            Some("2 pending pod(s) not placed here: needs 6 CPU; the largest offering of general has 4")
        );
    }

    #[test]
    fn many_distinct_names_are_cut() {
        let groups = ["a", "b", "c", "d", "e", "f"];
        assert_eq!(names(&groups), "a, b, c, d, ...");
    }
}
