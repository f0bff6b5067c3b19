//! Handlers in nested modules, with the same fn name in two of them and the event named by
//! path: each registers with its own module path.

use opsc_events::handler::HandlerRegistration;

mod events {
    use opsc_events::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Event, Serialize, Deserialize)]
    #[event(stream = "assets")]
    pub struct AssetCreated {
        pub asset_id: u64,
    }
}

mod inventory {
    pub mod indexing {
        use opsc_events::prelude::*;

        #[handler(stream = "assets")]
        pub(crate) async fn on_created(event: crate::events::AssetCreated) {
            let _ = event;
        }
    }
}

mod billing {
    use opsc_events::prelude::*;

    #[handler(stream = "assets")]
    async fn on_created(event: super::events::AssetCreated) {
        let _ = event;
    }
}

fn main() {
    let mut found: Vec<(String, &str)> =
        opsc_events::__private::inventory::iter::<HandlerRegistration>
            .into_iter()
            .map(|r| (r.path(), r.event.type_name))
            .collect();
    found.sort();
    let root = module_path!();
    assert_eq!(
        found,
        [
            (
                format!("{root}::billing::on_created"),
                "super::events::AssetCreated"
            ),
            (
                format!("{root}::inventory::indexing::on_created"),
                "crate::events::AssetCreated"
            ),
        ]
    );
}
