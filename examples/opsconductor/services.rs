//! The four services' handlers. Each module is one service; `main` runs each as its own
//! runtime ([`runtime`]), selecting the module's handlers with `.only`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use opsc_events::prelude::*;

use crate::events::*;

/// The key prefix of the demo.
pub const PREFIX: &str = "opsconductor-demo";

/// The runtime of one service, transport aside: its handlers (the module of its name), the
/// state they use, and the event types it publishes. Those are declared for the schema
/// registry: in this one process every event type has a handler, so none would be recorded as
/// published otherwise (a service in its own binary needs no declaration for an event type it
/// does not handle).
pub fn runtime(
    name: &str,
    console: &Console,
    directory: &Directory,
) -> opsc_events::RuntimeBuilder {
    let b = Runtime::builder()
        .service(name)
        .prefix(PREFIX)
        .state(console.clone())
        .state(directory.clone());
    let module = format!("::{name}");
    let handlers = move |h: &HandlerInfo<'_>| h.module_path().ends_with(&module);
    match name {
        "identity" => b.only(handlers).publishes::<UserRegistered>(),
        "assets" => b.no_handlers().publishes::<AssetDiscovered>(),
        "automation" => b
            .only(handlers)
            .publishes::<ScanScheduled>()
            .publishes::<ScanCompleted>(),
        "communication" => b.only(handlers).publishes::<NotificationSent>(),
        other => panic!("no service `{other}` in the demo"),
    }
}

/// What the demo prints and counts; shared by every service in this one process.
#[derive(Clone)]
pub struct Console {
    pub notifications: tokio::sync::watch::Sender<usize>,
    pub audited: tokio::sync::watch::Sender<usize>,
}

impl Console {
    pub fn say(&self, service: &str, ctx: &Context, line: String) {
        let conversation = ctx.correlation_id().simple().to_string();
        println!("{service:<14} [{}] {line}", &conversation[24..]);
    }
}

/// The identity service's user directory (in memory for the demo).
#[derive(Clone, Default)]
pub struct Directory(pub Arc<Mutex<HashMap<u64, String>>>);

pub mod identity {
    use super::*;

    /// Keeps an audit trail of everything sent to users.
    #[handler(stream = "communication")]
    pub async fn audit_notification(
        event: NotificationSent,
        ctx: Context,
        State(console): State<Console>,
    ) {
        console.say(
            "identity",
            &ctx,
            format!("audit: {:?} sent to {}", event.subject, event.to),
        );
        console.audited.send_modify(|n| *n += 1);
    }
}

pub mod automation {
    use super::*;

    /// Every discovered asset gets a scan: full for servers, quick otherwise.
    #[handler(stream = "assets", retries = 5, backoff = "exponential(200ms, 10s)")]
    pub async fn schedule_scan(
        event: AssetDiscovered,
        ctx: Context,
        State(console): State<Console>,
    ) -> Result<(), HandlerError> {
        let profile = if event.hostname.starts_with("db") {
            ScanProfile::Full
        } else {
            ScanProfile::Quick
        };
        let scan_id = 1000 + event.asset_id;
        console.say(
            "automation",
            &ctx,
            format!(
                "scheduling {profile:?} scan {scan_id} of {} ({})",
                event.hostname, event.address
            ),
        );
        ctx.publish(&ScanScheduled {
            scan_id,
            asset_id: event.asset_id,
            owner_id: event.owner_id,
            profile,
        })
        .await?;
        Ok(())
    }

    /// Runs scheduled scans, four at a time.
    #[handler(stream = "automation", concurrency = 4, timeout = "30s")]
    pub async fn run_scan(
        event: ScanScheduled,
        ctx: Context,
        State(console): State<Console>,
    ) -> Result<(), HandlerError> {
        let findings = match event.profile {
            ScanProfile::Full => vec![
                "openssh 8.2 outdated".to_owned(),
                "tls 1.0 enabled".to_owned(),
            ],
            ScanProfile::Quick => vec![],
        };
        console.say(
            "automation",
            &ctx,
            format!("scan {} done: {} finding(s)", event.scan_id, findings.len()),
        );
        ctx.publish(&ScanCompleted {
            scan_id: event.scan_id,
            asset_id: event.asset_id,
            owner_id: event.owner_id,
            findings,
        })
        .await?;
        Ok(())
    }
}

pub mod communication {
    use super::*;

    #[handler(stream = "identity")]
    pub async fn welcome_user(
        event: UserRegistered,
        ctx: Context,
        State(console): State<Console>,
        State(directory): State<Directory>,
    ) -> Result<(), HandlerError> {
        directory
            .0
            .lock()
            .map_err(|_| "directory poisoned")?
            .insert(event.user_id, event.email.clone());
        console.say(
            "communication",
            &ctx,
            format!("welcome mail to {}", event.email),
        );
        ctx.publish(&NotificationSent {
            to: event.email,
            subject: "Welcome to OpsConductor".into(),
        })
        .await?;
        console.notifications.send_modify(|n| *n += 1);
        Ok(())
    }

    #[handler(stream = "automation")]
    pub async fn report_scan(
        event: ScanCompleted,
        ctx: Context,
        State(console): State<Console>,
        State(directory): State<Directory>,
    ) -> Result<(), HandlerError> {
        let owner = directory
            .0
            .lock()
            .map_err(|_| "directory poisoned")?
            .get(&event.owner_id)
            .cloned();
        // Streams are not ordered with each other: the owner's registration may not have been
        // handled yet. Reports then go to the operations team.
        let to = owner.unwrap_or_else(|| "ops-team@example.com".to_owned());
        let subject = if event.findings.is_empty() {
            format!("Scan {}: no findings", event.scan_id)
        } else {
            format!("Scan {}: {}", event.scan_id, event.findings.join("; "))
        };
        console.say("communication", &ctx, format!("report to {to}: {subject}"));
        ctx.publish(&NotificationSent { to, subject }).await?;
        console.notifications.send_modify(|n| *n += 1);
        Ok(())
    }
}
