//! `crate = "path"`: a crate that reaches the facade under another path (here a re-export,
//! `crate::reexport::events`) tells the macros so, and the generated code goes through that
//! path. The derive crate's unit tests check that no `::opsc_events` is left in the expansion.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The facade re-exported, as a crate that wraps it would.
mod reexport {
    pub use opsc_events as events;
}

use reexport::events::handler::HandlerConfig;
use reexport::events::prelude::{Context, Event, State};
use reexport::events::testing::TestRuntime;

#[derive(reexport::events::EventSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event_schema(crate = "crate::reexport::events")]
pub enum Size {
    Small,
    Large { bytes: u64 },
}

#[derive(reexport::events::Event, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[event(crate = "crate::reexport::events", stream = "reexported", version = 2)]
pub struct FileStored {
    pub path: String,
    pub size: Size,
}

/// What the handler saw.
#[derive(Clone, Default)]
pub struct Stored(Arc<Mutex<Vec<(String, u32)>>>);

#[reexport::events::handler(crate = "crate::reexport::events", stream = "reexported", retries = 1)]
async fn on_file_stored(event: FileStored, ctx: Context, State(stored): State<Stored>) {
    stored.0.lock().unwrap().push((event.path, ctx.attempt()));
}

#[test]
fn event_through_the_crate_path_has_its_identity_and_schema() {
    assert_eq!(
        (FileStored::STREAM, FileStored::NAME, FileStored::VERSION),
        ("reexported", "file_stored", 2)
    );
    let schema = FileStored::schema();
    assert_eq!(schema.fingerprint, FileStored::FINGERPRINT);
    let text = format!("{schema:?}");
    assert!(text.contains("Large") && text.contains("bytes"), "{text}");
}

#[tokio::test]
async fn handler_through_the_crate_path_is_called() {
    let stored = Stored::default();
    let config: Arc<Mutex<Option<HandlerConfig>>> = Arc::default();
    let seen_config = config.clone();
    let builder = TestRuntime::builder().state(stored.clone()).only(move |h| {
        *seen_config.lock().unwrap() = Some(*h.config());
        h.name() == "on_file_stored"
    });
    let t = TestRuntime::start(builder).await.unwrap();
    let event = FileStored {
        path: "/a".into(),
        size: Size::Large { bytes: 7 },
    };
    t.publish(&event).await.unwrap();
    t.wait_idle().await.unwrap();
    assert_eq!(t.handled("on_file_stored").len(), 1);
    t.stop().await.unwrap();
    assert_eq!(*stored.0.lock().unwrap(), vec![("/a".to_owned(), 1)]);
    let config = config.lock().unwrap().expect("the handler was registered");
    assert_eq!(
        config,
        HandlerConfig {
            retries: 1,
            ..HandlerConfig::DEFAULT
        }
    );
}
