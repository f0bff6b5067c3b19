//! The events the services exchange, one stream per owning service.

use std::net::IpAddr;

use opsc_events::prelude::*;
use serde::{Deserialize, Serialize};

/// identity → everyone: a user account was created.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "identity")]
pub struct UserRegistered {
    pub user_id: u64,
    pub email: String,
}

/// assets → everyone: a network scan found a host.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "assets")]
pub struct AssetDiscovered {
    pub asset_id: u64,
    pub hostname: String,
    pub address: IpAddr,
    pub owner_id: u64,
}

/// How deep a scan goes.
#[derive(EventSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScanProfile {
    Quick,
    Full,
}

/// automation: a vulnerability scan was scheduled for an asset.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "automation")]
pub struct ScanScheduled {
    pub scan_id: u64,
    pub asset_id: u64,
    pub owner_id: u64,
    pub profile: ScanProfile,
}

/// automation: a scan finished.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "automation")]
pub struct ScanCompleted {
    pub scan_id: u64,
    pub asset_id: u64,
    pub owner_id: u64,
    pub findings: Vec<String>,
}

/// communication: a message went out.
#[derive(Event, Serialize, Deserialize, Debug, Clone)]
#[event(stream = "communication")]
pub struct NotificationSent {
    pub to: String,
    pub subject: String,
}
