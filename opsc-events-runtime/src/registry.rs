//! The handler registry: every `#[handler]` linked into the binary, selected, resolved and
//! checked once at startup.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::error::ConfigProblem;
use crate::handler::{HandlerInfo, HandlerRegistration, Requirement, StateMap};

/// Every registered handler, sorted by stream, then full path.
pub(crate) fn registered() -> Vec<&'static HandlerRegistration> {
    let mut all: Vec<_> = inventory::iter::<HandlerRegistration>.into_iter().collect();
    all.sort_by(|a, b| (a.stream, a.module_path, a.name).cmp(&(b.stream, b.module_path, b.name)));
    all
}

/// The group of a handler in `service`: the `group` attribute or `<service>.<fn name>`.
pub(crate) fn group_of(reg: &HandlerRegistration, service: &str) -> Arc<str> {
    match reg.group {
        Some(g) => g.into(),
        None => format!("{service}.{}", reg.name).into(),
    }
}

/// A handler chosen to run, with its group.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    pub(crate) reg: &'static HandlerRegistration,
    pub(crate) group: Arc<str>,
}

pub(crate) type Filter = Arc<dyn Fn(&HandlerInfo<'_>) -> bool + Send + Sync>;

/// Selects handlers with `only` and checks them; every problem is appended to `problems`.
pub(crate) fn select(
    service: &str,
    only: Option<&Filter>,
    state: &StateMap,
    problems: &mut Vec<ConfigProblem>,
) -> Vec<Selected> {
    let all = registered();
    let selected: Vec<Selected> = all
        .iter()
        .map(|reg| Selected {
            reg,
            group: group_of(reg, service),
        })
        .filter(|s| {
            only.is_none_or(|f| {
                f(&HandlerInfo {
                    reg: s.reg,
                    group: &s.group,
                })
            })
        })
        .collect();
    if selected.is_empty() {
        problems.push(ConfigProblem::NoHandlers);
        return selected;
    }

    let mut groups: HashMap<(&str, &str), &HandlerRegistration> = HashMap::new();
    for s in &selected {
        if let Some(first) = groups.insert((s.reg.stream, &s.group), s.reg) {
            problems.push(ConfigProblem::DuplicateGroup {
                stream: s.reg.stream.to_owned(),
                group: s.group.to_string(),
                first: first.path(),
                second: s.reg.path(),
            });
        }
    }

    let mut missing: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for s in &selected {
        let mut reqs: Vec<Requirement> = Vec::new();
        (s.reg.requirements)(&mut reqs);
        for r in reqs {
            if !state.contains(r.type_id) {
                missing.entry(r.type_name).or_default().push(s.reg.path());
            }
        }
    }
    for (type_name, handlers) in missing {
        problems.push(ConfigProblem::MissingState {
            type_name: type_name.to_owned(),
            handlers,
        });
    }

    let mut events: HashMap<(&str, &str, u16), &HandlerRegistration> = HashMap::new();
    for s in &selected {
        let e = &s.reg.event;
        if let Some(first) = events.insert((e.stream, e.name, e.version), s.reg)
            && first.event.fingerprint != e.fingerprint
        {
            problems.push(ConfigProblem::ConflictingEvents {
                stream: e.stream.to_owned(),
                name: e.name.to_owned(),
                version: e.version,
                first: format!("{} (in {})", first.event.type_name, first.path()),
                second: format!("{} (in {})", e.type_name, s.reg.path()),
            });
        }
    }

    for s in &selected {
        let c = &s.reg.config;
        if c.claim_after <= c.timeout {
            problems.push(ConfigProblem::InvalidHandler {
                handler: s.reg.path(),
                reason: format!(
                    "`claim_after` ({:?}) must be above `timeout` ({:?})",
                    c.claim_after, c.timeout
                ),
            });
        }
    }
    selected
}

/// The handler table logged at startup.
pub(crate) fn table(selected: &[Selected]) -> String {
    let mut out = String::from("handlers:");
    for s in selected {
        let c = &s.reg.config;
        out.push_str(&format!(
            "\n  {:<40} stream={} group={} event={} v{} concurrency={} retries={} timeout={:?} claim_after={:?}",
            s.reg.path(),
            s.reg.stream,
            s.group,
            s.reg.event.name,
            s.reg.event.version,
            c.concurrency,
            c.retries,
            c.timeout,
            c.claim_after,
        ));
    }
    out
}
